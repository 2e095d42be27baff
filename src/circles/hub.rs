//! The room hub: one broadcast channel per circle that has someone connected, and who is
//! online. A `std::sync::Mutex` suffices (nothing awaits while holding it); rooms are created
//! when the first socket joins and removed when the last leaves.
//!
//! Who is online is a snapshot, not an event stream: it lives in a `watch` channel per room,
//! so a socket only ever reads the newest list, and a crowd joining at once never fills the
//! room's event queue (which would close its sockets as too slow).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::model::{Author, Message};

/// Events a room fans out to every connected socket. Each socket's queue holds this many;
/// a socket that falls further behind is disconnected rather than slowing the room.
pub const ROOM_QUEUE: usize = 256;

/// A presence frame names at most this many of those online (and counts them all): with a
/// thousand members online the whole list was 75 KB, sent to every socket, and each socket's
/// write buffer then kept that size for good. Twenty names (~1.5 KB) fill a phone's member
/// list; at fifty (~4 KB) that buffer was a sixth of an idle socket's memory.
pub const PRESENCE_NAMES: usize = 20;

/// Something every socket of a room sends: the frame is encoded once, by the first socket that
/// sends it, and the rest share those bytes (with 1,000 sockets in a room, encoding the same
/// message per socket was a large share of the server's CPU).
#[derive(Debug)]
pub struct Shared<T> {
    value: T,
    frame: OnceLock<Utf8Bytes>,
}

impl<T> Shared<T> {
    pub fn new(value: T) -> Arc<Shared<T>> {
        Arc::new(Shared {
            value,
            frame: OnceLock::new(),
        })
    }

    /// The frame's text, made with `encode` the first time it is asked for.
    pub fn frame(&self, encode: impl FnOnce(&T) -> String) -> Utf8Bytes {
        self.frame
            .get_or_init(|| Utf8Bytes::from(encode(&self.value)))
            .clone()
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

#[derive(Debug, Clone)]
pub enum RoomEvent {
    Message(Arc<Shared<Message>>),
    Deleted(i64),
    /// This user no longer belongs to the circle: their sockets close.
    Removed(Uuid),
}

impl RoomEvent {
    pub fn message(message: Message) -> RoomEvent {
        RoomEvent::Message(Shared::new(message))
    }
}

/// Who is online in a room.
#[derive(Debug, Default)]
pub struct OnlineList {
    /// The first [`PRESENCE_NAMES`] by display name.
    pub named: Vec<Author>,
    /// Everyone online, named or not.
    pub count: usize,
}

pub type Online = Arc<Shared<OnlineList>>;

struct Room {
    sender: broadcast::Sender<RoomEvent>,
    presence: watch::Sender<Online>,
    /// Online users and how many sockets each has open.
    online: HashMap<Uuid, (Author, usize)>,
}

impl Room {
    fn announce_presence(&self) {
        let mut online: Vec<&Author> = self.online.values().map(|(a, _)| a).collect();
        let count = online.len();
        if count > PRESENCE_NAMES {
            online.select_nth_unstable_by(PRESENCE_NAMES, |a, b| by_name(a, b));
            online.truncate(PRESENCE_NAMES);
        }
        online.sort_by(|a, b| by_name(a, b));
        let named = online.into_iter().cloned().collect();
        self.presence
            .send_replace(Shared::new(OnlineList { named, count }));
    }
}

fn by_name(a: &Author, b: &Author) -> std::cmp::Ordering {
    a.display_name.cmp(&b.display_name).then(a.id.cmp(&b.id))
}

#[derive(Default)]
pub struct RoomHub {
    rooms: Mutex<HashMap<Uuid, Room>>,
}

impl std::fmt::Debug for RoomHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHub").finish_non_exhaustive()
    }
}

/// Marks a user online while it lives; dropping it marks them offline.
pub struct Presence {
    hub: Arc<RoomHub>,
    circle_id: Uuid,
    user_id: Uuid,
}

impl RoomHub {
    /// Subscribes to a circle's events and to who is online, and marks `author` online
    /// (announced to the room, this socket included).
    pub fn join(
        self: &Arc<Self>,
        circle_id: Uuid,
        author: Author,
    ) -> (
        broadcast::Receiver<RoomEvent>,
        watch::Receiver<Online>,
        Presence,
    ) {
        let mut rooms = self.rooms.lock().expect("the hub lock is never poisoned");
        let room = rooms.entry(circle_id).or_insert_with(|| Room {
            sender: broadcast::channel(ROOM_QUEUE).0,
            presence: watch::channel(Shared::new(OnlineList::default())).0,
            online: HashMap::new(),
        });
        let receiver = room.sender.subscribe();
        // Subscribed before the announcement, so this socket sees it as a change.
        let online = room.presence.subscribe();
        let user_id = author.id;
        room.online.entry(user_id).or_insert((author, 0)).1 += 1;
        room.announce_presence();
        let presence = Presence {
            hub: self.clone(),
            circle_id,
            user_id,
        };
        (receiver, online, presence)
    }

    /// Sends an event to everyone connected to the circle on this node.
    pub fn publish(&self, circle_id: Uuid, event: RoomEvent) {
        let rooms = self.rooms.lock().expect("the hub lock is never poisoned");
        if let Some(room) = rooms.get(&circle_id) {
            // No receivers is normal: nobody is connected.
            let _ = room.sender.send(event);
        }
    }

    fn leave(&self, circle_id: Uuid, user_id: Uuid) {
        let mut rooms = self.rooms.lock().expect("the hub lock is never poisoned");
        let Some(room) = rooms.get_mut(&circle_id) else {
            return;
        };
        if let Some(entry) = room.online.get_mut(&user_id) {
            entry.1 -= 1;
            if entry.1 == 0 {
                room.online.remove(&user_id);
            }
        }
        if room.online.is_empty() {
            rooms.remove(&circle_id);
        } else {
            room.announce_presence();
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.hub.leave(self.circle_id, self.user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn author(name: &str) -> Author {
        Author {
            id: Uuid::new_v4(),
            display_name: name.to_owned(),
        }
    }

    #[tokio::test]
    async fn presence_names_the_first_by_name_and_counts_everyone() {
        let hub = Arc::new(RoomHub::default());
        let circle = Uuid::new_v4();
        let total = PRESENCE_NAMES + 10;
        // Joined in reverse order, so the list is sorted, not kept in joining order.
        let mut joined = Vec::new();
        for i in (0..total).rev() {
            joined.push(hub.join(circle, author(&format!("resident {i:03}"))));
        }
        let (_, online, _) = &joined[0];
        let list = online.borrow().clone();
        assert_eq!(list.count, total);
        let names: Vec<&str> = list.named.iter().map(|a| a.display_name.as_str()).collect();
        let expected: Vec<String> = (0..PRESENCE_NAMES)
            .map(|i| format!("resident {i:03}"))
            .collect();
        assert_eq!(names, expected);

        // Leaving is counted too, and the last to leave removes the room.
        joined.truncate(1);
        let (_, online, _) = &joined[0];
        assert_eq!(online.borrow().count, 1);
        assert_eq!(online.borrow().named.len(), 1);
        drop(joined);
        assert!(hub.rooms.lock().unwrap().is_empty());
    }

    #[test]
    fn a_shared_frame_is_encoded_once() {
        let shared = Shared::new(7);
        let mut encodings = 0;
        for _ in 0..3 {
            let frame = shared.frame(|n| {
                encodings += 1;
                format!("frame {n}")
            });
            assert_eq!(frame.as_str(), "frame 7");
        }
        assert_eq!(encodings, 1);
    }
}
