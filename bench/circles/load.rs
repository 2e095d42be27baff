//! The load generator: thousands of WebSocket clients in this process, an open-loop sender at
//! a fixed total rate, and the accounting of every delivery.
//!
//! Each client is one socket (tokio-tungstenite, `TCP_NODELAY`) and one reader task. Message
//! `k` of the run goes to circle `k mod circles`, sent at its slot of the schedule (period =
//! 1 / rate, never waiting for earlier sends) by a member of that circle picked with a fixed
//! seed, as a SPEC §8 `send` frame with `client_id` `b-k` and a body that starts with
//! `#k c<circle> t<nanoseconds since the run's epoch>`, stamped just before the frame is
//! written. Every reader that gets a `message` frame reads `k` and the stamp back from the
//! body: latency = arrival − stamp, on one monotonic clock. Each reader keeps a bit per
//! message: a second arrival is a duplicate, a message for another circle is misrouted, and
//! after the grace period every message a member of its circle never got is lost.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Socket, Ws>;

/// Text after the stamp, so a body is about as long as a real chat line (~130 bytes).
const FILLER: &str =
    "今天练“永”字，大家把作业拍照发上来吧。Please post your practice sheets before Friday!";

/// A socket to open.
pub struct ClientSpec {
    pub url: String,
    pub token: Option<String>,
    pub circle: usize,
    /// Which node it is connected to (0 = A, 1 = B), for latency by node.
    pub group: usize,
    /// May be picked to send.
    pub sender: bool,
}

/// Latency histograms in microseconds, 1 µs to 10 minutes, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Shared by the sender and every reader.
pub struct Recorder {
    epoch: Instant,
    circles: usize,
    total: usize,
    /// Per message: nanoseconds since the epoch when it was written (0: not yet).
    sent_ns: Vec<AtomicU64>,
    /// Per message: nanoseconds since the epoch when its ack arrived (0: none).
    acked_ns: Vec<AtomicU64>,
    /// Fan-out latency per group of receivers.
    latency: Vec<Mutex<Histogram<u64>>>,
    ack_latency: Mutex<Histogram<u64>>,
    send_failures: AtomicU64,
    /// Sends that waited for their slot's writer (the sender's socket busy with another send).
    late_sends: AtomicU64,
}

