//! The circles load benchmark (issue #5): 10,000 WebSocket clients on one node, 10 circles of
//! 1,000 members, 100 messages per second in all for 60 s; fan-out latency, lost and
//! duplicated messages, server memory and CPU, against a minimal tokio-tungstenite broadcast
//! server measured in the same run; then the same load across two nodes on PostgreSQL.
//! `bench/README.md` ("Circles") describes what it measures and what it approximates.
//!
//! ```sh
//! cargo bench --bench circles                  # the issue's sizes: about 6 minutes
//! BENCH_QUICK=1 cargo bench --bench circles    # 1,000 clients for 10 s: a smoke run
//! ```

mod baseline;
#[path = "../common.rs"]
mod common;
mod load;
mod report;
mod server;
mod setup;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use common::{env_number, env_or};
use load::{ClientSpec, Outcome, Recorder};
use server::{Ready, ServerProcess};

const SHUYUAN_BIN: &str = env!("CARGO_BIN_EXE_shuyuan");

pub struct Settings {
    pub quick: bool,
    pub clients: usize,
    pub circles: usize,
    pub rate: f64,
    pub seconds: u64,
    pub grace: Duration,
    pub connect_concurrency: usize,
    pub settle_limit: Duration,
    pub server_cpus: Option<String>,
    pub client_cpus: Option<String>,
    pub database_url: Option<String>,
    pub systems: Vec<String>,
    pub tmp_dir: PathBuf,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let quick = env_or("BENCH_QUICK", "0") == "1";
        let clients = env_number("BENCH_CLIENTS", if quick { 1000 } else { 10_000 })? as usize;
        let circles = env_number("BENCH_CIRCLES", 10)?.max(1) as usize;
        anyhow::ensure!(
            clients >= circles * 2,
            "BENCH_CLIENTS: at least two clients per circle"
        );
        let rate = env_or("BENCH_RATE", "100")
            .parse::<f64>()
            .context("BENCH_RATE")?;
        anyhow::ensure!(rate > 0.0 && rate <= 10_000.0, "BENCH_RATE: 0 to 10000");
        let cpus = |name: &str, default: &str| {
            Some(env_or(name, default)).filter(|v| v != "none" && v != "-")
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (server_default, client_default) = if cores >= 2 {
            ("1", "0")
        } else {
            ("none", "none")
        };
        Ok(Settings {
            quick,
            clients,
            circles,
            rate,
            seconds: env_number("BENCH_SECONDS", if quick { 10 } else { 60 })?.max(1),
            grace: Duration::from_secs(env_number("BENCH_GRACE_SECONDS", 5)?),
            connect_concurrency: env_number("BENCH_CONNECT_CONCURRENCY", 32)?.max(1) as usize,
            settle_limit: Duration::from_secs(env_number("BENCH_SETTLE_SECONDS", 120)?),
            server_cpus: cpus("BENCH_SERVER_CPUS", server_default),
            client_cpus: cpus("BENCH_CLIENT_CPUS", client_default),
            database_url: std::env::var("BENCH_DATABASE_URL")
                .ok()
                .filter(|v| !v.trim().is_empty()),
            systems: env_or("BENCH_SYSTEMS", "shuyuan,baseline,cluster")
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
            tmp_dir: PathBuf::from(env_or(
                "BENCH_TMPDIR",
                &std::env::temp_dir().to_string_lossy(),
            )),
        })
    }

    fn runs(&self, system: &str) -> bool {
        self.systems.iter().any(|s| s == system)
    }

    pub fn planned_messages(&self) -> usize {
        (self.rate * self.seconds as f64).round() as usize
    }
}

/// Everything measured in one run of one system.
pub struct RunResult {
    pub label: String,
    pub nodes: usize,
    pub clients: usize,
    pub connected: usize,
    pub connect_failures: BTreeMap<String, usize>,
    pub connect_seconds: f64,
    pub settle_seconds: f64,
    pub settled: bool,
    /// Sum over the nodes, KiB.
    pub rss_before_kib: u64,
    pub rss_connected_kib: u64,
    pub rss_peak_kib: u64,
    pub peak_is_exact: bool,
    /// CPU seconds of the server(s) while the sockets opened and settled.
    pub cpu_connect_seconds: f64,
    /// Percent of one core, over the sending time.
    pub cpu_load_percent: f64,
    pub client_cpu_percent: f64,
    pub send_seconds: f64,
    pub outcome: Outcome,
    pub warnings: u64,
    pub last_warnings: Vec<String>,
}

