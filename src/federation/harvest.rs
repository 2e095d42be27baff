//! The harvester: pulls each peer's feed, verifies every entry against its origin's pinned
//! key, and applies the good ones to the catalog, a page per transaction.
//!
//! Per page: parse each entry alone (a malformed one is rejected, the rest go on) → skip our
//! own records → find each origin's key (pinned; else the origin's `/.well-known/shuyuan`;
//! else the key the relay passed on) → verify signatures off the async workers → check each
//! record → one transaction: move the peer's position, apply, keep the signed record to relay.
//! The position moves in the same transaction as the records, so a sync killed at any point
//! resumes at the first page not applied, and applying a page twice changes nothing (an
//! older or equal version never overwrites).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use super::identity::{parse_public_key, public_key_text, verify_each};
use super::record::{Entry, Page, interpret, signed_bytes};
use super::store::{self, Peer, SignedRecord, StoredRecord};
use super::{Federation, FederationError, FetchError};
use crate::catalog::remote::{self, Applied, RemoteChange};
use crate::db;

/// Entries asked for per page.
const PAGE_LIMIT: u32 = 500;
/// A feed page larger than this is refused (a hostile peer cannot make us buffer 1 GiB).
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
/// Waiting after failures doubles up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// What one sync did.
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct SyncReport {
    /// Feed pages applied.
    pub pages: u64,
    /// Entries received.
    pub received: u64,
    /// Entries written to this catalog.
    pub applied: u64,
    /// Entries already known at this version or newer, or this server's own records.
    pub skipped: u64,
    /// Entries refused (bad signature, unknown or mismatched key, invalid record).
    pub rejected: u64,
    /// Origins whose keys were pinned during this sync.
    pub new_origins: Vec<String>,
    /// The peer's feed position after the sync.
    pub last_seq: i64,
}

/// An entry that passed parsing and the key check, waiting for its signature check.
struct Candidate {
    entry: Entry,
    key: VerifyingKey,
    /// Set when this origin's key is not pinned yet: how it was learnt.
    pin_source: Option<&'static str>,
}

/// A page checked and ready to write.
struct Prepared {
    received: u64,
    skipped: u64,
    new_origins: Vec<String>,
    rejections: Rejections,
    changes: Vec<(Entry, RemoteChange)>,
}

struct Rejections {
    count: u64,
    last: Option<String>,
}

impl Rejections {
    fn reject(&mut self, peer: &Peer, seq: Option<i64>, origin: &str, reason: &str) {
        tracing::warn!(peer = %peer.server_id, seq, origin, reason, "rejected a federated entry");
        self.count += 1;
        self.last = Some(match seq {
            Some(seq) => format!("entry {seq} ({origin}): {reason}"),
            None => format!("an entry: {reason}"),
        });
    }
}

impl Federation {
    fn peer_lock(&self, peer_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .syncing
            .lock()
            .expect("the sync lock map is never poisoned")
            .entry(peer_id)
            .or_default()
            .clone()
    }

    /// Pulls the peer's feed until it has nothing new. Records the outcome on the peer.
    pub async fn sync(&self, peer_id: Uuid) -> Result<SyncReport, FederationError> {
        let lock = self.peer_lock(peer_id);
        let _one_at_a_time = lock.lock().await;
        let peer = self.peer(peer_id).await?;
        let mut report = SyncReport {
            last_seq: peer.last_seq,
            ..SyncReport::default()
        };
        let pool = self.inner.db.pool();
        match self.pull(&peer, &mut report).await {
            Ok(()) => {
                store::record_success(pool, peer.id, db::now_ms()).await?;
                Ok(report)
            }
            Err(message) => {
                tracing::warn!(peer = %peer.server_id, error = %message, "sync failed");
                store::record_failure(pool, peer.id, db::now_ms(), &message).await?;
                Err(FederationError::SyncFailed(message))
            }
        }
    }

