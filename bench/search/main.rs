//! The search benchmark: indexing throughput and index size against raw tantivy, and query
//! latency and throughput through HTTP against PostgreSQL full-text search, all measured in
//! one run on this machine. `bench/README.md` ("Search") describes what it measures and how.
//!
//! ```sh
//! cargo bench --bench search                  # 100k and 1M documents
//! BENCH_QUICK=1 cargo bench --bench search    # 5,000 documents, 50 queries: a smoke run
//! ```

mod catalog;
#[path = "../common.rs"]
mod common;
mod corpus;
mod indexing;
mod load;
mod postgres;
mod queries;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Url;
use shuyuan::Config;
use shuyuan::search::query::{self, SearchRequest, Sort};

use common::{env_number, env_or};
use corpus::Corpus;
use indexing::{Breakdown, IndexRun};
use load::Stats;
use postgres::{PgLoad, Postgres};
use queries::Query;

const DEFAULT_DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const TARGET_INDEX_RATIO: f64 = 0.5;
const TARGET_DOCS_PER_SECOND: f64 = 10_000.0;
const TARGET_P99_FACTOR: f64 = 50.0;
const TARGET_THROUGHPUT_FACTOR: f64 = 30.0;
const TARGET_FLOOR_FACTOR: f64 = 2.0;
const TARGET_FLOOR_SLACK: Duration = Duration::from_micros(150);

struct Settings {
    data_dir: PathBuf,
    sizes: Vec<usize>,
    queries: usize,
    /// Passes over the mix per measured run: Shuyuan (HTTP and in-process), PostgreSQL.
    passes: usize,
    pg_passes: usize,
    run_limit: Duration,
    database_url: String,
    tmp_dir: PathBuf,
    quick: bool,
    /// Runs the raw tantivy variants at the smallest size.
    diagnose: bool,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let quick = env_or("BENCH_QUICK", "0") == "1";
        let sizes = env_or("BENCH_DOCS", if quick { "5000" } else { "100000,1000000" })
            .split(',')
            .map(|s| s.trim().replace('_', "").parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("BENCH_DOCS: {e}"))?;
        anyhow::ensure!(
            sizes.iter().all(|&s| s >= 1000),
            "BENCH_DOCS: sizes of at least 1000"
        );
        Ok(Settings {
            data_dir: PathBuf::from(env_or("BENCH_DATA_DIR", DEFAULT_DATA_DIR)),
            sizes,
            queries: env_number("BENCH_QUERIES", if quick { 50 } else { 200 })?,
            passes: env_number("BENCH_PASSES", if quick { 2 } else { 5 })?.max(1),
            pg_passes: env_number("BENCH_PG_PASSES", 1)?.max(1),
            run_limit: Duration::from_secs(env_number(
                "BENCH_RUN_SECONDS",
                if quick { 30 } else { 120 },
            )? as u64),
            database_url: env_or("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
            tmp_dir: PathBuf::from(env_or(
                "BENCH_TMPDIR",
                &std::env::temp_dir().to_string_lossy(),
            )),
            quick,
            diagnose: env_or("BENCH_DIAGNOSE", "1") == "1",
        })
    }
}

#[derive(Debug, Clone, Default)]
struct Memory {
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    hwm_kib: u64,
}

/// This process's memory from `/proc/self/status`. The server runs in this process.
fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
        file_kib: field("RssFile:"),
        hwm_kib: field("VmHWM:"),
    }
}

#[derive(Default)]
struct SizeResult {
    docs: usize,
    zh_share: f64,
    text_mib: f64,
    setup_seconds: f64,
    shuyuan: IndexRun,
    breakdown: Breakdown,
    /// `shuyuan reindex` of the same catalog, until the new generation could go live.
    reindex_seconds: f64,
    raw: IndexRun,
    pg: PgLoad,
    floor: Stats,
    floor_one_hit: Stats,
    http1: Stats,
    http16: Stats,
    http32: Stats,
    pg1: Stats,
    pg16: Stats,
    pg32: Stats,
    /// Diagnosis: raw tantivy variants, step by step towards Shuyuan's pipeline (docs/s).
    variants: Vec<(String, f64)>,
    before_server: Memory,
    with_server: Memory,
    wall_seconds: f64,
}

