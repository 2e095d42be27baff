//! Building and running the server. `main` and the integration tests both go through
//! [`Application::build`], so what the tests start is what users run.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::accounts;
use crate::accounts::rate_limit::LoginLimiter;
use crate::catalog::{Catalog, SweepReport};
use crate::circles::Circles;
use crate::config::Config;
use crate::db::Db;
use crate::federation::Federation;
use crate::media::MediaStore;
use crate::oai;
use crate::ops::Metrics;
use crate::search::SearchService;
use crate::state::AppState;

/// How often expired and revoked sessions are deleted, and interrupted uploads swept.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
}

/// Opens the database and applies migrations: what `serve` does first and `migrate` does only.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url(), config.database.max_connections).await?;
    db.migrate().await?;
    Ok(db)
}

/// The catalog over `db` and the configured object store, publishing as `origin`.
pub fn open_catalog(config: &Config, db: &Db, origin: Arc<str>) -> anyhow::Result<Catalog> {
    let media = MediaStore::from_config(&config.storage, &config.server.data_dir)?;
    Ok(Catalog::new(
        db.clone(),
        media,
        origin,
        config.limits.max_upload_bytes,
        Duration::from_secs(config.storage.sweep_grace_seconds),
    ))
}

impl Application {
    /// Connects and migrates the database, binds the listener (so the real port is known
    /// before anything runs: port 0 works) and assembles the state.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "creating the data directory {}",
                config.server.data_dir.display()
            )
        })?;
        let db = open_database(&config).await?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding {}", config.server.listen))?;
        let bound = listener.local_addr()?;
        let public_url: Arc<str> = config.public_url(bound).into();
        let login_limiter = LoginLimiter::new(
            NonZeroU32::new(config.auth.login_attempts_per_minute_per_ip)
                .context("auth.login_attempts_per_minute_per_ip must be at least 1")?,
            NonZeroU32::new(config.auth.login_attempts_per_minute_per_account)
                .context("auth.login_attempts_per_minute_per_account must be at least 1")?,
        );
        let catalog = open_catalog(&config, &db, public_url.clone())?;
        let search = SearchService::open(&config.index_dir())?;
        let federation = Federation::open(&config, db.clone(), catalog.clone(), true).await?;
        let oai = oai::Repository::open(db.clone(), &config.oai, public_url.clone()).await?;
        // Build the dummy hash now, so the first sign-in with an unknown e-mail is not slower.
        tokio::task::spawn_blocking(accounts::password::warm_up);
        tokio::task::spawn_blocking(crate::search::analysis::warm_up);
        let shutdown = CancellationToken::new();
        let circles = Circles::new(
            db.clone(),
            catalog.clone(),
            NonZeroU32::new(config.limits.messages_per_second)
                .context("limits.messages_per_second must be at least 1")?,
        );
        let state = AppState {
            config: Arc::new(config),
            db,
            catalog,
            circles,
            federation,
            shutdown: shutdown.clone(),
            search,
            oai,
            public_url,
            login_limiter: Arc::new(login_limiter),
            metrics: Arc::new(Metrics::new()),
        };
        Ok(Application {
            listener,
            state,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancelling this token stops the server as SIGTERM would; tests use it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until SIGTERM, Ctrl-C or the shutdown token. In-flight requests then get
    /// `server.shutdown_grace_seconds` to finish before the remaining connections are dropped.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            shutdown,
        } = self;
        let grace = Duration::from_secs(state.config.server.shutdown_grace_seconds);
        tracing::info!(
            listen = %listener.local_addr()?,
            public_url = %state.public_url,
            backend = ?state.db.backend(),
            "shuyuan is serving"
        );

        let background = spawn_background_tasks(&state, shutdown.clone());
        let signals = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    () = wait_for_signal() => shutdown.cancel(),
                    () = shutdown.cancelled() => {}
                }
            }
        });

        let app = crate::http::router(state.clone());
        let serve = crate::http::serve::serve(listener, app, shutdown.clone());
        tokio::select! {
            () = serve => {}
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_seconds = grace.as_secs(), "grace period over; dropping open connections");
            }
        }
        signals.abort();
        for task in background {
            task.abort();
        }
        state.db.close().await;
        tracing::info!("shuyuan stopped");
        Ok(())
    }
}

fn spawn_background_tasks(
    state: &AppState,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let db = state.db.clone();
    let catalog = state.catalog.clone();
    let housekeeping_shutdown = shutdown.clone();
    let housekeeping = tokio::spawn(async move {
        let shutdown = housekeeping_shutdown;
        let mut every = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = shutdown.cancelled() => return,
            }
            match accounts::purge_dead_sessions(&db).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(sessions = purged, "purged dead sessions"),
                Err(error) => tracing::warn!(%error, "could not purge dead sessions"),
            }
            match catalog.sweep().await {
                Ok(report) if report == SweepReport::default() => {}
                Ok(report) => tracing::info!(
                    stale_uploads = report.stale_uploads,
                    orphan_objects = report.orphan_objects,
                    "swept leftovers of interrupted uploads"
                ),
                Err(error) => tracing::warn!(%error, "could not sweep interrupted uploads"),
            }
        }
    });
    let indexer = tokio::spawn(crate::search::indexer::run(
        state.search.clone(),
        state.catalog.clone(),
        Duration::from_millis(state.config.search.poll_interval_ms.max(10)),
        shutdown.clone(),
    ));
    let extractor = tokio::spawn(crate::catalog::extraction::run(
        state.catalog.clone(),
        state.metrics.extraction_failures.clone(),
        Duration::from_secs(5),
        shutdown.clone(),
    ));
    // Each node signs the changes it makes at once; this poll only bounds how late it signs
    // another node's (the feed signs what is still unsigned itself meanwhile).
    let publisher = tokio::spawn(crate::federation::publish::run(
        state.federation.clone(),
        Duration::from_secs(5),
        shutdown.clone(),
    ));
    let mut tasks = vec![housekeeping, indexer, extractor, publisher];
    if state.config.federation.harvest {
        tasks.push(tokio::spawn(crate::federation::harvest::run(
            state.federation.clone(),
            shutdown.clone(),
        )));
    }
    if state.db.backend() == crate::db::Backend::Postgres {
        tasks.push(tokio::spawn(crate::circles::fanout::listen(
            state.circles.clone(),
            state.config.database_url(),
            shutdown.clone(),
        )));
    }
    tasks
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}
