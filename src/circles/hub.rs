//! The room hub: one broadcast channel per circle that has someone connected, and who is
//! online. A `std::sync::Mutex` suffices (nothing awaits while holding it); rooms are created
//! when the first socket joins and removed when the last leaves.
//!
//! Who is online is a snapshot, not an event stream: it lives in a `watch` channel per room,
//! so a socket only ever reads the newest list, and a crowd joining at once never fills the
//! room's event queue (which would close its sockets as too slow).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::model::{Author, Message};

/// Events a room fans out to every connected socket. Each socket's queue holds this many;
/// a socket that falls further behind is disconnected rather than slowing the room.
pub const ROOM_QUEUE: usize = 256;

#[derive(Debug, Clone)]
pub enum RoomEvent {
    Message(Arc<Message>),
    Deleted(i64),
    /// This user no longer belongs to the circle: their sockets close.
    Removed(Uuid),
}

/// Who is online in a room, sorted by display name.
pub type Online = Arc<Vec<Author>>;

struct Room {
    sender: broadcast::Sender<RoomEvent>,
    presence: watch::Sender<Online>,
    /// Online users and how many sockets each has open.
    online: HashMap<Uuid, (Author, usize)>,
}

impl Room {
    fn announce_presence(&self) {
        let mut online: Vec<Author> = self.online.values().map(|(a, _)| a.clone()).collect();
        online.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        self.presence.send_replace(Arc::new(online));
    }
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
            presence: watch::channel(Arc::new(Vec::new())).0,
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
