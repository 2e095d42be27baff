//! `/healthz`, `/readyz`, `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorCode};
use crate::http::AppJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_health))
        .routes(routes!(check_readiness))
        .routes(routes!(export_metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    status: &'static str,
}

/// `GET /healthz`: the process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "alive", body = Health)))]
async fn check_health() -> AppJson<Health> {
    AppJson(Health { status: "ok" })
}

/// `GET /readyz`: the database answers and every migration is applied, so this node can take
/// traffic.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "ready", body = Health),
        (status = 503, description = "not ready", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
async fn check_readiness(State(state): State<AppState>) -> Result<AppJson<Health>, ApiError> {
    match state.db.is_ready().await {
        Ok(true) => Ok(AppJson(Health { status: "ready" })),
        Ok(false) => Err(ApiError::new(
            ErrorCode::Unavailable,
            "not-ready",
            "database migrations are pending",
        )),
        Err(error) => {
            tracing::warn!(%error, "readiness check could not reach the database");
            Err(ApiError::new(
                ErrorCode::Unavailable,
                "not-ready",
                "the database is not reachable",
            ))
        }
    }
}

/// `GET /metrics`: Prometheus (OpenMetrics) text.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "metrics", body = String, content_type = "application/openmetrics-text")))]
async fn export_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
