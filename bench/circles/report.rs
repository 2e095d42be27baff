//! The printed report: settings, one table of Shuyuan against the baseline with ratios,
//! targets and PASS or MISS, and the two-node table.

use hdrhistogram::Histogram;

use crate::load::histogram;
use crate::{AllResults, RunResult, Settings};

const TARGET_P99_MS: f64 = 50.0;
const TARGET_P99_FACTOR: f64 = 1.5;
const TARGET_KIB_PER_CONNECTION: f64 = 20.0;

pub fn header(settings: &Settings, cores: usize, fd_limit: u64, workers: usize) {
    println!(
        "Shuyuan circles load benchmark{}",
        if settings.quick {
            " (BENCH_QUICK=1: a smoke run; judge the targets only at the default sizes)"
        } else {
            ""
        }
    );
    println!(
        "load: {} clients in {} circles of {}, {} messages/s in all for {} s ({} messages), grace {} s",
        settings.clients,
        settings.circles,
        settings.clients / settings.circles,
        settings.rate,
        settings.seconds,
        settings.planned_messages(),
        settings.grace.as_secs()
    );
    println!(
        "machine: {} cores, load average {} at start; servers on CPUs {}, load generator on CPUs {} ({workers} Tokio workers); file-descriptor limit {fd_limit}",
        cores,
        crate::common::load_average(),
        settings.server_cpus.as_deref().unwrap_or("any"),
        settings.client_cpus.as_deref().unwrap_or("any"),
    );
}

/// All groups' latencies in one histogram.
pub fn merged(histograms: &[Histogram<u64>]) -> Histogram<u64> {
    let mut all = histogram();
    for h in histograms {
        all.add(h).expect("same bounds");
    }
    all
}

fn ms(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

fn quantile(h: &Histogram<u64>, q: f64) -> Option<u64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q))
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), ms)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// The servers' memory growth from opening the sockets, per socket open.
fn per_connection_kib(run: &RunResult) -> f64 {
    (run.rss_connected_kib as f64 - run.rss_before_kib as f64) / run.connected.max(1) as f64
}

struct Table {
    rows: Vec<[String; 6]>,
}

impl Table {
    fn new(head: [&str; 6]) -> Table {
        Table {
            rows: vec![head.map(str::to_owned)],
        }
    }

    fn row(&mut self, cells: [&str; 6]) {
        self.rows.push(cells.map(str::to_owned));
    }

    fn print(&self) {
        let mut widths = [0usize; 6];
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for (n, row) in self.rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| {
                    let pad = w - cell.chars().count();
                    format!("{cell}{}", " ".repeat(pad))
                })
                .collect();
            println!("{}", line.join(" | ").trim_end());
            if n == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                println!("{}", rule.join("-|-"));
            }
        }
    }
}

fn cell<T>(run: Option<&RunResult>, f: impl Fn(&RunResult) -> T) -> Option<T> {
    run.map(f)
}

