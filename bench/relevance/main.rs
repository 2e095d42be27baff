//! The relevance benchmark: nDCG@10 of Shuyuan's search on two judged collections, KUAKE-QTR
//! (Chinese) and `NFCorpus` dev (English), beside a plain baseline in the same run: the same
//! engine with the `zh_en` analyzer swapped for character bigrams without stemming, so the
//! difference is what jieba and the stemmer buy. `bench/README.md` ("Relevance") describes it.
//!
//! ```sh
//! cargo bench --bench relevance                 # every query: a few minutes on 2 cores
//! BENCH_QUICK=1 cargo bench --bench relevance   # the first 300 queries of each set: a smoke run
//! ```

mod collection;
#[path = "../common.rs"]
mod common;
mod engine;
mod kuake;
mod ndcg;
mod nfcorpus;

use std::path::PathBuf;
use std::time::Instant;

use collection::{Collection, QuerySet};
use common::{env_number, env_or};
use engine::{Analysis, Engine};

const DEFAULT_DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
/// nDCG@10: the first page a resident sees holds about ten courses.
const DEPTH: usize = 10;
const NO_HIT_EXAMPLES: usize = 6;

struct Settings {
    data_dir: PathBuf,
    tmp_dir: PathBuf,
    /// At most this many queries per set (all by default).
    max_queries: usize,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let quick = env_or("BENCH_QUICK", "0") == "1";
        Ok(Settings {
            data_dir: PathBuf::from(env_or("BENCH_DATA_DIR", DEFAULT_DATA_DIR)),
            tmp_dir: PathBuf::from(env_or(
                "BENCH_TMPDIR",
                &std::env::temp_dir().to_string_lossy(),
            )),
            max_queries: env_number("BENCH_QUERIES", if quick { 300 } else { usize::MAX })?,
        })
    }
}

/// One query set run against one engine.
#[derive(Default)]
struct Run {
    /// The nDCG of each evaluated query, in query order (the same queries for both engines).
    scores: Vec<f64>,
    /// Queries with no judged document above grade 0.
    skipped: usize,
    /// Evaluated queries that found no course at all, and the first few of them.
    no_hits: usize,
    no_hit_examples: Vec<String>,
    /// Evaluated queries of which the analyzer keeps no term (the search then browses).
    no_terms: usize,
    /// Evaluated queries with a relevant document in the first `DEPTH`.
    any_relevant: usize,
    total_hits: Vec<usize>,
    /// Time spent in `query::search`, every query of the set included.
    seconds: f64,
}

impl Run {
    fn ndcg(&self) -> f64 {
        self.scores.iter().sum::<f64>() / self.scores.len().max(1) as f64
    }

    fn median_hits(&mut self) -> usize {
        self.total_hits.sort_unstable();
        self.total_hits
            .get(self.total_hits.len() / 2)
            .copied()
            .unwrap_or(0)
    }
}

struct Row {
    set: String,
    docs: usize,
    queries: usize,
    engines: [Run; 2],
}