fn main() {
    if std::env::var_os(baseline::ROLE_ENV).is_some() {
        baseline::main();
        return;
    }
    if let Err(error) = run() {
        eprintln!("circles benchmark failed: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let wall = Instant::now();
    let settings = Settings::from_env()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(cpus) = &settings.client_cpus {
        server::pin_self(cpus)?;
    }
    // Each socket is a descriptor in the load generator and one in the server; the baseline
    // and the server inherit this limit.
    let wanted = (settings.clients as u64 * 2 + 4096).max(65_536);
    let fd_limit = server::raise_fd_limit(wanted)?;
    anyhow::ensure!(
        fd_limit >= settings.clients as u64 + 1024,
        "the file-descriptor limit is {fd_limit}: too low for {} sockets",
        settings.clients
    );
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    report::header(&settings, cores, fd_limit, workers);
    let results = runtime.block_on(run_all(&settings))?;
    report::print(&settings, &results);
    println!(
        "\nwall time {:.0} s; load average at the end {}",
        wall.elapsed().as_secs_f64(),
        common::load_average()
    );
    Ok(())
}

pub struct AllResults {
    pub shuyuan: Option<RunResult>,
    pub baseline: Option<RunResult>,
    pub cluster: Option<RunResult>,
    pub cluster_skipped: Option<String>,
}

async fn run_all(settings: &Settings) -> anyhow::Result<AllResults> {
    let mut results = AllResults {
        shuyuan: None,
        baseline: None,
        cluster: None,
        cluster_skipped: None,
    };
    if settings.runs("shuyuan") {
        results.shuyuan = Some(run_shuyuan(settings).await?);
    }
    if settings.runs("baseline") {
        results.baseline = Some(run_baseline(settings).await?);
    }
    if settings.runs("cluster") {
        match &settings.database_url {
            Some(url) => results.cluster = Some(run_cluster(settings, url).await?),
            None => {
                results.cluster_skipped =
                    Some("BENCH_DATABASE_URL is not set: the two-node run was skipped".into());
            }
        }
    }
    Ok(results)
}

fn temp_dir(settings: &Settings) -> anyhow::Result<tempfile::TempDir> {
    std::fs::create_dir_all(&settings.tmp_dir)?;
    tempfile::Builder::new()
        .prefix("shuyuan-circles-bench-")
        .tempdir_in(&settings.tmp_dir)
        .context("creating the temporary directory")
}

fn shuyuan_env(data_dir: &Path, database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SHUYUAN_SERVER__LISTEN", "127.0.0.1:0".into()),
        ("SHUYUAN_SERVER__DATA_DIR", data_dir.display().to_string()),
        ("SHUYUAN_SERVER__SHUTDOWN_GRACE_SECONDS", "1".into()),
        ("SHUYUAN_DATABASE__URL", database_url.into()),
        ("SHUYUAN_LOG__FORMAT", "json".into()),
        ("SHUYUAN_LOG__LEVEL", "info".into()),
    ]
}

fn spawn_shuyuan(
    name: &str,
    settings: &Settings,
    dir: &Path,
    database_url: &str,
    key_file: Option<&Path>,
) -> anyhow::Result<ServerProcess> {
    std::fs::create_dir_all(dir)?;
    let mut env = shuyuan_env(dir, database_url);
    if let Some(key_file) = key_file {
        env.push((
            "SHUYUAN_FEDERATION__KEY_FILE",
            key_file.display().to_string(),
        ));
    }
    ServerProcess::spawn(
        name,
        Path::new(SHUYUAN_BIN),
        &["serve"],
        &env,
        dir,
        settings.server_cpus.as_deref(),
        Ready::ShuyuanLog,
    )
}

fn live_url(addr: std::net::SocketAddr, circle: Uuid) -> String {
    format!("ws://{addr}/api/v1/circles/{circle}/live")
}

/// The circle of member `i` (1-based), and its place among that circle's members.
fn placement(settings: &Settings, i: usize) -> (usize, usize) {
    ((i - 1) % settings.circles, (i - 1) / settings.circles)
}

async fn populate(
    base: &str,
    accounts: &[setup::Account],
    settings: &Settings,
) -> anyhow::Result<Vec<Uuid>> {
    let http = reqwest::Client::new();
    let circles = setup::create_circles(&http, base, &accounts[0].token, settings.circles).await?;
    let joins = accounts
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, a)| (a.token.clone(), circles[placement(settings, i).0]))
        .collect();
    setup::join_all(&http, base, joins).await?;
    Ok(circles)
}

