//! The publisher: signs this server's own course changes soon after they are made, so the
//! feed (`feed.rs`) serves each record as stored. A record is then signed once, however many
//! followers read it and however often they start over, and a feed page costs reading rows,
//! not signing them.
//!
//! It follows the catalog log as the search indexer does (woken by this node's changes,
//! polling for other nodes'), and keeps its position in `publisher_position`. Several nodes
//! may publish at once: Ed25519 signatures are deterministic, so two nodes signing the same
//! version store the same bytes, and an older version never replaces a newer one. Until the
//! publisher has caught up, the feed signs what it finds unsigned itself.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::identity::Identity;
use super::record::{CourseRecord, Op, signed_bytes};
use super::store::{self, SignedRecord};
use super::{Federation, FederationError};
use crate::catalog::LogOp;
use crate::catalog::model::Course;

/// Log entries read per batch (one transaction).
pub const BATCH: u32 = 1000;

/// Runs until `shutdown`, signing the log as it grows.
pub async fn run(federation: Federation, poll: Duration, shutdown: CancellationToken) {
    let mut changes = federation.inner.catalog.change_signal();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match federation.publish_batch().await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(error) => tracing::error!(%error, "publishing failed; will retry"),
        }
        tokio::select! {
            () = changes.changed() => {}
            () = tokio::time::sleep(poll) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

impl Federation {
    /// Signs the local changes of up to [`BATCH`] log entries after the publisher's position;
    /// whether more may follow.
    pub async fn publish_batch(&self) -> Result<bool, FederationError> {
        let pool = self.inner.db.pool();
        let catalog = &self.inner.catalog;
        let position = store::publisher_position(pool).await?;
        let entries = catalog.read_log(position, BATCH).await?;
        let Some(last) = entries.last().map(|entry| entry.seq) else {
            return Ok(false);
        };
        let me = &self.inner.identity.server_id;
        // Each course's newest entry in the batch decides its op.
        let newest: HashMap<Uuid, LogOp> = entries
            .iter()
            .filter(|entry| &entry.origin == me)
            .map(|entry| (entry.course_id, entry.op))
            .collect();
        let ids: Vec<Uuid> = newest.keys().copied().collect();
        // The courses as they are now: a course changed twice in the batch is signed once, at
        // its newest version.
        let courses = catalog.courses_by_ids(&ids).await?;
        let identity = self.inner.identity.clone();
        let records = tokio::task::spawn_blocking(move || {
            courses
                .iter()
                .map(|course| sign_own(&identity, course, newest[&course.id]))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| FederationError::Internal(format!("signing records: {e}")))?;
        let mut tx = pool.begin().await?;
        store::save_published(&mut tx, self.inner.db.backend(), &records, last).await?;
        tx.commit().await?;
        tracing::debug!(
            through = last,
            signed = records.len(),
            "published this server's changes"
        );
        Ok(entries.len() == BATCH as usize)
    }
}

/// This server's record of `course`, signed. `op` is the log entry's; a withdrawn course is a
/// delete whatever the entry says.
pub(super) fn sign_own(identity: &Identity, course: &Course, op: LogOp) -> SignedRecord {
    let op = if course.withdrawn || op == LogOp::Delete {
        Op::Delete
    } else {
        Op::Upsert
    };
    let value = serde_json::to_value(CourseRecord::of(course)).expect("a course record serializes");
    let signature = identity.sign(&signed_bytes(
        op,
        &value,
        &identity.server_id,
        course.version,
    ));
    SignedRecord {
        course_id: course.id,
        origin: identity.server_id.clone(),
        origin_version: course.version,
        op: op.as_str().to_owned(),
        course: value.to_string(),
        signature,
    }
}