fn main() {
    if let Err(error) = run() {
        eprintln!("relevance benchmark failed: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let wall = Instant::now();
    ndcg::check();
    let settings = Settings::from_env()?;
    anyhow::ensure!(
        settings.data_dir.join("README.md").is_file(),
        "the relevance benchmark reads the shared data sets from {} (set BENCH_DATA_DIR), but that \
         directory is missing or incomplete",
        settings.data_dir.display()
    );
    println!(
        "Shuyuan relevance benchmark: nDCG@{DEPTH}, Shuyuan's analysis against a plain baseline in one run"
    );
    println!(
        "machine: {} cores, load average {} at start; data {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        common::load_average(),
        settings.data_dir.display()
    );
    // jieba loads its dictionary on first use; not part of any index build.
    shuyuan::search::analysis::warm_up();

    let mut rows = Vec::new();
    let mut builds = Vec::new();
    let (collection, set) = kuake::load(&settings.data_dir)?;
    println!("KUAKE-QTR: {}", collection.notes);
    builds.push(evaluate(
        &settings,
        "KUAKE-QTR",
        &collection,
        &[set],
        &mut rows,
    )?);

    let nf = nfcorpus::load(&settings.data_dir)?;
    println!("NFCorpus: {}", nf.collection.notes);
    let sets = [
        nf.queries(&settings.data_dir, "titles")?,
        nf.queries(&settings.data_dir, "vid-titles")?,
    ];
    builds.push(evaluate(
        &settings,
        "NFCorpus",
        &nf.collection,
        &sets,
        &mut rows,
    )?);

    print_table(&mut rows, &builds);
    println!(
        "\ntotal wall time {:.1} s; load average at the end {}",
        wall.elapsed().as_secs_f64(),
        common::load_average()
    );
    Ok(())
}

/// Builds both engines over `collection`, runs every set against each, and returns the build
/// times (name, Shuyuan, baseline).
fn evaluate(
    settings: &Settings,
    name: &'static str,
    collection: &Collection,
    sets: &[QuerySet],
    rows: &mut Vec<Row>,
) -> anyhow::Result<(&'static str, usize, [f64; 2])> {
    let engines = [
        Engine::build(collection, Analysis::Shuyuan, &settings.tmp_dir)?,
        Engine::build(collection, Analysis::Bigram, &settings.tmp_dir)?,
    ];
    println!(
        "{name}: indexed {} courses in {:.1} s (Shuyuan) and {:.1} s (baseline)",
        collection.docs.len(),
        engines[0].build_seconds,
        engines[1].build_seconds
    );
    for set in sets {
        let queries = &set.queries[..set.queries.len().min(settings.max_queries)];
        let mut runs = [Run::default(), Run::default()];
        for (engine, run) in engines.iter().zip(&mut runs) {
            for query in queries {
                let started = Instant::now();
                let ranked = engine.search(&query.text, DEPTH)?;
                run.seconds += started.elapsed().as_secs_f64();
                let Some(score) = ndcg::ndcg(&ranked.docs, &query.judged, DEPTH) else {
                    run.skipped += 1;
                    continue;
                };
                run.scores.push(score);
                if ranked.docs.is_empty() {
                    run.no_hits += 1;
                    if run.no_hit_examples.len() < NO_HIT_EXAMPLES {
                        run.no_hit_examples.push(query.text.clone());
                    }
                }
                run.no_terms += usize::from(engine.terms(&query.text)?.is_empty());
                run.any_relevant += usize::from(score > 0.0);
                run.total_hits.push(ranked.total);
            }
        }
        println!(
            "{}: {} queries, nDCG@{DEPTH} {:.4} (Shuyuan) and {:.4} (baseline), in {:.1} s and {:.1} s",
            set.name,
            queries.len(),
            runs[0].ndcg(),
            runs[1].ndcg(),
            runs[0].seconds,
            runs[1].seconds
        );
        rows.push(Row {
            set: set.name.clone(),
            docs: collection.docs.len(),
            queries: queries.len(),
            engines: runs,
        });
    }
    Ok((
        name,
        collection.docs.len(),
        [engines[0].build_seconds, engines[1].build_seconds],
    ))
}

fn print_table(rows: &mut [Row], builds: &[(&str, usize, [f64; 2])]) {
    println!(
        "\n===== nDCG@{DEPTH}: Shuyuan (zh_en: jieba + English stemming) against the baseline \
         (character bigrams, no stemming), same engine, same run ====="
    );
    println!(
        "{:<28}{:>7}{:>19}{:>11}{:>11}{:>12}{:>20}",
        "query set",
        "docs",
        "queries (skipped)",
        "Shuyuan",
        "baseline",
        "difference",
        "better/worse/same"
    );
    for row in rows.iter() {
        let [shuyuan, baseline] = &row.engines;
        let difference = shuyuan.ndcg() - baseline.ndcg();
        let pairs = || shuyuan.scores.iter().zip(&baseline.scores);
        let better = pairs().filter(|(s, b)| *s > *b).count();
        let worse = pairs().filter(|(s, b)| *s < *b).count();
        println!(
            "{:<28}{:>7}{:>19}{:>11.4}{:>11.4}{:>+12.4}{:>20}",
            row.set,
            row.docs,
            format!("{} ({})", shuyuan.scores.len(), shuyuan.skipped),
            shuyuan.ndcg(),
            baseline.ndcg(),
            difference,
            format!("{better}/{worse}/{}", shuyuan.scores.len() - better - worse)
        );
    }
    println!(
        "(skipped: queries without a document judged above grade 0; better/worse/same: queries where \
         Shuyuan's nDCG@{DEPTH} is above, below or equal to the baseline's)"
    );
    println!("\nquery path, per evaluated query (Shuyuan / baseline)");
    println!(
        "{:<28}{:>16}{:>22}{:>20}{:>22}{:>14}",
        "query set",
        "no course",
        "no term (browsing)",
        "median matches",
        "relevant in top 10",
        "ms/query"
    );
    for row in rows.iter_mut() {
        let pair = |f: &dyn Fn(&Run) -> String, runs: &[Run; 2]| {
            format!("{} / {}", f(&runs[0]), f(&runs[1]))
        };
        let medians = [row.engines[0].median_hits(), row.engines[1].median_hits()];
        let runs = &row.engines;
        println!(
            "{:<28}{:>16}{:>22}{:>20}{:>22}{:>14}",
            row.set,
            pair(&|r| r.no_hits.to_string(), runs),
            pair(&|r| r.no_terms.to_string(), runs),
            format!("{} / {}", medians[0], medians[1]),
            pair(
                &|r| format!(
                    "{:.1}%",
                    100.0 * r.any_relevant as f64 / r.scores.len().max(1) as f64
                ),
                runs
            ),
            pair(
                &|r| format!("{:.1}", 1000.0 * r.seconds / row.queries.max(1) as f64),
                runs
            ),
        );
    }
    for row in rows.iter() {
        let examples = &row.engines[0].no_hit_examples;
        if !examples.is_empty() {
            println!("  {}: Shuyuan finds no course for {examples:?}…", row.set);
        }
    }
    println!("\nindex build (one writer thread, for information)   Shuyuan   baseline");
    for (name, docs, [shuyuan, baseline]) in builds {
        println!(
            "  {:<48}{:>8.1} s{:>9.1} s",
            format!("{name} ({docs} courses)"),
            shuyuan,
            baseline
        );
    }
}
