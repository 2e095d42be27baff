//! The database handle: one `sqlx::AnyPool` plus the backend it talks to.
//!
//! Every capability's `store.rs` writes portable SQL (`$1` placeholders, ids as text UUIDs,
//! times as unix milliseconds in `BIGINT`) against this pool, so one code path serves SQLite
//! and PostgreSQL. Where the dialects really differ, a store matches on [`Db::backend`]; the
//! schema differences live in the two migration folders `migrations/sqlite` and
//! `migrations/postgres`, and the connection set-up differences live here.

pub mod copy;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl FromStr for Backend {
    type Err = anyhow::Error;

    fn from_str(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("unsupported database URL scheme (use sqlite: or postgres://)")
        }
    }
}

/// A cheap-to-clone handle to the pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects, creating the SQLite file (and its directory) on first start.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Db> {
        install_default_drivers();
        let backend: Backend = url.parse()?;
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10));
        let url = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(url);
                if let Some(parent) = Path::new(path).parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent).with_context(|| {
                        format!("creating the database directory {}", parent.display())
                    })?;
                }
                // WAL lets readers proceed while one writer commits; foreign keys are off in
                // SQLite unless asked for on every connection.
                options = options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                        Ok(())
                    })
                });
                if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => {
                // Statements are prepared once per connection; after five runs PostgreSQL may
                // keep a generic plan costed when the tables were small (a fresh peer's
                // catalog), and a seq scan chosen then stays while the table grows to 100k
                // rows. Our statements are cheap to plan, so plan each run for its values.
                // JIT compiling pays off for long analytic queries, not ours: the feed's
                // page query (a LIMIT over a correlated filter, costed high) spent ~100 ms
                // compiling to run for 3 ms.
                options = options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute("SET plan_cache_mode = force_custom_plan; SET jit = off")
                            .await?;
                        Ok(())
                    })
                });
                url.to_owned()
            }
        };
        let pool = options
            .connect(&url)
            .await
            .with_context(|| format!("connecting to {}", crate::config::redact_url(&url)))?;
        Ok(Db { pool, backend })
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails with
    /// "database is locked" when another writer commits in between, instead of waiting.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator()
            .run(&self.pool)
            .await
            .context("applying database migrations")
    }

    /// True when the database answers and every embedded migration has been applied.
    pub async fn is_ready(&self) -> Result<bool, sqlx::Error> {
        let latest = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied.unwrap_or(0) >= latest)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn sqlite_path(url: &str) -> &str {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.split('?').next().unwrap_or(rest)
}

/// Switches the rest of the transaction between generic plans (`true`) and plans made for each
/// execution's values (`false`, the pool's setting: see [`Db::connect`]) on PostgreSQL.
///
/// For multi-row `INSERT`s: their plan is the same whatever the values, and planning 500 rows of
/// parameters anew took ~4 ms a statement in the federation benchmark. Mind the lookups they
/// make (foreign-key checks, also planned under this setting): a generic plan is cached per
/// prepared statement on the connection, and one made while the looked-up table was tiny (a
/// sequential scan, even for a lookup by primary key) stays in use while the table grows,
/// until the table is analyzed again. Switch back as soon as those statements are done.
pub async fn use_generic_plans(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    generic: bool,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        let mode = if generic {
            "SET LOCAL plan_cache_mode = force_generic_plan"
        } else {
            "SET LOCAL plan_cache_mode = force_custom_plan"
        };
        sqlx::query(mode).execute(conn).await?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats a stored timestamp as RFC 3339 for JSON.
pub fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339 formatting of a valid time cannot fail")
}

/// True when `error` is a unique-constraint violation, on either backend.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_url_scheme() {
        assert_eq!(
            "sqlite://data/x.db".parse::<Backend>().unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            "postgres://u@h/d".parse::<Backend>().unwrap(),
            Backend::Postgres
        );
        assert!("mysql://u@h/d".parse::<Backend>().is_err());
    }

    #[test]
    fn sqlite_path_drops_scheme_and_query() {
        assert_eq!(sqlite_path("sqlite://data/x.db?mode=rwc"), "data/x.db");
        assert_eq!(sqlite_path("sqlite:/tmp/x.db"), "/tmp/x.db");
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }

    #[tokio::test]
    async fn sqlite_database_is_created_migrated_and_ready() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/db.sqlite", dir.path().display());
        let db = Db::connect(&url, 2).await.unwrap();
        assert!(db.is_ready().await.is_err(), "no migrations table yet");
        db.migrate().await.unwrap();
        assert!(db.is_ready().await.unwrap());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
