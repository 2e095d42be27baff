//! The live socket of one member in one circle (SPEC §8): replay, then live events, client
//! frames, heartbeats, and a clean close. One loop per socket; every await in it is bounded
//! by the socket itself, and a socket that falls behind its room is closed, never waited for.

use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket};
use futures::{FutureExt, SinkExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::hub::{Online, OnlineList, RoomEvent};
use super::model::{Author, CourseCard, Message};
use super::{Circles, SendRefusal};
use crate::accounts::model::User;
use crate::db::rfc3339;

/// Largest frame a client may send; larger ones close the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// What tungstenite itself accepts, so that a frame somewhat over [`MAX_FRAME_BYTES`] is read
/// whole and refused here: when tungstenite refuses a frame from its header, the frame's rest
/// stays unread, closing the socket then makes the kernel send a reset, and the client never
/// sees its 1009. Beyond this size the client is not one we owe a clean close; the limit is
/// also what a client can make a socket hold while it sends a message in fragments.
pub const READ_LIMIT_BYTES: usize = 2 * MAX_FRAME_BYTES;
/// tungstenite's read buffer. Its default, 128 KiB, is zero-filled before a read and kept for
/// the socket's life: most of an idle socket's memory. tungstenite also zero-fills its free
/// part on every poll of the socket, which here follows every batch of room events. A longer
/// frame is read in several reads, which costs little: clients send rarely beside what they
/// receive. 1 KiB instead of 4 KiB saved 2.8 KiB per idle socket (bench/README.md, "Circles").
pub const READ_BUFFER_BYTES: usize = 1024;
/// What tungstenite gathers before it writes to the socket, when frames are fed without a
/// flush (a batch of queued events). Its default, 128 KiB, would let one burst of long
/// messages grow a socket's write buffer to that size, and the buffer keeps its size for good.
pub const WRITE_BUFFER_BYTES: usize = 8 * 1024;
/// A presence frame lists everyone online: a socket sends at most one per this interval, the
/// newest list (the first at once), so a crowd joining together costs each socket one frame
/// per interval rather than one per join.
const PRESENCE_INTERVAL: Duration = Duration::from_secs(1);
const HEARTBEAT: Duration = Duration::from_secs(20);
/// A socket that sends nothing (not even a pong) for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_ERROR: u16 = 1011;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Send {
        client_id: String,
        body: Option<String>,
    },
}

#[derive(Serialize)]
pub struct AuthorView<'a> {
    pub id: Uuid,
    pub display_name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerFrame<'a> {
    Message {
        seq: i64,
        id: Uuid,
        author: AuthorView<'a>,
        body: &'a str,
        sent_at: String,
        client_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        card: Option<&'a CourseCard>,
    },
    Ack {
        client_id: &'a str,
        seq: i64,
    },
    /// `online` names the first [`super::hub::PRESENCE_NAMES`] by display name; `count` is
    /// everyone.
    Presence {
        online: Vec<AuthorView<'a>>,
        count: usize,
    },
    Deleted {
        seq: i64,
    },
    Gap {
        from: i64,
        to: i64,
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
}

fn message_frame(message: &Message) -> ServerFrame<'_> {
    ServerFrame::Message {
        seq: message.seq,
        id: message.id,
        author: AuthorView {
            id: message.author.id,
            display_name: &message.author.display_name,
        },
        body: &message.body,
        sent_at: rfc3339(message.sent_at_ms),
        client_id: &message.client_id,
        card: message.card.as_ref(),
    }
}

fn presence_frame(online: &OnlineList) -> ServerFrame<'_> {
    ServerFrame::Presence {
        online: online
            .named
            .iter()
            .map(|a| AuthorView {
                id: a.id,
                display_name: &a.display_name,
            })
            .collect(),
        count: online.count,
    }
}

fn json(frame: &ServerFrame<'_>) -> String {
    serde_json::to_string(frame).expect("server frames always serialize")
}

fn encode(frame: &ServerFrame<'_>) -> Frame {
    Frame::Text(Utf8Bytes::from(json(frame)))
}