fn main() {
    if let Err(error) = run() {
        eprintln!("search benchmark failed: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let wall = Instant::now();
    let settings = Settings::from_env()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("server")
        .build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    println!(
        "Shuyuan search benchmark{}",
        if settings.quick {
            " (BENCH_QUICK=1: a smoke run; judge targets only at the default sizes)"
        } else {
            ""
        }
    );
    println!(
        "machine: {cores} cores, load average {} at start (another build on these cores skews every figure)",
        common::load_average()
    );
    let loaded = Instant::now();
    let corpus = Corpus::load(&settings.data_dir)?;
    let (zh, en) = corpus.pool_sizes();
    println!(
        "corpus: {} base records from {} ({zh} Chinese, {en} English; kuake {}, nfcorpus {}, udemy {}, edx {}, coursera {}, csl {}), {:.1} MiB of text, loaded in {:.1} s",
        corpus.items.len(),
        corpus.dir.display(),
        corpus.count(corpus::Source::Kuake),
        corpus.count(corpus::Source::NfCorpus),
        corpus.count(corpus::Source::Udemy),
        corpus.count(corpus::Source::Edx),
        corpus.count(corpus::Source::Coursera),
        corpus.count(corpus::Source::Csl),
        corpus.base_bytes() as f64 / 1048576.0,
        loaded.elapsed().as_secs_f64()
    );
    let mix = queries::mix_of(
        &corpus,
        settings
            .sizes
            .iter()
            .copied()
            .min()
            .unwrap_or(1)
            .min(corpus.items.len()),
        settings.queries,
    )?;
    print_mix(&mix);

    let pg = client_rt.block_on(Postgres::create(&settings.database_url, 40))?;
    println!(
        "PostgreSQL {} (database {}): shared_buffers {}, work_mem {}, max_parallel_workers_per_gather {}",
        client_rt.block_on(pg.server_version()),
        redact(&settings.database_url),
        client_rt.block_on(pg.setting("shared_buffers")),
        client_rt.block_on(pg.setting("work_mem")),
        client_rt.block_on(pg.setting("max_parallel_workers_per_gather")),
    );
    let mut results = Vec::new();
    let mut failure = None;
    for &size in &settings.sizes {
        match run_size(&settings, &corpus, &mix, &pg, &server_rt, &client_rt, size) {
            Ok(result) => {
                print_size(&result, &settings, &mix);
                results.push(result);
            }
            Err(error) => {
                failure = Some(error.context(format!("at {size} documents")));
                break;
            }
        }
    }
    if let Err(error) = client_rt.block_on(pg.destroy()) {
        eprintln!("could not drop the benchmark database: {error:#}");
    }
    if !results.is_empty() {
        print_summary(&results, &settings, mix.len());
    }
    println!(
        "\ntotal wall time {:.1} min; load average at the end {}",
        wall.elapsed().as_secs_f64() / 60.0,
        common::load_average()
    );
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

fn print_mix(mix: &[Query]) {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for q in mix {
        match counts.iter_mut().find(|(k, _)| *k == q.kind.label()) {
            Some((_, n)) => *n += 1,
            None => counts.push((q.kind.label(), 1)),
        }
    }
    let examples: Vec<String> = mix
        .iter()
        .take(8)
        .map(|q| match &q.filter {
            Some((f, v)) => format!("{:?} +{}={v}", q.text, f.parameter()),
            None => format!("{:?}", q.text),
        })
        .collect();
    println!(
        "query mix: {} queries ({}); e.g. {}",
        mix.len(),
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        examples.join(", ")
    );
}

fn server_config(data_dir: &std::path::Path) -> anyhow::Result<Config> {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse()?;
    config.server.data_dir = data_dir.to_path_buf();
    config.server.shutdown_grace_seconds = 1;
    config.database.url = format!("sqlite://{}", data_dir.join("shuyuan.db").display());
    config.log.level = "warn".to_owned();
    Ok(config)
}

/// Waits until the server's publisher has read the whole catalog log; the seconds it took.
async fn publisher_caught_up(db: &shuyuan::db::Db) -> anyhow::Result<f64> {
    let started = Instant::now();
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM catalog_log")
        .fetch_one(db.pool())
        .await?;
    loop {
        let position: i64 =
            sqlx::query_scalar("SELECT last_seq FROM publisher_position WHERE singleton = 1")
                .fetch_one(db.pool())
                .await?;
        if position >= last {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the publisher did not get through the log in 30 minutes ({position} of {last})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn search_url(base: &str, q: &Query) -> anyhow::Result<Url> {
    let mut params = vec![("q", q.text.as_str())];
    if let Some((filter, value)) = &q.filter {
        params.push((filter.parameter(), value.as_str()));
    }
    Ok(Url::parse_with_params(
        &format!("{base}/api/v1/search"),
        &params,
    )?)
}

#[allow(clippy::too_many_arguments)]
fn run_size(
    settings: &Settings,
    corpus: &Corpus,
    mix: &[Query],
    pg: &Postgres,
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    n: usize,
) -> anyhow::Result<SizeResult> {
    let wall = Instant::now();
    let mut result = SizeResult {
        docs: n,
        ..SizeResult::default()
    };
    let zh_docs = (0..n)
        .filter(|&k| corpus.lang(k) == corpus::Lang::Zh)
        .count();
    result.zh_share = zh_docs as f64 / n as f64;
    println!("\n== {n} documents ==");
    let dir = tempfile::Builder::new()
        .prefix("shuyuan-search-bench-")
        .tempdir_in(&settings.tmp_dir)?;
    let config = server_config(&dir.path().join("data"))?;

    result.setup_seconds = server_rt.block_on(catalog::populate(&config, corpus, n))?;
    println!(
        "setup: {n} courses + {n} catalog_log entries inserted in one transaction in {:.1} s (not measured)",
        result.setup_seconds
    );

    let (shuyuan, breakdown) = server_rt.block_on(indexing::shuyuan(&config, n))?;
    println!(
        "Shuyuan indexer: {:.1} s, {:.0} docs/s, {} commits, {} segments when searchable, index {}",
        shuyuan.seconds,
        shuyuan.docs_per_second(n),
        shuyuan.commits,
        shuyuan.segments_searchable,
        mib(shuyuan.bytes)
    );
    result.shuyuan = shuyuan;
    result.breakdown = breakdown;

    let reindex_root = dir.path().join("reindex");
    result.reindex_seconds = server_rt.block_on(indexing::reindex(&config, n, &reindex_root))?;
    println!(
        "shuyuan reindex: {:.1} s, {:.0} docs/s",
        result.reindex_seconds,
        n as f64 / result.reindex_seconds
    );
    std::fs::remove_dir_all(reindex_root)?;

    let raw = indexing::raw(corpus, n, &dir.path().join("raw"))?;
    println!(
        "raw tantivy: {:.1} s, {:.0} docs/s, {} segments when searchable, index {}",
        raw.seconds,
        raw.docs_per_second(n),
        raw.segments_searchable,
        mib(raw.bytes)
    );
    result.text_mib = (0..n)
        .map(|k| {
            let d = corpus.doc(k);
            d.title.len() + d.description.len() + d.tags.iter().map(String::len).sum::<usize>()
        })
        .sum::<usize>() as f64
        / 1048576.0;
    result.raw = raw;
    std::fs::remove_dir_all(dir.path().join("raw"))?;
    if settings.diagnose && n == settings.sizes.iter().copied().min().unwrap_or(n) {
        // Where the gap comes from: steps from raw tantivy towards Shuyuan's pipeline.
        let threads = shuyuan::search::indexer::writer_threads();
        let every =
            shuyuan::search::indexer::BATCH as usize * shuyuan::search::indexer::PIPELINED_BATCHES;
        for (name, every, delete) in [
            (
                format!("1 feeder, {threads} indexing threads, 1 commit"),
                None,
                false,
            ),
            (
                format!("+ commit and reload every {every} courses"),
                Some(every),
                false,
            ),
            (
                "+ delete_term(course_id) before each course".to_owned(),
                Some(every),
                true,
            ),
        ] {
            let path = dir.path().join("variant");
            let seconds = indexing::raw_variant(corpus, n, &path, threads, every, delete)?;
            std::fs::remove_dir_all(&path)?;
            println!(
                "raw tantivy, {name}: {:.1} s, {:.0} docs/s",
                seconds,
                n as f64 / seconds
            );
            result.variants.push((name, n as f64 / seconds));
        }
    }

    result.pg = client_rt.block_on(pg.load(corpus, n))?;
    println!(
        "PostgreSQL: loaded (segmenting, COPY, GIN, VACUUM ANALYZE) in {:.1} s, GIN built in {:.1} s; table {}, GIN {} (not measured)",
        result.pg.seconds,
        result.pg.gin_seconds,
        mib(result.pg.table_bytes.max(0) as u64),
        mib(result.pg.gin_bytes.max(0) as u64)
    );

    // The server, in this process, on its own runtime (one worker per core), over the prepared
    // database and index.
    result.before_server = memory();
    let app = server_rt.block_on(shuyuan::Application::build(config.clone()))?;
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let shutdown = app.shutdown_token();
    let server = server_rt.spawn(app.run_until_stopped());
    // A server that has just been handed a catalog first walks its log once to publish it for
    // federation (`federation::publish`). That is setup, not search: measured while it ran,
    // it took a varying share of a core from the first query runs (a third of the samples of
    // the in-process floor at 1M).
    let caught_up = server_rt.block_on(publisher_caught_up(&state.db))?;
    println!("server: publisher through the log in {caught_up:.1} s (not measured)");

    let total = mix.len() * settings.passes;
    let pg_total = mix.len() * settings.pg_passes;
    let limit = settings.run_limit;

    // The floor: the same searches on the server's own opened index, no HTTP.
    let open = state.search.snapshot();
    // A panic inside a search (the server would answer 500) counts as an error, naming the query.
    let search_with_limit = |i: usize, hits: usize| -> anyhow::Result<usize> {
        let q = &mix[i % mix.len()];
        let request = SearchRequest {
            text: q.text.clone(),
            filters: q.filters(),
            sort: Sort::Relevance,
            offset: 0,
            limit: hits,
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            query::search(&open, &request)
        })) {
            Ok(Ok(results)) => Ok(results.hits.len()),
            Ok(Err(error)) => Err(anyhow::anyhow!("query {:?}: {error}", q.text)),
            Err(_) => Err(anyhow::anyhow!("query {:?} panicked", q.text)),
        }
    };
    let searched = |i: usize| search_with_limit(i, 20);
    load::run_blocking(mix.len(), limit, searched);
    result.floor = load::run_blocking(total, limit, searched);
    println!("in-process floor: {}", line(&result.floor));
    // Diagnosis: the same with one hit, so the per-hit work (stored document, snippets, the
    // in-media matches search) shrinks to one hit and the per-query work (matching, count,
    // facets) remains.
    result.floor_one_hit = load::run_blocking(total, limit, |i| search_with_limit(i, 1));
    println!("in-process floor, limit=1: {}", line(&result.floor_one_hit));

    let urls: Vec<Url> = mix
        .iter()
        .map(|q| search_url(&base, q))
        .collect::<anyhow::Result<_>>()?;
    client_rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let (client, urls) = (&client, &urls);
        let http = move |i: usize| {
            let url = urls[i % urls.len()].clone();
            async move {
                let response = client.get(url.clone()).send().await?;
                anyhow::ensure!(
                    response.status() == reqwest::StatusCode::OK,
                    "HTTP {} for {url}",
                    response.status()
                );
                let body = response.bytes().await?;
                // The response starts with `{"total":N,`.
                Ok(usize::from(!body.starts_with(b"{\"total\":0,")))
            }
        };
        load::run(1, mix.len(), limit, http).await;
        result.http1 = load::run(1, total, limit, http).await;
        println!("HTTP c=1: {}", line(&result.http1));
        result.http16 = load::run(16, total, limit, http).await;
        println!("HTTP c=16: {}", line(&result.http16));
        result.http32 = load::run(32, total, limit, http).await;
        println!("HTTP c=32: {}", line(&result.http32));

        let pg_search = move |i: usize| pg.search(&mix[i % mix.len()]);
        load::run(16, mix.len(), limit, pg_search).await;
        result.pg1 = load::run(1, pg_total, limit, pg_search).await;
        println!("PostgreSQL c=1: {}", line(&result.pg1));
        result.pg16 = load::run(16, pg_total, limit, pg_search).await;
        println!("PostgreSQL c=16: {}", line(&result.pg16));
        result.pg32 = load::run(32, pg_total, limit, pg_search).await;
        println!("PostgreSQL c=32: {}", line(&result.pg32));
        anyhow::Ok(())
    })?;
    result.with_server = memory();

    drop(open);
    drop(state);
    shutdown.cancel();
    server_rt.block_on(server)??;
    client_rt.block_on(pg.drop_table())?;
    drop(dir);
    result.wall_seconds = wall.elapsed().as_secs_f64();
    Ok(result)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

fn us(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros >= 10_000.0 {
        format!("{:.1} ms", micros / 1000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

fn line(s: &Stats) -> String {
    format!(
        "{} requests{} in {:.1} s, p50 {}, p99 {}, {:.0} req/s, {} with hits, CPU in this process {} a request{}",
        s.requests,
        if s.cut_short() {
            format!(" (of {}: cut at the time limit)", s.planned)
        } else {
            String::new()
        },
        s.seconds,
        us(s.p50()),
        us(s.p99()),
        s.throughput(),
        s.with_hits,
        us(s.cpu_per_request()),
        if s.errors > 0 {
            format!(", {} ERRORS", s.errors)
        } else {
            String::new()
        }
    )
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn print_size(r: &SizeResult, settings: &Settings, mix: &[Query]) {
    let queries = mix.len();
    let n = r.docs;
    let s = &r.shuyuan;
    let raw = &r.raw;
    let ratio = s.docs_per_second(n) / raw.docs_per_second(n);
    println!(
        "\n--- {n} documents: {:.0}% Chinese, {:.0} MiB of text (titles, descriptions, tags) ---",
        r.zh_share * 100.0,
        r.text_mib
    );
    println!("indexing, until searchable        docs/s      time   index size  segments  commits");
    println!(
        "  Shuyuan (catalog_log → apply_once) {:>8.0} {:>8.1} s {:>12} {:>9} {:>8}",
        s.docs_per_second(n),
        s.seconds,
        mib(s.bytes),
        s.segments,
        s.commits
    );
    println!(
        "  raw tantivy ({} thr, 1 commit)      {:>8.0} {:>8.1} s {:>12} {:>9} {:>8}",
        raw.threads,
        raw.docs_per_second(n),
        raw.seconds,
        mib(raw.bytes),
        raw.segments,
        raw.commits
    );
    println!(
        "  shuyuan reindex (a new generation) {:>8.0} {:>8.1} s",
        n as f64 / r.reindex_seconds,
        r.reindex_seconds
    );
    println!(
        "  ratio Shuyuan/raw {ratio:.2}  (target ≥ {TARGET_INDEX_RATIO})          {}",
        verdict(ratio >= TARGET_INDEX_RATIO)
    );
    println!(
        "  Shuyuan {:.0} docs/s  (target ≥ {TARGET_DOCS_PER_SECOND:.0} on 2 cores)   {}",
        s.docs_per_second(n),
        verdict(s.docs_per_second(n) >= TARGET_DOCS_PER_SECOND)
    );
    let b = &r.breakdown;
    let per_course = s.seconds * 1e6 / n as f64;
    let reading = b.log_us + b.db_us + b.build_us;
    println!(
        "  Shuyuan's {per_course:.0} µs per course: the reading side (steps redone on {} courses) takes {reading:.0} µs = {:.0}%: \
         read_log {:.0} µs, DB reads (courses + files + segments: 3 queries per {} ids) {:.0} µs, course_documents {:.0} µs; \
         it overlaps the writer (tantivy, {} threads, a commit + reload per {} batches of {})",
        b.sample,
        100.0 * reading / per_course,
        b.log_us,
        shuyuan::catalog::store::IDS_PER_STATEMENT,
        b.db_us,
        b.build_us,
        s.threads,
        shuyuan::search::indexer::PIPELINED_BATCHES,
        shuyuan::search::indexer::BATCH,
    );
    if !r.variants.is_empty() {
        println!("  from raw tantivy towards Shuyuan (documents built in memory, no database):");
        for (name, docs_per_second) in &r.variants {
            println!("    {name:<48} {docs_per_second:>8.0} docs/s");
        }
        println!(
            "    {:<48} {:>8.0} docs/s  (the same + reading each course from SQLite)",
            "Shuyuan's indexer",
            s.docs_per_second(n)
        );
    }
    println!(
        "  PostgreSQL table {} + GIN {} (for scale)",
        mib(r.pg.table_bytes.max(0) as u64),
        mib(r.pg.gin_bytes.max(0) as u64)
    );
    println!(
        "\nqueries: a mix of {queries}, {} passes for Shuyuan, {} for PostgreSQL, after a warm-up pass; at most {} s a run",
        settings.passes,
        settings.pg_passes,
        settings.run_limit.as_secs()
    );
    println!(
        "                                  requests      p50        p99      req/s  with hits"
    );
    for (name, st) in [
        ("in-process floor c=1", &r.floor),
        ("  the same with limit=1", &r.floor_one_hit),
        ("HTTP c=1", &r.http1),
        ("HTTP c=16", &r.http16),
        ("HTTP c=32", &r.http32),
        ("PostgreSQL FTS c=1", &r.pg1),
        ("PostgreSQL FTS c=16", &r.pg16),
        ("PostgreSQL FTS c=32", &r.pg32),
    ] {
        println!(
            "  {name:<28} {:>9}{} {:>10} {:>10} {:>9.0} {:>6.0}%{}",
            st.requests,
            if st.cut_short() { "*" } else { " " },
            us(st.p50()),
            us(st.p99()),
            st.throughput(),
            100.0 * st.with_hits as f64 / st.requests.max(1) as f64,
            if st.errors > 0 {
                format!("  {} ERRORS", st.errors)
            } else {
                String::new()
            }
        );
    }
    if [
        &r.floor, &r.http1, &r.http16, &r.http32, &r.pg1, &r.pg16, &r.pg32,
    ]
    .iter()
    .any(|s| s.cut_short())
    {
        println!(
            "  * cut at the time limit (BENCH_RUN_SECONDS): the figures cover the requests done"
        );
    }
    println!("\nby query kind, c=1 (p50 / p99)");
    let kinds = [
        queries::Kind::ChineseWord,
        queries::Kind::EnglishWord,
        queries::Kind::TwoWords,
        queries::Kind::Pinyin,
        queries::Kind::Filtered,
    ];
    for kind in kinds {
        let of = |st: &Stats| {
            let (p50, p99, count) = st.percentiles_of(|i| mix[i % mix.len()].kind == kind);
            format!("{:>19}", format!("{} / {}", us(p50), us(p99))) + &format!(" ({count:>4})")
        };
        println!(
            "  {:<10} floor {}  HTTP {}  PostgreSQL {}",
            kind.label(),
            of(&r.floor),
            of(&r.http1),
            of(&r.pg1)
        );
    }
    // Which queries the tail is made of: the per-kind p99 says which kind, this says which words.
    println!("\nslowest queries in-process (median over the passes)");
    for (median, query) in r.floor.slowest_by_query(mix.len(), 8) {
        let query = &mix[query];
        println!(
            "  {:>9}  {:<10} {}",
            us(median),
            query.kind.label(),
            query.text
        );
    }
    println!(
        "\ntargets (defined at 1M documents){}",
        if n < 1_000_000 {
            "; shown here for this size"
        } else {
            ""
        }
    );
    for (name, value, target, pass) in targets(r) {
        println!("  {name:<44} {value:>22}   {target:<26} {}", verdict(pass));
    }
    let before = &r.before_server;
    let after = &r.with_server;
    println!(
        "\nmemory (VmRSS of this process: the server runs in-process, beside the benchmark's own data):\n  \
         before the server started {} (anon {}, file {}); with the server, index open and after every query run {} \
         (anon {}, file {}: mapped index pages), +{} for the server; peak VmHWM of the whole run {}",
        kib(before.rss_kib),
        kib(before.anon_kib),
        kib(before.file_kib),
        kib(after.rss_kib),
        kib(after.anon_kib),
        kib(after.file_kib),
        kib(after.rss_kib.saturating_sub(before.rss_kib)),
        kib(after.hwm_kib)
    );
    println!("  wall time for this size {:.1} min", r.wall_seconds / 60.0);
}

fn kib(k: u64) -> String {
    format!("{:.0} MiB", k as f64 / 1024.0)
}

fn ratio_text(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.1}×", a / b)
    } else {
        "n/a".to_owned()
    }
}

/// (what, measured, target, pass).
fn targets(r: &SizeResult) -> Vec<(String, String, String, bool)> {
    let n = r.docs;
    let ratio = r.shuyuan.docs_per_second(n) / r.raw.docs_per_second(n);
    let mut out = vec![
        (
            "indexing Shuyuan / raw tantivy".to_owned(),
            format!("{ratio:.2}"),
            format!("≥ {TARGET_INDEX_RATIO}"),
            ratio >= TARGET_INDEX_RATIO,
        ),
        (
            "indexing Shuyuan docs/s".to_owned(),
            format!("{:.0}", r.shuyuan.docs_per_second(n)),
            format!("≥ {TARGET_DOCS_PER_SECOND:.0}"),
            r.shuyuan.docs_per_second(n) >= TARGET_DOCS_PER_SECOND,
        ),
    ];
    for (c, http, pg) in [(1, &r.http1, &r.pg1), (16, &r.http16, &r.pg16)] {
        let (h, p) = (http.p99().as_secs_f64(), pg.p99().as_secs_f64());
        out.push((
            format!("p99 HTTP c={c} vs PostgreSQL c={c}"),
            format!(
                "{} vs {} = 1/{}",
                us(http.p99()),
                us(pg.p99()),
                ratio_text(p, h).trim_end_matches('×')
            ),
            format!("≤ 1/{TARGET_P99_FACTOR:.0} of PostgreSQL"),
            h * TARGET_P99_FACTOR <= p,
        ));
    }
    out.push((
        "throughput c=32 HTTP vs PostgreSQL".to_owned(),
        format!(
            "{:.0} vs {:.0} req/s = {}",
            r.http32.throughput(),
            r.pg32.throughput(),
            ratio_text(r.http32.throughput(), r.pg32.throughput())
        ),
        format!("≥ {TARGET_THROUGHPUT_FACTOR:.0}× PostgreSQL"),
        r.http32.throughput() >= TARGET_THROUGHPUT_FACTOR * r.pg32.throughput(),
    ));
    let bound = r.floor.p50().mul_f64(TARGET_FLOOR_FACTOR) + TARGET_FLOOR_SLACK;
    out.push((
        "p50 HTTP c=1 vs in-process floor".to_owned(),
        format!("{} vs {}", us(r.http1.p50()), us(r.floor.p50())),
        format!("≤ 2 × floor + 150 µs = {}", us(bound)),
        r.http1.p50() <= bound,
    ));
    out
}

fn print_summary(results: &[SizeResult], settings: &Settings, queries: usize) {
    println!(
        "\n===== summary: {queries}-query mix, {} cores; figures in one run on this machine =====",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<34}{}",
        "",
        results
            .iter()
            .map(|r| format!("{:>24}", format!("{} docs", r.docs)))
            .collect::<String>()
    );
    let row = |name: &str, f: &dyn Fn(&SizeResult) -> String| {
        println!(
            "{name:<34}{}",
            results
                .iter()
                .map(|r| format!("{:>24}", f(r)))
                .collect::<String>()
        );
    };
    row("Shuyuan indexing docs/s", &|r| {
        format!("{:.0}", r.shuyuan.docs_per_second(r.docs))
    });
    row("raw tantivy docs/s", &|r| {
        format!("{:.0}", r.raw.docs_per_second(r.docs))
    });
    row("ratio (≥ 0.5)", &|r| {
        let ratio = r.shuyuan.docs_per_second(r.docs) / r.raw.docs_per_second(r.docs);
        format!("{ratio:.2} {}", verdict(ratio >= TARGET_INDEX_RATIO))
    });
    row("index size Shuyuan / raw", &|r| {
        format!(
            "{:.0} / {:.0} MiB",
            r.shuyuan.bytes as f64 / 1048576.0,
            r.raw.bytes as f64 / 1048576.0
        )
    });
    row("PostgreSQL table + GIN", &|r| {
        format!(
            "{:.0} + {:.0} MiB",
            r.pg.table_bytes as f64 / 1048576.0,
            r.pg.gin_bytes as f64 / 1048576.0
        )
    });
    let pct = |s: &Stats| format!("{} / {}", us(s.p50()), us(s.p99()));
    row("p50 / p99 in-process floor", &|r| pct(&r.floor));
    row("p50 / p99 HTTP c=1", &|r| pct(&r.http1));
    row("p50 / p99 HTTP c=16", &|r| pct(&r.http16));
    row("p50 / p99 PostgreSQL c=1", &|r| pct(&r.pg1));
    row("p50 / p99 PostgreSQL c=16", &|r| pct(&r.pg16));
    row("req/s c=32 HTTP / PostgreSQL", &|r| {
        format!("{:.0} / {:.0}", r.http32.throughput(), r.pg32.throughput())
    });
    for i in 2..6 {
        let name = match i {
            2 => "p99 c=1 (HTTP ≤ PG/50)",
            3 => "p99 c=16 (HTTP ≤ PG/50)",
            4 => "req/s c=32 (≥ 30× PG)",
            _ => "p50 HTTP ≤ 2×floor+150µs",
        };
        row(name, &|r| {
            let (_, value, _, pass) = &targets(r)[i];
            let short = value.rsplit(" = ").next().unwrap_or(value);
            let short = if i == 5 { value.as_str() } else { short };
            format!("{short} {}", verdict(*pass))
        });
    }
    row("VmRSS before → with server", &|r| {
        format!(
            "{} → {}",
            kib(r.before_server.rss_kib),
            kib(r.with_server.rss_kib)
        )
    });
    row("wall time", &|r| {
        format!("{:.1} min", r.wall_seconds / 60.0)
    });
    let _ = settings;
}
