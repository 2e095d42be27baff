//! The one place where failures become HTTP responses.
//!
//! Capabilities define their own `thiserror` enums and say, through [`ErrorCode`], what kind of
//! failure each variant is; `ApiError` turns that into an RFC 9457 `application/problem+json`
//! body. A client's mistake is always a 4xx with a useful `detail`; an internal failure is a 500
//! whose cause goes to the log (see `http::log_internal_errors`), never to the client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The closed set of failure kinds; each maps to exactly one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unprocessable,
    TooManyRequests,
    Unavailable,
    /// Another server this one relies on (a federation peer) failed.
    BadGateway,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One invalid input field of a 422 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The JSON field (or dotted path) that failed.
    pub field: String,
    /// Why, in words a person can act on.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects field errors while a request body is turned into domain types, so a client learns
/// about every bad field at once rather than one per round trip.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<FieldError>,
}

impl Validation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of `result`, if any, against `field` and returns the value.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Err` with every recorded field error, or `Ok(())` when there were none.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// The problem+json body (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A stable identifier of the problem kind, `/problems/<code>`; clients branch on this.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For 422: every field that failed and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    /// Machine-readable, kebab-case; becomes the `type` URI.
    kind: &'static str,
    detail: String,
    fields: Vec<FieldError>,
    retry_after: Option<Duration>,
}

/// The cause of a 500, carried in the response extensions to the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    pub fn new(code: ErrorCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            code,
            kind,
            detail: detail.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, "bad-request", detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, "unauthenticated", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, "not-found", detail)
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let detail = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            fields,
            ..Self::new(ErrorCode::Unprocessable, "validation", detail)
        }
    }

    pub fn too_many_requests(detail: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(ErrorCode::TooManyRequests, "rate-limited", detail)
        }
    }

    /// A failure that is not the client's doing. `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, "internal", cause.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn fields(&self) -> &[FieldError] {
        &self.fields
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::internal(format!("database: {error}"))
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(fields: Vec<FieldError>) -> Self {
        ApiError::validation(fields)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let internal = self.code == ErrorCode::Internal;
        let detail = if internal {
            "The server could not complete the request. It has been logged.".to_owned()
        } else {
            self.detail.clone()
        };
        let problem = Problem {
            problem_type: format!("/problems/{}", self.kind),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors: self.fields,
        };
        let body = serde_json::to_vec(&problem).expect("a Problem always serializes");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(retry_after) = self.retry_after {
            // Retry-After is whole seconds; round up so an early retry is never invited.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self.code == ErrorCode::Unauthenticated {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"shuyuan\""),
            );
        }
        if internal {
            response.extensions_mut().insert(InternalCause(self.detail));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let response = ApiError::internal("disk on fire at /var/lib/x").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response.extensions().get::<InternalCause>().unwrap();
        assert!(cause.0.contains("disk on fire"));
    }

    #[test]
    fn rate_limit_rounds_retry_after_up_to_whole_seconds() {
        let response =
            ApiError::too_many_requests("slow down", Duration::from_millis(1500)).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn validation_detail_names_every_field() {
        let error = ApiError::validation(vec![
            FieldError::new("email", "is not an e-mail address"),
            FieldError::new("password", "too short"),
        ]);
        assert_eq!(error.code(), ErrorCode::Unprocessable);
        assert!(error.to_string().contains("email"));
        assert!(error.to_string().contains("password"));
    }
}
