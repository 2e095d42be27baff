//! The feed this server serves: `GET /federation/v1/changes?since=N&limit=M`.
//!
//! Each course changed after `since` appears once, at its newest log entry, so a follower's
//! cost follows the courses changed, not the number of edits. This server's own courses are
//! served as the publisher (`publish.rs`) signed them; federated ones are relayed exactly as
//! their origin signed them. Records go out as the JSON text they were stored as, never parsed.

use std::collections::HashMap;

use uuid::Uuid;

use serde_json::value::RawValue;

use super::publish::sign_own;
use super::record::{FeedEntry, Op, Page};
use super::store::{self, SignedRecord};
use super::{Federation, FederationError};
use crate::catalog::LogEntry;
use crate::catalog::model::Course;

pub const DEFAULT_LIMIT: u32 = 500;
pub const MAX_LIMIT: u32 = 1000;

impl Federation {
    /// A page of the feed after `since`; `limit` is clamped to 1..=[`MAX_LIMIT`].
    pub async fn changes(
        &self,
        since: i64,
        limit: u32,
    ) -> Result<Page<FeedEntry>, FederationError> {
        if since < 0 {
            return Err(FederationError::BadQuery(
                "since must be 0 or a seq this feed returned".into(),
            ));
        }
        let limit = limit.clamp(1, MAX_LIMIT);
        let catalog = &self.inner.catalog;
        let me = self.inner.identity.server_id.clone();
        let rows = catalog.latest_changes(since, limit).await?;
        let Some(last) = rows.last().map(|row| row.seq) else {
            let latest = catalog.latest_seq().await?;
            if since > latest {
                return Err(FederationError::UnknownSince { since, latest });
            }
            return Ok(Page {
                origin: me,
                entries: Vec::new(),
                next: since,
            });
        };
        let (local, remote): (Vec<&LogEntry>, Vec<&LogEntry>) =
            rows.iter().partition(|row| row.origin == me);
        let local_ids: Vec<Uuid> = local.iter().map(|row| row.course_id).collect();
        let remote_ids: Vec<Uuid> = remote.iter().map(|row| row.course_id).collect();
        let pool = self.inner.db.pool();
        let backend = self.inner.db.backend();
        let mut published: HashMap<Uuid, SignedRecord> =
            store::published_by_ids(pool, backend, &local_ids)
                .await?
                .into_iter()
                .map(|r| (r.course_id, r))
                .collect();
        // Signed by the publisher at the version this entry announces and under this server's
        // current id, or not (yet): the publisher has not caught up, or the id changed with the
        // public URL. Those are signed here; a stored record that does not match is never served.
        let announced: HashMap<Uuid, i64> = local
            .iter()
            .map(|row| (row.course_id, row.origin_version))
            .collect();
        published.retain(|id, record| {
            record.origin == me && announced.get(id) == Some(&record.origin_version)
        });
        let unsigned: Vec<Uuid> = local_ids
            .iter()
            .filter(|id| !published.contains_key(id))
            .copied()
            .collect();
        let courses: HashMap<Uuid, Course> = catalog
            .courses_by_ids(&unsigned)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut relayed: HashMap<Uuid, store::StoredRecord> =
            store::records_by_ids(pool, backend, &remote_ids)
                .await?
                .into_iter()
                .map(|r| (r.signed.course_id, r))
                .collect();

        let identity = self.inner.identity.clone();
        let entries = tokio::task::spawn_blocking(move || {
            let public_key = identity.public_key();
            let mut entries = Vec::with_capacity(rows.len());
            // A page names each course once (at its newest entry), so records are taken, not
            // copied.
            for row in &rows {
                let (record, origin_key) = if row.origin == identity.server_id {
                    if let Some(course) = courses.get(&row.course_id) {
                        published.insert(course.id, sign_own(&identity, course, row.op));
                    }
                    match published.remove(&row.course_id) {
                        Some(record) => (record, public_key.clone()),
                        None => continue,
                    }
                } else {
                    match relayed.remove(&row.course_id) {
                        Some(stored) => (stored.signed, stored.origin_key),
                        None => continue,
                    }
                };
                let Ok(course) = RawValue::from_string(record.course) else {
                    tracing::warn!(course = %row.course_id, "a stored signed record is not JSON; not served");
                    continue;
                };
                entries.push(FeedEntry {
                    seq: row.seq,
                    op: Op::parse(&record.op),
                    course,
                    origin: record.origin,
                    origin_key,
                    origin_version: record.origin_version,
                    signature: record.signature,
                });
            }
            entries
        })
        .await
        .map_err(|e| FederationError::Internal(format!("building a feed page: {e}")))?;
        Ok(Page {
            origin: me,
            entries,
            next: last,
        })
    }
}
