//! Learning circles: rooms where residents study together, with a live socket per member.
//!
//! Owns `circles`, `circle_members` and `circle_messages`. A message is persisted (with the
//! circle's next `seq`, in one transaction) before it is acknowledged or broadcast, so an ack
//! means durable, and a socket that reconnects with `since` replays exactly what it missed.
//!
//! ```text
//!  socket ──send──► Circles::send ──tx: seq+1, insert──► ack ──► RoomHub::publish ──► sockets
//!  socket ◄──────── subscribe to RoomHub first, then replay seq > since from the database,
//!                   then forward live events with seq > last sent (no gap, no duplicate)
//! ```
//!
//! Depends on `db` and `accounts` (authors). `live.rs` is the only code that knows sockets.

pub mod error;
pub mod fanout;
pub mod hub;
pub mod live;
pub mod model;
pub mod routes;
pub mod store;

use std::num::NonZeroU32;
use std::sync::Arc;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use governor::{DefaultKeyedRateLimiter, Quota};
use uuid::Uuid;

use crate::accounts::model::User;
use crate::catalog::Catalog;
use crate::db::{self, Db};
use crate::error::Validation;
pub use error::CirclesError;
use hub::{RoomEvent, RoomHub};
use model::{Author, BodyError, Circle, CircleRole, CourseCard, Message, Visibility};

/// Most messages one replay carries; beyond that the socket says `gap` and the client pages
/// back through the history endpoint.
pub const REPLAY_CAP: u32 = 500;
pub const MAX_HISTORY_PAGE: u32 = 200;
/// A send holds the lock of its circle's stripe from before its transaction until it has
/// published, so this node publishes each circle's messages in seq order. Otherwise a later
/// message published first leaves every socket of the room a hole to fill from the database:
/// a query per socket, a thousand per message in a big circle. Writers of one circle wait
/// for each other anyway (SQLite has one writer; PostgreSQL locks the circle's row for
/// `last_seq`).
const SEND_STRIPES: usize = 64;

/// Why a `send` frame was refused: each becomes an `error` frame with this code.
#[derive(Debug, PartialEq, Eq)]
pub enum SendRefusal {
    TooLong,
    Empty,
    RateLimited,
    Muted,
    NotMember,
    BadFrame(String),
}

impl SendRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            SendRefusal::TooLong => "too_long",
            SendRefusal::Empty => "empty",
            SendRefusal::RateLimited => "rate_limited",
            SendRefusal::Muted => "muted",
            SendRefusal::NotMember => "not_member",
            SendRefusal::BadFrame(_) => "bad_frame",
        }
    }

    pub fn message(&self) -> String {
        match self {
            SendRefusal::TooLong => {
                format!("a message has at most {} characters", model::MAX_BODY_CHARS)
            }
            SendRefusal::Empty => "the message is empty".into(),
            SendRefusal::RateLimited => "too many messages; wait a moment".into(),
            SendRefusal::Muted => "a moderator has muted you in this circle".into(),
            SendRefusal::NotMember => "join the circle to write in it".into(),
            SendRefusal::BadFrame(why) => why.clone(),
        }
    }
}

/// A stored message and whether this call created it (a resend of a known `client_id` does
/// not).
pub struct Sent {
    pub message: Message,
    pub created: bool,
}

/// The circles handle: cheap to clone.
#[derive(Clone)]
pub struct Circles {
    db: Db,
    /// Looks up courses that messages link to, for their cards.
    catalog: Catalog,
    hub: Arc<RoomHub>,
    send_order: Arc<[tokio::sync::Mutex<()>]>,
    send_limiter: Arc<DefaultKeyedRateLimiter<Uuid>>,
    /// This process among the cluster's nodes: it skips its own notifications.
    node_id: Uuid,
}

impl std::fmt::Debug for Circles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circles").finish_non_exhaustive()
    }
}