impl Recorder {
    pub fn new(circles: usize, total: usize, groups: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            epoch: Instant::now(),
            circles,
            total,
            sent_ns: (0..total).map(|_| AtomicU64::new(0)).collect(),
            acked_ns: (0..total).map(|_| AtomicU64::new(0)).collect(),
            latency: (0..groups).map(|_| Mutex::new(histogram())).collect(),
            ack_latency: Mutex::new(histogram()),
            send_failures: AtomicU64::new(0),
            late_sends: AtomicU64::new(0),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// What one reader saw.
#[derive(Default)]
pub struct ClientStats {
    pub circle: usize,
    pub group: usize,
    /// One bit per message of the run.
    seen: Vec<u64>,
    pub duplicates: u64,
    pub misrouted: u64,
    pub presence_frames: u64,
    pub presence_bytes: u64,
    pub other_frames: u64,
    pub errors: BTreeMap<String, u64>,
    /// Why the server ended the socket before the run did, and when (seconds since epoch).
    pub closed: Option<(String, f64)>,
}

impl ClientStats {
    fn has(&self, k: usize) -> bool {
        self.seen[k / 64] & (1 << (k % 64)) != 0
    }

    fn mark(&mut self, k: usize) {
        self.seen[k / 64] |= 1 << (k % 64);
    }
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    body: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
}

/// `#k c<circle> t<ns> …` → (k, circle, ns).
fn parse_body(body: &str) -> Option<(usize, usize, u64)> {
    let mut words = body.split(' ');
    let k = words.next()?.strip_prefix('#')?.parse().ok()?;
    let circle = words.next()?.strip_prefix('c')?.parse().ok()?;
    let ns = words.next()?.strip_prefix('t')?.parse().ok()?;
    Some((k, circle, ns))
}

fn on_text(text: &str, stats: &mut ClientStats, recorder: &Recorder) {
    let now = recorder.now_ns();
    if text.starts_with(r#"{"type":"presence""#) {
        stats.presence_frames += 1;
        stats.presence_bytes += text.len() as u64;
        return;
    }
    let Ok(frame) = serde_json::from_str::<Incoming<'_>>(text) else {
        stats.other_frames += 1;
        return;
    };
    match frame.kind.as_ref() {
        "message" => {
            let Some((k, circle, sent)) = frame.body.as_deref().and_then(parse_body) else {
                stats.other_frames += 1;
                return;
            };
            if k >= recorder.total {
                stats.other_frames += 1;
            } else if circle != stats.circle {
                stats.misrouted += 1;
            } else if stats.has(k) {
                stats.duplicates += 1;
            } else {
                stats.mark(k);
                let micros = now.saturating_sub(sent) / 1000;
                recorder.latency[stats.group]
                    .lock()
                    .expect("not poisoned")
                    .saturating_record(micros.max(1));
            }
        }
        "ack" => {
            let k = frame
                .client_id
                .as_deref()
                .and_then(|id| id.strip_prefix("b-"))
                .and_then(|k| k.parse::<usize>().ok())
                .filter(|&k| k < recorder.total);
            if let Some(k) = k
                && recorder.acked_ns[k]
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                let sent = recorder.sent_ns[k].load(Ordering::Relaxed);
                recorder
                    .ack_latency
                    .lock()
                    .expect("not poisoned")
                    .saturating_record((now.saturating_sub(sent) / 1000).max(1));
            }
        }
        "presence" => {
            stats.presence_frames += 1;
            stats.presence_bytes += text.len() as u64;
        }
        "error" => {
            *stats
                .errors
                .entry(frame.code.as_deref().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        _ => stats.other_frames += 1,
    }
}

async fn read_loop(
    mut frames: SplitStream<Socket>,
    mut stats: ClientStats,
    recorder: Arc<Recorder>,
    stop: CancellationToken,
) -> ClientStats {
    // Made once: a fresh `cancelled()` per frame registers and unregisters with the token
    // every time, which adds up over 100,000 frames a second on the generator's one core.
    let stopped = stop.cancelled();
    let mut stopped = std::pin::pin!(stopped);
    loop {
        let frame = tokio::select! {
            biased;
            () = &mut stopped => break,
            frame = frames.next() => frame,
        };
        let at = || recorder.epoch.elapsed().as_secs_f64();
        match frame {
            Some(Ok(Ws::Text(text))) => on_text(text.as_str(), &mut stats, &recorder),
            Some(Ok(Ws::Close(close))) => {
                let why = close.map_or_else(
                    || "close frame".to_owned(),
                    |c| format!("close {}: {}", u16::from(c.code), c.reason),
                );
                stats.closed = Some((why, at()));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                stats.closed = Some((error.to_string(), at()));
                break;
            }
            None => {
                stats.closed = Some(("end of stream".into(), at()));
                break;
            }
        }
    }
    stats
}

pub struct Client {
    sink: Arc<tokio::sync::Mutex<Sink>>,
    reader: JoinHandle<ClientStats>,
    pub circle: usize,
    pub sender: bool,
}

/// Opens every socket, `concurrency` handshakes at a time; returns the open ones and why the
/// others failed.
pub async fn connect_all(
    specs: Vec<ClientSpec>,
    concurrency: usize,
    recorder: &Arc<Recorder>,
    stop: &CancellationToken,
) -> (Vec<Client>, BTreeMap<String, usize>) {
    let results = futures::stream::iter(specs)
        .map(|spec| async move {
            let connected = connect(&spec).await;
            (spec, connected)
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut clients = Vec::with_capacity(results.len());
    let mut failures = BTreeMap::new();
    for (spec, connected) in results {
        match connected {
            Ok(socket) => {
                let (sink, frames) = socket.split();
                let stats = ClientStats {
                    circle: spec.circle,
                    group: spec.group,
                    seen: vec![0; recorder.total.div_ceil(64)],
                    ..ClientStats::default()
                };
                let reader = tokio::spawn(read_loop(frames, stats, recorder.clone(), stop.clone()));
                clients.push(Client {
                    sink: Arc::new(tokio::sync::Mutex::new(sink)),
                    reader,
                    circle: spec.circle,
                    sender: spec.sender,
                });
            }
            Err(why) => *failures.entry(why).or_default() += 1,
        }
    }
    (clients, failures)
}

async fn connect(spec: &ClientSpec) -> Result<Socket, String> {
    let mut request = spec
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(token) = &spec.token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(|_| "a header value".to_owned())?,
        );
    }
    // tungstenite zero-fills its whole read buffer before every read: at the default 128 KiB
    // that is most of the generator's work; the server's sockets use the same small buffer.
    let config =
        WebSocketConfig::default().read_buffer_size(shuyuan::circles::live::READ_BUFFER_BYTES);
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| {
            let text = e.to_string();
            text.chars().take(120).collect::<String>()
        })?;
    Ok(socket)
}

/// A small fixed-seed generator (xorshift64*): the same senders in every run.
struct Picker(u64);

impl Picker {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Sends `recorder.total` messages at `rate` per second in all, round-robin over the circles.
/// Returns when the last one is written.
pub async fn drive(clients: &[Client], recorder: &Arc<Recorder>, rate: f64) -> anyhow::Result<()> {
    let mut senders: Vec<Vec<usize>> = vec![Vec::new(); recorder.circles];
    for (i, client) in clients.iter().enumerate() {
        if client.sender {
            senders[client.circle].push(i);
        }
    }
    anyhow::ensure!(
        senders.iter().all(|s| !s.is_empty()),
        "every circle needs a connected sender"
    );
    let mut picker = Picker(0x9E37_79B9_7F4A_7C15);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut writes = tokio::task::JoinSet::new();
    for k in 0..recorder.total {
        ticker.tick().await;
        let circle = k % recorder.circles;
        let who = senders[circle][picker.next(senders[circle].len())];
        let sink = clients[who].sink.clone();
        let recorder = recorder.clone();
        writes.spawn(async move {
            let mut sink = match sink.try_lock() {
                Ok(sink) => sink,
                Err(_) => {
                    recorder.late_sends.fetch_add(1, Ordering::Relaxed);
                    sink.lock().await
                }
            };
            let stamp = recorder.now_ns();
            let frame = format!(
                r##"{{"type":"send","client_id":"b-{k}","body":"#{k} c{circle} t{stamp} {FILLER}"}}"##
            );
            recorder.sent_ns[k].store(stamp, Ordering::Relaxed);
            if sink.send(Ws::Text(frame.into())).await.is_err() {
                recorder.send_failures.fetch_add(1, Ordering::Relaxed);
            }
        });
        while writes.try_join_next().is_some() {}
    }
    while writes.join_next().await.is_some() {}
    Ok(())
}

/// What a run delivered, once every reader has stopped.
pub struct Outcome {
    pub planned: usize,
    pub sent: usize,
    pub acked: usize,
    pub send_failures: u64,
    pub late_sends: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub lost: u64,
    /// Lost on sockets that the server had closed.
    pub lost_on_closed: u64,
    pub duplicates: u64,
    pub misrouted: u64,
    pub closed_sockets: usize,
    pub close_reasons: BTreeMap<String, usize>,
    pub first_close_s: Option<f64>,
    pub errors: BTreeMap<String, u64>,
    pub presence_frames: u64,
    pub presence_bytes: u64,
    pub other_frames: u64,
    pub latency: Vec<Histogram<u64>>,
    pub ack_latency: Histogram<u64>,
}

/// Stops every reader (call after the grace period) and counts.
pub async fn finish(
    clients: Vec<Client>,
    recorder: &Arc<Recorder>,
    stop: &CancellationToken,
) -> Outcome {
    stop.cancel();
    let mut outcome = Outcome {
        planned: recorder.total,
        sent: 0,
        acked: 0,
        send_failures: 0,
        late_sends: 0,
        expected_deliveries: 0,
        delivered: 0,
        lost: 0,
        lost_on_closed: 0,
        duplicates: 0,
        misrouted: 0,
        closed_sockets: 0,
        close_reasons: BTreeMap::new(),
        first_close_s: None,
        errors: BTreeMap::new(),
        presence_frames: 0,
        presence_bytes: 0,
        other_frames: 0,
        latency: Vec::new(),
        ack_latency: histogram(),
    };
    let sent: Vec<bool> = recorder
        .sent_ns
        .iter()
        .map(|s| s.load(Ordering::Relaxed) != 0)
        .collect();
    outcome.sent = sent.iter().filter(|s| **s).count();
    outcome.acked = recorder
        .acked_ns
        .iter()
        .filter(|a| a.load(Ordering::Relaxed) != 0)
        .count();
    outcome.send_failures = recorder.send_failures.load(Ordering::Relaxed);
    outcome.late_sends = recorder.late_sends.load(Ordering::Relaxed);
    let mut sinks = Vec::with_capacity(clients.len());
    for client in clients {
        sinks.push(client.sink);
        let Ok(stats) = client.reader.await else {
            continue;
        };
        for (k, was_sent) in sent.iter().enumerate() {
            if !*was_sent || k % recorder.circles != stats.circle {
                continue;
            }
            outcome.expected_deliveries += 1;
            if stats.has(k) {
                outcome.delivered += 1;
            } else {
                outcome.lost += 1;
                if stats.closed.is_some() {
                    outcome.lost_on_closed += 1;
                }
            }
        }
        outcome.duplicates += stats.duplicates;
        outcome.misrouted += stats.misrouted;
        outcome.presence_frames += stats.presence_frames;
        outcome.presence_bytes += stats.presence_bytes;
        outcome.other_frames += stats.other_frames;
        for (code, n) in stats.errors {
            *outcome.errors.entry(code).or_default() += n;
        }
        if let Some((why, at)) = stats.closed {
            outcome.closed_sockets += 1;
            *outcome.close_reasons.entry(why).or_default() += 1;
            outcome.first_close_s = Some(outcome.first_close_s.map_or(at, |f: f64| f.min(at)));
        }
    }
    // Closing is not measured: dropping the sinks drops the connections.
    drop(sinks);
    outcome.latency = recorder
        .latency
        .iter()
        .map(|h| h.lock().expect("not poisoned").clone())
        .collect();
    outcome.ack_latency = recorder.ack_latency.lock().expect("not poisoned").clone();
    outcome
}

/// Presence and other frames seen so far are not needed before `finish`; this only tells
/// whether readers are still alive, for the log.
pub fn open_count(clients: &[Client]) -> usize {
    clients.iter().filter(|c| !c.reader.is_finished()).count()
}
