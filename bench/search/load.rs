//! A small closed-loop load generator: `concurrency` futures on one client thread pull the next
//! request number from a shared counter until `total` are done or the deadline passes (then no
//! new request starts). Each request's latency is recorded; percentiles come from sorting.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: usize,
    pub planned: usize,
    pub errors: usize,
    pub seconds: f64,
    /// Sorted.
    pub latencies: Vec<Duration>,
    /// (request number, latency), in no particular order.
    pub by_request: Vec<(usize, Duration)>,
    /// Requests whose answer had at least one hit.
    pub with_hits: usize,
    /// CPU time of this whole process (server, client, everything) during the run.
    pub cpu_seconds: f64,
}

impl Stats {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    pub fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }

    /// The p50 and p99 of the requests `keep` selects by request number.
    pub fn percentiles_of(&self, keep: impl Fn(usize) -> bool) -> (Duration, Duration, usize) {
        let mut latencies: Vec<Duration> = self
            .by_request
            .iter()
            .filter(|(i, _)| keep(*i))
            .map(|(_, d)| *d)
            .collect();
        latencies.sort_unstable();
        let selected = Stats {
            latencies,
            ..Stats::default()
        };
        (selected.p50(), selected.p99(), selected.latencies.len())
    }

    /// The `count` slowest queries of a mix of `queries`, request `i` being query `i % queries`:
    /// (median latency over its requests, query number), slowest first.
    pub fn slowest_by_query(&self, queries: usize, count: usize) -> Vec<(Duration, usize)> {
        let mut per_query: Vec<Vec<Duration>> = vec![Vec::new(); queries];
        for &(i, latency) in &self.by_request {
            per_query[i % queries].push(latency);
        }
        let mut medians: Vec<(Duration, usize)> = per_query
            .into_iter()
            .enumerate()
            .filter(|(_, latencies)| !latencies.is_empty())
            .map(|(query, mut latencies)| {
                latencies.sort_unstable();
                (latencies[latencies.len() / 2], query)
            })
            .collect();
        medians.sort_unstable_by(|a, b| b.cmp(a));
        medians.truncate(count);
        medians
    }

    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// This process's CPU time per answered request.
    pub fn cpu_per_request(&self) -> Duration {
        Duration::from_secs_f64(self.cpu_seconds / self.requests.max(1) as f64)
    }

    /// Whether the time limit stopped the run before every planned request was made.
    pub fn cut_short(&self) -> bool {
        self.requests + self.errors < self.planned
    }
}

/// Runs `total` requests, `concurrency` at a time. `request(i)` performs request number `i`
/// and returns how many hits it got.
pub async fn run<F, Fut>(concurrency: usize, total: usize, deadline: Duration, request: F) -> Stats
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let next = AtomicUsize::new(0);
    let cpu_before = crate::common::cpu_seconds(std::process::id());
    let started = Instant::now();
    let stop_at = started + deadline;
    let workers = (0..concurrency).map(|_| async {
        let mut latencies = Vec::new();
        let (mut errors, mut with_hits) = (0, 0);
        loop {
            if Instant::now() >= stop_at {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                break;
            }
            let sent = Instant::now();
            match request(i).await {
                Ok(hits) => {
                    latencies.push((i, sent.elapsed()));
                    if hits > 0 {
                        with_hits += 1;
                    }
                }
                Err(error) => {
                    errors += 1;
                    if errors <= 3 {
                        eprintln!("  request {i} failed: {error:#}");
                    }
                }
            }
        }
        (latencies, errors, with_hits)
    });
    let results = futures::future::join_all(workers).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut stats = Stats {
        planned: total,
        seconds,
        cpu_seconds: crate::common::cpu_seconds(std::process::id()) - cpu_before,
        ..Stats::default()
    };
    for (latencies, errors, with_hits) in results {
        stats.requests += latencies.len();
        stats.latencies.extend(latencies.iter().map(|(_, d)| *d));
        stats.by_request.extend(latencies);
        stats.errors += errors;
        stats.with_hits += with_hits;
    }
    stats.latencies.sort_unstable();
    stats
}

/// The same, synchronously on this thread: the in-process floor.
pub fn run_blocking(
    total: usize,
    deadline: Duration,
    mut request: impl FnMut(usize) -> anyhow::Result<usize>,
) -> Stats {
    let cpu_before = crate::common::cpu_seconds(std::process::id());
    let started = Instant::now();
    let mut stats = Stats {
        planned: total,
        ..Stats::default()
    };
    for i in 0..total {
        if started.elapsed() >= deadline {
            break;
        }
        let sent = Instant::now();
        match request(i) {
            Ok(hits) => {
                let latency = sent.elapsed();
                stats.latencies.push(latency);
                stats.by_request.push((i, latency));
                stats.requests += 1;
                if hits > 0 {
                    stats.with_hits += 1;
                }
            }
            Err(error) => {
                stats.errors += 1;
                if stats.errors <= 3 {
                    eprintln!("  request {i} failed: {error:#}");
                }
            }
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    stats.cpu_seconds = crate::common::cpu_seconds(std::process::id()) - cpu_before;
    stats.latencies.sort_unstable();
    stats
}