fn close(code: u16, reason: &'static str) -> Frame {
    Frame::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// What the session loop should do after handling something.
enum Next {
    Continue,
    Close(Frame),
    Stop,
}

pub struct Session {
    pub circles: Circles,
    pub actor: User,
    pub circle_id: Uuid,
    /// The last seq the client has: its `since`, or the circle's last seq when it opened.
    pub since: i64,
    pub shutdown: CancellationToken,
}

pub async fn run(mut socket: WebSocket, session: Session) {
    let author = Author {
        id: session.actor.id,
        display_name: session.actor.display_name.clone(),
    };
    // Subscribe before reading the replay: whatever commits meanwhile arrives as an event, and
    // `last_sent` filters out what the replay already carried.
    let (mut events, online, _presence) = session.circles.hub().join(session.circle_id, author);

    let mut last_sent = match start(&session, &mut socket).await {
        Ok(last_sent) => last_sent,
        Err(()) => {
            let _ = socket
                .send(close(CLOSE_ERROR, "could not load the circle"))
                .await;
            return;
        }
    };
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.reset();
    let mut last_heard = Instant::now();
    // The rare wake-ups are futures that live across iterations: made anew each time, each
    // would register with its channel and unregister again for every message of the room
    // (a lock and a list operation apiece, 100,000 times a second in a busy node).
    let shutdown = session.shutdown.cancelled();
    let mut shutdown = std::pin::pin!(shutdown);
    let presence_changed = presence_change(online);
    let mut presence_changed = std::pin::pin!(presence_changed);
    // Who is online changed and this socket has not said so yet (the receiver, to read the
    // list from); when it next may.
    let mut presence_pending: Option<watch::Receiver<Online>> = None;
    let presence_wait = tokio::time::sleep_until(tokio::time::Instant::now());
    let mut presence_wait = std::pin::pin!(presence_wait);

    loop {
        let next = tokio::select! {
            // Room events first: when one is ready, the other branches are not even polled.
            // While the room keeps this socket busy, `others_turn` reads the client between
            // two batches, so its sends and the shutdown are never starved.
            biased;
            event = events.recv() => match on_events(event, &mut events, &session, &mut last_sent, &mut socket).await {
                Next::Continue if !events.is_empty() => {
                    others_turn(&session, &mut socket, &mut last_heard).await
                }
                next => next,
            },
            (changed, online) = &mut presence_changed, if presence_pending.is_none() => match changed {
                Ok(()) => {
                    presence_pending = Some(online);
                    Next::Continue
                }
                // The room is gone, so this socket is no longer in it.
                Err(_) => Next::Stop,
            },
            () = &mut presence_wait, if presence_pending.is_some() => {
                let mut online = presence_pending.take().expect("guarded by the branch");
                presence_wait.as_mut().reset(tokio::time::Instant::now() + PRESENCE_INTERVAL);
                let list = online.borrow_and_update().clone();
                presence_changed.set(presence_change(online));
                let frame = list.frame(|list| json(&presence_frame(list)));
                if socket.send(Frame::Text(frame)).await.is_err() {
                    Next::Stop
                } else {
                    Next::Continue
                }
            }
            // Cancel-safe: a frame half read stays in tungstenite's buffer for the next poll.
            frame = socket.recv() => heard(frame, &session, &mut socket, &mut last_heard).await,
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    Next::Close(close(CLOSE_GOING_AWAY, "idle"))
                } else if socket.send(Frame::Ping(Default::default())).await.is_err() {
                    Next::Stop
                } else {
                    Next::Continue
                }
            }
            () = &mut shutdown => Next::Close(close(CLOSE_GOING_AWAY, "server shutting down")),
        };
        match next {
            Next::Continue => {}
            Next::Close(frame) => {
                let _ = socket.send(frame).await;
                let _ = socket.close().await;
                return;
            }
            Next::Stop => return,
        }
    }
}

