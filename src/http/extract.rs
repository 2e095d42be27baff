//! Extractors that answer in our error format: `AppJson`, `AppPath`, `AppQuery`, and the
//! authentication extractors `AuthUser` / `MaybeAuthUser`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Serialize;

use crate::accounts::{self, AccountsError, Authenticated};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::state::AppState;

/// `axum::Json` whose rejections are problem+json: 400 malformed, 415 wrong content type,
/// 413 too large, 422 wrong shape with the failing field named.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct AppJson<T>(pub T);

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => {
                ApiError::validation(vec![field_error_from_serde(&e.body_text())])
            }
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                ErrorCode::BadRequest,
                "malformed-json",
                strip_axum_prefix(&e.body_text()),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "unsupported-media-type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(e) if e.status().as_u16() == 413 => ApiError::new(
                ErrorCode::PayloadTooLarge,
                "payload-too-large",
                "the request body is larger than this server accepts",
            ),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

fn strip_axum_prefix(text: &str) -> String {
    match text.split_once(": ") {
        Some((prefix, rest)) if prefix.starts_with("Failed to") => rest.to_owned(),
        _ => text.to_owned(),
    }
}

/// Turns serde's message into a field error. serde names the field in backticks for missing
/// and unknown fields; for wrong types, axum (through `serde_path_to_error`) prefixes the path.
fn field_error_from_serde(body_text: &str) -> FieldError {
    let message = strip_axum_prefix(body_text);
    for marker in ["missing field `", "unknown field `"] {
        if let Some(start) = message.find(marker) {
            let rest = &message[start + marker.len()..];
            if let Some(end) = rest.find('`') {
                let clean = message.split(" at line ").next().unwrap_or(&message);
                let clean = clean.rsplit(": ").next().unwrap_or(clean);
                return FieldError::new(&rest[..end], clean);
            }
        }
    }
    if let Some((path, detail)) = message.split_once(": ")
        && !path.is_empty()
        && !path.contains(' ')
    {
        let detail = detail.split(" at line ").next().unwrap_or(detail);
        return FieldError::new(path, detail);
    }
    let detail = message.split(" at line ").next().unwrap_or(&message);
    FieldError::new("body", detail)
}

/// `axum::extract::Path` that answers 404 when a segment does not parse (a malformed id names
/// no resource).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct AppPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::not_found(format!("nothing here: {}", rejection.body_text()))
    }
}

/// `axum::extract::Query` whose rejection is a 400 naming the parameter.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct AppQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            ErrorCode::BadRequest,
            "bad-query",
            strip_axum_prefix(&rejection.body_text()),
        )
    }
}

/// The signed-in user; 401 when the request carries no live session.
pub struct AuthUser(pub Authenticated);

/// The signed-in user when there is one. A token that is present but not valid is still a 401:
/// a client holding a dead token should learn so rather than see anonymous content silently.
pub struct MaybeAuthUser(pub Option<Authenticated>);

/// The token from `Authorization: Bearer`, else from the session cookie.
fn presented_token(parts: &Parts) -> Result<Option<String>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthenticated("the Authorization header is not readable"))?;
        let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        else {
            return Err(ApiError::unauthenticated(
                "use Authorization: Bearer <token> with a token from /api/v1/auth/login",
            ));
        };
        return Ok(Some(token.trim().to_owned()));
    }
    let jar = CookieJar::from_headers(&parts.headers);
    Ok(jar
        .get(accounts::SESSION_COOKIE)
        .map(|cookie| cookie.value().to_owned()))
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match MaybeAuthUser::from_request_parts(parts, state).await? {
            MaybeAuthUser(Some(auth)) => Ok(AuthUser(auth)),
            MaybeAuthUser(None) => Err(AccountsError::Unauthenticated.into()),
        }
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(auth) = parts.extensions.get::<Authenticated>() {
            return Ok(MaybeAuthUser(Some(auth.clone())));
        }
        let Some(token) = presented_token(parts)? else {
            return Ok(MaybeAuthUser(None));
        };
        let auth = accounts::authenticate(&state.db, &token).await?;
        parts.extensions.insert(auth.clone());
        Ok(MaybeAuthUser(Some(auth)))
    }
}

/// The client's address as seen on the socket. Behind a reverse proxy this is the proxy; the
/// per-address sign-in limit then applies to everyone behind it, which errs on the safe side.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientIp(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_is_named() {
        let error = field_error_from_serde(
            "Failed to deserialize the JSON body into the target type: missing field `password` at line 1 column 30",
        );
        assert_eq!(error.field, "password");
        assert_eq!(error.message, "missing field `password`");
    }

    #[test]
    fn unknown_field_is_named() {
        let error = field_error_from_serde(
            "Failed to deserialize the JSON body into the target type: unknown field `admin`, expected one of `email`, `password` at line 1 column 9",
        );
        assert_eq!(error.field, "admin");
    }

    #[test]
    fn wrong_type_names_the_path() {
        let error = field_error_from_serde(
            "Failed to deserialize the JSON body into the target type: display_name: invalid type: integer `5`, expected a string at line 1 column 20",
        );
        assert_eq!(error.field, "display_name");
        assert_eq!(
            error.message,
            "invalid type: integer `5`, expected a string"
        );
    }
}
