//! `/api/v1/circles*`, including the live socket.

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::live::{self, READ_BUFFER_BYTES, READ_LIMIT_BYTES, Session, WRITE_BUFFER_BYTES};
use super::model::{Circle, CircleRole, Message, Visibility};
use crate::db::rfc3339;
use crate::error::{ApiError, Problem};
use crate::http::{AppJson, AppPath, AppQuery, AuthUser, MaybeAuthUser};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_circle, list_circles))
        .routes(routes!(show_circle))
        .routes(routes!(join_circle))
        .routes(routes!(leave_circle))
        .routes(routes!(list_messages))
        .routes(routes!(open_live_socket))
        .routes(routes!(delete_message))
        .routes(routes!(remove_member, set_member_role))
        .routes(routes!(mute_member))
        .routes(routes!(rotate_invite_code))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteRequest {
    /// How long, in minutes (at most a week); 0 lifts the mute.
    minutes: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `moderator` or `member`.
    role: String,
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    role: CircleRole,
}

#[derive(Serialize, ToSchema)]
pub struct InviteCodeView {
    invite_code: String,
}

/// `DELETE /api/v1/circles/{id}/messages/{seq}`: by its author or a moderator; everyone
/// connected receives `{"type":"deleted","seq":N}`.
#[utoipa::path(delete, path = "/api/v1/circles/{id}/messages/{seq}", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("seq" = i64, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "neither the author nor a moderator", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such message", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_message(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath((id, seq)): AppPath<(Uuid, i64)>,
) -> Result<StatusCode, ApiError> {
    state.circles.delete_message(&auth.user, id, seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/circles/{id}/members/{user_id}`: removes a member (moderators; only the
/// owner removes moderators); their sockets close.
#[utoipa::path(delete, path = "/api/v1/circles/{id}/members/{user_id}", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "not allowed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn remove_member(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath((id, user_id)): AppPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state.circles.remove_member(&auth.user, id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/circles/{id}/members/{user_id}`: the owner appoints or dismisses a moderator.
#[utoipa::path(put, path = "/api/v1/circles/{id}/members/{user_id}", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    request_body = RoleRequest,
    responses(
        (status = 200, description = "the new role", body = RoleView),
        (status = 403, description = "not the owner", body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_member_role(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath((id, user_id)): AppPath<(Uuid, Uuid)>,
    AppJson(body): AppJson<RoleRequest>,
) -> Result<AppJson<RoleView>, ApiError> {
    let role = state
        .circles
        .set_role(&auth.user, id, user_id, &body.role)
        .await?;
    Ok(AppJson(RoleView { role }))
}

/// `POST /api/v1/circles/{id}/members/{user_id}/mute`: moderators mute a member for a while.
#[utoipa::path(post, path = "/api/v1/circles/{id}/members/{user_id}/mute", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    request_body = MuteRequest,
    responses(
        (status = 204, description = "muted (or unmuted with 0)"),
        (status = 403, description = "not a moderator", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "more than a week", body = Problem, content_type = "application/problem+json"),
    ))]
async fn mute_member(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath((id, user_id)): AppPath<(Uuid, Uuid)>,
    AppJson(body): AppJson<MuteRequest>,
) -> Result<StatusCode, ApiError> {
    if body.minutes > 7 * 24 * 60 {
        return Err(ApiError::validation(vec![crate::error::FieldError::new(
            "minutes",
            "at most a week (10080 minutes)",
        )]));
    }
    state
        .circles
        .mute(&auth.user, id, user_id, body.minutes)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/circles/{id}/invite-code`: the owner replaces the invite code.
#[utoipa::path(post, path = "/api/v1/circles/{id}/invite-code", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "the new code", body = InviteCodeView),
        (status = 403, description = "not the owner", body = Problem, content_type = "application/problem+json"),
    ))]
async fn rotate_invite_code(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<AppJson<InviteCodeView>, ApiError> {
    let invite_code = state.circles.rotate_invite_code(&auth.user, id).await?;
    Ok(AppJson(InviteCodeView { invite_code }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCircleRequest {
    name: String,
    #[serde(default)]
    description: String,
    #[schema(value_type = Visibility)]
    visibility: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Required for private circles.
    invite_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CircleView {
    id: Uuid,
    name: String,
    description: String,
    visibility: Visibility,
    owner_id: Uuid,
    /// Only shown to the owner and moderators.
    #[serde(skip_serializing_if = "Option::is_none")]
    invite_code: Option<String>,
    /// Your role, when you are a member.
    role: Option<CircleRole>,
    last_seq: i64,
    created_at: String,
}

fn circle_view(circle: Circle, role: Option<CircleRole>) -> CircleView {
    let show_invite = role.is_some_and(CircleRole::moderates);
    CircleView {
        id: circle.id,
        name: circle.name,
        description: circle.description,
        visibility: circle.visibility,
        owner_id: circle.owner_id,
        invite_code: show_invite.then_some(circle.invite_code),
        role,
        last_seq: circle.last_seq,
        created_at: rfc3339(circle.created_at_ms),
    }
}

#[derive(Serialize, ToSchema)]
pub struct CircleList {
    circles: Vec<CircleView>,
}

#[derive(Serialize, ToSchema)]
pub struct AuthorView {
    id: Uuid,
    display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    seq: i64,
    id: Uuid,
    author: AuthorView,
    /// Empty when a moderator deleted the message.
    body: String,
    sent_at: String,
    client_id: String,
    deleted: bool,
    /// The course the message links to, when it links to one on this server.
    #[schema(value_type = Option<Object>)]
    card: Option<super::model::CourseCard>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        MessageView {
            seq: m.seq,
            id: m.id,
            author: AuthorView {
                id: m.author.id,
                display_name: m.author.display_name,
            },
            body: m.body,
            sent_at: rfc3339(m.sent_at_ms),
            client_id: m.client_id,
            deleted: m.deleted,
            card: m.card,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessageList {
    messages: Vec<MessageView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages after this seq, oldest first.
    after: Option<i64>,
    /// Messages before this seq (the newest ones before it).
    before: Option<i64>,
    /// 1 to 200, default 50.
    limit: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// Replay every message after this seq first; without it the socket starts live.
    since: Option<i64>,
}

/// `POST /api/v1/circles`: starts a circle; its creator is the owner.
#[utoipa::path(post, path = "/api/v1/circles", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    request_body = CreateCircleRequest,
    responses(
        (status = 201, description = "created", body = CircleView),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_circle(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppJson(body): AppJson<CreateCircleRequest>,
) -> Result<(StatusCode, AppJson<CircleView>), ApiError> {
    let circle = state
        .circles
        .create(&auth.user, &body.name, &body.description, &body.visibility)
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(circle_view(circle, Some(CircleRole::Owner))),
    ))
}

/// `GET /api/v1/circles`: public circles and the private ones you belong to.
#[utoipa::path(get, path = "/api/v1/circles", tag = "circles",
    responses((status = 200, description = "circles, newest first", body = CircleList)))]
async fn list_circles(
    State(state): State<AppState>,
    MaybeAuthUser(auth): MaybeAuthUser,
) -> Result<AppJson<CircleList>, ApiError> {
    let circles = state.circles.list(auth.as_ref().map(|a| &a.user)).await?;
    Ok(AppJson(CircleList {
        circles: circles.into_iter().map(|c| circle_view(c, None)).collect(),
    }))
}

/// `GET /api/v1/circles/{id}`.
#[utoipa::path(get, path = "/api/v1/circles/{id}", tag = "circles",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "the circle", body = CircleView),
        (status = 403, description = "private, and you are not a member", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such circle", body = Problem, content_type = "application/problem+json"),
    ))]
async fn show_circle(
    State(state): State<AppState>,
    MaybeAuthUser(auth): MaybeAuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<AppJson<CircleView>, ApiError> {
    let (circle, role) = state
        .circles
        .show(auth.as_ref().map(|a| &a.user), id)
        .await?;
    Ok(AppJson(circle_view(circle, role)))
}

/// `POST /api/v1/circles/{id}/join`: joins a public circle, or a private one with its code.
#[utoipa::path(post, path = "/api/v1/circles/{id}/join", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    request_body(content = Option<JoinRequest>),
    responses(
        (status = 200, description = "you are a member", body = CircleView),
        (status = 403, description = "wrong or missing invite code", body = Problem, content_type = "application/problem+json"),
    ))]
async fn join_circle(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
    body: axum::body::Bytes,
) -> Result<AppJson<CircleView>, ApiError> {
    // The body is optional: public circles need none.
    let request: JoinRequest = if body.iter().all(u8::is_ascii_whitespace) {
        JoinRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("the body must be {{\"invite_code\": \"…\"}}: {e}"))
        })?
    };
    let invite = request.invite_code;
    state
        .circles
        .join(&auth.user, id, invite.as_deref())
        .await?;
    let (circle, role) = state.circles.show(Some(&auth.user), id).await?;
    Ok(AppJson(circle_view(circle, role)))
}

/// `POST /api/v1/circles/{id}/leave`: leaves the circle; your open sockets to it close.
#[utoipa::path(post, path = "/api/v1/circles/{id}/leave", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "left"),
        (status = 409, description = "the owner cannot leave", body = Problem, content_type = "application/problem+json"),
    ))]
async fn leave_circle(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.circles.leave(&auth.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/circles/{id}/messages`: history, in seq order.
#[utoipa::path(get, path = "/api/v1/circles/{id}/messages", tag = "circles",
    params(("id" = Uuid, Path), HistoryQuery),
    responses(
        (status = 200, description = "messages in seq order", body = MessageList),
        (status = 403, description = "private, and you are not a member", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_messages(
    State(state): State<AppState>,
    MaybeAuthUser(auth): MaybeAuthUser,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<HistoryQuery>,
) -> Result<AppJson<MessageList>, ApiError> {
    let messages = state
        .circles
        .history(
            auth.as_ref().map(|a| &a.user),
            id,
            query.after,
            query.before,
            query.limit,
        )
        .await?;
    Ok(AppJson(MessageList {
        messages: messages.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/circles/{id}/live?since=SEQ`: the WebSocket (SPEC §8). Authenticated by the
/// session cookie or `Authorization: Bearer`; refusals come as HTTP before the upgrade.
#[utoipa::path(get, path = "/api/v1/circles/{id}/live", tag = "circles",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), LiveQuery),
    responses(
        (status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, description = "since is negative or ahead of the circle", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "no credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "private, and you are not a member", body = Problem, content_type = "application/problem+json"),
    ))]
async fn open_live_socket(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppQuery(query): AppQuery<LiveQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    state.circles.open_live(&auth.user, id, query.since).await?;
    // Without `since`, the socket starts at the circle's last message *now*, before the 101 is
    // sent: a message committed between the answer and the socket joining the room is then
    // replayed, not lost (the client cannot know it should have asked for it).
    let since = match query.since {
        Some(since) => since,
        None => state.circles.latest_seq(id).await?,
    };
    let session = Session {
        circles: state.circles.clone(),
        actor: auth.user,
        circle_id: id,
        since,
        shutdown: state.shutdown.clone(),
    };
    Ok(upgrade
        // The 64 KiB limit is checked in `live` on frames read whole (see READ_LIMIT_BYTES).
        .max_message_size(READ_LIMIT_BYTES)
        .max_frame_size(READ_LIMIT_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| live::run(socket, session)))
}