/// What the biased loop would not reach while room events keep coming: the client's next
/// frame if one is there (without waiting), and the shutdown.
async fn others_turn(session: &Session, socket: &mut WebSocket, last_heard: &mut Instant) -> Next {
    if session.shutdown.is_cancelled() {
        return Next::Close(close(CLOSE_GOING_AWAY, "server shutting down"));
    }
    // Cancel-safe like the loop's own read: a frame half read stays buffered.
    match socket.recv().now_or_never() {
        Some(frame) => heard(frame, session, socket, last_heard).await,
        None => Next::Continue,
    }
}

/// Handles what the client sent (or that it went away), noting when it was last heard from.
async fn heard(
    frame: Option<Result<Frame, axum::Error>>,
    session: &Session,
    socket: &mut WebSocket,
    last_heard: &mut Instant,
) -> Next {
    *last_heard = Instant::now();
    // Boxed: a client sends rarely, and unboxed the handling of a send (parsing, the database,
    // the answer) would be carried in every idle socket's future.
    Box::pin(on_client_frame(frame, session, socket)).await
}

/// Waits for the next change of who is online, and hands the receiver back with it.
async fn presence_change(
    mut online: watch::Receiver<Online>,
) -> (Result<(), watch::error::RecvError>, watch::Receiver<Online>) {
    let changed = online.changed().await;
    (changed, online)
}

/// Sends what came after `since`; returns the last seq the client now has.
async fn start<S>(session: &Session, sink: &mut S) -> Result<i64, ()>
where
    S: SinkExt<Frame> + Unpin,
{
    // Database calls are boxed here and below: the socket's future is as large as its largest
    // await, and it lives as long as the socket, idle or not.
    let (messages, gap) = Box::pin(session.circles.replay(session.circle_id, session.since))
        .await
        .map_err(|error| tracing::warn!(%error, "replay failed"))?;
    if let Some((from, to)) = gap {
        sink.send(encode(&ServerFrame::Gap { from, to }))
            .await
            .map_err(|_| ())?;
    }
    let mut last_sent = session.since;
    for message in &messages {
        sink.send(encode(&message_frame(message)))
            .await
            .map_err(|_| ())?;
        last_sent = message.seq;
    }
    // Presence needs no sending here: joining the hub announced it, to this socket too.
    Ok(last_sent)
}

/// Most room events a socket writes in one go before it lets other sockets have the thread.
const EVENTS_PER_WRITE: usize = 32;

/// Handles `first` and whatever else the room has published meanwhile, then writes them out
/// together: a socket that fell behind catches up in one write, not one per message, so a
/// busy node spends less of its time in the kernel the busier it gets.
async fn on_events<S>(
    first: Result<RoomEvent, RecvError>,
    events: &mut broadcast::Receiver<RoomEvent>,
    session: &Session,
    last_sent: &mut i64,
    sink: &mut S,
) -> Next
where
    S: SinkExt<Frame> + Unpin,
{
    let mut next = on_event(first, session, last_sent, sink).await;
    for _ in 1..EVENTS_PER_WRITE {
        if !matches!(next, Next::Continue) {
            return next;
        }
        let event = match events.try_recv() {
            Ok(event) => Ok(event),
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Lagged(skipped)) => Err(RecvError::Lagged(skipped)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
        };
        next = on_event(event, session, last_sent, sink).await;
    }
    match next {
        Next::Continue if sink.flush().await.is_err() => Next::Stop,
        next => next,
    }
}

