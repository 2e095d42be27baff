//! Federation between regional servers (SPEC §9): this server's signing identity, its peers,
//! the signed change feed it serves, the harvester that pulls its peers' feeds, and federated
//! media.
//!
//! ```text
//!  village ──GET /federation/v1/changes──► county ──GET /federation/v1/changes──► province
//!  signs its own     (entries signed by    verifies against the    relays the village's
//!  records           their origin)         origin's pinned key,    records verbatim; the
//!                                          applies them to its     province verifies them
//!                                          catalog (→ log, search) against the village's key
//! ```
//!
//! Owns the `server_identity`, `peers`, `origins` and `federated_records` tables. Federated
//! courses themselves go into the catalog's tables through `catalog::remote`, in the same
//! transaction that moves the peer's feed position, so a restart resumes exactly.
//!
//! Depends on `catalog` (courses, the log), `media` (mirrored bytes), `db`.

pub mod error;
pub mod feed;
pub mod harvest;
pub mod identity;
pub mod media;
pub mod publish;
pub mod record;
pub mod routes;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::accounts::model::User;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::{self, Db};
use crate::vocabulary::string_enum;
pub use error::FederationError;
use identity::{Identity, PROTOCOL, parse_public_key};
use record::WellKnown;
use store::{Peer, PinnedOrigin};

string_enum! {
    /// How this server delivers the bytes of a peer's federated files.
    MediaPolicy {
        Redirect => "redirect",
        Mirror => "mirror",
    }
}

/// The most a `/.well-known/shuyuan` answer may hold.
const MAX_WELL_KNOWN_BYTES: usize = 64 * 1024;
/// Requests to peers give up when a peer is this slow.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The federation capability; cheap to clone.
#[derive(Clone)]
pub struct Federation {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    catalog: Catalog,
    identity: Identity,
    /// For feeds and identities: bounded in time.
    client: reqwest::Client,
    /// For media, which may take long: bounded per read, not in total.
    media_client: reqwest::Client,
    poll_interval: Duration,
    /// One sync per peer at a time on this node.
    syncing: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Files being mirrored now, so a file is fetched once however many ask.
    mirroring: Mutex<HashSet<Uuid>>,
    peers_changed: Notify,
}

fn http_client(total: Option<Duration>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("shuyuan/", env!("CARGO_PKG_VERSION")))
        // A peer that answers with a redirect is reported, never followed to another host.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT);
    if let Some(total) = total {
        builder = builder.timeout(total);
    }
    builder
        .build()
        .context("building the HTTP client for peers")
}

