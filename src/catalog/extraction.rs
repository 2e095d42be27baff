//! The text-extraction worker: turns uploaded documents and subtitles into searchable text,
//! off the request path, one file at a time per node (bounded concurrency by construction).
//!
//! A file is claimed in the database, its bytes are read (bounded), `extract::extract` runs on
//! the blocking pool, and in one transaction the segments are stored, the file is marked done
//! and a catalog-log entry is appended, so every node's indexer picks the text up. That entry
//! keeps the course's version: the course did not change, only what we know about it. A file
//! whose extraction fails is still served; the failure is logged and counted.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

use super::model::CourseFile;
use super::{Catalog, LogOp, store};
use crate::db;
use crate::extract::{self, Limits};
use crate::media::MediaKey;

/// Files larger than this are not read for text (a 64 MiB PDF is already a large book).
const MAX_EXTRACT_BYTES: u64 = 64 * 1024 * 1024;
/// A claim older than this belongs to a node that died mid-extraction.
const STALE_CLAIM: Duration = Duration::from_secs(15 * 60);

/// What happened to one claimed file.
#[derive(Debug, PartialEq, Eq)]
pub enum Extracted {
    Done {
        segments: usize,
    },
    /// A document format with no extractor (Word, EPUB…): no text, and no failure either.
    NoText,
    Failed,
}

enum Failure {
    Unsupported,
    Failed(String),
}

/// Runs until `shutdown`, extracting whatever is pending.
pub async fn run(catalog: Catalog, failures: Counter, poll: Duration, shutdown: CancellationToken) {
    loop {
        match extract_next(&catalog, &failures).await {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "text extraction worker error; will retry"),
        }
        tokio::select! {
            () = catalog.files_added() => {}
            () = tokio::time::sleep(poll) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Claims and extracts one pending file; `None` when nothing is pending.
pub async fn extract_next(
    catalog: &Catalog,
    failures: &Counter,
) -> Result<Option<Extracted>, sqlx::Error> {
    let now = db::now_ms();
    let stale_before = now - i64::try_from(STALE_CLAIM.as_millis()).unwrap_or(0);
    let Some(file) = store::claim_extraction(catalog.db.pool(), now, stale_before).await? else {
        return Ok(None);
    };
    let outcome = match extract_file(catalog, &file).await {
        Ok(segments) => {
            let count = segments.len();
            store_text(catalog, &file, &segments).await?;
            Extracted::Done { segments: count }
        }
        Err(Failure::Unsupported) => {
            let mut conn = catalog.db.pool().acquire().await?;
            store::set_extraction_state(&mut conn, file.id, "none").await?;
            Extracted::NoText
        }
        Err(Failure::Failed(reason)) => {
            failures.inc();
            tracing::warn!(file.id = %file.id, file.name = %file.name, %reason, "text extraction failed; the file is still served");
            let mut conn = catalog.db.pool().acquire().await?;
            store::set_extraction_state(&mut conn, file.id, "failed").await?;
            Extracted::Failed
        }
    };
    Ok(Some(outcome))
}

async fn extract_file(
    catalog: &Catalog,
    file: &CourseFile,
) -> Result<Vec<extract::Segment>, Failure> {
    if file.size > MAX_EXTRACT_BYTES {
        return Err(Failure::Failed(format!(
            "{} bytes is more than the extraction limit",
            file.size
        )));
    }
    let key = MediaKey::parse_stored(&file.object_key)
        .ok_or_else(|| Failure::Failed("foreign object key".into()))?;
    let bytes = catalog
        .media
        .read_small(&key, MAX_EXTRACT_BYTES)
        .await
        .map_err(|e| Failure::Failed(format!("reading the object: {e}")))?;
    let content_type = file.content_type.clone();
    let extracted = tokio::task::spawn_blocking(move || {
        extract::extract(&content_type, &bytes, &Limits::default())
    })
    .await
    .map_err(|e| Failure::Failed(format!("extraction task: {e}")))?;
    match extracted {
        Ok(segments) => Ok(segments),
        Err(extract::ExtractError::Unsupported(_)) => Err(Failure::Unsupported),
        Err(other) => Err(Failure::Failed(other.to_string())),
    }
}

async fn store_text(
    catalog: &Catalog,
    file: &CourseFile,
    segments: &[extract::Segment],
) -> Result<(), sqlx::Error> {
    let mut tx = catalog.db.begin_write().await?;
    store::replace_segments(&mut tx, file.id, segments).await?;
    store::set_extraction_state(&mut tx, file.id, "done").await?;
    if let Some(version) = store::course_version(&mut tx, file.course_id).await? {
        store::append_log(
            &mut tx,
            catalog.db.backend(),
            file.course_id,
            LogOp::Upsert.as_str(),
            &catalog.origin,
            version,
            db::now_ms(),
        )
        .await?;
    }
    tx.commit().await?;
    catalog.notify_changed();
    Ok(())
}
