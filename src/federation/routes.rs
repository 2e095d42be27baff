//! `/.well-known/shuyuan`, `/federation/v1/changes` and `/api/v1/peers*` (SPEC §9).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::feed::DEFAULT_LIMIT;
use super::harvest::SyncReport;
use super::record::{FeedEntry, WellKnown};
use super::store::{Peer, PinnedOrigin};
use super::{FederationError, MediaPolicy};
use crate::db::rfc3339;
use crate::error::{ApiError, FieldError, Problem};
use crate::http::{AppJson, AppPath, AppQuery, AuthUser};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(well_known))
        .routes(routes!(changes))
        .routes(routes!(add_peer, list_peers))
        .routes(routes!(sync_peer))
}

/// `GET /.well-known/shuyuan`: who this server is and the key its records are signed with.
#[utoipa::path(get, path = "/.well-known/shuyuan", tag = "federation",
    responses((status = 200, description = "this server's identity", body = WellKnown)))]
async fn well_known(State(state): State<AppState>) -> AppJson<WellKnown> {
    AppJson(state.federation.well_known())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// The `next` of the previous page; 0 (the default) starts at the beginning.
    since: Option<i64>,
    /// Entries per page, 1 to 1000 (larger values are clamped); default 500.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct ChangesPage {
    /// This server's id.
    origin: String,
    entries: Vec<EntryView>,
    /// The `since` of the next call; with no new entries, the `since` given.
    next: i64,
}

/// One signed change; see SPEC §9 for what the signature covers.
#[derive(Serialize, ToSchema)]
pub struct EntryView {
    seq: i64,
    /// `upsert` or `delete`.
    op: String,
    /// The full course record with its files.
    #[schema(value_type = Object)]
    course: Box<serde_json::value::RawValue>,
    origin: String,
    origin_key: String,
    origin_version: i64,
    signature: String,
}

impl From<FeedEntry> for EntryView {
    fn from(e: FeedEntry) -> Self {
        EntryView {
            seq: e.seq,
            op: e.op.as_str().to_owned(),
            course: e.course,
            origin: e.origin,
            origin_key: e.origin_key,
            origin_version: e.origin_version,
            signature: e.signature,
        }
    }
}

