//! Search: a tantivy index derived from the catalog, and the queries over it.
//!
//! The database is the source of truth; the index follows the catalog log and can always be
//! rebuilt from it (`shuyuan reindex`). One indexer task per node owns the only `IndexWriter`
//! and stores the last applied log `seq` in each commit's payload, so the marker and the index
//! can never disagree: after a crash the node re-applies from the last committed `seq`, and
//! applying an entry twice is harmless (a course's documents are deleted and re-added).
//!
//! ```text
//!   catalog_log ──read_log(seq)──► indexer task ──delete+add, commit(payload = seq)──► index dir
//!        ▲                              ▲ wake (local change) / poll (other nodes' changes)
//!   catalog writes                      │
//!                                       └── CURRENT names the live generation; `reindex`
//!                                           builds a new one and swaps CURRENT atomically
//! ```
//!
//! Only this module touches tantivy. Tantivy calls block, so they run on the blocking pool.

pub mod analysis;
pub mod documents;
mod facets;
mod highlight;
pub mod indexer;
pub mod query;
pub mod rebuild;
pub mod routes;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use anyhow::Context;
use tantivy::{Executor, Index, IndexReader, ReloadPolicy};

use schema::Fields;

/// The file in the index root that names the live generation directory.
const CURRENT: &str = "CURRENT";

/// One opened generation of the index.
pub struct OpenIndex {
    pub generation: String,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    /// Per segment, the facet values of each document in the form a search counts them.
    facet_profiles: Arc<facets::FacetProfiles>,
    /// The last catalog `seq` that searches can see: read from the commit payload at open,
    /// then raised after each commit *and* reader reload, so "applied" never runs ahead of
    /// what a query returns.
    visible_seq: AtomicI64,
}

impl OpenIndex {
    /// The last catalog `seq` this generation has applied and made visible to searches.
    pub fn applied_seq(&self) -> anyhow::Result<i64> {
        Ok(self.visible_seq.load(Ordering::Acquire))
    }

    /// Makes the last commit visible to searches, with its segments' facet tables built
    /// first (see `facets`). Use it instead of `reader.reload()`.
    pub fn reload(&self) -> tantivy::Result<()> {
        self.facet_profiles.warm(&self.index)?;
        self.reader.reload()?;
        self.facet_profiles.keep_only(&self.reader.searcher())
    }

    pub(crate) fn mark_visible(&self, seq: i64) {
        self.visible_seq.store(seq, Ordering::Release);
    }
}

fn committed_seq(index: &Index) -> anyhow::Result<i64> {
    let metas = index.load_metas()?;
    Ok(metas
        .payload
        .as_deref()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0))
}

/// Cheap-to-clone handle to the live index generation.
#[derive(Clone)]
pub struct SearchService {
    root: PathBuf,
    current: Arc<RwLock<Arc<OpenIndex>>>,
}

impl std::fmt::Debug for SearchService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchService")
            .field("root", &self.root)
            .finish()
    }
}

impl SearchService {
    /// Opens the generation `CURRENT` names under `root`, creating a first one if needed.
    pub fn open(root: &Path) -> anyhow::Result<SearchService> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the index directory {}", root.display()))?;
        let generation = match read_current(root)? {
            Some(generation) => generation,
            None => {
                let generation = new_generation_name();
                create_generation(root, &generation)?;
                write_current(root, &generation)?;
                generation
            }
        };
        remove_old_generations(root, &generation);
        let opened = open_generation(root, &generation)?;
        Ok(SearchService {
            root: root.to_path_buf(),
            current: Arc::new(RwLock::new(Arc::new(opened))),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The live generation, for one query or one indexing batch.
    pub fn snapshot(&self) -> Arc<OpenIndex> {
        self.current
            .read()
            .expect("the index lock is never poisoned: nothing panics while holding it")
            .clone()
    }

    /// Switches to the generation `CURRENT` names now, if it changed (after `reindex`).
    /// Returns true when it switched.
    pub fn follow_current(&self) -> anyhow::Result<bool> {
        let Some(named) = read_current(&self.root)? else {
            return Ok(false);
        };
        if named == self.snapshot().generation {
            return Ok(false);
        }
        let opened = open_generation(&self.root, &named)?;
        let previous = {
            let mut current = self
                .current
                .write()
                .expect("the index lock is never poisoned: nothing panics while holding it");
            std::mem::replace(&mut *current, Arc::new(opened))
        };
        tracing::info!(from = %previous.generation, to = %named, "switched to a rebuilt index");
        remove_old_generations(&self.root, &named);
        Ok(true)
    }
}

impl SearchService {
    /// Runs a search against the live generation on the search threads themselves. Started
    /// there, tantivy's per-segment collection runs on the calling thread and the other search
    /// threads steal from it, instead of a blocking-pool thread handing the segments over and
    /// sleeping until they are done.
    ///
    /// While other searches wait for a thread, a search collects its segments on its own
    /// thread: splitting it would only make the waiting ones wait longer, and costs hand-offs.
    pub async fn search(
        &self,
        request: query::SearchRequest,
    ) -> anyhow::Result<query::SearchResults> {
        let open = self.snapshot();
        let threads = search_threads();
        let executor = threads.executor.clone();
        let cores = match &executor {
            Executor::ThreadPool(pool) => pool.current_num_threads(),
            Executor::SingleThread => 1,
        };
        let in_flight = InFlight::enter(&threads.in_flight);
        // A panic in a job on a rayon pool aborts the process; here it becomes this request's
        // 500, as it did on the blocking pool.
        let run = move || {
            let alone = Executor::SingleThread;
            let on = if in_flight.now() > cores {
                &alone
            } else {
                open.index.search_executor()
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                query::search_with(&open, &request, on)
            }));
            drop(in_flight);
            outcome
        };
        let outcome = match executor {
            Executor::ThreadPool(pool) => {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                pool.spawn(move || {
                    // Fails only when the request was dropped meanwhile: nobody to answer.
                    let _ = sender.send(run());
                });
                receiver.await?
            }
            Executor::SingleThread => tokio::task::spawn_blocking(run).await?,
        };
        outcome
            .map_err(|_| anyhow::anyhow!("the search panicked"))?
            .map_err(Into::into)
    }
}