fn text(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

pub fn print(settings: &Settings, results: &AllResults) {
    let s = results.shuyuan.as_ref();
    let b = results.baseline.as_ref();
    println!("\n== Results: one node ==");
    let mut t = Table::new([
        "measure",
        "Shuyuan (SQLite)",
        "baseline",
        "ratio",
        "target",
        "verdict",
    ]);
    let lat = |r: &RunResult| merged(&r.outcome.latency);
    let q = |run: Option<&RunResult>, q: f64| run.and_then(|r| quantile(&lat(r), q));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let fmt_ratio = |r: Option<f64>| r.map_or_else(|| "-".into(), |r| format!("{r:.2}×"));

    let (s50, b50) = (q(s, 0.5), q(b, 0.5));
    t.row([
        "fan-out latency p50",
        &opt_ms(s50),
        &opt_ms(b50),
        &fmt_ratio(ratio(s50.map(|v| v as f64), b50.map(|v| v as f64))),
        "",
        "",
    ]);
    let (s99, b99) = (q(s, 0.99), q(b, 0.99));
    let p99_ratio = ratio(s99.map(|v| v as f64), b99.map(|v| v as f64));
    t.row([
        "fan-out latency p99",
        &opt_ms(s99),
        &opt_ms(b99),
        &fmt_ratio(p99_ratio),
        &format!("< {TARGET_P99_MS} ms"),
        s99.map_or("-", |v| verdict((v as f64 / 1000.0) < TARGET_P99_MS)),
    ]);
    t.row([
        "p99 against the baseline's",
        "",
        "",
        &fmt_ratio(p99_ratio),
        &format!("≤ {TARGET_P99_FACTOR}× baseline"),
        p99_ratio.map_or("-", |r| verdict(r <= TARGET_P99_FACTOR)),
    ]);
    let (s999, b999) = (q(s, 0.999), q(b, 0.999));
    t.row([
        "fan-out latency p99.9",
        &opt_ms(s999),
        &opt_ms(b999),
        &fmt_ratio(ratio(s999.map(|v| v as f64), b999.map(|v| v as f64))),
        "",
        "",
    ]);
    let (smax, bmax) = (q(s, 1.0), q(b, 1.0));
    t.row([
        "fan-out latency max",
        &opt_ms(smax),
        &opt_ms(bmax),
        &fmt_ratio(ratio(smax.map(|v| v as f64), bmax.map(|v| v as f64))),
        "",
        "",
    ]);
    let ack = |r: &RunResult| {
        format!(
            "{} / {}",
            opt_ms(quantile(&r.outcome.ack_latency, 0.5)),
            opt_ms(quantile(&r.outcome.ack_latency, 0.99))
        )
    };
    t.row([
        "ack latency p50 / p99 (send → ack)",
        &text(cell(s, ack)),
        &text(cell(b, ack)),
        "",
        "",
        "",
    ]);
    let sent = |r: &RunResult| {
        format!(
            "{} / {} / {}",
            r.outcome.planned, r.outcome.sent, r.outcome.acked
        )
    };
    t.row([
        "messages planned / sent / acked",
        &text(cell(s, sent)),
        &text(cell(b, sent)),
        "",
        "",
        "",
    ]);
    let delivered = |r: &RunResult| {
        format!(
            "{} of {}",
            r.outcome.delivered, r.outcome.expected_deliveries
        )
    };
    t.row([
        "deliveries received",
        &text(cell(s, delivered)),
        &text(cell(b, delivered)),
        "",
        "",
        "",
    ]);
    let lost = |r: &RunResult| {
        if r.outcome.lost_on_closed > 0 {
            format!(
                "{} ({} on closed sockets)",
                r.outcome.lost, r.outcome.lost_on_closed
            )
        } else {
            r.outcome.lost.to_string()
        }
    };
    t.row([
        "messages lost (deliveries)",
        &text(cell(s, lost)),
        &text(cell(b, lost)),
        "",
        "0",
        s.map_or("-", |r| {
            verdict(r.outcome.lost == 0 && r.outcome.sent == r.outcome.planned)
        }),
    ]);
    t.row([
        "messages duplicated (deliveries)",
        &text(cell(s, |r| r.outcome.duplicates.to_string())),
        &text(cell(b, |r| r.outcome.duplicates.to_string())),
        "",
        "0",
        s.map_or("-", |r| verdict(r.outcome.duplicates == 0)),
    ]);
    t.row([
        "misrouted / error frames",
        &text(cell(s, |r| {
            format!(
                "{} / {}",
                r.outcome.misrouted,
                r.outcome.errors.values().sum::<u64>()
            )
        })),
        &text(cell(b, |r| {
            format!(
                "{} / {}",
                r.outcome.misrouted,
                r.outcome.errors.values().sum::<u64>()
            )
        })),
        "",
        "",
        "",
    ]);
    t.row([
        "sockets open / closed by the server",
        &text(cell(s, |r| {
            format!("{} / {}", r.connected, r.outcome.closed_sockets)
        })),
        &text(cell(b, |r| {
            format!("{} / {}", r.connected, r.outcome.closed_sockets)
        })),
        "",
        "",
        "",
    ]);
    t.row([
        "server RSS before the sockets",
        &text(cell(s, |r| mib(r.rss_before_kib))),
        &text(cell(b, |r| mib(r.rss_before_kib))),
        "",
        "",
        "",
    ]);
    t.row([
        "server RSS with every socket open, idle",
        &text(cell(s, |r| mib(r.rss_connected_kib))),
        &text(cell(b, |r| mib(r.rss_connected_kib))),
        "",
        "",
        "",
    ]);
    let (skib, bkib) = (cell(s, per_connection_kib), cell(b, per_connection_kib));
    t.row([
        "server memory per idle connection",
        &text(skib.map(|v| format!("{v:.1} KiB"))),
        &text(bkib.map(|v| format!("{v:.1} KiB"))),
        &fmt_ratio(ratio(skib, bkib)),
        &format!("≤ {TARGET_KIB_PER_CONNECTION} KiB"),
        skib.map_or("-", |v| verdict(v <= TARGET_KIB_PER_CONNECTION)),
    ]);
    t.row([
        "server RSS peak while sending",
        &text(cell(s, |r| mib(r.rss_peak_kib))),
        &text(cell(b, |r| mib(r.rss_peak_kib))),
        "",
        "",
        "",
    ]);
    let (scpu, bcpu) = (
        cell(s, |r| r.cpu_load_percent),
        cell(b, |r| r.cpu_load_percent),
    );
    t.row([
        "server CPU while sending (% of one core)",
        &text(scpu.map(|v| format!("{v:.1} %"))),
        &text(bcpu.map(|v| format!("{v:.1} %"))),
        &fmt_ratio(ratio(scpu, bcpu)),
        "",
        "",
    ]);
    let opening = |r: &RunResult| {
        format!(
            "{:.1} s + {:.0} s{} / {:.1} s",
            r.connect_seconds,
            r.settle_seconds,
            if r.settled { "" } else { " (not idle)" },
            r.cpu_connect_seconds
        )
    };
    t.row([
        "opening: connect + settle / server CPU",
        &text(cell(s, opening)),
        &text(cell(b, opening)),
        "",
        "",
        "",
    ]);
    let presence = |r: &RunResult| {
        format!(
            "{} frames, {}",
            r.outcome.presence_frames,
            mib(r.outcome.presence_bytes / 1024)
        )
    };
    t.row([
        "presence frames received",
        &text(cell(s, presence)),
        &text(cell(b, presence)),
        "",
        "",
        "",
    ]);
    t.row([
        "load generator CPU while sending",
        &text(cell(s, |r| format!("{:.1} %", r.client_cpu_percent))),
        &text(cell(b, |r| format!("{:.1} %", r.client_cpu_percent))),
        "",
        "",
        "",
    ]);
    t.print();
    for run in [s, b].into_iter().flatten() {
        details(run);
    }
    if s.is_some_and(|r| !r.peak_is_exact) {
        println!("note: VmHWM could not be reset; the peak is the RSS sampled after sending");
    }

    println!("\n== Results: two nodes on PostgreSQL ==");
    match (&results.cluster, &results.cluster_skipped) {
        (Some(c), _) => cluster(settings, c, s),
        (None, Some(why)) => println!("{why}"),
        (None, None) => println!("not run (BENCH_SYSTEMS)"),
    }
}

fn details(run: &RunResult) {
    let o = &run.outcome;
    let mut notes = Vec::new();
    if !run.connect_failures.is_empty() {
        notes.push(format!("connect failures: {:?}", run.connect_failures));
    }
    if !o.close_reasons.is_empty() {
        notes.push(format!(
            "closed by the server (first after {:.1} s): {:?}",
            o.first_close_s.unwrap_or(0.0),
            o.close_reasons
        ));
    }
    if !o.errors.is_empty() {
        notes.push(format!("error frames: {:?}", o.errors));
    }
    if o.send_failures > 0 || o.late_sends > 0 {
        notes.push(format!(
            "sends that failed: {}, sends that waited for their socket: {}",
            o.send_failures, o.late_sends
        ));
    }
    if o.other_frames > 0 {
        notes.push(format!("unexpected frames: {}", o.other_frames));
    }
    if run.warnings > 0 {
        notes.push(format!(
            "{} warnings in the server log; last: {}",
            run.warnings,
            run.last_warnings.join(" | ")
        ));
    }
    for note in notes {
        println!("{}: {note}", run.label);
    }
}

fn cluster(settings: &Settings, c: &RunResult, single: Option<&RunResult>) {
    let a = &c.outcome.latency[0];
    let b = &c.outcome.latency[1];
    let all = merged(&c.outcome.latency);
    let single_lat = single.map(|r| merged(&r.outcome.latency));
    let mut t = Table::new([
        "measure",
        "receivers on node A",
        "receivers on node B",
        "added (B − A)",
        "all receivers",
        "one node, SQLite",
    ]);
    for (name, q) in [
        ("fan-out latency p50", 0.5),
        ("fan-out latency p99", 0.99),
        ("fan-out latency p99.9", 0.999),
        ("fan-out latency max", 1.0),
    ] {
        let (qa, qb) = (quantile(a, q), quantile(b, q));
        let added = match (qa, qb) {
            (Some(x), Some(y)) => format!("{:+.2} ms", (y as f64 - x as f64) / 1000.0),
            _ => "-".into(),
        };
        t.row([
            name,
            &opt_ms(qa),
            &opt_ms(qb),
            &added,
            &opt_ms(quantile(&all, q)),
            &opt_ms(single_lat.as_ref().and_then(|h| quantile(h, q))),
        ]);
    }
    let o = &c.outcome;
    t.print();
    println!(
        "senders on node A, {} receivers per circle on each node; ack p50 / p99 {} / {} (one node, SQLite: {})",
        settings.clients / settings.circles / 2,
        opt_ms(quantile(&o.ack_latency, 0.5)),
        opt_ms(quantile(&o.ack_latency, 0.99)),
        single.map_or_else(
            || "-".into(),
            |r| format!(
                "{} / {}",
                opt_ms(quantile(&r.outcome.ack_latency, 0.5)),
                opt_ms(quantile(&r.outcome.ack_latency, 0.99))
            )
        )
    );
    println!(
        "messages planned / sent / acked {} / {} / {}; deliveries {} of {}; lost {} {}; duplicated {} {}; sockets closed by the servers {}",
        o.planned,
        o.sent,
        o.acked,
        o.delivered,
        o.expected_deliveries,
        o.lost,
        verdict(o.lost == 0 && o.sent == o.planned),
        o.duplicates,
        verdict(o.duplicates == 0),
        o.closed_sockets
    );
    println!(
        "both nodes: RSS {} before the sockets, {} with them ({:.1} KiB per idle connection), peak {} while sending; CPU while sending {:.1} % of one core (both nodes, PostgreSQL not counted)",
        mib(c.rss_before_kib),
        mib(c.rss_connected_kib),
        per_connection_kib(c),
        mib(c.rss_peak_kib),
        c.cpu_load_percent
    );
    details(c);
}