/// `GET /federation/v1/changes`: the catalog's changes after `since`, each course once at its
/// newest change, each entry signed by its origin.
#[utoipa::path(get, path = "/federation/v1/changes", tag = "federation",
    params(ChangesQuery),
    responses(
        (status = 200, description = "a page of changes", body = ChangesPage),
        (status = 400, description = "a bad or unknown `since`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn changes(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ChangesQuery>,
) -> Result<AppJson<ChangesPage>, ApiError> {
    let page = state
        .federation
        .changes(
            query.since.unwrap_or(0),
            query.limit.unwrap_or(DEFAULT_LIMIT),
        )
        .await?;
    Ok(AppJson(ChangesPage {
        origin: page.origin,
        entries: page.entries.into_iter().map(EntryView::from).collect(),
        next: page.next,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPeerRequest {
    /// The peer's address, e.g. `https://county.example`.
    url: String,
    /// `redirect` (default): send viewers to the origin; `mirror`: copy files here.
    #[schema(value_type = Option<MediaPolicy>)]
    media: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PeerView {
    id: Uuid,
    url: String,
    /// The id the peer gave in its `/.well-known/shuyuan`.
    server_id: String,
    name: String,
    /// The pinned key.
    public_key: String,
    media: MediaPolicy,
    /// `new` (never synced), `ok` or `failing`.
    state: String,
    /// The peer's feed position: the `since` of the next pull.
    last_seq: i64,
    last_sync_at: Option<String>,
    last_success_at: Option<String>,
    records_received: i64,
    records_rejected: i64,
    /// Mirrored files discarded because their bytes did not match the signed record.
    mirrors_rejected: i64,
    /// Failed syncs in a row.
    failures: i64,
    last_error: Option<String>,
    last_rejection: Option<String>,
    added_at: String,
}

impl From<Peer> for PeerView {
    fn from(p: Peer) -> Self {
        let state = if p.failures > 0 {
            "failing"
        } else if p.last_success_at_ms.is_some() {
            "ok"
        } else {
            "new"
        };
        PeerView {
            id: p.id,
            url: p.url,
            server_id: p.server_id,
            name: p.name,
            public_key: p.public_key,
            media: p.media,
            state: state.into(),
            last_seq: p.last_seq,
            last_sync_at: p.last_sync_at_ms.map(rfc3339),
            last_success_at: p.last_success_at_ms.map(rfc3339),
            records_received: p.records_received,
            records_rejected: p.records_rejected,
            mirrors_rejected: p.mirrors_rejected,
            failures: p.failures,
            last_error: p.last_error,
            last_rejection: p.last_rejection,
            added_at: rfc3339(p.added_at_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OriginView {
    /// The origin's server id.
    id: String,
    public_key: String,
    /// How the key was learnt: `peer`, `well-known` (asked the origin) or `relay`.
    source: String,
    via_peer: Option<Uuid>,
    pinned_at: String,
}

impl From<PinnedOrigin> for OriginView {
    fn from(o: PinnedOrigin) -> Self {
        OriginView {
            id: o.id,
            public_key: o.public_key,
            source: o.source,
            via_peer: o.via_peer,
            pinned_at: rfc3339(o.pinned_at_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PeerList {
    peers: Vec<PeerView>,
    /// Every origin whose key this server has pinned, peers included.
    origins: Vec<OriginView>,
}

/// `POST /api/v1/peers` (site administrators): fetch the peer's identity, pin its key, follow it.
#[utoipa::path(post, path = "/api/v1/peers", tag = "federation",
    security(("bearer" = []), ("cookie" = [])),
    request_body = AddPeerRequest,
    responses(
        (status = 201, description = "the peer was added", body = PeerView),
        (status = 403, description = "not a site administrator", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "already a peer, or its key conflicts with a pinned one", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "not a Shuyuan server address", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "the peer could not be reached", body = Problem, content_type = "application/problem+json"),
    ))]
async fn add_peer(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppJson(body): AppJson<AddPeerRequest>,
) -> Result<(StatusCode, AppJson<PeerView>), ApiError> {
    let media = match body.media.as_deref() {
        None => MediaPolicy::Redirect,
        Some(text) => MediaPolicy::parse(text)
            .map_err(|e| ApiError::validation(vec![FieldError::new("media", e)]))?,
    };
    let peer = state
        .federation
        .add_peer_as(&auth.user, &body.url, media)
        .await?;
    Ok((StatusCode::CREATED, AppJson(peer.into())))
}

/// `GET /api/v1/peers`: each peer's state, and the origins whose keys are pinned.
#[utoipa::path(get, path = "/api/v1/peers", tag = "federation",
    responses((status = 200, description = "peers", body = PeerList)))]
async fn list_peers(State(state): State<AppState>) -> Result<AppJson<PeerList>, ApiError> {
    let (peers, origins) = state.federation.peers().await?;
    Ok(AppJson(PeerList {
        peers: peers.into_iter().map(PeerView::from).collect(),
        origins: origins.into_iter().map(OriginView::from).collect(),
    }))
}

/// `POST /api/v1/peers/{id}/sync` (site administrators): pull the peer's feed now, until it
/// has nothing new.
#[utoipa::path(post, path = "/api/v1/peers/{id}/sync", tag = "federation",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "what the sync did", body = SyncReport),
        (status = 403, description = "not a site administrator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such peer", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "the peer failed; what was applied before stays", body = Problem, content_type = "application/problem+json"),
    ))]
async fn sync_peer(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<AppJson<SyncReport>, ApiError> {
    if !auth.user.is_admin {
        return Err(FederationError::NotAdmin.into());
    }
    Ok(AppJson(state.federation.sync(id).await?))
}
