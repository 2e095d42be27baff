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
            Ok(0) => {}
            Ok(_) => continue,
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

/// Batches one call of [`apply_once`] may apply before it commits: a catch-up commits once
/// per this many batches, so the index grows by a few large segments rather than hundreds of
/// small ones that background merges must rewrite again and again; few enough that a
/// reindex's switch of generations is not held up long.
pub const PIPELINED_BATCHES: usize = 8;

/// A batch read from the log, with its documents built.
struct Batch {
    last_seq: i64,
    documents: Vec<(Uuid, Vec<TantivyDocument>)>,
}

/// Reads the log after `applied` and builds the touched courses' documents; `None` when the
/// log has nothing after it.
async fn read_batch(
    catalog: &Catalog,
    open: &OpenIndex,
    applied: i64,
) -> anyhow::Result<Option<Batch>> {
    let entries = catalog.read_log(applied, BATCH).await?;
    let Some(last) = entries.last() else {
        return Ok(None);
    };
    let last_seq = last.seq;
    let touched: BTreeSet<Uuid> = entries.iter().map(|e| e.course_id).collect();
    let documents = documents_for(catalog, open, touched).await?;
    Ok(Some(Batch {
        last_seq,
        documents,
    }))
}

/// Applies the log's next batches, up to [`PIPELINED_BATCHES`], in one commit; returns how
/// many (0: the index is caught up; otherwise there may be more).
///
/// While one batch is handed to the writer (on the blocking pool), the next is read from the
/// database and its documents built: a third of the time per course in a catch-up (the search
/// benchmark's breakdown), which needs no writer. A batch read before the previous one is
/// committed is still right: documents are what the database holds when they are read, and
/// whatever changes later has a later log entry. Nothing is visible, and no `seq` recorded,
/// until the commit: a crash before it loses only work that the next start redoes.
pub async fn apply_once(
    service: &SearchService,
    catalog: &Catalog,
    writer: &mut Option<GenerationWriter>,
) -> anyhow::Result<usize> {
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
    let Some(mut batch) = read_batch(catalog, &open, open.applied_seq()?).await? else {
        return Ok(0);
    };
    let mut added_batches = 0;
    let last_seq = loop {
        let seq = batch.last_seq;
        let add = add_batch(open.clone(), writer.shared(), batch.documents);
        let next = async {
            if added_batches + 1 < PIPELINED_BATCHES {
                read_batch(catalog, &open, seq).await
            } else {
                Ok(None)
            }
        };
        // On an error, whatever was added stays uncommitted and the retry starts again from
        // the last commit: it deletes each course's documents before adding them anew.
        let (added, next) = tokio::join!(add, next);
        added?;
        added_batches += 1;
        match next? {
            Some(following) => batch = following,
            None => break seq,
        }
    };
    commit(open, writer.shared(), last_seq).await?;
    tracing::debug!(seq = last_seq, "index caught up to seq");
    Ok(added_batches)
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

/// Replaces the batch's courses in the index, uncommitted.
pub(crate) async fn add_batch(
    open: Arc<OpenIndex>,
    writer: Arc<Mutex<IndexWriter<TantivyDocument>>>,
    batch: Vec<(Uuid, Vec<TantivyDocument>)>,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let writer = lock(&writer)?;
        for (course_id, docs) in batch {
            writer.delete_term(Term::from_field_text(
                open.fields.course_id,
                &course_id.to_string(),
            ));
            for doc in docs {
                writer.add_document(doc)?;
            }
        }
        Ok(())
    })
    .await?
}

/// Commits what was added, with `seq` as the payload, and makes it visible to searches.
pub(crate) async fn commit(
    open: Arc<OpenIndex>,
    writer: Arc<Mutex<IndexWriter<TantivyDocument>>>,
    seq: i64,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut writer = lock(&writer)?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&seq.to_string());
        prepared.commit()?;
        open.reload()?;
        open.mark_visible(seq);
        Ok(())
    })
    .await?
}

fn lock(
    writer: &Mutex<IndexWriter<TantivyDocument>>,
) -> anyhow::Result<std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>>> {
    writer
        .lock()
        .map_err(|_| anyhow::anyhow!("index writer lock poisoned"))
}
