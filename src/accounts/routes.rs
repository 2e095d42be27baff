//! `/api/v1/auth/*` and `/api/v1/me*`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{Session, User};
use super::{NewAccount, SESSION_COOKIE, SignIn};
use crate::db::rfc3339;
use crate::error::{ApiError, Problem};
use crate::http::{AppJson, AppPath, AuthUser, ClientIp};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(show_me))
        .routes(routes!(list_my_sessions))
        .routes(routes!(revoke_my_session))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    /// At least 8 characters and not easy to guess; a 422 says why a password was refused.
    password: String,
    display_name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: Uuid,
    email: String,
    display_name: String,
    is_admin: bool,
    /// RFC 3339.
    created_at: String,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        UserView {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            is_admin: user.is_admin,
            created_at: rfc3339(user.created_at_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`; browsers get the same token as a cookie.
    token: String,
    token_type: &'static str,
    /// Seconds until the session expires.
    expires_in: u64,
    user: UserView,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: Uuid,
    created_at: String,
    expires_at: String,
    user_agent: Option<String>,
    /// True for the session this request came through.
    current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

fn session_view(session: Session, current: Uuid) -> SessionView {
    SessionView {
        current: session.id == current,
        id: session.id,
        created_at: rfc3339(session.created_at_ms),
        expires_at: rfc3339(session.expires_at_ms),
        user_agent: session.user_agent,
    }
}

/// `POST /api/v1/auth/register`: creates a resident's account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "account created", body = UserView),
        (status = 409, description = "e-mail already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid or weak input; `errors` names each field", body = Problem, content_type = "application/problem+json"),
    ))]
async fn register(
    State(state): State<AppState>,
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<(StatusCode, AppJson<UserView>), ApiError> {
    let user = super::create_account(
        &state.db,
        NewAccount {
            email: &body.email,
            display_name: &body.display_name,
            password: &body.password,
            is_admin: false,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, AppJson(user.into())))
}

/// `POST /api/v1/auth/login`: opens a session; the token comes back in the body and as an
/// HttpOnly, SameSite=Lax cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in", body = LoginResponse),
        (status = 401, description = "wrong e-mail or password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "too many attempts; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok());
    let session_ttl = std::time::Duration::from_secs(state.config.auth.session_ttl_hours * 3600);
    let (user, issued) = super::sign_in(
        &state.db,
        &state.login_limiter,
        SignIn {
            email: &body.email,
            password: &body.password,
            client_ip,
            user_agent,
            session_ttl,
        },
    )
    .await?;
    let cookie = Cookie::build((SESSION_COOKIE, issued.token.clone()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.cookies_secure())
        .path("/")
        .max_age(time::Duration::seconds(
            i64::try_from(issued.expires_in.as_secs()).unwrap_or(i64::MAX),
        ));
    let body = LoginResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in.as_secs(),
        user: user.into(),
    };
    Ok((jar.add(cookie), AppJson(body)))
}

/// `POST /api/v1/auth/logout`: revokes the current session and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "signed out"),
        (status = 401, description = "not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn logout(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    jar: CookieJar,
) -> Result<impl IntoResponse, ApiError> {
    super::sign_out(&state.db, &auth).await?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((StatusCode::NO_CONTENT, jar))
}

/// `GET /api/v1/me`: the signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "the signed-in user", body = UserView),
        (status = 401, description = "not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn show_me(AuthUser(auth): AuthUser) -> AppJson<UserView> {
    AppJson(auth.user.into())
}

/// `GET /api/v1/me/sessions`: the user's live sessions (devices signed in).
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 200, description = "live sessions", body = SessionList),
        (status = 401, description = "not signed in", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_my_sessions(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
) -> Result<AppJson<SessionList>, ApiError> {
    let sessions = super::list_sessions(&state.db, auth.user.id).await?;
    Ok(AppJson(SessionList {
        sessions: sessions
            .into_iter()
            .map(|s| session_view(s, auth.session_id))
            .collect(),
    }))
}

/// `DELETE /api/v1/me/sessions/{id}`: signs one device out.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "accounts",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path, description = "session id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 404, description = "no such live session of yours", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_my_session(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    super::revoke_session(&state.db, auth.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
