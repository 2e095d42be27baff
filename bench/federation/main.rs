//! The federation benchmark: a full sync of 100,000 course records from a peer, beside copying
//! the same catalog rows between two PostgreSQL databases with `pg_dump | psql` in the same
//! run, then an incremental sync of 100 changes. `bench/README.md` ("Federation") describes it.
//!
//! ```sh
//! cargo bench --bench federation                 # 100,000 records
//! BENCH_QUICK=1 cargo bench --bench federation   # 5,000 records: a smoke run
//! ```
//!
//! Needs PostgreSQL (`BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`,
//! a role that may create databases) and `pg_dump`/`psql` of the same major version.
//! `BENCH_RECEIVER=sqlite` puts the receiver on SQLite (a village's default) instead.

#[path = "../common.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use common::ScratchDatabase;
use shuyuan::Config;
use shuyuan::federation::{Federation, MediaPolicy};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const TARGET_FULL_RATIO: f64 = 1.5;
const TARGET_INCREMENTAL: Duration = Duration::from_secs(1);
const CHANGES: i64 = 100;

fn config(database_url: &str, data_dir: &Path) -> anyhow::Result<Config> {
    let mut config = Config::from_toml_str(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n\
         [federation]\nharvest = false\n\
         # The source's own index is not part of the benchmark: rows go in by SQL, and its\n\
         # indexer, which would pick them up by polling, looks once an hour.\n\
         [search]\npoll_interval_ms = 3600000\n",
    )?;
    config.database.url = database_url.to_owned();
    config.server.data_dir = data_dir.to_path_buf();
    Ok(config)
}

/// `records` courses with one file each, and their catalog log, written straight into the
/// source's database (publishing them through the API would take longer than the benchmark).
/// The text is Chinese and English of typical length, so records have a realistic size.
async fn populate(url: &str, origin: &str, records: i64) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let now = shuyuan::db::now_ms();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO institutions (id, slug, name, kind, region, created_at) VALUES \
         ('00000000-0000-4000-8000-000000000001', 'fayun-point', '法云村教学点', 'teaching_point', \
          'zhejiang/hangzhou/xihu/lingyin/fayun', {now})"
    )))
    .await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO courses (id, origin, institution_id, title, description, subjects, audience, \
           level, languages, license, tags, credits, region, version, created_at, updated_at) \
         SELECT md5('c' || g)::uuid::text, '{origin}', '00000000-0000-4000-8000-000000000001', \
           '社区课程 ' || g || ' 太极拳与健康生活 Community course', \
           repeat('本课程面向社区居民，介绍日常健康知识与传统健身方法。This course introduces everyday health. ', 3), \
           '[\"health\",\"fitness\"]', '[\"seniors\",\"adults\"]', 'beginner', '[\"zh\",\"en\"]', \
           'CC-BY-4.0', '[\"养生\",\"太极\"]', 1.5, 'zhejiang/hangzhou/xihu/lingyin/fayun', 1, \
           {now}, {now} \
         FROM generate_series(1, {records}) AS g"
    )))
    .await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO course_files (id, course_id, name, content_type, kind, size, sha256, \
           object_key, created_at, extraction, stored) \
         SELECT md5('f' || g)::uuid::text, md5('c' || g)::uuid::text, 'lesson-' || g || '.mp4', \
           'video/mp4', 'video', 10485760 + g, encode(sha256(g::text::bytea), 'hex'), \
           'files/' || md5('f' || g)::uuid::text, {now}, 'none', 1 \
         FROM generate_series(1, {records}) AS g"
    )))
    .await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO catalog_log (course_id, op, origin, origin_version, created_at) \
         SELECT md5('c' || g)::uuid::text, 'upsert', '{origin}', 1, {now} \
         FROM generate_series(1, {records}) AS g ORDER BY g"
    )))
    .await?;
    conn.execute("ANALYZE").await?;
    Ok(())
}

/// Edits `CHANGES` courses at the source the way the catalog does: new version, new log entry.
async fn change_some(url: &str, origin: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let now = shuyuan::db::now_ms();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "WITH changed AS (UPDATE courses SET title = title || '（修订）', version = version + 1, \
           updated_at = {now} WHERE id IN \
             (SELECT md5('c' || g)::uuid::text FROM generate_series(1, {CHANGES}) AS g) \
           RETURNING id, version) \
         INSERT INTO catalog_log (course_id, op, origin, origin_version, created_at) \
         SELECT id, 'upsert', '{origin}', version, {now} FROM changed"
    )))
    .await?;
    Ok(())
}