    /// Reads the feed in overlapping stages: while page N is written to the database, page
    /// N+1 is fetched (the peer builds it meanwhile), parsed and verified.
    async fn pull(&self, peer: &Peer, report: &mut SyncReport) -> Result<(), String> {
        let Some((mut since, first)) = self.fetch_page(peer, peer.last_seq, true).await? else {
            return Ok(());
        };
        let mut current = (first.next, self.prepare_page(peer, first.entries).await?);
        loop {
            let (next, prepared) = current;
            let entries = prepared.received;
            let started = Instant::now();
            // Each stage's own time, to tell which one holds the pipeline up.
            let ((moved, write_ms), (following, fetch_ms)) = tokio::join!(
                async {
                    let moved = self.write_page(peer, since, next, prepared, report).await;
                    (moved, started.elapsed().as_millis())
                },
                async {
                    let following = match self.fetch_page(peer, next, false).await {
                        Ok(Some((_, page))) => self
                            .prepare_page(peer, page.entries)
                            .await
                            .map(|prepared| Some((page.next, prepared))),
                        Ok(None) => Ok(None),
                        Err(error) => Err(error),
                    };
                    (following, started.elapsed().as_millis())
                },
            );
            let moved = moved?;
            tracing::debug!(
                peer = %peer.server_id, entries, next, write_ms,
                fetch_and_verify_ms = fetch_ms,
                "applied a feed page"
            );
            if !moved {
                // Another node of this cluster applied this page first; it carries on.
                return Ok(());
            }
            report.pages += 1;
            report.last_seq = next;
            since = next;
            match following? {
                Some(following) => current = following,
                None => return Ok(()),
            }
        }
    }

    /// The page after `since`, with the position it follows (0 when the peer no longer knew
    /// `since` and its feed starts over); `None` when it has no entries.
    /// Only the first page of a sync may start the feed over: later ones are fetched while
    /// the page before is still being written.
    async fn fetch_page(
        &self,
        peer: &Peer,
        since: i64,
        may_restart: bool,
    ) -> Result<Option<(i64, Page<Value>)>, String> {
        let mut since = since;
        let mut restarted = !may_restart;
        loop {
            let url = feed_url(peer, since);
            let body = match self.fetch(&url, MAX_PAGE_BYTES).await {
                Ok(body) => body,
                // The peer's log is shorter than our position (it was restored from an older
                // backup, say): start its feed over; versions keep re-applied records harmless.
                Err(FetchError::Status {
                    status: 400, body, ..
                }) if body.contains("unknown-since") && !restarted => {
                    tracing::warn!(peer = %peer.server_id, since, "the peer no longer knows our position; reading its feed from the start");
                    store::reset_position(self.inner.db.pool(), peer.id)
                        .await
                        .map_err(|e| e.to_string())?;
                    since = 0;
                    restarted = true;
                    continue;
                }
                Err(error) => return Err(error.to_string()),
            };
            let page: Page<Value> = serde_json::from_slice(&body)
                .map_err(|e| format!("{url} did not answer with a feed page: {e}"))?;
            if page.origin != peer.server_id {
                return Err(format!(
                    "{url} answered as {:?}, not as the peer {:?}",
                    page.origin, peer.server_id
                ));
            }
            if page.entries.is_empty() {
                return Ok(None);
            }
            if page.next <= since {
                return Err(format!(
                    "{url} returned entries but next = {} does not move past {since}",
                    page.next
                ));
            }
            return Ok(Some((since, page)));
        }
    }

