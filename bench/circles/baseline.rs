//! The baseline: the smallest broadcast server the stack allows, the floor Shuyuan's live
//! sockets are measured against. tokio + tokio-tungstenite, one task per socket, one
//! `broadcast` channel per room (256 deep, like Shuyuan's `ROOM_QUEUE`), rooms keyed by the
//! request path. It speaks the same frames as SPEC §8: a `send` gets an `ack` and a `message`
//! frame (same fields and sizes) broadcast to everyone in the room, the sender included.
//!
//! Its sockets use the same settings as Shuyuan's live socket (read buffer, largest frame).
//! What it leaves out, by design: authentication, membership checks, persistence (no
//! database: the ack is not durable), rate limits, presence, heartbeats. The message frame is
//! serialised once per message and shared by every socket.
//!
//! It runs as a child process of the benchmark (the bench binary started again with
//! [`ROLE_ENV`] set), so its memory and CPU are read from `/proc` exactly like the server's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use shuyuan::circles::live;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as Ws, Utf8Bytes};
use uuid::Uuid;

/// Set (to anything) in the environment of the bench binary to make it the baseline server.
pub const ROLE_ENV: &str = "SHUYUAN_CIRCLES_BENCH_BASELINE";
const ROOM_QUEUE: usize = 256;

struct Room {
    sender: broadcast::Sender<Utf8Bytes>,
    seq: AtomicI64,
}

type Rooms = Arc<Mutex<HashMap<String, Arc<Room>>>>;

#[derive(Deserialize)]
struct SendFrame {
    #[serde(rename = "type")]
    kind: String,
    client_id: String,
    body: String,
}

#[derive(Serialize)]
struct Author<'a> {
    id: Uuid,
    display_name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Outgoing<'a> {
    Message {
        seq: i64,
        id: Uuid,
        author: Author<'a>,
        body: &'a str,
        sent_at: String,
        client_id: &'a str,
    },
    Ack {
        client_id: &'a str,
        seq: i64,
    },
}

/// The baseline process: listens on 127.0.0.1, port chosen by the system, and says where on
/// stdout (`listening ADDR`); runs until killed.
pub fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        println!(
            "listening {}",
            listener.local_addr().expect("a bound listener")
        );
        let rooms: Rooms = Arc::default();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_socket(stream, rooms.clone()));
        }
    });
}

async fn serve_socket(stream: TcpStream, rooms: Rooms) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    // The callback's error type (an HTTP response) is tungstenite's, not ours to box.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().to_owned();
        Ok(response)
    };
    // The same socket settings as Shuyuan's live socket, so the two differ only above them.
    let config = WebSocketConfig::default()
        .read_buffer_size(live::READ_BUFFER_BYTES)
        .write_buffer_size(live::WRITE_BUFFER_BYTES)
        .max_message_size(Some(live::READ_LIMIT_BYTES))
        .max_frame_size(Some(live::READ_LIMIT_BYTES));
    let Ok(socket) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let room = rooms
        .lock()
        .expect("not poisoned")
        .entry(path)
        .or_insert_with(|| {
            Arc::new(Room {
                sender: broadcast::channel(ROOM_QUEUE).0,
                seq: AtomicI64::new(0),
            })
        })
        .clone();
    let mut events = room.sender.subscribe();
    let (mut sink, mut frames) = socket.split();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(text) => {
                    if sink.send(Ws::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => {
                    let _ = sink.close().await;
                    return;
                }
            },
            frame = frames.next() => match frame {
                Some(Ok(Ws::Text(text))) => {
                    let Ok(send) = serde_json::from_str::<SendFrame>(text.as_str()) else {
                        continue;
                    };
                    if send.kind != "send" {
                        continue;
                    }
                    let seq = room.seq.fetch_add(1, Ordering::Relaxed) + 1;
                    let message = Outgoing::Message {
                        seq,
                        id: Uuid::now_v7(),
                        author: Author { id: Uuid::nil(), display_name: "学员00000" },
                        body: &send.body,
                        sent_at: now_rfc3339(),
                        client_id: &send.client_id,
                    };
                    let ack = Outgoing::Ack { client_id: &send.client_id, seq };
                    let message = serde_json::to_string(&message).expect("serialises");
                    let _ = room.sender.send(Utf8Bytes::from(message));
                    let ack = serde_json::to_string(&ack).expect("serialises");
                    if sink.send(Ws::Text(ack.into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Ws::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
