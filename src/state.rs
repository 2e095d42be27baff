//! The state every handler can reach. All fields are cheap to clone (`Arc`s and pools).

use std::sync::Arc;

use crate::accounts::rate_limit::LoginLimiter;
use crate::catalog::Catalog;
use crate::circles::Circles;
use crate::config::Config;
use crate::db::Db;
use crate::federation::Federation;
use crate::oai;
use crate::ops::Metrics;
use crate::search::SearchService;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState {
    /// The configuration the server started with; never re-read at runtime.
    pub config: Arc<Config>,
    /// The relational store (SQLite or PostgreSQL).
    pub db: Db,
    /// Courses, files, uploads and the catalog log; owns the media store handle.
    pub catalog: Catalog,
    /// Learning circles and their live rooms.
    pub circles: Circles,
    /// Cancelled when the server begins shutting down; live sockets close with 1001.
    pub shutdown: CancellationToken,
    /// This server's federation identity, peers and harvester.
    pub federation: Federation,
    /// The search index (live generation) for queries; the indexer task writes it.
    pub search: SearchService,
    /// The OAI-PMH repository, with the token key every node shares.
    pub oai: oai::Repository,
    /// The base URL residents and peers use, without a trailing slash. Derived from the bound
    /// address when `server.public_url` is empty, so port 0 in tests still yields a real URL.
    pub public_url: Arc<str>,
    /// Sign-in throttling, per address and per account; in memory, per node.
    pub login_limiter: Arc<LoginLimiter>,
    /// The Prometheus registry and the request metrics.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Whether cookies must carry `Secure`: only when residents reach us over HTTPS, or a
    /// plain-HTTP village server would never keep anyone signed in.
    pub fn cookies_secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}
