//! Wires the capability routers into one application and adds the cross-cutting layers.
//!
//! Each capability exports `router() -> OpenApiRouter<AppState>`; merging them here also
//! merges their OpenAPI paths, so `/api/openapi.json` cannot forget an endpoint that is served.
//! Nothing in this module knows a business rule.

pub mod extract;
pub mod serve;

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ErrorCode, InternalCause};
use crate::state::AppState;
use crate::{accounts, catalog, circles, federation, institutions, media, oai, ops, search, web};

pub use extract::{AppJson, AppPath, AppQuery, AuthUser, ClientIp, MaybeAuthUser};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shuyuan",
        description = "Open learning platform for community education. Errors are \
                       application/problem+json (RFC 9457).",
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(accounts::SESSION_COOKIE))),
        );
    }
}

/// Every documented route, with the OpenAPI document describing them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(accounts::routes::router())
        .merge(institutions::routes::router())
        .merge(catalog::routes::router())
        .merge(media::routes::router())
        .merge(search::routes::router())
        .merge(circles::routes::router())
        .merge(federation::routes::router())
        .merge(oai::routes::router())
        .merge(ops::routes::router())
        .split_for_parts()
}

pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let openapi = Arc::new(openapi);
    Router::new()
        .merge(api)
        .route(
            "/api/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { axum::Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(web::serve_asset_or_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.limits.max_json_bytes))
        // Inside the logging and metrics layers, so a panic is logged and counted as a 500.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            ops::metrics::track_requests,
        ))
        // 5xx causes are logged once, by log_internal_errors, with the request.
        .layer(TraceLayer::new_for_http().on_failure(()))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .with_state(state)
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method-not-allowed",
        format!("{} does not accept {}", uri.path(), method),
    )
}

/// Logs the hidden cause of every 500 once, with the request it belongs to.
async fn log_internal_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, cause = %cause, "request failed");
    }
    response
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    tracing::error!(panic = %message, "handler panicked");
    ApiError::internal(format!("panic: {message}")).into_response()
}
