//! Indexing throughput: Shuyuan's real pipeline (the catalog log in SQLite → `apply_once` until
//! drained) against raw tantivy (same schema, same analyzers, same documents, one writer, one
//! commit), both timed until the documents are searchable.

use std::path::Path;
use std::time::Instant;

use shuyuan::Config;
use shuyuan::search::documents::course_documents;
use shuyuan::search::indexer::{self, BATCH};
use shuyuan::search::{SearchService, analysis, rebuild, schema};
use tantivy::{Index, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::catalog;
use crate::corpus::Corpus;

/// The per-thread memory budget of Shuyuan's writer (`indexer::WRITER_MEMORY_BYTES`), used per
/// thread for raw tantivy too.
const WRITER_MEMORY_PER_THREAD: usize = 64 * 1024 * 1024;
/// Courses read and converted, one by one, for the cost breakdown of the Shuyuan pipeline.
const PROFILE_SAMPLE: usize = 20_000;

#[derive(Debug, Clone, Default)]
pub struct IndexRun {
    pub seconds: f64,
    pub bytes: u64,
    /// Segments once background merges have finished.
    pub segments: usize,
    /// Segments when the last document became searchable, before the merges still running.
    pub segments_searchable: usize,
    /// Commits made on the way (Shuyuan: one per batch of log entries).
    pub commits: usize,
    pub threads: usize,
}

impl IndexRun {
    pub fn docs_per_second(&self, courses: usize) -> f64 {
        courses as f64 / self.seconds
    }
}

/// Where Shuyuan's indexer spends its time, from re-doing its steps on a sample of courses.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    pub sample: usize,
    /// `read_log`, per course.
    pub log_us: f64,
    /// `courses_by_ids` (courses + files) and `segments_of_courses`, per batch of the indexer's size, per course.
    pub db_us: f64,
    /// `course_documents` (pinyin forms, summary JSON), per course.
    pub build_us: f64,
}

fn register_analyzers(index: &Index) {
    index
        .tokenizers()
        .register(analysis::ZH_EN, analysis::zh_en_analyzer());
    index
        .tokenizers()
        .register(analysis::PINYIN, analysis::pinyin_analyzer());
}

pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Lets background merges finish and deletes the files they obsoleted, so the size measured is
/// the index's settled size.
fn settle(writer: IndexWriter<TantivyDocument>, index: &Index) -> anyhow::Result<()> {
    writer.wait_merging_threads()?;
    collect_garbage(index)
}

/// Removes the files of segments merged away, so the index's size on disk is what it holds.
fn collect_garbage(index: &Index) -> anyhow::Result<()> {
    let writer: IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(1, WRITER_MEMORY_PER_THREAD)?;
    writer.garbage_collect_files().wait()?;
    Ok(())
}