/// Waits until the server on `url` has signed every log entry; how long that took.
async fn wait_for_publisher(url: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut conn = PgConnection::connect(url).await?;
    let latest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM catalog_log")
        .fetch_one(&mut conn)
        .await?;
    loop {
        let signed: i64 =
            sqlx::query_scalar("SELECT last_seq FROM publisher_position WHERE singleton = 1")
                .fetch_one(&mut conn)
                .await?;
        if signed >= latest {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the source's publisher is stuck at seq {signed} of {latest}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pg_copy(source: &str, target: &str) -> anyhow::Result<Duration> {
    let script = format!(
        "set -o pipefail; pg_dump --data-only -t institutions -t courses -t course_files '{source}' \
         | psql -q -v ON_ERROR_STOP=1 '{target}' > /dev/null"
    );
    let started = Instant::now();
    let status = Command::new("bash")
        .args(["-c", &script])
        .status()
        .context("running pg_dump | psql")?;
    let took = started.elapsed();
    anyhow::ensure!(status.success(), "pg_dump | psql failed: {status}");
    Ok(took)
}

async fn count(url: &str, sql: &'static str) -> anyhow::Result<i64> {
    let mut conn = PgConnection::connect(url).await?;
    Ok(sqlx::query_scalar(sql).fetch_one(&mut conn).await?)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=shuyuan::federation=debug shows the harvester's time per page.
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let records: i64 = if quick { 5_000 } else { 100_000 };
    let admin_url =
        std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let scratch = |role: &str| format!("shuyuan_fed_bench_{role}_{}", std::process::id());
    let source_db = ScratchDatabase::create(&admin_url, &scratch("source")).await?;
    let target_db = ScratchDatabase::create(&admin_url, &scratch("target")).await?;
    let copy_db = ScratchDatabase::create(&admin_url, &scratch("copy")).await?;
    let outcome = run(records, &source_db, &target_db, &copy_db).await;
    for db in [&source_db, &target_db, &copy_db] {
        if let Err(error) = db.drop_now().await {
            eprintln!("could not drop the database {}: {error}", db.name);
        }
    }
    outcome
}

async fn run(
    records: i64,
    source_db: &ScratchDatabase,
    target_db: &ScratchDatabase,
    copy_db: &ScratchDatabase,
) -> anyhow::Result<()> {
    let source_dir = tempfile::tempdir()?;
    let target_dir = tempfile::tempdir()?;
    let copy_dir = tempfile::tempdir()?;

    // The source: a real server, serving its feed over HTTP.
    let source = shuyuan::Application::build(config(&source_db.url, source_dir.path())?).await?;
    let source_url = format!("http://{}", source.local_addr());
    let stop_source = source.shutdown_token();
    let served = tokio::spawn(source.run_until_stopped());
    eprintln!("writing {records} courses with a file each into the source …");
    populate(&source_db.url, &source_url, records).await?;
    // A server signs its own records as they change (src/federation/publish.rs); courses
    // written straight into the database are signed by its publisher's next poll instead.
    // Either way that is done before any follower asks, so it is setup here, timed apart.
    eprintln!("waiting for the source to sign its records …");
    let signing_took = wait_for_publisher(&source_db.url).await?;

    // The receiver: the harvester alone (no HTTP, no indexer), on its own database.
    let receiver_url = match std::env::var("BENCH_RECEIVER").as_deref() {
        Ok("sqlite") => format!("sqlite://{}/receiver.db", target_dir.path().display()),
        Ok("postgres") | Err(_) => target_db.url.clone(),
        Ok(other) => anyhow::bail!("BENCH_RECEIVER is sqlite or postgres, not {other}"),
    };
    let target_config = config(&receiver_url, target_dir.path())?;
    let target_database = shuyuan::startup::open_database(&target_config).await?;
    let catalog = shuyuan::startup::open_catalog(
        &target_config,
        &target_database,
        "http://target.invalid".into(),
    )?;
    let federation = Federation::open(&target_config, target_database, catalog, true).await?;
    let peer = federation
        .add_peer(&source_url, MediaPolicy::Redirect)
        .await?;

    // The baseline's schema: the same migrations, outside the timing.
    shuyuan::startup::open_database(&config(&copy_db.url, copy_dir.path())?)
        .await?
        .close()
        .await;

    // Where the time goes: reading the whole feed (the source's share: log, records,
    // signatures, JSON; plus the transfer and parsing) without verifying or applying.
    eprintln!("reading the feed alone …");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let (mut since, mut entries) = (0i64, 0usize);
    loop {
        let page: serde_json::Value = client
            .get(format!(
                "{source_url}/federation/v1/changes?since={since}&limit=500"
            ))
            .send()
            .await?
            .json()
            .await?;
        let n = page["entries"].as_array().map_or(0, Vec::len);
        if n == 0 {
            break;
        }
        entries += n;
        since = page["next"].as_i64().context("next")?;
    }
    let feed_took = started.elapsed();
    anyhow::ensure!(entries == records as usize, "the feed listed {entries}");

    eprintln!("full sync …");
    let started = Instant::now();
    let full = federation.sync(peer.id).await?;
    let full_took = started.elapsed();
    anyhow::ensure!(
        full.applied == records as u64 && full.rejected == 0,
        "the full sync applied {} and rejected {} of {records}",
        full.applied,
        full.rejected
    );

    eprintln!("pg_dump | psql …");
    let copy_took = pg_copy(&source_db.url, &copy_db.url)?;
    let copied = count(&copy_db.url, "SELECT COUNT(*) FROM courses").await?;
    anyhow::ensure!(copied == records, "pg_dump | psql copied {copied} courses");

    change_some(&source_db.url, &source_url).await?;
    wait_for_publisher(&source_db.url).await?;
    eprintln!("incremental sync of {CHANGES} changes …");
    let started = Instant::now();
    let incremental = federation.sync(peer.id).await?;
    let incremental_took = started.elapsed();
    anyhow::ensure!(
        incremental.applied == CHANGES as u64,
        "the incremental sync applied {} of {CHANGES}",
        incremental.applied
    );
    let revised: i64 = {
        let mut conn = sqlx::AnyConnection::connect(&receiver_url).await?;
        sqlx::query_scalar("SELECT COUNT(*) FROM courses WHERE title LIKE '%（修订）'")
            .fetch_one(&mut conn)
            .await?
    };
    anyhow::ensure!(
        revised == CHANGES,
        "{revised} of the {CHANGES} changed titles arrived"
    );

    stop_source.cancel();
    let _ = served.await;

    let ratio = full_took.as_secs_f64() / copy_took.as_secs_f64();
    println!();
    let receiver = if receiver_url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    println!(
        "Federation benchmark: {records} course records (one file each), source on PostgreSQL, \
         receiver on {receiver}, 2 cores"
    );
    println!(
        "  Shuyuan full sync (HTTP feed, every signature verified, applied with log + records)"
    );
    println!(
        "      {:>8.2} s   {:>9.0} records/s   {} pages",
        full_took.as_secs_f64(),
        records as f64 / full_took.as_secs_f64(),
        full.pages
    );
    println!(
        "      reading the whole feed alone, without verifying or applying: {:.2} s",
        feed_took.as_secs_f64()
    );
    println!(
        "      (the source signed its {records} records when they were written, apart: {:.2} s)",
        signing_took.as_secs_f64()
    );
    println!("  pg_dump --data-only -t institutions -t courses -t course_files | psql");
    println!(
        "      {:>8.2} s   {:>9.0} records/s",
        copy_took.as_secs_f64(),
        records as f64 / copy_took.as_secs_f64()
    );
    println!(
        "  ratio full sync / pg_dump|psql   {ratio:>6.2}x   target <= {TARGET_FULL_RATIO}x   {}",
        verdict(ratio <= TARGET_FULL_RATIO)
    );
    println!(
        "  incremental sync of {CHANGES} changes  {:>6.3} s   target < {} s   {}",
        incremental_took.as_secs_f64(),
        TARGET_INCREMENTAL.as_secs(),
        verdict(incremental_took < TARGET_INCREMENTAL)
    );
    Ok(())
}