/// Queues the frames for one room event; [`on_events`] flushes them.
async fn on_event<S>(
    event: Result<RoomEvent, RecvError>,
    session: &Session,
    last_sent: &mut i64,
    sink: &mut S,
) -> Next
where
    S: SinkExt<Frame> + Unpin,
{
    let frame = match event {
        Ok(RoomEvent::Message(message)) => {
            if message.seq <= *last_sent {
                return Next::Continue;
            }
            // Events can arrive out of order (two senders publish concurrently, notices from
            // other nodes); a hole is filled from the database so the client sees every seq
            // once, in order.
            if message.seq > *last_sent + 1 {
                match Box::pin(session.circles.messages_between(
                    session.circle_id,
                    *last_sent,
                    message.seq,
                ))
                .await
                {
                    Ok(missing) => {
                        for earlier in &missing {
                            if sink.feed(encode(&message_frame(earlier))).await.is_err() {
                                return Next::Stop;
                            }
                            *last_sent = earlier.seq;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "filling a hole failed");
                        return Next::Close(close(CLOSE_ERROR, "reconnect with since"));
                    }
                }
            }
            *last_sent = message.seq;
            Frame::Text(message.frame(|message| json(&message_frame(message))))
        }
        Ok(RoomEvent::Deleted(seq)) => encode(&ServerFrame::Deleted { seq }),
        Ok(RoomEvent::Removed(user_id)) if user_id == session.actor.id => {
            return Next::Close(close(CLOSE_POLICY, "no longer a member of this circle"));
        }
        Ok(RoomEvent::Removed(_)) => return Next::Continue,
        // The socket could not keep up with the room: drop it; it reconnects with `since`.
        Err(RecvError::Lagged(_)) => {
            return Next::Close(close(CLOSE_POLICY, "too slow to keep up"));
        }
        Err(RecvError::Closed) => return Next::Stop,
    };
    if sink.feed(frame).await.is_err() {
        Next::Stop
    } else {
        Next::Continue
    }
}

async fn on_client_frame<S, E>(
    frame: Option<Result<Frame, E>>,
    session: &Session,
    sink: &mut S,
) -> Next
where
    S: SinkExt<Frame> + Unpin,
    E: std::fmt::Display,
{
    let text = match frame {
        Some(Ok(Frame::Text(text))) if text.len() > MAX_FRAME_BYTES => {
            return Next::Close(close(CLOSE_TOO_BIG, "frame larger than 64 KiB"));
        }
        Some(Ok(Frame::Binary(bytes))) if bytes.len() > MAX_FRAME_BYTES => {
            return Next::Close(close(CLOSE_TOO_BIG, "frame larger than 64 KiB"));
        }
        Some(Ok(Frame::Text(text))) => text,
        Some(Ok(Frame::Binary(_))) => {
            return refuse(
                sink,
                &SendRefusal::BadFrame("frames are JSON text, not binary".into()),
            )
            .await;
        }
        Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => return Next::Continue,
        Some(Ok(Frame::Close(_))) | None => return Next::Stop,
        Some(Err(error)) => {
            let text = error.to_string();
            if text.contains("too long")
                || text.contains("Space limit")
                || text.contains("capacity")
            {
                return Next::Close(close(CLOSE_TOO_BIG, "frame larger than 64 KiB"));
            }
            return Next::Stop;
        }
    };
    let (client_id, body) = match serde_json::from_str::<ClientFrame>(text.as_str()) {
        Ok(ClientFrame::Send { client_id, body }) => (client_id, body.unwrap_or_default()),
        Err(error) => {
            return refuse(
                sink,
                &SendRefusal::BadFrame(format!("not a frame this server knows: {error}")),
            )
            .await;
        }
    };
    match Box::pin(
        session
            .circles
            .send(&session.actor, session.circle_id, &client_id, &body),
    )
    .await
    {
        Ok(Ok(sent)) => {
            let ack = ServerFrame::Ack {
                client_id: &sent.message.client_id,
                seq: sent.message.seq,
            };
            if sink.send(encode(&ack)).await.is_err() {
                Next::Stop
            } else {
                Next::Continue
            }
        }
        Ok(Err(refusal)) => refuse(sink, &refusal).await,
        Err(error) => {
            tracing::error!(%error, circle.id = %session.circle_id, "storing a message failed");
            let frame = ServerFrame::Error {
                code: "internal",
                message: "the message was not stored; send it again",
            };
            if sink.send(encode(&frame)).await.is_err() {
                Next::Stop
            } else {
                Next::Continue
            }
        }
    }
}