/// Counts a search from its request until its job ends (a request dropped while its job waits
/// still holds a thread's turn until the job runs).
struct InFlight(&'static AtomicUsize);

impl InFlight {
    fn enter(count: &'static AtomicUsize) -> InFlight {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }

    /// Searches in flight, this one included.
    fn now(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Bytes of stored fields compressed together. A hit's stored fields are read by
/// decompressing the whole block that holds them: at tantivy's default (16 KiB, some ten
/// courses) that was a twentieth of a search's CPU at 1M courses, for twenty hits scattered
/// over as many blocks.
const DOCSTORE_BLOCK_BYTES: usize = 4096;

/// Creates an empty generation directory with the schema, analyzers and store settings.
pub fn create_generation(root: &Path, generation: &str) -> anyhow::Result<OpenIndex> {
    let dir = root.join(generation);
    std::fs::create_dir_all(&dir)?;
    let (schema, _) = schema::build();
    let settings = tantivy::IndexSettings {
        docstore_blocksize: DOCSTORE_BLOCK_BYTES,
        ..tantivy::IndexSettings::default()
    };
    let index = Index::builder()
        .schema(schema)
        .settings(settings)
        .create_in_dir(&dir)
        .with_context(|| format!("creating the index in {}", dir.display()))?;
    drop(index);
    open_generation(root, generation)
}

fn open_generation(root: &Path, generation: &str) -> anyhow::Result<OpenIndex> {
    let dir = root.join(generation);
    let mut index = Index::open_in_dir(&dir)
        .with_context(|| format!("opening the index in {}", dir.display()))?;
    index.set_executor(search_executor());
    index
        .tokenizers()
        .register(analysis::ZH_EN, analysis::zh_en_analyzer());
    index
        .tokenizers()
        .register(analysis::PINYIN, analysis::pinyin_analyzer());
    let facet_profiles = Arc::new(facets::FacetProfiles::default());
    facet_profiles.warm(&index)?;
    // Reloads happen explicitly after each commit (`OpenIndex::reload`), so a search right
    // after indexing sees it.
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let (_, fields) = schema::build();
    let visible_seq = AtomicI64::new(committed_seq(&index)?);
    Ok(OpenIndex {
        generation: generation.to_owned(),
        index,
        reader,
        fields,
        facet_profiles,
        visible_seq,
    })
}

/// One pool for every open index, a thread per core, so a query's segments are searched on all
/// cores: a word common in a large catalog matches hundreds of thousands of courses, all scored
/// and counted into facets, and that is what makes the slowest searches. One core (or a count
/// the system will not tell) searches on the caller's thread, as does a pool that cannot start.
fn search_executor() -> Executor {
    search_threads().executor.clone()
}

/// The search threads and the searches waiting for or running on them.
struct SearchThreads {
    executor: Executor,
    in_flight: AtomicUsize,
}

fn search_threads() -> &'static SearchThreads {
    static THREADS: LazyLock<SearchThreads> = LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let executor = if cores < 2 {
            Executor::single_thread()
        } else {
            Executor::multi_thread(cores, "shuyuan-search-").unwrap_or_else(|error| {
                tracing::warn!(%error, "could not start the search threads; searching on one");
                Executor::single_thread()
            })
        };
        SearchThreads {
            executor,
            in_flight: AtomicUsize::new(0),
        }
    });
    &THREADS
}

pub fn new_generation_name() -> String {
    format!("gen-{}", crate::db::now_ms())
}

fn read_current(root: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(root.join(CURRENT)) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("reading the index CURRENT file"),
    }
}

/// Points `CURRENT` at `generation` atomically (write a temporary file, then rename).
pub fn write_current(root: &Path, generation: &str) -> anyhow::Result<()> {
    let temporary = root.join(format!("{CURRENT}.tmp"));
    std::fs::write(&temporary, generation)?;
    std::fs::rename(&temporary, root.join(CURRENT))?;
    Ok(())
}

/// Deletes generation directories other than the live one (left by earlier rebuilds).
pub fn remove_old_generations(root: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("gen-")
            && name != keep
            && entry.path().is_dir()
            && let Err(error) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(generation = %name, %error, "could not remove an old index generation");
        }
    }
}
