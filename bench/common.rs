//! What every benchmark shares: settings from the environment, the load average it prints, a
//! process's CPU time, and a scratch PostgreSQL database per run. Each benchmark includes this file with
//! `#[path = "../common.rs"] mod common;` (they are separate binaries) and uses part of it.
#![allow(dead_code)]

use std::fmt::Display;
use std::str::FromStr;

use sqlx::{Connection, Executor, PgConnection};

/// The variable's value, or `default` when it is unset or blank.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A number from the environment; `_` may group digits (`10_000`).
pub fn env_number<T>(name: &str, default: T) -> anyhow::Result<T>
where
    T: FromStr + Display,
    T::Err: Display,
{
    env_or(name, &default.to_string())
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, 100 on Linux).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / ticks_per_second()
}

/// The load average, as `/proc/loadavg` shows its first three figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A database created for one run on the server of `admin_url` (a role that may create
/// databases), dropped by [`ScratchDatabase::drop_now`].
pub struct ScratchDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    /// Creates `name` afresh (a leftover of a killed run is dropped first).
    pub async fn create(admin_url: &str, name: &str) -> anyhow::Result<ScratchDatabase> {
        let mut admin = PgConnection::connect(admin_url).await.map_err(|e| {
            anyhow::anyhow!("connecting to PostgreSQL at {admin_url} (set BENCH_DATABASE_URL): {e}")
        })?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        admin.close().await?;
        let mut url = reqwest::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(ScratchDatabase {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
            url: url.to_string(),
        })
    }

    pub async fn drop_now(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await?;
        admin.close().await?;
        Ok(())
    }
}