async fn run_shuyuan(settings: &Settings) -> anyhow::Result<RunResult> {
    println!("\n== Shuyuan, one node, SQLite ==");
    let tmp = temp_dir(settings)?;
    let dir = tmp.path().join("node-a");
    let database_url = format!("sqlite://{}/shuyuan.db", dir.display());
    let accounts = setup::seed_accounts(&database_url, settings.clients).await?;
    let mut node = spawn_shuyuan("shuyuan", settings, &dir, &database_url, None)?;
    let base = format!("http://{}", node.addr);
    let circles = populate(&base, &accounts, settings).await?;
    let specs = accounts
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, a)| ClientSpec {
            url: live_url(node.addr, circles[placement(settings, i).0]),
            token: Some(a.token.clone()),
            circle: placement(settings, i).0,
            group: 0,
            sender: true,
        })
        .collect();
    let result = measure(
        "Shuyuan (SQLite)",
        std::slice::from_mut(&mut node),
        specs,
        1,
        settings,
    )
    .await;
    drop(node);
    drop(tmp);
    result
}

async fn run_baseline(settings: &Settings) -> anyhow::Result<RunResult> {
    println!("\n== baseline: minimal tokio-tungstenite broadcast server ==");
    let tmp = temp_dir(settings)?;
    let exe = std::env::current_exe()?;
    let mut node = ServerProcess::spawn(
        "baseline",
        &exe,
        &[],
        &[(baseline::ROLE_ENV, "1".into())],
        tmp.path(),
        settings.server_cpus.as_deref(),
        Ready::Line,
    )?;
    let circles: Vec<Uuid> = (0..settings.circles).map(|_| Uuid::now_v7()).collect();
    let specs = (1..=settings.clients)
        .map(|i| ClientSpec {
            url: live_url(node.addr, circles[placement(settings, i).0]),
            token: None,
            circle: placement(settings, i).0,
            group: 0,
            sender: true,
        })
        .collect();
    let result = measure(
        "baseline",
        std::slice::from_mut(&mut node),
        specs,
        1,
        settings,
    )
    .await;
    drop(node);
    drop(tmp);
    result
}

async fn run_cluster(settings: &Settings, admin_url: &str) -> anyhow::Result<RunResult> {
    println!("\n== Shuyuan, two nodes, PostgreSQL ==");
    let database = common::ScratchDatabase::create(
        admin_url,
        &format!("shuyuan_circles_bench_{}", std::process::id()),
    )
    .await?;
    let result = async {
        let tmp = temp_dir(settings)?;
        let accounts = setup::seed_accounts(&database.url, settings.clients).await?;
        // The nodes of a cluster sign with one key: a node with another refuses to start.
        let key_file = tmp.path().join("federation.key");
        let node_a = spawn_shuyuan(
            "node A",
            settings,
            &tmp.path().join("node-a"),
            &database.url,
            Some(&key_file),
        )?;
        let node_b = spawn_shuyuan(
            "node B",
            settings,
            &tmp.path().join("node-b"),
            &database.url,
            Some(&key_file),
        )?;
        let circles = populate(&format!("http://{}", node_a.addr), &accounts, settings).await?;
        let addrs = [node_a.addr, node_b.addr];
        // Alternate members of each circle between the nodes; only node A's members send.
        let specs = accounts
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, a)| {
                let (circle, place) = placement(settings, i);
                let group = place % 2;
                ClientSpec {
                    url: live_url(addrs[group], circles[circle]),
                    token: Some(a.token.clone()),
                    circle,
                    group,
                    sender: group == 0,
                }
            })
            .collect();
        let mut nodes = [node_a, node_b];
        let result = measure(
            "Shuyuan, 2 nodes (PostgreSQL)",
            &mut nodes,
            specs,
            2,
            settings,
        )
        .await;
        drop(nodes);
        drop(tmp);
        result
    }
    .await;
    if let Err(error) = database.drop_now().await {
        eprintln!("could not drop the database {}: {error}", database.name);
    }
    result
}

fn total<F: Fn(&ServerProcess) -> u64>(nodes: &[ServerProcess], f: F) -> u64 {
    nodes.iter().map(f).sum()
}