/// Shuyuan: an empty index brought up to the last `seq` of a populated catalog log by
/// `indexer::apply_once` in a loop, exactly as the server's indexer task runs it.
pub async fn shuyuan(config: &Config, courses: usize) -> anyhow::Result<(IndexRun, Breakdown)> {
    let db = shuyuan::startup::open_database(config).await?;
    let catalog = shuyuan::startup::open_catalog(config, &db, catalog::ORIGIN.into())?;
    let root = config.index_dir();
    let target = catalog.latest_seq().await?;

    let started = Instant::now();
    let service = SearchService::open(&root)?;
    let mut state = indexer::IndexerState::default();
    let mut commits = 0;
    loop {
        match indexer::apply_once(&service, &catalog, &mut state).await? {
            0 => break,
            // Each call that applies anything ends in one commit.
            _ => commits += 1,
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let open = service.snapshot();
    let applied = open.applied_seq()?;
    anyhow::ensure!(
        applied == target,
        "the index stopped at seq {applied}, want {target}"
    );
    let searcher = open.reader.searcher();
    let docs = searcher.num_docs();
    anyhow::ensure!(
        docs == courses as u64,
        "{docs} documents searchable, want {courses}"
    );
    let segments_searchable = searcher.segment_readers().len();
    drop(searcher);
    let breakdown = breakdown(&catalog, &open, courses).await?;
    let index = open.index.clone();
    drop(open);
    drop(service);
    if let Some(generation_writer) = state.take_writer() {
        generation_writer.wait_for_merges()?;
        collect_garbage(&index)?;
    }
    let segments = index.searchable_segment_ids()?.len();
    drop(index);
    db.close().await;
    Ok((
        IndexRun {
            seconds,
            bytes: dir_size(&root),
            segments,
            segments_searchable,
            commits,
            threads: indexer::writer_threads(),
        },
        breakdown,
    ))
}

/// Re-does the indexer's per-course steps on a sample, timing each: the log read, the database
/// reads and the document building. What is left of the total is tantivy (analysis, indexing,
/// one commit and reader reload per batch).
async fn breakdown(
    catalog: &shuyuan::catalog::Catalog,
    open: &shuyuan::search::OpenIndex,
    courses: usize,
) -> anyhow::Result<Breakdown> {
    let sample = courses.min(PROFILE_SAMPLE);
    let started = Instant::now();
    let mut entries = Vec::with_capacity(sample);
    let mut since = 0;
    while entries.len() < sample {
        let page = catalog
            .read_log(since, BATCH.min((sample - entries.len()) as u32))
            .await?;
        let Some(last) = page.last() else { break };
        since = last.seq;
        entries.extend(page);
    }
    let log = started.elapsed().as_secs_f64();
    let (mut db, mut build) = (0.0, 0.0);
    // As the indexer reads them: a batch of log entries' courses, files and segments in
    // three queries.
    for batch in entries.chunks(BATCH as usize) {
        let started = Instant::now();
        let ids: Vec<uuid::Uuid> = batch.iter().map(|e| e.course_id).collect();
        let found = catalog.courses_by_ids(&ids).await?;
        anyhow::ensure!(
            found.len() == ids.len(),
            "courses of the sample are missing"
        );
        let mut segments = catalog.segments_of_courses(&ids).await?;
        db += started.elapsed().as_secs_f64();
        let started = Instant::now();
        for course in &found {
            let segments = segments.remove(&course.id).unwrap_or_default();
            std::hint::black_box(course_documents(&open.fields, course, &segments));
        }
        build += started.elapsed().as_secs_f64();
    }
    let per = |total: f64| total * 1e6 / entries.len().max(1) as f64;
    Ok(Breakdown {
        sample: entries.len(),
        log_us: per(log),
        db_us: per(db),
        build_us: per(build),
    })
}

/// Raw tantivy: the same schema and analyzers, the same documents (built in memory by the same
/// `course_documents`), fed by one thread per core into one `IndexWriter` with tantivy's
/// default thread count, one commit, then a reader.
pub fn raw(corpus: &Corpus, courses: usize, dir: &Path) -> anyhow::Result<IndexRun> {
    std::fs::create_dir_all(dir)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let started = Instant::now();
    let (schema, fields) = schema::build();
    let index = Index::create_in_dir(dir, schema)?;
    register_analyzers(&index);
    let mut writer: IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(threads, threads * WRITER_MEMORY_PER_THREAD)?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let feeders: Vec<_> = (0..threads)
            .map(|t| {
                let writer = &writer;
                scope.spawn(move || -> anyhow::Result<()> {
                    for k in (t..courses).step_by(threads) {
                        let course = catalog::course(k, &corpus.doc(k));
                        for doc in course_documents(&fields, &course, &[]) {
                            writer.add_document(doc)?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for feeder in feeders {
            feeder
                .join()
                .map_err(|_| anyhow::anyhow!("a feeder thread panicked"))??;
        }
        Ok(())
    })?;
    writer.commit()?;
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let seconds = started.elapsed().as_secs_f64();
    let searcher = tantivy::IndexReader::searcher(&reader);
    let docs = searcher.num_docs();
    anyhow::ensure!(
        docs == courses as u64,
        "{docs} raw documents, want {courses}"
    );
    let segments_searchable = searcher.segment_readers().len();
    drop(searcher);
    drop(reader);
    settle(writer, &index)?;
    let segments = index.searchable_segment_ids()?.len();
    Ok(IndexRun {
        seconds,
        bytes: dir_size(dir),
        segments,
        segments_searchable,
        commits: 1,
        threads,
    })
}

/// `shuyuan reindex`'s rebuild of the same catalog into `root`, timed until the new generation
/// could go live: every course read from the database, indexed and committed.
pub async fn reindex(config: &Config, courses: usize, root: &Path) -> anyhow::Result<f64> {
    let db = shuyuan::startup::open_database(config).await?;
    let catalog = shuyuan::startup::open_catalog(config, &db, catalog::ORIGIN.into())?;
    let started = Instant::now();
    let report = rebuild::rebuild(&catalog, root, &indicatif::ProgressBar::hidden()).await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.courses == courses,
        "reindex saw {} courses, want {courses}",
        report.courses
    );
    db.close().await;
    Ok(seconds)
}

/// A step between raw tantivy and Shuyuan's pipeline, for the diagnosis: documents built in
/// memory (no database), one feeder thread and a writer with `threads` indexing threads, like
/// the indexer's; optionally a commit and reader reload every `commit_every` courses, and a
/// `delete_term(course_id)` before each course's documents, as `indexer::add_batch` does.
pub fn raw_variant(
    corpus: &Corpus,
    courses: usize,
    dir: &Path,
    threads: usize,
    commit_every: Option<usize>,
    delete_first: bool,
) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    let (schema, fields) = schema::build();
    let index = Index::create_in_dir(dir, schema)?;
    register_analyzers(&index);
    let mut writer: IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(threads, threads * WRITER_MEMORY_PER_THREAD)?;
    let reader: tantivy::IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    if commit_every.is_some() {
        // As the indexer's catch-up does: no merges until the last commit.
        writer.set_merge_policy(Box::new(tantivy::merge_policy::NoMergePolicy));
    }
    for k in 0..courses {
        let course = catalog::course(k, &corpus.doc(k));
        if delete_first {
            writer.delete_term(tantivy::Term::from_field_text(
                fields.course_id,
                &course.id.to_string(),
            ));
        }
        for doc in course_documents(&fields, &course, &[]) {
            writer.add_document(doc)?;
        }
        if commit_every.is_some_and(|every| (k + 1) % every == 0) {
            writer.commit()?;
            reader.reload()?;
        }
    }
    if commit_every.is_some() {
        writer.set_merge_policy(Box::new(
            tantivy::merge_policy::DefaultMergePolicy::default(),
        ));
    }
    writer.commit()?;
    reader.reload()?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        reader.searcher().num_docs() == courses as u64,
        "variant: wrong document count"
    );
    drop(reader);
    writer.wait_merging_threads()?;
    Ok(seconds)
}
