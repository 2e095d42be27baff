//! What every benchmark shares: settings from the environment, the load average it prints,
//! and a scratch PostgreSQL database per run. Each benchmark includes this file with
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
