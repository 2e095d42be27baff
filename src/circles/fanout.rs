//! Fan-out between nodes: with PostgreSQL, every node `NOTIFY`s what happened in a circle and
//! `LISTEN`s for the others. A notice carries ids and seqs only (a message body can exceed
//! the 8000-byte payload limit); the receiving node reads the message from the database.
//! Sockets put messages in seq order and fill holes from the database, so a notice arriving
//! late or out of order never loses or repeats a message.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Circles;
use super::hub::RoomEvent;
use super::store;
use crate::db::{Backend, Db};

const CHANNEL: &str = "shuyuan_circles";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notice {
    node: Uuid,
    circle: Uuid,
    #[serde(flatten)]
    what: What,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum What {
    Message { seq: i64 },
    Deleted { seq: i64 },
    Removed { user: Uuid },
}

impl Notice {
    /// The notice of an event for the other nodes (presence is per node and no event).
    pub fn of(node: Uuid, circle: Uuid, event: &RoomEvent) -> Notice {
        let what = match event {
            RoomEvent::Message(message) => What::Message { seq: message.seq },
            RoomEvent::Deleted(seq) => What::Deleted { seq: *seq },
            RoomEvent::Removed(user) => What::Removed { user: *user },
        };
        Notice { node, circle, what }
    }
}

/// Sends `notice` to the other nodes. A failure only delays them: their sockets catch up on
/// the next message (hole filling) or reconnect.
pub async fn notify(db: &Db, notice: &Notice) {
    if db.backend() != Backend::Postgres {
        return;
    }
    let payload = serde_json::to_string(notice).expect("a notice always serializes");
    // pg_notify returns `void`, which the Any driver cannot describe; count the call instead.
    if let Err(error) = sqlx::query("SELECT COUNT(*) FROM (SELECT pg_notify($1, $2)) AS sent")
        .bind(CHANNEL)
        .bind(payload)
        .execute(db.pool())
        .await
    {
        tracing::warn!(%error, "could not notify other nodes");
    }
}

/// Listens for other nodes' notices until `shutdown`, reconnecting after failures.
pub async fn listen(circles: Circles, database_url: String, shutdown: CancellationToken) {
    loop {
        let result = tokio::select! {
            result = listen_once(&circles, &database_url) => result,
            () = shutdown.cancelled() => return,
        };
        if let Err(error) = result {
            tracing::warn!(%error, "circle fan-out listener failed; reconnecting");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn listen_once(circles: &Circles, database_url: &str) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let notification = listener.recv().await?;
        let Ok(notice) = serde_json::from_str::<Notice>(notification.payload()) else {
            tracing::warn!(
                payload = notification.payload(),
                "ignoring a malformed circle notice"
            );
            continue;
        };
        if notice.node == circles.node_id() {
            continue;
        }
        let event = match notice.what {
            What::Message { seq } => {
                match store::find_message(circles.db().pool(), notice.circle, seq).await? {
                    Some(message) => RoomEvent::message(message),
                    None => continue,
                }
            }
            What::Deleted { seq } => RoomEvent::Deleted(seq),
            What::Removed { user } => RoomEvent::Removed(user),
        };
        circles.hub().publish(notice.circle, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip() {
        let notice = Notice {
            node: Uuid::nil(),
            circle: Uuid::nil(),
            what: What::Message { seq: 7 },
        };
        let text = serde_json::to_string(&notice).unwrap();
        assert!(
            text.contains("\"kind\":\"message\"") && text.contains("\"seq\":7"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Notice>(&text).unwrap(), notice);
        assert_eq!(
            Notice::of(Uuid::nil(), Uuid::nil(), &RoomEvent::Deleted(3)).what,
            What::Deleted { seq: 3 }
        );
    }
}