fn total_cpu(nodes: &[ServerProcess]) -> f64 {
    nodes.iter().map(ServerProcess::cpu_seconds).sum()
}

/// Opens the sockets, lets the servers settle, then sends and counts.
async fn measure(
    label: &str,
    nodes: &mut [ServerProcess],
    specs: Vec<ClientSpec>,
    groups: usize,
    settings: &Settings,
) -> anyhow::Result<RunResult> {
    let clients = specs.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before_kib = total(nodes, ServerProcess::rss_kib);
    let recorder = Recorder::new(settings.circles, settings.planned_messages(), groups);
    let stop = CancellationToken::new();

    let cpu_start = total_cpu(nodes);
    let started = Instant::now();
    let (connected, connect_failures) =
        load::connect_all(specs, settings.connect_concurrency, &recorder, &stop).await;
    let connect_seconds = started.elapsed().as_secs_f64();
    println!(
        "  {} of {clients} sockets open in {connect_seconds:.1} s{}",
        connected.len(),
        if connect_failures.is_empty() {
            String::new()
        } else {
            format!("; failures: {connect_failures:?}")
        }
    );

    // Opening sockets sets off presence updates: wait until the servers are idle again
    // (under 3 % of a core for two seconds running) before reading their memory.
    let settling = Instant::now();
    let mut quiet = 0;
    let mut last = total_cpu(nodes);
    let settled = loop {
        if settling.elapsed() >= settings.settle_limit {
            break false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = total_cpu(nodes);
        quiet = if now - last < 0.03 { quiet + 1 } else { 0 };
        last = now;
        if quiet >= 2 {
            break true;
        }
    };
    let settle_seconds = settling.elapsed().as_secs_f64();
    let cpu_connect_seconds = total_cpu(nodes) - cpu_start;
    let rss_connected_kib = total(nodes, ServerProcess::rss_kib);
    let alive = load::open_count(&connected);
    println!(
        "  {} settled after {settle_seconds:.0} s ({}); {alive} sockets still open; RSS {:.1} → {:.1} MiB",
        if nodes.len() > 1 { "servers" } else { "server" },
        if settled {
            "idle"
        } else {
            "still busy: limit reached"
        },
        rss_before_kib as f64 / 1024.0,
        rss_connected_kib as f64 / 1024.0
    );
    for node in nodes.iter_mut() {
        anyhow::ensure!(node.is_running(), "{} exited", node.name);
    }

    let peak_is_exact = nodes.iter().all(ServerProcess::reset_peak);
    let cpu_load_start = total_cpu(nodes);
    let client_cpu_start = common::cpu_seconds(std::process::id());
    let sending = Instant::now();
    println!(
        "  sending {} messages at {}/s ...",
        settings.planned_messages(),
        settings.rate
    );
    load::drive(&connected, &recorder, settings.rate).await?;
    let send_seconds = sending.elapsed().as_secs_f64();
    let cpu_load_percent = (total_cpu(nodes) - cpu_load_start) / send_seconds * 100.0;
    let client_cpu_percent =
        (common::cpu_seconds(std::process::id()) - client_cpu_start) / send_seconds * 100.0;
    tokio::time::sleep(settings.grace).await;
    let rss_peak_kib = if peak_is_exact {
        total(nodes, ServerProcess::peak_kib)
    } else {
        total(nodes, ServerProcess::rss_kib).max(rss_connected_kib)
    };
    let outcome = load::finish(connected, &recorder, &stop).await;
    let (warnings, last_warnings) = nodes.iter().fold((0, Vec::new()), |(n, mut l), node| {
        let w = node.warnings.lock().expect("not poisoned");
        l.extend(w.last.iter().cloned());
        (n + w.count, l)
    });
    println!(
        "  done: {} of {} deliveries, p99 {:.2} ms",
        outcome.delivered,
        outcome.expected_deliveries,
        report::merged(&outcome.latency).value_at_quantile(0.99) as f64 / 1000.0
    );
    Ok(RunResult {
        label: label.to_owned(),
        nodes: nodes.len(),
        clients,
        connected: clients - connect_failures.values().sum::<usize>(),
        connect_failures,
        connect_seconds,
        settle_seconds,
        settled,
        rss_before_kib,
        rss_connected_kib,
        rss_peak_kib,
        peak_is_exact,
        cpu_connect_seconds,
        cpu_load_percent,
        client_cpu_percent,
        send_seconds,
        outcome,
        warnings,
        last_warnings,
    })
}