    /// Parses a page's entries, finds their keys, verifies their signatures (pinning new
    /// origins' keys) and checks each record: everything but the database write.
    async fn prepare_page(&self, peer: &Peer, raw_entries: Vec<Value>) -> Result<Prepared, String> {
        let me = self.inner.identity.server_id.clone();
        let pool = self.inner.db.pool();
        let mut rejections = Rejections {
            count: 0,
            last: None,
        };
        let received = raw_entries.len() as u64;
        let mut skipped = 0;
        let mut new_origins = Vec::new();

        // Parse each entry alone; find each origin's key.
        let mut keys: HashMap<String, Option<(VerifyingKey, Option<&'static str>)>> =
            HashMap::new();
        let mut candidates = Vec::with_capacity(raw_entries.len());
        for raw in raw_entries {
            let seq = raw.get("seq").and_then(Value::as_i64);
            let entry: Entry = match serde_json::from_value(raw) {
                Ok(entry) => entry,
                Err(error) => {
                    rejections.reject(peer, seq, "?", &format!("not a feed entry: {error}"));
                    continue;
                }
            };
            if entry.origin == me {
                skipped += 1;
                continue;
            }
            if !keys.contains_key(&entry.origin) {
                let key = self
                    .key_for(peer, &entry)
                    .await
                    .map_err(|e| e.to_string())?;
                keys.insert(entry.origin.clone(), key);
            }
            match &keys[&entry.origin] {
                None => rejections.reject(
                    peer,
                    Some(entry.seq),
                    &entry.origin,
                    "no usable key for this origin",
                ),
                Some((key, source)) => {
                    // The key an entry names must be its origin's (pinned, or as the origin
                    // itself published it): it is relayed onward with the entry.
                    if parse_public_key(&entry.origin_key).as_ref() != Some(key) {
                        rejections.reject(
                            peer,
                            Some(entry.seq),
                            &entry.origin,
                            "signed with another key than the one pinned for its origin",
                        );
                        continue;
                    }
                    candidates.push(Candidate {
                        entry,
                        key: *key,
                        pin_source: *source,
                    });
                }
            }
        }

        // Signatures: CPU work, split across the blocking pool.
        let verify_started = Instant::now();
        let verified = verify_all(candidates).await;
        tracing::debug!(
            entries = verified.len(),
            verify_ms = verify_started.elapsed().as_millis(),
            "verified a page's signatures"
        );
        let now = db::now_ms();
        let mut changes: Vec<(Entry, RemoteChange)> = Vec::with_capacity(verified.len());
        let mut pinned_now: HashSet<String> = HashSet::new();
        for (candidate, good) in verified {
            let entry = candidate.entry;
            if !good {
                rejections.reject(
                    peer,
                    Some(entry.seq),
                    &entry.origin,
                    "the signature does not match the record",
                );
                continue;
            }
            if let Some(source) = candidate.pin_source
                && !pinned_now.contains(&entry.origin)
            {
                let key = public_key_text(&candidate.key);
                let (pinned, new) =
                    store::pin_origin(pool, &entry.origin, &key, source, Some(peer.id), now)
                        .await
                        .map_err(|e| e.to_string())?;
                if pinned != key {
                    rejections.reject(
                        peer,
                        Some(entry.seq),
                        &entry.origin,
                        "another key was pinned for this origin meanwhile",
                    );
                    continue;
                }
                if new {
                    tracing::info!(origin = %entry.origin, source, via = %peer.server_id, "pinned a new origin's key");
                    new_origins.push(entry.origin.clone());
                }
                pinned_now.insert(entry.origin.clone());
            }
            match interpret(&entry, now) {
                Ok(change) => changes.push((entry, change)),
                Err(reason) => rejections.reject(peer, Some(entry.seq), &entry.origin, &reason),
            }
        }

        Ok(Prepared {
            received,
            skipped,
            new_origins,
            rejections,
            changes,
        })
    }

    /// Writes a prepared page in one transaction: position, records, log. `false` if the
    /// peer's position had moved meanwhile (another node of this cluster wrote the page).
    async fn write_page(
        &self,
        peer: &Peer,
        since: i64,
        next: i64,
        prepared: Prepared,
        report: &mut SyncReport,
    ) -> Result<bool, String> {
        let Prepared {
            received,
            skipped,
            new_origins,
            mut rejections,
            changes,
        } = prepared;
        report.received += received;
        report.skipped += skipped;
        report.new_origins.extend(new_origins);
        let me = &self.inner.identity.server_id;
        let now = db::now_ms();
        let backend = self.inner.db.backend();
        let mut tx = self
            .inner
            .db
            .begin_write()
            .await
            .map_err(|e| e.to_string())?;
        let moved = store::advance(&mut tx, peer.id, since, next, 0, 0, None)
            .await
            .map_err(|e| e.to_string())?;
        if !moved {
            return Ok(false);
        }
        // A record held at this version or newer (a withdrawal of a course never seen
        // included) is skipped; the rest go to the catalog in one batch.
        let ids: Vec<Uuid> = changes.iter().map(|(_, c)| c.id()).collect();
        let held = store::record_versions(&mut tx, backend, &ids)
            .await
            .map_err(|e| e.to_string())?;
        let (fresh, old): (Vec<_>, Vec<_>) = changes.into_iter().partition(|(entry, change)| {
            held.get(&change.id())
                .is_none_or(|v| *v < entry.origin_version)
        });
        report.skipped += old.len() as u64;
        let remote_changes: Vec<RemoteChange> = fresh.iter().map(|(_, c)| c.clone()).collect();
        let outcomes = remote::apply_batch(&mut tx, backend, me, &remote_changes, now)
            .await
            .map_err(|e| e.to_string())?;
        let mut records = Vec::new();
        for ((entry, change), outcome) in fresh.into_iter().zip(outcomes) {
            match outcome {
                Applied::Applied => records.push(StoredRecord {
                    signed: SignedRecord {
                        course_id: change.id(),
                        origin: entry.origin,
                        origin_version: entry.origin_version,
                        op: entry.op.as_str().to_owned(),
                        course: entry.course.to_string(),
                        signature: entry.signature,
                    },
                    origin_key: entry.origin_key,
                    peer_id: peer.id,
                }),
                Applied::Stale => report.skipped += 1,
                Applied::Refused(reason) => {
                    rejections.reject(peer, Some(entry.seq), &entry.origin, &reason);
                }
            }
        }
        let applied = records.len() as u64;
        let (replaced, first): (Vec<_>, Vec<_>) = records
            .into_iter()
            .partition(|record| held.contains_key(&record.signed.course_id));
        store::insert_records(&mut tx, backend, &first, now)
            .await
            .map_err(|e| e.to_string())?;
        if !replaced.is_empty() {
            // Kept records reference nothing; see `db::use_generic_plans`.
            db::use_generic_plans(&mut tx, backend, true)
                .await
                .map_err(|e| e.to_string())?;
            store::save_records(&mut tx, backend, &replaced, now)
                .await
                .map_err(|e| e.to_string())?;
            db::use_generic_plans(&mut tx, backend, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        store::advance(
            &mut tx,
            peer.id,
            next,
            next,
            i64::try_from(received).unwrap_or(i64::MAX),
            i64::try_from(rejections.count).unwrap_or(i64::MAX),
            rejections.last.as_deref(),
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        report.applied += applied;
        report.rejected += rejections.count;
        if applied > 0 {
            self.inner.catalog.notify_changed();
        }
        Ok(true)
    }

    /// The key an origin's entries must verify with, and how it would be pinned if it is not
    /// pinned yet (`None` source = pinned already). `None` when no key can be found.
    async fn key_for(
        &self,
        peer: &Peer,
        entry: &Entry,
    ) -> Result<Option<(VerifyingKey, Option<&'static str>)>, sqlx::Error> {
        let pool = self.inner.db.pool();
        if let Some(pinned) = store::pinned_key(pool, &entry.origin).await? {
            return Ok(parse_public_key(&pinned).map(|key| (key, None)));
        }
        if entry.origin == peer.server_id {
            return Ok(parse_public_key(&peer.public_key).map(|key| (key, Some("peer"))));
        }
        // Ask the origin itself when it is reachable; a relay's word is the fallback.
        if entry.origin.starts_with("http://") || entry.origin.starts_with("https://") {
            match self.fetch_well_known(&entry.origin).await {
                Ok(known) if known.id == entry.origin => {
                    return Ok(
                        parse_public_key(&known.public_key).map(|key| (key, Some("well-known")))
                    );
                }
                Ok(_) | Err(_) => {}
            }
        }
        Ok(parse_public_key(&entry.origin_key).map(|key| (key, Some("relay"))))
    }
}

fn feed_url(peer: &Peer, since: i64) -> String {
    format!(
        "{}/federation/v1/changes?since={since}&limit={PAGE_LIMIT}",
        peer.url
    )
}

/// Checks every candidate's signature, in two halves on the blocking pool (two cores).
async fn verify_all(candidates: Vec<Candidate>) -> Vec<(Candidate, bool)> {
    fn check(candidates: Vec<Candidate>) -> Vec<(Candidate, bool)> {
        let messages: Vec<Vec<u8>> = candidates
            .iter()
            .map(|c| {
                let e = &c.entry;
                signed_bytes(e.op, &e.course, &e.origin, e.origin_version)
            })
            .collect();
        let items: Vec<(VerifyingKey, &[u8], &str)> = candidates
            .iter()
            .zip(&messages)
            .map(|(c, message)| (c.key, message.as_slice(), c.entry.signature.as_str()))
            .collect();
        let good = verify_each(&items);
        candidates.into_iter().zip(good).collect()
    }
    let mut first = candidates;
    let second = first.split_off(first.len() / 2);
    let a = tokio::task::spawn_blocking(move || check(first));
    let b = tokio::task::spawn_blocking(move || check(second));
    let mut out = a.await.expect("signature checks do not panic");
    out.extend(b.await.expect("signature checks do not panic"));
    out
}

/// Pulls every peer every `federation.poll_interval` until `shutdown`; a failing peer waits
/// longer after each failure (doubling, up to an hour). Each peer syncs in its own task, so a
/// slow peer delays no other.
pub async fn run(federation: Federation, shutdown: CancellationToken) {
    let poll = federation.inner.poll_interval;
    let tick = poll.min(Duration::from_secs(1));
    let mut due: HashMap<Uuid, Instant> = HashMap::new();
    let mut running: JoinSet<(Uuid, bool)> = JoinSet::new();
    let mut busy: HashSet<Uuid> = HashSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                running.abort_all();
                return;
            }
            () = tokio::time::sleep(tick) => {}
            () = federation.inner.peers_changed.notified() => {}
            Some(done) = running.join_next() => {
                if let Ok((peer_id, ok)) = done {
                    busy.remove(&peer_id);
                    let failures = if ok { 0 } else {
                        federation.peer(peer_id).await.map_or(1, |p| p.failures)
                    };
                    due.insert(peer_id, Instant::now() + backoff(poll, failures));
                }
            }
        }
        let peers = match federation.peers().await {
            Ok((peers, _)) => peers,
            Err(error) => {
                tracing::warn!(%error, "could not list peers");
                continue;
            }
        };
        let now = Instant::now();
        for peer in peers {
            if busy.contains(&peer.id) || due.get(&peer.id).is_some_and(|at| now < *at) {
                continue;
            }
            busy.insert(peer.id);
            let federation = federation.clone();
            running.spawn(async move {
                let ok = federation.sync(peer.id).await.is_ok();
                (peer.id, ok)
            });
        }
    }
}

/// How long to wait after `failures` failed syncs in a row.
fn backoff(poll: Duration, failures: i64) -> Duration {
    let doublings = u32::try_from(failures.clamp(0, 12)).unwrap_or(12);
    poll.saturating_mul(2u32.pow(doublings))
        .min(MAX_BACKOFF.max(poll))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_peers_wait_longer_up_to_an_hour() {
        let poll = Duration::from_secs(60);
        assert_eq!(backoff(poll, 0), poll);
        assert_eq!(backoff(poll, 1), Duration::from_secs(120));
        assert_eq!(backoff(poll, 3), Duration::from_secs(480));
        assert_eq!(backoff(poll, 40), Duration::from_secs(3600));
        let slow = Duration::from_secs(7200);
        assert_eq!(backoff(slow, 5), slow);
    }

    #[test]
    fn ops_travel_as_lowercase_words() {
        use crate::federation::record::Op;
        assert_eq!(serde_json::to_value(Op::Delete).unwrap(), "delete");
    }
}
