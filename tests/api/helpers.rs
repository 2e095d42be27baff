//! `TestApp`: the real server on an ephemeral port with its own fresh database and data
//! directory, reached over HTTP with a real client.
//!
//! The backend follows `TEST_DATABASE_URL`: unset, each test gets a SQLite file in a temporary
//! directory; set to a `postgres://` URL (of any database the role may connect to), each test
//! creates a database of its own there, and drops it afterwards. A URL that is set but
//! unreachable fails the test: it never falls back to SQLite.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shuyuan::Config;
use shuyuan::accounts::{self, NewAccount};
use shuyuan::catalog::Catalog;
use shuyuan::db::Db;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

/// A password that passes the strength check.
pub const PASSWORD: &str = "slow river, tall mountain 1987";

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    /// Keeps cookies, never follows redirects.
    pub client: reqwest::Client,
    pub db: Db,
    pub catalog: Catalog,
    /// The server's own state, for calling library functions the way `main` does.
    pub state: shuyuan::state::AppState,
    pub config: Config,
    shutdown: CancellationToken,
    postgres_database: Option<(String, String)>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server after `customize` has adjusted its configuration.
    pub async fn spawn_with(customize: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let mut config = Config::from_toml_str(include_str!("../../config/test.toml"))
            .expect("config/test.toml parses");
        config.server.data_dir = data_dir.path().to_path_buf();
        let postgres_database = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                let (database_url, name) = create_postgres_database(&url).await;
                config.database.url = database_url;
                Some((url, name))
            }
            _ => {
                config.database.url =
                    format!("sqlite://{}", data_dir.path().join("shuyuan.db").display());
                None
            }
        };
        if let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT")
            && !endpoint.is_empty()
        {
            config.storage = s3_bucket(&endpoint).await;
        }
        customize(&mut config);

        let app = shuyuan::Application::build(config.clone())
            .await
            .expect("the server builds");
        let address = format!("http://{}", app.local_addr());
        let db = app.state().db.clone();
        let catalog = app.state().catalog.clone();
        let state = app.state().clone();
        let shutdown = app.shutdown_token();
        tokio::spawn(app.run_until_stopped());

        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        TestApp {
            address,
            client,
            db,
            catalog,
            state,
            config,
            shutdown,
            postgres_database,
            _data_dir: data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// `GET path`, its body parsed as JSON (a problem document too: check the status apart).
    pub async fn get_json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("a JSON body")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn patch_json_with_token(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.json_with_token(reqwest::Method::PATCH, path, token, body)
            .await
    }

    pub async fn post_json_with_token(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.json_with_token(reqwest::Method::POST, path, token, body)
            .await
    }

    async fn json_with_token(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers through the API and returns the user JSON.
    pub async fn register(&self, email: &str, display_name: &str) -> Value {
        let response = self
            .post_json(
                "/api/v1/auth/register",
                &json!({"email": email, "password": PASSWORD, "display_name": display_name}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {email}"
        );
        response.json().await.expect("user JSON")
    }

    /// Signs in with a client of its own (so this client's cookies stay untouched) and
    /// returns the bearer token.
    pub async fn login(&self, email: &str) -> String {
        let response = reqwest::Client::new()
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::OK, "signing in {email}");
        let body: Value = response.json().await.expect("login JSON");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Registers and signs in a resident; returns the token.
    pub async fn resident(&self, email: &str) -> String {
        self.register(email, email.split('@').next().unwrap_or("resident"))
            .await;
        self.login(email).await
    }

    /// Creates a site administrator the way an operator does (not through the API, which
    /// cannot grant admin) and returns a token.
    pub async fn admin(&self) -> String {
        let email = "admin@example.org";
        accounts::create_account(
            &self.db,
            NewAccount {
                email,
                display_name: "Site admin",
                password: PASSWORD,
                is_admin: true,
            },
        )
        .await
        .expect("admin created");
        self.login(email).await
    }

    /// An institution with a staff member and a course; returns (staff token, course id).
    pub async fn course_with_staff(&self) -> (String, String) {
        let admin = self.admin().await;
        self.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
            .await;
        let staff = self.resident("teacher@example.org").await;
        let added = self
            .post_json_with_token(
                "/api/v1/institutions/xihu-college/members",
                &admin,
                &json!({"email": "teacher@example.org", "role": "staff"}),
            )
            .await;
        assert_eq!(added.status(), StatusCode::CREATED);
        let course = self
            .post_json_with_token(
                "/api/v1/courses",
                &staff,
                &json!({"institution": "xihu-college", "title": "太极拳入门 Tai chi for beginners", "subjects": ["fitness"], "audience": ["seniors"], "languages": ["zh", "en"]}),
            )
            .await;
        assert_eq!(course.status(), StatusCode::CREATED);
        let course: Value = course.json().await.expect("course JSON");
        (staff, course["id"].as_str().expect("id").to_owned())
    }

    /// Creates a course titled `title` at `xihu-college` (see [`TestApp::course_with_staff`])
    /// as `staff`; returns its JSON.
    pub async fn create_course(&self, staff: &str, title: &str) -> Value {
        let created = self
            .post_json_with_token(
                "/api/v1/courses",
                staff,
                &json!({"institution": "xihu-college", "title": title}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        created.json().await.expect("course JSON")
    }

    /// Waits until the search index has applied every catalog change made so far. Indexing
    /// is asynchronous by design; this polls the index's committed `seq`, bounded in time.
    pub async fn wait_for_index(&self) {
        let target = self.catalog.latest_seq().await.expect("latest seq");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let applied = self
                .state
                .search
                .snapshot()
                .applied_seq()
                .expect("applied seq");
            if applied >= target {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "index stuck at seq {applied}, want {target}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Runs the `shuyuan` binary against this server's database, object store and index, as an
    /// operator on the same machine would.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command(args).output().expect("the binary runs")
    }

    pub fn cli_command(&self, args: &[&str]) -> std::process::Command {
        let storage = &self.config.storage;
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_shuyuan"));
        command
            .args(["--database-url", &self.config.database.url])
            .args([
                "--data-dir",
                self.config.server.data_dir.to_str().expect("utf-8 path"),
            ])
            .args(args)
            .env("SHUYUAN_STORAGE__URL", &storage.url)
            .env("SHUYUAN_STORAGE__S3_ENDPOINT", &storage.s3_endpoint)
            .env("SHUYUAN_STORAGE__S3_REGION", &storage.s3_region)
            .env(
                "SHUYUAN_STORAGE__S3_ACCESS_KEY_ID",
                &storage.s3_access_key_id,
            )
            .env(
                "SHUYUAN_STORAGE__S3_SECRET_ACCESS_KEY",
                &storage.s3_secret_access_key,
            )
            .env(
                "SHUYUAN_STORAGE__S3_ALLOW_HTTP",
                storage.s3_allow_http.to_string(),
            )
            .env("SHUYUAN_SERVER__PUBLIC_URL", &self.address)
            .env("RUST_LOG", "warn");
        command
    }

    /// Starts a second server on the same database and object store (a cluster node), with
    /// its own data directory and search index.
    pub async fn spawn_second_node(&self) -> TestApp {
        let database_url = self.config.database.url.clone();
        let storage = self.config.storage.clone();
        // Every node of a cluster signs with the same key.
        let key_file = self.config.key_file().display().to_string();
        TestApp::spawn_with(move |config| {
            config.database.url = database_url;
            config.storage = storage;
            config.federation.key_file = key_file;
            config.search.poll_interval_ms = 50;
        })
        .await
    }

    /// Waits until no file is waiting for text extraction, bounded in time.
    pub async fn wait_for_extraction(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM course_files WHERE extraction IN ('pending', 'running')",
            )
            .fetch_one(self.db.pool())
            .await
            .expect("count");
            if waiting == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "text extraction never finished"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Searches and returns the response JSON, asserting 200.
    pub async fn search(&self, query: &str) -> Value {
        let response = self.get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(response.status(), StatusCode::OK, "search {query}");
        response.json().await.expect("search JSON")
    }

    /// Uploads `bytes` as `name` with a raw PUT.
    pub async fn put_file(
        &self,
        token: &str,
        course_id: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/api/v1/courses/{course_id}/files/{name}")))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .expect("request sent")
    }

    /// Registers an institution as `admin_token` and returns its JSON.
    pub async fn institution(&self, admin_token: &str, slug: &str, region: &str) -> Value {
        let response = self
            .post_json_with_token(
                "/api/v1/institutions",
                admin_token,
                &json!({"slug": slug, "name": format!("{slug} college"), "kind": "county_college", "region": region}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "creating {slug}");
        response.json().await.expect("institution JSON")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some((admin_url, name)) = self.postgres_database.take() {
            // Drop runs inside the test's runtime, so the clean-up gets a thread and runtime
            // of its own. FORCE ends the server's pooled connections.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await {
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join()
            .ok();
        }
    }
}

/// A fresh bucket on the S3-compatible server at `endpoint`, and the storage settings for it.
/// The server is set up without authentication checks (moto), so any credentials do.
async fn s3_bucket(endpoint: &str) -> shuyuan::config::StorageConfig {
    let bucket = format!("shuyuan-test-{}", uuid::Uuid::new_v4().simple());
    let response = reqwest::Client::new()
        .put(format!("{}/{bucket}", endpoint.trim_end_matches('/')))
        .send()
        .await
        .unwrap_or_else(|e| panic!("TEST_S3_ENDPOINT={endpoint} is set but unreachable: {e}"));
    assert!(
        response.status().is_success(),
        "creating bucket {bucket}: {}",
        response.status()
    );
    shuyuan::config::StorageConfig {
        url: format!("s3://{bucket}"),
        s3_endpoint: endpoint.to_owned(),
        s3_region: "us-east-1".into(),
        s3_access_key_id: "test".into(),
        s3_secret_access_key: "test".into(),
        s3_allow_http: true,
        ..Default::default()
    }
}

/// Creates `shuyuan_test_<uuid>` next to the database in `admin_url` and returns its URL.
async fn create_postgres_database(admin_url: &str) -> (String, String) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}"));
    let name = format!("shuyuan_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("creating the test database");
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    (format!("{host_part}/{name}{query}"), name)
}

/// Asserts a problem+json response with `status` and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem JSON");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("/problems/")),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}

/// The field names of a 422's `errors`.
pub fn failing_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `shuyuan serve` in `dir` and returns the process and its address once it listens.
pub fn start_server(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shuyuan"))
        .current_dir(dir)
        .env("SHUYUAN_SERVER__LISTEN", "127.0.0.1:0")
        .env("SHUYUAN_LOG__FORMAT", "json")
        .env("SHUYUAN_LOG__LEVEL", "info")
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let listen = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let entry: Value = serde_json::from_str(&line).ok()?;
            (entry["fields"]["message"] == "shuyuan is serving")
                .then(|| entry["fields"]["listen"].as_str().unwrap().to_owned())
        })
        .expect("the server starts");
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (child, format!("http://{listen}"))
}
