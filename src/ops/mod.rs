//! Operations: liveness, readiness and metrics endpoints, and the metrics registry.
//!
//! Depends on `db` (readiness asks it). Every other capability may record metrics here; none
//! of them serves its own health endpoint.

pub mod metrics;
pub mod routes;

pub use metrics::Metrics;