impl Federation {
    /// Loads (or makes) this server's key and checks it is the key the database records.
    /// The server (`serving`) records its public URL as its id; command-line tools, which do
    /// not know the URL the server is reached at, use the id the server recorded.
    pub async fn open(
        config: &Config,
        db: Db,
        catalog: Catalog,
        serving: bool,
    ) -> anyhow::Result<Federation> {
        let key_file = config.key_file();
        let mut identity = Identity::load_or_create(
            &key_file,
            catalog.origin().to_owned(),
            config.federation.name.clone(),
        )?;
        let (recorded_id, recorded_key) =
            store::claim_identity(db.pool(), &identity.server_id, &identity.public_key()).await?;
        if serving && recorded_id != identity.server_id {
            store::set_server_id(db.pool(), &identity.server_id).await?;
        } else if !serving {
            identity.server_id = recorded_id;
        }
        if recorded_key != identity.public_key() {
            anyhow::bail!(
                "the federation key in {} is not the key this server's database records; every \
                 node of a cluster must use the same federation.key_file",
                key_file.display()
            );
        }
        Ok(Federation {
            inner: Arc::new(Inner {
                db,
                catalog,
                identity,
                client: http_client(Some(REQUEST_TIMEOUT))?,
                media_client: http_client(None)?,
                poll_interval: Duration::from_secs(config.federation.poll_interval.max(1)),
                syncing: Mutex::new(HashMap::new()),
                mirroring: Mutex::new(HashSet::new()),
                peers_changed: Notify::new(),
            }),
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    pub fn well_known(&self) -> WellKnown {
        let identity = &self.inner.identity;
        WellKnown {
            id: identity.server_id.clone(),
            name: identity.name.clone(),
            public_url: identity.server_id.clone(),
            public_key: identity.public_key(),
            protocol: PROTOCOL,
        }
    }

    /// `POST /api/v1/peers`: site administrators only.
    pub async fn add_peer_as(
        &self,
        actor: &User,
        url: &str,
        media: MediaPolicy,
    ) -> Result<Peer, FederationError> {
        if !actor.is_admin {
            return Err(FederationError::NotAdmin);
        }
        self.add_peer(url, media).await
    }

    /// Fetches the peer's identity, pins its key and starts following its feed.
    pub async fn add_peer(&self, url: &str, media: MediaPolicy) -> Result<Peer, FederationError> {
        let url = normalize_peer_url(url)?;
        let known = self
            .fetch_well_known(&url)
            .await
            .map_err(FederationError::PeerUnreachable)?;
        if known.protocol != PROTOCOL {
            return Err(FederationError::InvalidPeer(format!(
                "{url} speaks federation protocol {}; this server speaks {PROTOCOL}",
                known.protocol
            )));
        }
        if parse_public_key(&known.public_key).is_none() {
            return Err(FederationError::InvalidPeer(format!(
                "{url} published a public key that is not base64 of 32 bytes"
            )));
        }
        if !(known.id.starts_with("http://") || known.id.starts_with("https://")) {
            return Err(FederationError::InvalidPeer(format!(
                "{url} gave the id {:?}, which is not a URL",
                known.id
            )));
        }
        let identity = &self.inner.identity;
        if known.id == identity.server_id || known.public_key == identity.public_key() {
            return Err(FederationError::PeerIsSelf(url));
        }
        let pool = self.inner.db.pool();
        if let Some(pinned) = store::pinned_key(pool, &known.id).await?
            && pinned != known.public_key
        {
            return Err(FederationError::KeyConflict(format!(
                "{} now presents another key than the one pinned for it; if it really changed \
                 its key, an administrator must remove the old pin first",
                known.id
            )));
        }
        let peer = Peer {
            id: Uuid::now_v7(),
            url,
            server_id: known.id.clone(),
            name: known.name.chars().take(200).collect(),
            public_key: known.public_key.clone(),
            media,
            last_seq: 0,
            records_received: 0,
            records_rejected: 0,
            mirrors_rejected: 0,
            failures: 0,
            last_sync_at_ms: None,
            last_success_at_ms: None,
            last_error: None,
            last_rejection: None,
            added_at_ms: db::now_ms(),
        };
        match store::insert_peer(pool, &peer).await {
            Err(error) if db::is_unique_violation(&error) => {
                return Err(FederationError::PeerExists(known.id));
            }
            other => other?,
        }
        store::pin_origin(
            pool,
            &known.id,
            &known.public_key,
            "peer",
            Some(peer.id),
            db::now_ms(),
        )
        .await?;
        tracing::info!(peer = %peer.server_id, url = %peer.url, "added a federation peer");
        self.inner.peers_changed.notify_one();
        Ok(peer)
    }

    /// Every peer with its state, and every origin whose key is pinned.
    pub async fn peers(&self) -> Result<(Vec<Peer>, Vec<PinnedOrigin>), FederationError> {
        let pool = self.inner.db.pool();
        Ok((
            store::list_peers(pool).await?,
            store::list_origins(pool).await?,
        ))
    }

    pub async fn peer(&self, id: Uuid) -> Result<Peer, FederationError> {
        store::find_peer(self.inner.db.pool(), id)
            .await?
            .ok_or(FederationError::PeerNotFound)
    }

    /// `GET {url}/.well-known/shuyuan`, bounded in time and size.
    async fn fetch_well_known(&self, base: &str) -> Result<WellKnown, String> {
        let url = format!("{base}/.well-known/shuyuan");
        let body = self.get_bounded(&url, MAX_WELL_KNOWN_BYTES).await?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("{url} did not answer with a Shuyuan identity: {e}"))
    }

    /// A GET whose answer must be a 200 of at most `max` bytes.
    async fn get_bounded(&self, url: &str, max: usize) -> Result<Vec<u8>, String> {
        self.fetch(url, max).await.map_err(|e| e.to_string())
    }

    async fn fetch(&self, url: &str, max: usize) -> Result<Vec<u8>, FetchError> {
        let response = self
            .inner
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| FetchError::Other(format!("{url}: {}", describe(&e))))?;
        let status = response.status();
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("elsewhere")
                .to_owned();
            return Err(FetchError::Other(format!(
                "{url} redirects to {to}; add the address it redirects to if you trust it"
            )));
        }
        if !status.is_success() {
            let body = read_capped(response, 4096).await.unwrap_or_default();
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(FetchError::Other(format!(
                "{url} answered with more than {max} bytes"
            )));
        }
        read_capped(response, max)
            .await
            .map_err(|e| FetchError::Other(format!("{url}: {e}")))
    }
}

/// Why a request to a peer failed.
#[derive(Debug)]
enum FetchError {
    Status {
        url: String,
        status: u16,
        body: String,
    },
    Other(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status { url, status, body } => {
                let body: String = body.chars().take(300).collect();
                write!(f, "{url} answered {status}: {body}")
            }
            FetchError::Other(message) => f.write_str(message),
        }
    }
}

/// Reads a body, failing once it grows past `max` bytes (a peer cannot make us buffer 1 GiB).
async fn read_capped(response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("the answer broke off: {}", describe(&e)))?;
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is longer than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error with its causes, which its `Display` leaves out.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `http(s)://host[:port][/path]` without a trailing slash, query or fragment.
fn normalize_peer_url(raw: &str) -> Result<String, FederationError> {
    let url = raw.trim().trim_end_matches('/');
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    let host = url.split_once("://").map_or("", |(_, rest)| rest);
    if !scheme_ok
        || host.is_empty()
        || url.contains(['?', '#', ' '])
        || url.len() > 500
        || url.chars().any(char::is_control)
    {
        return Err(FederationError::InvalidPeer(format!(
            "{raw:?} is not an http:// or https:// address of a server"
        )));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_addresses_are_checked_and_tidied() {
        assert_eq!(
            normalize_peer_url(" https://county.example/ ").unwrap(),
            "https://county.example"
        );
        for bad in [
            "county.example",
            "ftp://x",
            "http://",
            "http://x?y=1",
            "javascript:alert(1)",
        ] {
            assert!(normalize_peer_url(bad).is_err(), "{bad}");
        }
    }
}
