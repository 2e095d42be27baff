//! The feed this server serves: `GET /federation/v1/changes?since=N&limit=M`.
//!
//! Each course changed after `since` appears once, at its newest log entry, so a follower's
//! cost follows the courses changed, not the number of edits. This server's own courses are
//! signed now, at their current version; federated ones are relayed exactly as their origin
//! signed them.

use std::collections::HashMap;

use uuid::Uuid;

use super::record::{CourseRecord, Entry, Op, Page, signed_bytes};
use super::{Federation, FederationError, store};
use crate::catalog::model::Course;
use crate::catalog::{LogEntry, LogOp};

pub const DEFAULT_LIMIT: u32 = 500;
pub const MAX_LIMIT: u32 = 1000;

impl Federation {
    /// A page of the feed after `since`; `limit` is clamped to 1..=[`MAX_LIMIT`].
    pub async fn changes(&self, since: i64, limit: u32) -> Result<Page, FederationError> {
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
        let courses: HashMap<Uuid, Course> = catalog
            .courses_by_ids(&local_ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let records: HashMap<Uuid, store::StoredRecord> =
            store::records_by_ids(self.inner.db.pool(), &remote_ids)
                .await?
                .into_iter()
                .map(|r| (r.course_id, r))
                .collect();

        // Signing a page is CPU work (about 1000 signatures): off the async workers.
        let identity = self.inner.identity.clone();
        let entries = tokio::task::spawn_blocking(move || {
            let public_key = identity.public_key();
            let mut entries = Vec::with_capacity(rows.len());
            for row in &rows {
                if row.origin == identity.server_id {
                    let Some(course) = courses.get(&row.course_id) else {
                        continue;
                    };
                    let op = if course.withdrawn || row.op == LogOp::Delete {
                        Op::Delete
                    } else {
                        Op::Upsert
                    };
                    let value = serde_json::to_value(CourseRecord::of(course))
                        .expect("a course record serializes");
                    let signature = identity.sign(&signed_bytes(
                        op,
                        &value,
                        &identity.server_id,
                        course.version,
                    ));
                    entries.push(Entry {
                        seq: row.seq,
                        op,
                        course: value,
                        origin: identity.server_id.clone(),
                        origin_key: public_key.clone(),
                        origin_version: course.version,
                        signature,
                    });
                } else if let Some(record) = records.get(&row.course_id) {
                    let Ok(course) = serde_json::from_str(&record.course) else {
                        tracing::warn!(course = %row.course_id, "a stored federated record is not JSON; not relayed");
                        continue;
                    };
                    entries.push(Entry {
                        seq: row.seq,
                        op: if record.op == "delete" {
                            Op::Delete
                        } else {
                            Op::Upsert
                        },
                        course,
                        origin: record.origin.clone(),
                        origin_key: record.origin_key.clone(),
                        origin_version: record.origin_version,
                        signature: record.signature.clone(),
                    });
                }
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