impl Circles {
    /// `messages_per_second` per user, with bursts of twice that.
    pub fn new(db: Db, catalog: Catalog, messages_per_second: NonZeroU32) -> Self {
        let burst = messages_per_second.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
        Self {
            db,
            catalog,
            hub: Arc::new(RoomHub::default()),
            send_order: (0..SEND_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            send_limiter: Arc::new(DefaultKeyedRateLimiter::keyed(
                Quota::per_second(messages_per_second).allow_burst(burst),
            )),
            node_id: Uuid::new_v4(),
        }
    }

    pub fn node_id(&self) -> Uuid {
        self.node_id
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Announces an event to this node's sockets and, on PostgreSQL, to the other nodes'
    /// (through `NOTIFY`; see `fanout`). Presence stays per node.
    async fn publish(&self, circle_id: Uuid, event: RoomEvent) {
        let notice = fanout::Notice::of(self.node_id, circle_id, &event);
        self.hub.publish(circle_id, event);
        fanout::notify(&self.db, &notice).await;
    }

    /// The card of the first live course of this server the body links to.
    async fn card_for(&self, body: &str) -> Option<CourseCard> {
        for id in model::linked_course_ids(body).into_iter().take(3) {
            if let Ok(course) = self.catalog.course(id).await {
                return Some(CourseCard {
                    course_id: course.id,
                    title: course.title,
                    institution: course.institution.name,
                });
            }
        }
        None
    }

    /// Messages with `after < seq < before`, oldest first: what a socket fills a hole with.
    pub async fn messages_between(
        &self,
        circle_id: Uuid,
        after: i64,
        before: i64,
    ) -> Result<Vec<Message>, CirclesError> {
        let limit =
            u32::try_from((before - after).clamp(1, i64::from(REPLAY_CAP))).unwrap_or(REPLAY_CAP);
        Ok(store::list_messages(self.db.pool(), circle_id, after, before, limit, false).await?)
    }

    pub fn hub(&self) -> &Arc<RoomHub> {
        &self.hub
    }

    pub async fn create(
        &self,
        actor: &User,
        name: &str,
        description: &str,
        visibility: &str,
    ) -> Result<Circle, CirclesError> {
        let mut v = Validation::new();
        let name = v.check("name", model::parse_name(name));
        let description = v.check("description", model::parse_description(description));
        let visibility = v.check("visibility", Visibility::parse(visibility));
        v.finish().map_err(CirclesError::Invalid)?;
        let (Some(name), Some(description), Some(visibility)) = (name, description, visibility)
        else {
            unreachable!("validation passed, so every field parsed");
        };
        let circle = Circle {
            id: Uuid::now_v7(),
            name,
            description,
            visibility,
            owner_id: actor.id,
            invite_code: new_invite_code(),
            last_seq: 0,
            created_at_ms: db::now_ms(),
        };
        let mut tx = self.db.begin_write().await?;
        store::insert_circle(&mut tx, &circle).await?;
        store::upsert_member(
            &mut tx,
            circle.id,
            actor.id,
            CircleRole::Owner,
            circle.created_at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(circle)
    }

    pub async fn list(&self, actor: Option<&User>) -> Result<Vec<Circle>, CirclesError> {
        Ok(store::list_visible(self.db.pool(), actor.map(|u| u.id)).await?)
    }

    /// A circle the actor may see, with the actor's role in it.
    pub async fn show(
        &self,
        actor: Option<&User>,
        id: Uuid,
    ) -> Result<(Circle, Option<CircleRole>), CirclesError> {
        let circle = store::find_circle(self.db.pool(), id)
            .await?
            .ok_or(CirclesError::NotFound)?;
        let role = match actor {
            Some(user) => store::membership(self.db.pool(), id, user.id)
                .await?
                .map(|(r, _)| r),
            None => None,
        };
        if circle.visibility == Visibility::Private && role.is_none() {
            return Err(CirclesError::MembersOnly);
        }
        Ok((circle, role))
    }

    /// Joins a public circle, or a private one with its invite code. Joining twice is fine.
    pub async fn join(
        &self,
        actor: &User,
        id: Uuid,
        invite_code: Option<&str>,
    ) -> Result<CircleRole, CirclesError> {
        let circle = store::find_circle(self.db.pool(), id)
            .await?
            .ok_or(CirclesError::NotFound)?;
        if let Some((role, _)) = store::membership(self.db.pool(), id, actor.id).await? {
            return Ok(role);
        }
        if circle.visibility == Visibility::Private
            && invite_code != Some(circle.invite_code.as_str())
        {
            return Err(CirclesError::BadInvite);
        }
        let mut tx = self.db.begin_write().await?;
        store::upsert_member(&mut tx, id, actor.id, CircleRole::Member, db::now_ms()).await?;
        tx.commit().await?;
        Ok(CircleRole::Member)
    }

    pub async fn leave(&self, actor: &User, id: Uuid) -> Result<(), CirclesError> {
        let circle = store::find_circle(self.db.pool(), id)
            .await?
            .ok_or(CirclesError::NotFound)?;
        if circle.owner_id == actor.id {
            return Err(CirclesError::OwnerCannotLeave);
        }
        store::delete_member(self.db.pool(), id, actor.id).await?;
        self.publish(id, RoomEvent::Removed(actor.id)).await;
        Ok(())
    }

    /// Messages after `after` (oldest first), or before `before` (the newest ones before it),
    /// at most `limit`.
    pub async fn history(
        &self,
        actor: Option<&User>,
        id: Uuid,
        after: Option<i64>,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Vec<Message>, CirclesError> {
        self.show(actor, id).await?;
        let limit = limit.unwrap_or(50);
        if limit == 0 || limit > MAX_HISTORY_PAGE {
            return Err(CirclesError::BadQuery(format!(
                "limit must be from 1 to {MAX_HISTORY_PAGE}"
            )));
        }
        if after.is_some_and(|a| a < 0) || before.is_some_and(|b| b < 0) {
            return Err(CirclesError::BadQuery(
                "after and before are seqs, never negative".into(),
            ));
        }
        let newest = after.is_none();
        Ok(store::list_messages(
            self.db.pool(),
            id,
            after.unwrap_or(0),
            before.unwrap_or(i64::MAX),
            limit,
            newest,
        )
        .await?)
    }

    /// Checks that `actor` may open the live socket and that `since` makes sense, before the
    /// upgrade, so refusals are plain HTTP answers.
    pub async fn open_live(
        &self,
        actor: &User,
        id: Uuid,
        since: Option<i64>,
    ) -> Result<Circle, CirclesError> {
        let (circle, _) = self.show(Some(actor), id).await?;
        if let Some(since) = since
            && (since < 0 || since > circle.last_seq)
        {
            return Err(CirclesError::BadQuery(format!(
                "since must be from 0 to the circle's latest seq ({})",
                circle.last_seq
            )));
        }
        Ok(circle)
    }

    /// What a reconnecting socket missed: messages with seq > `since`, at most [`REPLAY_CAP`]
    /// (the newest ones), and the range skipped when there were more.
    pub async fn replay(
        &self,
        id: Uuid,
        since: i64,
    ) -> Result<(Vec<Message>, Option<(i64, i64)>), CirclesError> {
        let messages =
            store::list_messages(self.db.pool(), id, since, i64::MAX, REPLAY_CAP, true).await?;
        let gap = match messages.first() {
            Some(first) if first.seq > since + 1 => Some((since + 1, first.seq - 1)),
            _ => None,
        };
        Ok((messages, gap))
    }

    /// The circle's latest seq now.
    pub async fn latest_seq(&self, id: Uuid) -> Result<i64, CirclesError> {
        Ok(store::find_circle(self.db.pool(), id)
            .await?
            .ok_or(CirclesError::NotFound)?
            .last_seq)
    }

    /// Stores a message (idempotent per `client_id`), then publishes it.
    pub async fn send(
        &self,
        actor: &User,
        circle_id: Uuid,
        client_id: &str,
        body: &str,
    ) -> Result<Result<Sent, SendRefusal>, CirclesError> {
        if client_id.is_empty() || client_id.len() > 100 {
            return Ok(Err(SendRefusal::BadFrame(
                "client_id must be 1 to 100 characters".into(),
            )));
        }
        let body = match model::parse_body(body) {
            Ok(body) => body,
            Err(BodyError::Empty) => return Ok(Err(SendRefusal::Empty)),
            Err(BodyError::TooLong) => return Ok(Err(SendRefusal::TooLong)),
            Err(BodyError::Nul) => {
                return Ok(Err(SendRefusal::BadFrame(
                    "a message cannot contain a NUL character".into(),
                )));
            }
        };
        if self.send_limiter.check_key(&actor.id).is_err() {
            return Ok(Err(SendRefusal::RateLimited));
        }
        let card = self.card_for(&body).await;
        let now = db::now_ms();
        let stripe = (circle_id.as_u128() % SEND_STRIPES as u128) as usize;
        let in_seq_order = self.send_order[stripe].lock().await;
        // Four round trips in all: begin, seq (with the membership check), insert, commit.
        let mut tx = self.db.begin_write().await?;
        let Some(seq) = store::take_seq_as_member(&mut tx, circle_id, actor.id, now).await? else {
            tx.rollback().await?;
            drop(in_seq_order);
            // A message stored before its author was muted or removed is still theirs: a
            // resend whose ack was lost gets that ack, not a refusal.
            if let Some(existing) = self.sent_before(circle_id, actor.id, client_id).await? {
                return Ok(Ok(Sent {
                    message: existing,
                    created: false,
                }));
            }
            return Ok(Err(self.why_not_allowed(circle_id, actor.id).await?));
        };
        let message = Message {
            seq,
            id: Uuid::now_v7(),
            author: Author {
                id: actor.id,
                display_name: actor.display_name.clone(),
            },
            client_id: client_id.to_owned(),
            body,
            sent_at_ms: now,
            deleted: false,
            card: card.clone(),
        };
        let inserted = store::insert_message(
            &mut tx,
            &store::NewMessage {
                circle_id,
                seq,
                id: message.id,
                author_id: actor.id,
                client_id,
                body: &message.body,
                card: card.as_ref(),
                sent_at_ms: now,
            },
        )
        .await?;
        if !inserted {
            // A retry of a message already stored: that message is the answer, and the seq
            // taken for this attempt goes back with the rollback.
            tx.rollback().await?;
            drop(in_seq_order);
            // Messages are never removed (a deletion blanks them), so the first copy is there.
            let existing = self
                .sent_before(circle_id, actor.id, client_id)
                .await?
                .ok_or(CirclesError::NotFound)?;
            return Ok(Ok(Sent {
                message: existing,
                created: false,
            }));
        }
        tx.commit().await?;
        self.publish(circle_id, RoomEvent::message(message.clone()))
            .await;
        Ok(Ok(Sent {
            message,
            created: true,
        }))
    }
}

impl Circles {
    /// Why a send found no seq to take: not a member, or (a member) muted. A member whose mute
    /// ended since is told `muted` too: their next send goes through.
    async fn why_not_allowed(
        &self,
        circle_id: Uuid,
        user_id: Uuid,
    ) -> Result<SendRefusal, CirclesError> {
        Ok(
            match store::membership(self.db.pool(), circle_id, user_id).await? {
                Some(_) => SendRefusal::Muted,
                None => SendRefusal::NotMember,
            },
        )
    }

    /// The message this author already sent with `client_id`, if any.
    async fn sent_before(
        &self,
        circle_id: Uuid,
        author_id: Uuid,
        client_id: &str,
    ) -> Result<Option<Message>, CirclesError> {
        let mut conn = self.db.pool().acquire().await?;
        Ok(store::find_by_client_id(&mut conn, circle_id, author_id, client_id).await?)
    }

    async fn role_of(
        &self,
        circle_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<CircleRole>, CirclesError> {
        Ok(store::membership(self.db.pool(), circle_id, user_id)
            .await?
            .map(|(role, _)| role))
    }

    async fn require_moderator(
        &self,
        actor: &User,
        circle_id: Uuid,
    ) -> Result<CircleRole, CirclesError> {
        store::find_circle(self.db.pool(), circle_id)
            .await?
            .ok_or(CirclesError::NotFound)?;
        match self.role_of(circle_id, actor.id).await? {
            Some(role) if role.moderates() => Ok(role),
            _ => Err(CirclesError::ModeratorsOnly),
        }
    }

    /// Deletes a message (its author, or a moderator); everyone connected sees `deleted`.
    pub async fn delete_message(
        &self,
        actor: &User,
        circle_id: Uuid,
        seq: i64,
    ) -> Result<(), CirclesError> {
        let author = store::message_author(self.db.pool(), circle_id, seq)
            .await?
            .ok_or(CirclesError::MessageNotFound)?;
        if author != actor.id {
            self.require_moderator(actor, circle_id).await?;
        }
        if !store::delete_message(self.db.pool(), circle_id, seq, db::now_ms()).await? {
            return Err(CirclesError::MessageNotFound);
        }
        self.publish(circle_id, RoomEvent::Deleted(seq)).await;
        Ok(())
    }

    /// Mutes a member for `minutes` (0 lifts the mute). Moderators cannot mute the owner.
    pub async fn mute(
        &self,
        actor: &User,
        circle_id: Uuid,
        member: Uuid,
        minutes: u32,
    ) -> Result<(), CirclesError> {
        self.require_moderator(actor, circle_id).await?;
        if self.role_of(circle_id, member).await? == Some(CircleRole::Owner) {
            return Err(CirclesError::OwnerOnly);
        }
        let until = (minutes > 0).then(|| db::now_ms() + i64::from(minutes) * 60_000);
        if !store::set_muted_until(self.db.pool(), circle_id, member, until).await? {
            return Err(CirclesError::MemberNotFound);
        }
        Ok(())
    }

    /// Removes a member; their sockets close. Only the owner removes moderators.
    pub async fn remove_member(
        &self,
        actor: &User,
        circle_id: Uuid,
        member: Uuid,
    ) -> Result<(), CirclesError> {
        let actor_role = self.require_moderator(actor, circle_id).await?;
        match self.role_of(circle_id, member).await? {
            None => return Err(CirclesError::MemberNotFound),
            Some(CircleRole::Owner) => return Err(CirclesError::OwnerOnly),
            Some(CircleRole::Moderator) if actor_role != CircleRole::Owner => {
                return Err(CirclesError::OwnerOnly);
            }
            Some(_) => {}
        }
        store::delete_member(self.db.pool(), circle_id, member).await?;
        self.publish(circle_id, RoomEvent::Removed(member)).await;
        Ok(())
    }

    /// The owner appoints or dismisses moderators.
    pub async fn set_role(
        &self,
        actor: &User,
        circle_id: Uuid,
        member: Uuid,
        role: &str,
    ) -> Result<CircleRole, CirclesError> {
        let circle = store::find_circle(self.db.pool(), circle_id)
            .await?
            .ok_or(CirclesError::NotFound)?;
        if circle.owner_id != actor.id {
            return Err(CirclesError::OwnerOnly);
        }
        let role = match CircleRole::parse(role) {
            Ok(role @ (CircleRole::Moderator | CircleRole::Member)) => role,
            _ => {
                return Err(CirclesError::Invalid(vec![crate::error::FieldError::new(
                    "role",
                    "must be moderator or member",
                )]));
            }
        };
        if !store::set_role(self.db.pool(), circle_id, member, role).await? {
            return Err(CirclesError::MemberNotFound);
        }
        Ok(role)
    }

    /// The owner replaces the invite code; the old one stops working.
    pub async fn rotate_invite_code(
        &self,
        actor: &User,
        circle_id: Uuid,
    ) -> Result<String, CirclesError> {
        let circle = store::find_circle(self.db.pool(), circle_id)
            .await?
            .ok_or(CirclesError::NotFound)?;
        if circle.owner_id != actor.id {
            return Err(CirclesError::OwnerOnly);
        }
        let code = new_invite_code();
        store::set_invite_code(self.db.pool(), circle_id, &code).await?;
        Ok(code)
    }
}

fn new_invite_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 10];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}