async fn refuse<S>(sink: &mut S, refusal: &SendRefusal) -> Next
where
    S: SinkExt<Frame> + Unpin,
{
    let message = refusal.message();
    let frame = ServerFrame::Error {
        code: refusal.code(),
        message: &message,
    };
    if sink.send(encode(&frame)).await.is_err() {
        Next::Stop
    } else {
        Next::Continue
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use futures::Sink;

    use super::*;
    use crate::config::Config;

    /// A sink that records what it is fed and how often it is flushed.
    #[derive(Default)]
    struct Recorder {
        frames: Vec<Frame>,
        flushes: usize,
    }

    impl Sink<Frame> for Recorder {
        type Error = std::convert::Infallible;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(mut self: Pin<&mut Self>, frame: Frame) -> Result<(), Self::Error> {
            self.frames.push(frame);
            Ok(())
        }

        fn poll_flush(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn session(dir: &std::path::Path) -> Session {
        let mut config = Config::default();
        config.server.data_dir = dir.to_path_buf();
        let db = crate::startup::open_database(&config).await.unwrap();
        let catalog = crate::startup::open_catalog(&config, &db, Arc::from("test")).unwrap();
        Session {
            circles: Circles::new(db, catalog, NonZeroU32::new(10).unwrap()),
            actor: User {
                id: Uuid::now_v7(),
                email: "a@example.org".into(),
                display_name: "A".into(),
                is_admin: false,
                created_at_ms: 0,
            },
            circle_id: Uuid::now_v7(),
            since: 0,
            shutdown: CancellationToken::new(),
        }
    }

    fn message(seq: i64) -> RoomEvent {
        RoomEvent::message(Message {
            seq,
            id: Uuid::now_v7(),
            author: Author {
                id: Uuid::nil(),
                display_name: "B".into(),
            },
            client_id: format!("c{seq}"),
            body: format!("message {seq}"),
            sent_at_ms: 0,
            deleted: false,
            card: None,
        })
    }

    fn seqs(frames: &[Frame]) -> Vec<i64> {
        frames
            .iter()
            .map(|frame| match frame {
                Frame::Text(text) => {
                    let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                    value["seq"].as_i64().unwrap()
                }
                other => panic!("not a text frame: {other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn queued_events_go_out_in_order_with_one_flush_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let session = session(dir.path()).await;
        let (room, mut events) = broadcast::channel(256);
        let total = EVENTS_PER_WRITE as i64 + 8;
        for seq in 1..=total {
            room.send(message(seq)).unwrap();
        }
        let mut sink = Recorder::default();
        let mut last_sent = 0;

        let first = events.recv().await;
        let next = on_events(first, &mut events, &session, &mut last_sent, &mut sink).await;
        assert!(matches!(next, Next::Continue));
        assert_eq!(sink.flushes, 1, "one batch, one flush");
        assert_eq!(
            seqs(&sink.frames),
            (1..=EVENTS_PER_WRITE as i64).collect::<Vec<_>>()
        );
        assert!(!events.is_empty(), "a batch stops at EVENTS_PER_WRITE");

        let first = events.recv().await;
        let next = on_events(first, &mut events, &session, &mut last_sent, &mut sink).await;
        assert!(matches!(next, Next::Continue));
        assert_eq!(sink.flushes, 2);
        assert_eq!(seqs(&sink.frames), (1..=total).collect::<Vec<_>>());
        assert_eq!(last_sent, total);
    }

    #[tokio::test]
    async fn a_socket_that_fell_behind_its_room_mid_batch_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let session = session(dir.path()).await;
        let (room, mut events) = broadcast::channel(2);
        room.send(message(1)).unwrap();
        let first = events.recv().await;
        // Three more into a queue of two while the batch runs: the receiver has lagged.
        for seq in 2..=4 {
            room.send(message(seq)).unwrap();
        }
        let mut sink = Recorder::default();
        let mut last_sent = 0;
        let next = on_events(first, &mut events, &session, &mut last_sent, &mut sink).await;
        assert!(matches!(next, Next::Close(_)), "too slow to keep up");
        assert_eq!(
            seqs(&sink.frames),
            [1],
            "what it had is still sent before the close"
        );
    }
}
