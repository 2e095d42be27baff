//! The indexer task: follows the catalog log into the index.
//!
//! It is the only owner of an `IndexWriter` on this node. Each batch re-reads the touched
//! courses from the database (the log says *that* something changed; the database says what
//! is true now), deletes their documents, adds the current ones and commits with the batch's
//! last `seq` as payload.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tantivy::merge_policy::{DefaultMergePolicy, MergePolicy, NoMergePolicy};
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
/// Memory for each indexing thread's in-flight segment (tantivy needs at least 15 MB).
const WRITER_MEMORY_PER_THREAD: usize = 64 * 1024 * 1024;
/// Indexing threads at most. Analysis (jieba, pinyin, the stemmer) happens on them, so with
/// one, a catch-up is bound by that thread while the other cores idle between batches; more
/// than four only multiply the memory budget and the segments for merges to rewrite.
const MAX_WRITER_THREADS: usize = 4;

/// One indexing thread per core this process may run on, up to [`MAX_WRITER_THREADS`].
pub fn writer_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WRITER_THREADS)
}

/// A writer bound to one index generation.
pub struct GenerationWriter {
    generation: String,
    writer: Arc<Mutex<IndexWriter<TantivyDocument>>>,
}

impl GenerationWriter {
    pub fn open(open: &OpenIndex) -> anyhow::Result<GenerationWriter> {
        let threads = writer_threads();
        let writer = open
            .index
            .writer_with_num_threads(threads, threads * WRITER_MEMORY_PER_THREAD)?;
        Ok(GenerationWriter {
            generation: open.generation.clone(),
            writer: Arc::new(Mutex::new(writer)),
        })
    }

    pub fn shared(&self) -> Arc<Mutex<IndexWriter<TantivyDocument>>> {
        self.writer.clone()
    }

