//! Conventions every endpoint shares: problem+json errors, health, metrics, OpenAPI, the web
//! shell.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem};

fn content_type(headers: &HeaderMap) -> String {
    headers[CONTENT_TYPE].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = TestApp::spawn().await;

    for path in [
        "/api/v1/nothing-here",
        "/no/such/page.html",
        "/api/v1/institutions/x/y/z",
    ] {
        let problem = assert_problem(app.get(path).await, StatusCode::NOT_FOUND).await;
        assert_eq!(problem["type"], "/problems/not-found", "{path}");
    }
    let post = app
        .client
        .post(app.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_problem(post, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = TestApp::spawn().await;

    let response = app
        .client
        .delete(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();

    let problem = assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(problem["type"], "/problems/method-not-allowed");
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;

    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn readiness_fails_when_migrations_are_missing() {
    let app = TestApp::spawn().await;
    sqlx::query("DROP TABLE _sqlx_migrations")
        .execute(app.db.pool())
        .await
        .unwrap();

    let response = app.get("/readyz").await;

    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "still alive"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn().await;
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/api/v1/institutions/nope").await;

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(response.headers()).starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"shuyuan_http_requests_total{method="GET",route="/healthz",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/institutions/{slug}",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("shuyuan_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_document_describes_every_endpoint() {
    let app = TestApp::spawn().await;

    let response = app.get("/api/openapi.json").await;

    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/sessions", "get"),
        ("/api/v1/me/sessions/{id}", "delete"),
        ("/api/v1/institutions", "post"),
        ("/api/v1/institutions", "get"),
        ("/api/v1/institutions/{slug}", "get"),
        ("/api/v1/institutions/{slug}/members", "post"),
        ("/api/v1/institutions/{slug}/members", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api/v1/me/memberships", "get"),
        ("/api/v1/courses", "post"),
        ("/api/v1/courses", "get"),
        ("/api/v1/courses/{id}", "get"),
        ("/api/v1/courses/{id}", "patch"),
        ("/api/v1/courses/{id}", "delete"),
        ("/api/v1/courses/{id}/files", "get"),
        ("/api/v1/courses/{id}/files", "post"),
        ("/api/v1/courses/{id}/files/{name}", "put"),
        ("/api/v1/files/{id}", "delete"),
        ("/media/{file_id}", "get"),
        ("/media/{file_id}", "head"),
        ("/api/v1/search", "get"),
        ("/api/v1/circles", "post"),
        ("/api/v1/circles", "get"),
        ("/api/v1/circles/{id}", "get"),
        ("/api/v1/circles/{id}/join", "post"),
        ("/api/v1/circles/{id}/leave", "post"),
        ("/api/v1/circles/{id}/messages", "get"),
        ("/api/v1/circles/{id}/live", "get"),
        ("/api/v1/circles/{id}/messages/{seq}", "delete"),
        ("/api/v1/circles/{id}/members/{user_id}", "delete"),
        ("/api/v1/circles/{id}/members/{user_id}", "put"),
        ("/api/v1/circles/{id}/members/{user_id}/mute", "post"),
        ("/api/v1/circles/{id}/invite-code", "post"),
        ("/.well-known/shuyuan", "get"),
        ("/federation/v1/changes", "get"),
        ("/api/v1/peers", "post"),
        ("/api/v1/peers", "get"),
        ("/api/v1/peers/{id}/sync", "post"),
        ("/oai", "get"),
        ("/oai", "post"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        expected.len(),
        "an endpoint is served but not listed here"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn the_web_shell_is_served_with_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;

    let page = app.get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(content_type(page.headers()).starts_with("text/html"));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"id="main""#));

    let script = app.get("/app.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(content_type(script.headers()).contains("javascript"));
    let page_module = app.get("/pages/signin.js").await;
    assert_eq!(page_module.status(), StatusCode::OK);
    let style = app.get("/style.css").await;
    assert!(content_type(style.headers()).starts_with("text/css"));
}

/// Every pooled connection is set up for this server's short statements: on PostgreSQL each
/// run gets a plan for its own values (a generic plan costed on an empty table once scanned
/// 100k rows per feed page) and no JIT (compiling cost 30× the query); on SQLite foreign keys
/// are on.
#[tokio::test]
async fn database_connections_are_set_up_for_short_statements() {
    let app = TestApp::spawn().await;
    let pool = app.db.pool();
    match app.db.backend() {
        shuyuan::db::Backend::Postgres => {
            // Three connections held at once: each was set up, not only the first.
            let mut held = Vec::new();
            for _ in 0..3 {
                held.push(pool.acquire().await.unwrap());
            }
            for conn in &mut held {
                let plans: String = sqlx::query_scalar("SHOW plan_cache_mode")
                    .fetch_one(&mut **conn)
                    .await
                    .unwrap();
                assert_eq!(plans, "force_custom_plan");
                let jit: String = sqlx::query_scalar("SHOW jit")
                    .fetch_one(&mut **conn)
                    .await
                    .unwrap();
                assert_eq!(jit, "off");
            }
        }
        shuyuan::db::Backend::Sqlite => {
            let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(foreign_keys, 1);
        }
    }
}
