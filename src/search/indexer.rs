//! The indexer task: follows the catalog log into the index.
//!
//! It is the only owner of an `IndexWriter` on this node. Each batch re-reads the touched
//! courses from the database (the log says *that* something changed; the database says what
//! is true now), deletes their documents, adds the current ones and commits with the batch's
//! last `seq` as payload.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tantivy::{IndexWriter, TantivyDocument, Term};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::documents::course_documents;
use super::{OpenIndex, SearchService};
use crate::catalog::Catalog;
use crate::catalog::model::Course;

/// Log entries applied per commit, at most. A catch-up (a new node, a restored index) commits
/// and reloads once per batch; at 512 that was most of its time (the search benchmark's
/// breakdown), at 4096 the commit costs little beside indexing. A live server's batches are
/// the few entries written since the last wake-up, so searches see changes as soon as before.
pub const BATCH: u32 = 4096;
/// Memory for the writer's in-flight segment (tantivy needs at least 15 MB per thread).
const WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;

/// A writer bound to one index generation.
pub struct GenerationWriter {
    generation: String,
    writer: Arc<Mutex<IndexWriter<TantivyDocument>>>,
}

impl GenerationWriter {
    pub fn open(open: &OpenIndex) -> anyhow::Result<GenerationWriter> {
        let writer = open.index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
        Ok(GenerationWriter {
            generation: open.generation.clone(),
            writer: Arc::new(Mutex::new(writer)),
        })
    }

    pub fn shared(&self) -> Arc<Mutex<IndexWriter<TantivyDocument>>> {
        self.writer.clone()
    }
}

/// Runs until `shutdown`, applying the log as it grows. `wake` is signalled by local catalog
/// changes; `poll` bounds how late changes made by other nodes are seen.
pub async fn run(
    service: SearchService,
    catalog: Catalog,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let mut writer: Option<GenerationWriter> = None;
    let mut changes = catalog.change_signal();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match apply_once(&service, &catalog, &mut writer).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "indexing failed; will retry")
            }
        }
        tokio::select! {
            () = changes.changed() => {}
            () = tokio::time::sleep(poll) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Applies one batch. `Ok(true)` when it applied something (there may be more).
pub async fn apply_once(
    service: &SearchService,
    catalog: &Catalog,
    writer: &mut Option<GenerationWriter>,
) -> anyhow::Result<bool> {
    if service.follow_current()? {
        *writer = None;
    }
    let open = service.snapshot();
    if writer
        .as_ref()
        .is_none_or(|w| w.generation != open.generation)
    {
        // Release the previous generation's lock before taking the new one.
        *writer = None;
        *writer = Some(GenerationWriter::open(&open)?);
    }
    let writer = writer.as_ref().expect("set just above");
    let applied = open.applied_seq()?;
    let entries = catalog.read_log(applied, BATCH).await?;
    let Some(last) = entries.last() else {
        return Ok(false);
    };
    let last_seq = last.seq;
    let touched: BTreeSet<Uuid> = entries.iter().map(|e| e.course_id).collect();
    let batch = documents_for(catalog, &open, touched).await?;
    commit_batch(open, writer.writer.clone(), batch, last_seq).await?;
    tracing::debug!(seq = last_seq, "index caught up to seq");
    Ok(true)
}

/// The documents each course should have now: none when it is withdrawn or gone. The whole
/// batch is read in three queries (courses, their files, their segments), not three per course.
pub(crate) async fn documents_for(
    catalog: &Catalog,
    open: &OpenIndex,
    course_ids: BTreeSet<Uuid>,
) -> anyhow::Result<Vec<(Uuid, Vec<TantivyDocument>)>> {
    let ids: Vec<Uuid> = course_ids.into_iter().collect();
    let courses: HashMap<Uuid, Course> = catalog
        .courses_by_ids(&ids)
        .await?
        .into_iter()
        .filter(|course| !course.withdrawn)
        .map(|course| (course.id, course))
        .collect();
    let live: Vec<Uuid> = courses.keys().copied().collect();
    let mut segments = catalog.segments_of_courses(&live).await?;
    Ok(ids
        .into_iter()
        .map(|id| {
            let docs = courses.get(&id).map_or_else(Vec::new, |course| {
                let segments = segments.remove(&id).unwrap_or_default();
                course_documents(&open.fields, course, &segments)
            });
            (id, docs)
        })
        .collect())
}

/// Replaces the batch's courses in the index and commits with `seq` as the payload.
pub async fn commit_batch(
    open: Arc<OpenIndex>,
    writer: Arc<Mutex<IndexWriter<TantivyDocument>>>,
    batch: Vec<(Uuid, Vec<TantivyDocument>)>,
    seq: i64,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut writer = writer
            .lock()
            .map_err(|_| anyhow::anyhow!("index writer lock poisoned"))?;
        for (course_id, docs) in batch {
            writer.delete_term(Term::from_field_text(
                open.fields.course_id,
                &course_id.to_string(),
            ));
            for doc in docs {
                writer.add_document(doc)?;
            }
        }
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&seq.to_string());
        prepared.commit()?;
        open.reader.reload()?;
        open.mark_visible(seq);
        Ok(())
    })
    .await?
}
