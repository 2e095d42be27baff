//! Prometheus metrics: one registry per server instance (never a global, so two servers in
//! one test process keep separate counts) and the HTTP request middleware that feeds it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: String,
    route: String,
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    /// Files whose text could not be extracted (they are still served).
    pub extraction_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("shuyuan");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to produce the response head, by method and route",
            latency.clone(),
        );
        let extraction_failures = Counter::default();
        registry.register(
            "text_extraction_failures",
            "Files whose text could not be extracted for search",
            extraction_failures.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            extraction_failures,
        }
    }

    /// The OpenMetrics text exposition, which Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}

/// Counts and times every request. The route label is the matched route template
/// (`/api/v1/institutions/{slug}`), never the raw path, so label cardinality stays bounded.
pub async fn track_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_requests_appear_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.observe("GET", "/healthz", 200, 0.002);
        metrics.observe("GET", "/healthz", 200, 0.004);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"shuyuan_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("shuyuan_http_request_duration_seconds_bucket"));
    }
}