    /// Blocks until the merges running on this generation's segments are done, then releases
    /// the writer. Fails if a clone of [`shared`](Self::shared) is still held.
    pub fn wait_for_merges(self) -> anyhow::Result<()> {
        let writer = Arc::try_unwrap(self.writer)
            .map_err(|_| anyhow::anyhow!("the index writer is still shared"))?
            .into_inner()
            .map_err(|_| anyhow::anyhow!("index writer lock poisoned"))?;
        writer.wait_merging_threads()?;
        Ok(())
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
    let mut state = IndexerState::default();
    let mut changes = catalog.change_signal();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match apply_once(&service, &catalog, &mut state).await {
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
/// per this many batches (131,072 entries), so each commit flushes segments about as large as
/// the writer's memory budget makes them anyway, rather than many small ones that background
/// merges must rewrite again and again (at 8 batches, a 1M-course catch-up spent an eighth of
/// its CPU merging: 8,491 docs/s against 10,515 at 32, one run each); few enough that a
/// reindex's switch of generations waits at most one such call (~12 s on 2 cores).
pub const PIPELINED_BATCHES: usize = 32;

/// Searchable segments above which a catch-up merges as it goes after all (see
/// [`merge_policy`]): searches during a long catch-up open every segment, and each costs them a
/// term lookup per query term.
const MAX_SEGMENTS_WITHOUT_MERGES: usize = 48;

/// The writer's merge policy, deferring merges or not. A catch-up (a call whose first batch
/// came back full, so more is likely behind it) defers merges until the log drains: otherwise
/// the segments its commits make are merged, and those merges merged again, while the same
/// cores are needed to index (in one 1M-course catch-up a merge took ~9 s of CPU from its
/// middle). Once the log is drained, a commit under tantivy's default policy merges everything
/// once. A live server's batches are small, so it always merges.
fn merge_policy(defer: bool) -> Box<dyn MergePolicy> {
    if defer {
        Box::new(NoMergePolicy)
    } else {
        Box::new(DefaultMergePolicy::default())
    }
}

/// What the indexer keeps between calls of [`apply_once`]: its writer, and the batch read while
/// the previous call committed.
pub struct IndexerState {
    writer: Option<GenerationWriter>,
    read_ahead: Option<ReadAhead>,
    /// Whether segments may be waiting for merges that no commit has let tantivy consider: the
    /// last commit deferred them (see [`merge_policy`]), or the writer is new.
    merges_pending: bool,
    /// Log entries per batch ([`BATCH`]) and batches per commit ([`PIPELINED_BATCHES`]).
    batch: u32,
    batches_per_commit: usize,
}

impl Default for IndexerState {
    fn default() -> IndexerState {
        IndexerState {
            writer: None,
            read_ahead: None,
            merges_pending: false,
            batch: BATCH,
            batches_per_commit: PIPELINED_BATCHES,
        }
    }
}

impl IndexerState {
    /// The writer, once a call has opened one; the caller may take it to wait for merges.
    pub fn take_writer(&mut self) -> Option<GenerationWriter> {
        self.read_ahead = None;
        self.merges_pending = false;
        self.writer.take()
    }
}

/// A batch read after `after` in `generation`, for the next call to apply first.
struct ReadAhead {
    generation: String,
    after: i64,
    batch: Batch,
}

/// A batch read from the log, with its documents built.
struct Batch {
    last_seq: i64,
    /// Whether the log gave as many entries as were asked for.
    full: bool,
    documents: Vec<(Uuid, Vec<TantivyDocument>)>,
}

/// Reads the log after `applied` and builds the touched courses' documents; `None` when the
/// log has nothing after it.
async fn read_batch(
    catalog: &Catalog,
    open: &OpenIndex,
    applied: i64,
    limit: u32,
) -> anyhow::Result<Option<Batch>> {
    let entries = catalog.read_log(applied, limit).await?;
    let Some(last) = entries.last() else {
        return Ok(None);
    };
    let last_seq = last.seq;
    let full = entries.len() >= limit as usize;
    let touched: BTreeSet<Uuid> = entries.iter().map(|e| e.course_id).collect();
    let documents = documents_for(catalog, open, touched).await?;
    Ok(Some(Batch {
        last_seq,
        full,
        documents,
    }))
}

/// Applies the log's next batches, up to [`PIPELINED_BATCHES`], in one commit; returns how
/// many (0: the index is caught up; otherwise there may be more).
///
/// While one batch is handed to the writer (on the blocking pool), the next is read from the
/// database and its documents built: a third of the time per course in a catch-up (the search
/// benchmark's breakdown), which needs no writer. A call that stops at the batch limit also
/// reads the batch after it while committing, for the next call. A batch read before the
/// previous one is committed is still right: documents are what the database holds when they
/// are read, and whatever changes later has a later log entry. Nothing is visible, and no
/// `seq` recorded, until the commit: a crash before it loses only work that the next start
/// redoes.
///
/// A call whose first batch is full defers the writer's merges; the call that finds the log
/// drained lets them run (see [`merge_policy`]), as does the first call of a new writer.
pub async fn apply_once(
    service: &SearchService,
    catalog: &Catalog,
    state: &mut IndexerState,
) -> anyhow::Result<usize> {
    if service.follow_current()? {
        state.writer = None;
    }
    let open = service.snapshot();
    if state
        .writer
        .as_ref()
        .is_none_or(|w| w.generation != open.generation)
    {
        // Release the previous generation's lock before taking the new one.
        state.writer = None;
        state.writer = Some(GenerationWriter::open(&open)?);
        // Tantivy considers merges only after a commit, and a new writer may find segments an
        // earlier one left unmerged: a reindex commits once and does not wait for its merges,
        // a restart cuts a catch-up's deferral short.
        state.merges_pending = true;
    }
    let writer = state.writer.as_ref().expect("set just above").shared();
    let applied = open.applied_seq()?;
    let first = match state.read_ahead.take() {
        // Only if it follows what is committed in this generation: a failed commit or a
        // switch of generations leaves it behind.
        Some(ahead) if ahead.generation == open.generation && ahead.after == applied => {
            Some(ahead.batch)
        }
        _ => read_batch(catalog, &open, applied, state.batch).await?,
    };
    let Some(mut batch) = first else {
        if state.merges_pending {
            // Commit nothing under the default policy, which merges what is left: a catch-up
            // that ended on a full batch deferred merges in its last commit too.
            lock(&writer)?.set_merge_policy(merge_policy(false));
            commit(open, writer, applied).await?;
            state.merges_pending = false;
        }
        return Ok(0);
    };
    let defer =
        batch.full && open.reader.searcher().segment_readers().len() < MAX_SEGMENTS_WITHOUT_MERGES;
    lock(&writer)?.set_merge_policy(merge_policy(defer));
    state.merges_pending = defer;
    let mut added_batches = 0;
    let last_seq = loop {
        let seq = batch.last_seq;
        let add = add_batch(open.clone(), writer.clone(), batch.documents);
        let next = async {
            if added_batches + 1 < state.batches_per_commit {
                read_batch(catalog, &open, seq, state.batch).await
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
    if added_batches < state.batches_per_commit {
        // The log was drained: commit alone, merging what a catch-up deferred.
        if state.merges_pending {
            lock(&writer)?.set_merge_policy(merge_policy(false));
            state.merges_pending = false;
        }
        commit(open, writer, last_seq).await?;
    } else {
        let (committed, ahead) = tokio::join!(
            commit(open.clone(), writer, last_seq),
            read_batch(catalog, &open, last_seq, state.batch)
        );
        committed?;
        state.read_ahead = ahead?.map(|batch| ReadAhead {
            generation: open.generation.clone(),
            after: last_seq,
            batch,
        });
    }
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

#[cfg(test)]
mod tests {
    use tantivy::collector::TopDocs;
    use tantivy::query::TermQuery;
    use tantivy::schema::{IndexRecordOption, Value};

    use super::*;
    use crate::accounts::model::User;
    use crate::catalog::CourseInput;
    use crate::config::Config;
    use crate::institutions::model::{Institution, InstitutionKind};

    fn titled(title: &str) -> CourseInput {
        CourseInput {
            title: Some(title.to_owned()),
            ..CourseInput::default()
        }
    }

    /// The titles of the course documents indexed for `id`: exactly one when it is right.
    fn indexed_titles(open: &OpenIndex, id: Uuid) -> Vec<String> {
        let searcher = open.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(open.fields.course_id, &id.to_string()),
            IndexRecordOption::Basic,
        );
        let hits = searcher
            .search(&query, &TopDocs::with_limit(10).order_by_score())
            .unwrap();
        hits.into_iter()
            .map(|(_, address)| {
                let doc: TantivyDocument = searcher.doc(address).unwrap();
                let title = doc.get_first(open.fields.title).and_then(|v| v.as_str());
                title.unwrap_or_default().to_owned()
            })
            .collect()
    }

    /// A catalog on SQLite under `dir` with `courses` courses titled 课程0, 课程1, …, and an
    /// empty index.
    async fn catalog_with_courses(
        dir: &std::path::Path,
        courses: usize,
    ) -> (Catalog, SearchService, Vec<Uuid>) {
        let mut config = Config::default();
        config.server.data_dir = dir.to_path_buf();
        let db = crate::startup::open_database(&config).await.unwrap();
        let catalog = crate::startup::open_catalog(&config, &db, Arc::from("test")).unwrap();
        let institution = Institution {
            id: Uuid::now_v7(),
            slug: "xihu-college".into(),
            name: "Xihu".into(),
            kind: InstitutionKind::CountyCollege,
            region: "zhejiang".into(),
            created_at_ms: 0,
        };
        crate::institutions::store::insert_institution(db.pool(), &institution)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for n in 0..courses {
            let course = catalog
                .create_course_with_id("xihu-college", Uuid::now_v7(), titled(&format!("课程{n}")))
                .await
                .unwrap();
            ids.push(course.id);
        }
        let service = SearchService::open(&config.index_dir()).unwrap();
        (catalog, service, ids)
    }

    #[tokio::test]
    async fn a_catch_up_reads_ahead_while_it_commits_and_misses_no_later_change() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, service, ids) = catalog_with_courses(dir.path(), 10).await;
        let mut state = IndexerState {
            batch: 3,
            batches_per_commit: 2,
            ..IndexerState::default()
        };

        // Two batches of three (courses 0–5) are committed; the third (6–8) is read meanwhile.
        assert_eq!(apply_once(&service, &catalog, &mut state).await.unwrap(), 2);
        let committed = service.snapshot().applied_seq().unwrap();
        let ahead = state.read_ahead.as_ref().expect("a batch read ahead");
        assert_eq!(ahead.after, committed);
        assert_eq!(ahead.batch.documents.len(), 3);
        assert_eq!(
            indexed_titles(&service.snapshot(), ids[7]),
            Vec::<String>::new()
        );

        // Course 7 changes after its documents were read: the change's own entry follows.
        let admin = User {
            id: Uuid::now_v7(),
            email: "admin@example.org".into(),
            display_name: "Admin".into(),
            is_admin: true,
            created_at_ms: 0,
        };
        catalog
            .update_course(&admin, ids[7], titled("改过的课程"))
            .await
            .unwrap();
        while apply_once(&service, &catalog, &mut state).await.unwrap() > 0 {}

        let open = service.snapshot();
        assert_eq!(
            open.applied_seq().unwrap(),
            catalog.latest_seq().await.unwrap()
        );
        assert_eq!(open.reader.searcher().num_docs(), 10);
        assert_eq!(indexed_titles(&open, ids[7]), ["改过的课程"]);
        for (n, id) in ids.iter().enumerate().filter(|(n, _)| *n != 7) {
            assert_eq!(indexed_titles(&open, *id), [format!("课程{n}")]);
        }
        assert!(state.read_ahead.is_none(), "nothing is left to read");
    }

    fn policy_of(state: &IndexerState) -> String {
        let writer = state.writer.as_ref().expect("a writer is open").shared();
        let policy = writer.lock().unwrap().get_merge_policy();
        format!("{policy:?}")
    }

    /// Applies the first ten batches of two of a catch-up, one commit each, and checks that
    /// none of them merged.
    async fn ten_commits_of_a_catch_up(service: &SearchService, catalog: &Catalog) -> IndexerState {
        // Ten commits, each at least one segment, are more than the eight segments of one
        // size that make tantivy's default policy merge.
        let mut state = IndexerState {
            batch: 2,
            batches_per_commit: 1,
            ..IndexerState::default()
        };
        for commits in 1..=10 {
            assert_eq!(apply_once(service, catalog, &mut state).await.unwrap(), 1);
            assert!(policy_of(&state).starts_with("NoMergePolicy"));
            let segments = service.snapshot().reader.searcher().segment_readers().len();
            assert!(
                segments >= commits,
                "{segments} segments after {commits} commits"
            );
        }
        state
    }

    /// Waits for the writer's merges and returns the segments searchable then.
    fn segments_once_merged(service: &SearchService, state: &mut IndexerState) -> usize {
        state.take_writer().unwrap().wait_for_merges().unwrap();
        let open = service.snapshot();
        open.reload().unwrap();
        open.reader.searcher().segment_readers().len()
    }

    #[tokio::test]
    async fn a_catch_up_merges_segments_only_once_the_log_is_drained() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, service, _) = catalog_with_courses(dir.path(), 20).await;
        let mut state = ten_commits_of_a_catch_up(&service, &catalog).await;

        // The log is drained: the next call finds nothing, and lets the segments merge.
        assert_eq!(apply_once(&service, &catalog, &mut state).await.unwrap(), 0);
        assert!(policy_of(&state).starts_with("LogMergePolicy"));
        assert_eq!(segments_once_merged(&service, &mut state), 1);
        assert_eq!(service.snapshot().reader.searcher().num_docs(), 20);

        // A live change afterwards is a batch smaller than asked for: merges stay on.
        let mut state = IndexerState::default();
        catalog
            .create_course_with_id("xihu-college", Uuid::now_v7(), titled("新课程"))
            .await
            .unwrap();
        assert_eq!(apply_once(&service, &catalog, &mut state).await.unwrap(), 1);
        assert!(policy_of(&state).starts_with("LogMergePolicy"));
        assert_eq!(service.snapshot().reader.searcher().num_docs(), 21);
    }

    #[tokio::test]
    async fn a_new_writer_merges_the_segments_an_earlier_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, service, _) = catalog_with_courses(dir.path(), 20).await;
        // The catch-up's writer goes before a call has found the log drained: a restart.
        drop(ten_commits_of_a_catch_up(&service, &catalog).await);

        let mut state = IndexerState::default();
        assert_eq!(apply_once(&service, &catalog, &mut state).await.unwrap(), 0);
        assert_eq!(segments_once_merged(&service, &mut state), 1);
        assert_eq!(service.snapshot().reader.searcher().num_docs(), 20);
    }
}
