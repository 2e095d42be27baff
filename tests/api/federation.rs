//! Federation (SPEC §9): real servers following each other's signed feeds, and fake peers that
//! misbehave.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode as AxumStatus, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shuyuan::federation::identity::Identity;
use shuyuan::federation::record::{Op, signed_bytes};

use crate::helpers::{TestApp, assert_problem};

/// Serves `router` on an ephemeral port; returns its base URL.
async fn serve(listener: tokio::net::TcpListener, router: Router) -> String {
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

async fn ephemeral() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn add_peer(app: &TestApp, admin: &str, url: &str, media: &str) -> Value {
    let response = app
        .post_json_with_token("/api/v1/peers", admin, &json!({"url": url, "media": media}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "adding {url}");
    response.json().await.unwrap()
}

async fn sync(app: &TestApp, admin: &str, peer: &Value) -> reqwest::Response {
    let id = peer["id"].as_str().unwrap();
    app.post_json_with_token(&format!("/api/v1/peers/{id}/sync"), admin, &json!({}))
        .await
}

async fn synced(app: &TestApp, admin: &str, peer: &Value) -> Value {
    let response = sync(app, admin, peer).await;
    assert_eq!(response.status(), StatusCode::OK, "syncing {}", peer["url"]);
    response.json().await.unwrap()
}

async fn peer_state(app: &TestApp, id: &str) -> Value {
    let list: Value = app.get_json("/api/v1/peers").await;
    list["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .expect("the peer is listed")
}

async fn course_status(app: &TestApp, id: &str) -> StatusCode {
    app.get(&format!("/api/v1/courses/{id}")).await.status()
}

/// How many catalog log entries a course has on `app`.
async fn log_entries(app: &TestApp, course_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM catalog_log WHERE course_id = $1")
        .bind(course_id)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

fn media_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8 + 3).collect()
}

#[tokio::test]
async fn a_village_course_reaches_the_province_through_the_county_with_edits_and_withdrawal() {
    let village = TestApp::spawn().await;
    let county = TestApp::spawn().await;
    let province = TestApp::spawn().await;
    let (staff, course_id) = village.course_with_staff().await;
    let county_admin = county.admin().await;
    let province_admin = province.admin().await;

    let known: Value = village.get_json("/.well-known/shuyuan").await;
    assert_eq!(known["id"], village.address.as_str());
    assert_eq!(known["protocol"], 1);
    assert_eq!(known["public_key"].as_str().unwrap().len(), 44);

    let village_peer = add_peer(&county, &county_admin, &village.address, "redirect").await;
    assert_eq!(village_peer["public_key"], known["public_key"]);
    let county_peer = add_peer(&province, &province_admin, &county.address, "redirect").await;

    let report = synced(&county, &county_admin, &village_peer).await;
    assert_eq!(report["rejected"], 0, "{report}");
    let report = synced(&province, &province_admin, &county_peer).await;
    assert_eq!(report["rejected"], 0, "{report}");

    // The village's course is in the province's catalog and search, marked with its origin.
    let course: Value = province
        .get_json(&format!("/api/v1/courses/{course_id}"))
        .await;
    assert_eq!(course["title"], "太极拳入门 Tai chi for beginners");
    assert_eq!(course["origin"], village.address.as_str());
    assert_eq!(course["institution"]["slug"], "xihu-college");
    province.wait_for_index().await;
    let found = province.search("q=太极拳").await;
    assert_eq!(found["hits"][0]["id"], course_id.as_str(), "{found}");
    assert_eq!(found["hits"][0]["origin"], village.address.as_str());

    // The province learnt the village's key from the village itself, through the county.
    let peers: Value = province.get_json("/api/v1/peers").await;
    let village_origin = peers["origins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == village.address.as_str())
        .expect("the village's key is pinned in the province");
    assert_eq!(village_origin["public_key"], known["public_key"]);
    assert_eq!(village_origin["source"], "well-known");
    assert_eq!(peers["peers"][0]["state"], "ok");

    // An edit propagates.
    let edited = village
        .patch_json_with_token(
            &format!("/api/v1/courses/{course_id}"),
            &staff,
            &json!({"title": "八段锦 Baduanjin"}),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    synced(&county, &county_admin, &village_peer).await;
    synced(&province, &province_admin, &county_peer).await;
    let course: Value = province
        .get_json(&format!("/api/v1/courses/{course_id}"))
        .await;
    assert_eq!(course["title"], "八段锦 Baduanjin");
    province.wait_for_index().await;
    assert_eq!(province.search("q=八段锦").await["total"], 1);

    // Syncing again changes nothing: one log entry per version received, no duplicates.
    let again = synced(&province, &province_admin, &county_peer).await;
    assert_eq!(again["applied"], 0, "{again}");
    assert_eq!(log_entries(&province, &course_id).await, 2);

    // A withdrawal propagates.
    let withdrawn = village
        .client
        .delete(village.url(&format!("/api/v1/courses/{course_id}")))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::NO_CONTENT);
    synced(&county, &county_admin, &village_peer).await;
    synced(&province, &province_admin, &county_peer).await;
    assert_eq!(
        course_status(&county, &course_id).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        course_status(&province, &course_id).await,
        StatusCode::NOT_FOUND
    );
    province.wait_for_index().await;
    assert_eq!(province.search("q=八段锦").await["total"], 0);

    // The county never re-imports its own records from a peer that follows it back.
    let province_peer = add_peer(&county, &county_admin, &province.address, "redirect").await;
    let back = synced(&county, &county_admin, &province_peer).await;
    assert_eq!(back["applied"], 0, "{back}");
    assert_eq!(back["rejected"], 0, "{back}");
}

/// PostgreSQL receives a page with `COPY`, whose text format frames rows with tabs and
/// newlines and escapes with backslashes; JSON kept for relaying is full of backslashes too.
#[tokio::test]
async fn text_with_tabs_newlines_and_backslashes_arrives_unchanged_two_hops_away() {
    let village = TestApp::spawn().await;
    let county = TestApp::spawn().await;
    let province = TestApp::spawn().await;
    let (staff, course_id) = village.course_with_staff().await;
    let title = r"C:\课件\N 书院 \t";
    let description = "第一行\n\t缩进 \\N and \\t\r\nlast \\ line \u{1F38B}";
    let edited = village
        .patch_json_with_token(
            &format!("/api/v1/courses/{course_id}"),
            &staff,
            &json!({"title": title, "description": description, "tags": ["a\\b"]}),
        )
        .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let county_admin = county.admin().await;
    let province_admin = province.admin().await;
    let village_peer = add_peer(&county, &county_admin, &village.address, "redirect").await;
    let county_peer = add_peer(&province, &province_admin, &county.address, "redirect").await;
    let report = synced(&county, &county_admin, &village_peer).await;
    assert_eq!(report["applied"], 1, "{report}");
    // The province verifies the village's signature over the record the county kept.
    let report = synced(&province, &province_admin, &county_peer).await;
    assert_eq!(report["applied"], 1, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    for app in [&county, &province] {
        let course: Value = app.get_json(&format!("/api/v1/courses/{course_id}")).await;
        assert_eq!(course["title"], title);
        assert_eq!(course["description"], description);
        assert_eq!(course["tags"], json!(["a\\b"]));
    }
}

#[tokio::test]
async fn the_feed_lists_each_course_once_and_refuses_positions_it_never_gave() {
    let village = TestApp::spawn().await;
    let (staff, course_id) = village.course_with_staff().await;
    for title in ["第二版", "第三版"] {
        let edited = village
            .patch_json_with_token(
                &format!("/api/v1/courses/{course_id}"),
                &staff,
                &json!({"title": title}),
            )
            .await;
        assert_eq!(edited.status(), StatusCode::OK);
    }
    let page = feed_from_start(&village).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "three changes, one course: {page}");
    assert_eq!(entries[0]["origin_version"], 3);
    assert_eq!(entries[0]["course"]["title"], "第三版");
    assert_eq!(page["next"], entries[0]["seq"]);

    // The signature verifies over the canonical record with the published key.
    let known: Value = village.get_json("/.well-known/shuyuan").await;
    let key =
        shuyuan::federation::identity::parse_public_key(known["public_key"].as_str().unwrap())
            .unwrap();
    let bytes = signed_bytes(Op::Upsert, &entries[0]["course"], &village.address, 3);
    assert!(shuyuan::federation::identity::verify(
        &key,
        &bytes,
        entries[0]["signature"].as_str().unwrap()
    ));

    let next = page["next"].as_i64().unwrap();
    let empty: Value = village
        .get_json(&format!("/federation/v1/changes?since={next}"))
        .await;
    assert_eq!(empty["entries"], json!([]));
    assert_eq!(empty["next"], next);

    let beyond = village
        .get(&format!("/federation/v1/changes?since={}", next + 100))
        .await;
    let problem = assert_problem(beyond, StatusCode::BAD_REQUEST).await;
    assert!(problem["type"].as_str().unwrap().ends_with("unknown-since"));
    assert_problem(
        village.get("/federation/v1/changes?since=-1").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_problem(
        village.get("/federation/v1/changes?since=abc").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

/// `app`'s feed from its first change.
async fn feed_from_start(app: &TestApp) -> Value {
    app.get_json("/federation/v1/changes?since=0").await
}

/// Waits until `app`'s publisher has signed every log entry so far.
async fn wait_for_publisher(app: &TestApp) {
    let target = app.catalog.latest_seq().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let position: i64 =
            sqlx::query_scalar("SELECT last_seq FROM publisher_position WHERE singleton = 1")
                .fetch_one(app.db.pool())
                .await
                .unwrap();
        if position >= target {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "publisher stuck at seq {position}, want {target}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_feed_serves_records_signed_when_they_changed_and_signs_those_not_yet_signed() {
    let village = TestApp::spawn().await;
    let (_, course_id) = village.course_with_staff().await;
    wait_for_publisher(&village).await;
    let (version, signature): (i64, String) = sqlx::query_as(
        "SELECT origin_version, signature FROM published_records WHERE course_id = $1",
    )
    .bind(&course_id)
    .fetch_one(village.db.pool())
    .await
    .unwrap();
    assert_eq!(version, 1);
    let page = feed_from_start(&village).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(
        entries[0]["signature"],
        signature.as_str(),
        "served as stored"
    );

    // As if the publisher had fallen behind (the stored record is of an older version), or the
    // record had been signed under this server's former id (its public URL changed): the feed
    // must not serve it, but sign the current one itself.
    for stale in [
        "UPDATE published_records SET origin_version = 0, signature = 'stale' WHERE course_id = $1",
        "UPDATE published_records SET origin = 'http://former.invalid', signature = 'stale' \
         WHERE course_id = $1",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(stale))
            .bind(&course_id)
            .execute(village.db.pool())
            .await
            .unwrap();
        let page = feed_from_start(&village).await;
        let entry = &page["entries"][0];
        assert_eq!(entry["origin_version"], 1);
        assert_eq!(entry["origin"], village.address.as_str());
        let key =
            shuyuan::federation::identity::parse_public_key(entry["origin_key"].as_str().unwrap())
                .unwrap();
        let bytes = signed_bytes(Op::Upsert, &entry["course"], &village.address, 1);
        assert!(
            shuyuan::federation::identity::verify(
                &key,
                &bytes,
                entry["signature"].as_str().unwrap()
            ),
            "{stale}: {entry}"
        );
    }
}

/// A course record as an origin publishes it.
fn record(id: &str, title: &str, updated_at: &str) -> Value {
    json!({
        "id": id,
        "institution": {"slug": "fake-school", "name": "Fake school"},
        "title": title,
        "description": "",
        "subjects": ["health"],
        "audience": ["adults"],
        "level": "beginner",
        "languages": ["zh"],
        "license": "CC-BY-4.0",
        "tags": [],
        "credits": 0.5,
        "region": "zhejiang",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": updated_at,
        "files": []
    })
}

fn with_file(mut course: Value, file_id: &str) -> Value {
    course["files"] = json!([{"id": file_id, "name": "lesson.mp4", "content_type": "video/mp4",
                              "kind": "video", "size": 1000, "sha256": "ab".repeat(32)}]);
    course
}

fn signed_entry(identity: &Identity, seq: i64, course: Value) -> Value {
    let signature = identity.sign(&signed_bytes(Op::Upsert, &course, &identity.server_id, 1));
    json!({
        "seq": seq, "op": "upsert", "course": course, "origin": identity.server_id,
        "origin_key": identity.public_key(), "origin_version": 1, "signature": signature
    })
}

#[derive(Clone)]
struct FakePeer {
    identity: Identity,
    feed: Arc<std::sync::Mutex<Value>>,
    /// 0 serves the feed; 1 answers "not JSON"; 2 cuts the answer short; 3 streams 70 MiB.
    mode: Arc<AtomicUsize>,
}

async fn fake_well_known(State(fake): State<FakePeer>) -> axum::Json<Value> {
    axum::Json(json!({
        "id": fake.identity.server_id, "name": "Fake", "public_url": fake.identity.server_id,
        "public_key": fake.identity.public_key(), "protocol": 1
    }))
}

async fn fake_changes(State(fake): State<FakePeer>, RawQuery(query): RawQuery) -> Response {
    let since_zero = query.unwrap_or_default().contains("since=0");
    let page = if since_zero {
        fake.feed.lock().unwrap().clone()
    } else {
        json!({"origin": fake.identity.server_id, "entries": [], "next": 10})
    };
    let text = page.to_string();
    match fake.mode.load(Ordering::SeqCst) {
        0 => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        1 => "<html>not a feed</html>".into_response(),
        2 => {
            let half = text.as_bytes()[..text.len() / 2].to_vec();
            let stream = futures::stream::iter(vec![
                Ok::<_, std::io::Error>(bytes::Bytes::from(half)),
                Err(std::io::Error::other("killed")),
            ]);
            Response::builder()
                .header(header::CONTENT_LENGTH, text.len())
                .body(Body::from_stream(stream))
                .unwrap()
        }
        _ => {
            let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
            let stream =
                futures::stream::iter((0..70).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
            Response::builder()
                .status(AxumStatus::OK)
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}

#[tokio::test]
async fn tampered_and_malformed_entries_are_rejected_while_the_rest_apply() {
    let province = TestApp::spawn().await;
    let admin = province.admin().await;
    let listener = ephemeral().await;
    let fake_url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::load_or_create(
        &dir.path().join("fake.key"),
        fake_url.clone(),
        "Fake".into(),
    )
    .unwrap();
    let stranger = Identity::load_or_create(
        &dir.path().join("stranger.key"),
        "http://127.0.0.1:9".into(),
        "Stranger".into(),
    )
    .unwrap();

    let good_a = "0190f5a0-0000-7000-8000-00000000000a";
    let tampered = "0190f5a0-0000-7000-8000-00000000000b";
    let good_c = "0190f5a0-0000-7000-8000-00000000000c";
    let bad_signature = "0190f5a0-0000-7000-8000-00000000000d";
    let foreign = "0190f5a0-0000-7000-8000-00000000000e";
    let own = "0190f5a0-0000-7000-8000-00000000000f";
    let future = "0190f5a0-0000-7000-8000-000000000010";
    let owner = "0190f5a0-0000-7000-8000-000000000011";
    let thief = "0190f5a0-0000-7000-8000-000000000012";
    let shared_file = "0190f5a0-0000-7000-8000-0000000000f1";
    let now = "2026-06-01T00:00:00Z";

    let mut changed_after_signing = signed_entry(&identity, 2, record(tampered, "原标题", now));
    changed_after_signing["course"]["title"] = json!("篡改后的标题");
    let mut broken_signature = signed_entry(&identity, 5, record(bad_signature, "坏签名", now));
    broken_signature["signature"] = json!("!!!not base64!!!");
    // Claims another origin, passing on a key that did not sign it.
    let mut relayed = signed_entry(&identity, 6, record(foreign, "外来", now));
    relayed["origin"] = json!(stranger.server_id);
    relayed["origin_key"] = json!(stranger.public_key());
    // Claims to come from the province itself.
    let mut mine = signed_entry(&identity, 7, record(own, "自己的", now));
    mine["origin"] = json!(province.address);
    let feed = json!({
        "origin": fake_url,
        "entries": [
            signed_entry(&identity, 1, record(good_a, "高血压的家庭护理", now)),
            changed_after_signing,
            signed_entry(&identity, 3, record(good_c, "糖尿病饮食", now)),
            {"seq": 4, "nonsense": true},
            broken_signature,
            relayed,
            mine,
            signed_entry(&identity, 8, record(future, "未来", "2999-01-01T00:00:00Z")),
            signed_entry(&identity, 9, with_file(record(owner, "有视频的课", now), shared_file)),
            // Claims the file of the course before it.
            signed_entry(&identity, 10, with_file(record(thief, "偷文件", now), shared_file)),
        ],
        "next": 10
    });
    let fake = FakePeer {
        identity,
        feed: Arc::new(std::sync::Mutex::new(feed)),
        mode: Arc::new(AtomicUsize::new(0)),
    };
    let router = Router::new()
        .route("/.well-known/shuyuan", get(fake_well_known))
        .route("/federation/v1/changes", get(fake_changes))
        .with_state(fake.clone());
    serve(listener, router).await;

    let peer = add_peer(&province, &admin, &fake_url, "redirect").await;

    // Feeds that are not feeds fail the sync, change nothing, and are reported.
    // (A cut-off answer reads as "broke off" or, when it dies before its head is complete,
    // as a closed connection.)
    for (mode, expect) in [
        (1, &["feed page"][..]),
        (2, &["broke off", "connection closed"][..]),
        (3, &["longer than"][..]),
    ] {
        fake.mode.store(mode, Ordering::SeqCst);
        let failed = sync(&province, &admin, &peer).await;
        let problem = assert_problem(failed, StatusCode::BAD_GATEWAY).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            expect.iter().any(|e| detail.contains(e)),
            "mode {mode}: {problem}"
        );
        let state = peer_state(&province, peer["id"].as_str().unwrap()).await;
        assert_eq!(state["state"], "failing");
        assert_eq!(state["last_seq"], 0);
        assert_eq!(
            state["last_error"].as_str(),
            Some(detail.trim_start_matches("the sync with the peer failed: "))
        );
    }
    assert_eq!(
        course_status(&province, good_a).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(province.get("/healthz").await.status(), StatusCode::OK);

    fake.mode.store(0, Ordering::SeqCst);
    let report = synced(&province, &admin, &peer).await;
    assert_eq!(report["received"], 10, "{report}");
    assert_eq!(report["applied"], 3, "{report}");
    assert_eq!(report["skipped"], 1, "{report}");
    assert_eq!(report["rejected"], 6, "{report}");
    assert_eq!(report["last_seq"], 10);

    assert_eq!(course_status(&province, good_a).await, StatusCode::OK);
    assert_eq!(course_status(&province, good_c).await, StatusCode::OK);
    assert_eq!(course_status(&province, owner).await, StatusCode::OK);
    for refused in [tampered, bad_signature, foreign, own, future, thief] {
        assert_eq!(
            course_status(&province, refused).await,
            StatusCode::NOT_FOUND,
            "{refused}"
        );
    }
    let state = peer_state(&province, peer["id"].as_str().unwrap()).await;
    assert_eq!(state["state"], "ok");
    assert_eq!(state["records_received"], 10);
    assert_eq!(state["records_rejected"], 6);
    assert!(state["last_rejection"].as_str().is_some());
    // The stranger's key was never pinned: its entry did not verify.
    let peers: Value = province.get_json("/api/v1/peers").await;
    assert!(
        !peers["origins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == "http://127.0.0.1:9"),
        "{peers}"
    );
    province.wait_for_index().await;
    let found = province.search("q=糖尿病").await;
    assert_eq!(found["hits"][0]["id"], good_c, "{found}");
}

#[tokio::test]
async fn a_sync_cut_off_mid_page_resumes_with_nothing_lost_or_duplicated() {
    let village = TestApp::spawn().await;
    let (staff, _) = village.course_with_staff().await;
    for n in 0..24 {
        village
            .create_course(&staff, &format!("社区课程 {n}"))
            .await;
    }
    let province = TestApp::spawn().await;
    let admin = province.admin().await;

    // A relay in front of the village that asks for pages of 10 and, on its second page,
    // dies halfway through the answer, like a server killed mid-sync.
    #[derive(Clone)]
    struct Relay {
        village: String,
        pages: Arc<AtomicUsize>,
        kill_on_page: Arc<AtomicUsize>,
    }
    async fn relay(State(relay): State<Relay>, uri: axum::http::Uri) -> Response {
        let path = uri.path();
        let query = uri.query().unwrap_or("").replace("limit=500", "limit=10");
        let upstream = reqwest::get(format!("{}{path}?{query}", relay.village))
            .await
            .unwrap();
        let status = upstream.status().as_u16();
        let text = upstream.text().await.unwrap();
        if path.starts_with("/federation/") {
            let page = relay.pages.fetch_add(1, Ordering::SeqCst) + 1;
            if page == relay.kill_on_page.load(Ordering::SeqCst) {
                let half = text.as_bytes()[..text.len() / 2].to_vec();
                let stream = futures::stream::iter(vec![
                    Ok::<_, std::io::Error>(bytes::Bytes::from(half)),
                    Err(std::io::Error::other("killed")),
                ]);
                return Response::builder()
                    .header(header::CONTENT_LENGTH, text.len())
                    .body(Body::from_stream(stream))
                    .unwrap();
            }
        }
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(text))
            .unwrap()
    }
    let relay_state = Relay {
        village: village.address.clone(),
        pages: Arc::new(AtomicUsize::new(0)),
        kill_on_page: Arc::new(AtomicUsize::new(2)),
    };
    let relay_url = serve(
        ephemeral().await,
        Router::new()
            .fallback(relay)
            .with_state(relay_state.clone()),
    )
    .await;

    let peer = add_peer(&province, &admin, &relay_url, "redirect").await;
    let cut = sync(&province, &admin, &peer).await;
    assert_problem(cut, StatusCode::BAD_GATEWAY).await;
    let state = peer_state(&province, peer["id"].as_str().unwrap()).await;
    assert_eq!(state["state"], "failing");
    assert!(state["last_seq"].as_i64().unwrap() > 0);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM courses")
        .fetch_one(province.db.pool())
        .await
        .unwrap();
    assert_eq!(applied, 10, "the first page stays applied");

    // "Restarted": the next sync resumes at the second page, not at the start.
    let resumed = synced(&province, &admin, &peer).await;
    assert_eq!(resumed["applied"], 15, "{resumed}");
    assert_eq!(resumed["skipped"], 0, "{resumed}");
    // Pages: 1 applied, 2 cut; then 2 again, 3, and the empty answer.
    assert_eq!(relay_state.pages.load(Ordering::SeqCst), 5);

    let courses: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM courses")
        .fetch_one(province.db.pool())
        .await
        .unwrap();
    assert_eq!(courses, 25, "every course arrived");
    let duplicated: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT course_id FROM catalog_log GROUP BY course_id \
         HAVING COUNT(*) > 1) AS d",
    )
    .fetch_one(province.db.pool())
    .await
    .unwrap();
    assert_eq!(duplicated, 0, "no course applied twice");
    let state = peer_state(&province, peer["id"].as_str().unwrap()).await;
    assert_eq!(state["state"], "ok");
    assert_eq!(
        state["last_seq"].as_i64().unwrap(),
        village.catalog.latest_seq().await.unwrap()
    );
}

#[tokio::test]
async fn a_mirrored_video_plays_with_ranges_in_the_province_after_its_origin_is_gone() {
    let village = TestApp::spawn().await;
    let county = TestApp::spawn().await;
    let province = TestApp::spawn().await;
    let (staff, course_id) = village.course_with_staff().await;
    let bytes = media_bytes(400_000);
    let uploaded = village
        .put_file(&staff, &course_id, "lesson.mp4", bytes.clone())
        .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let file: Value = uploaded.json().await.unwrap();
    let media_path = format!("/media/{}", file["id"].as_str().unwrap());

    let county_admin = county.admin().await;
    let province_admin = province.admin().await;
    let village_peer = add_peer(&county, &county_admin, &village.address, "redirect").await;
    let county_peer = add_peer(&province, &province_admin, &county.address, "mirror").await;
    synced(&county, &county_admin, &village_peer).await;
    synced(&province, &province_admin, &county_peer).await;

    // The county redirects to the origin.
    let redirected = county.get(&media_path).await;
    assert_eq!(redirected.status(), StatusCode::FOUND);
    assert_eq!(
        redirected.headers()["location"],
        village.url(&media_path).as_str()
    );

    // The province streams the first request from the origin, ranges passed through.
    let ranged = province
        .client
        .get(province.url(&media_path))
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.headers()["content-range"], "bytes 1000-1999/400000");
    assert_eq!(ranged.bytes().await.unwrap(), &bytes[1000..2000]);

    // Meanwhile the province copies the file; wait for the copy, bounded in time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stored: i64 = sqlx::query_scalar("SELECT stored FROM course_files WHERE id = $1")
            .bind(file["id"].as_str().unwrap())
            .fetch_one(province.db.pool())
            .await
            .unwrap();
        if stored == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mirror never completed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // With the village and the county gone, the province still plays and seeks.
    drop(village);
    drop(county);
    let ranged = province
        .client
        .get(province.url(&media_path))
        .header("range", "bytes=399000-")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap(), &bytes[399_000..]);
    let whole = province.get(&media_path).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn peers_are_for_administrators_and_bad_addresses_are_clear_errors() {
    let village = TestApp::spawn().await;
    let county = TestApp::spawn().await;
    let admin = county.admin().await;
    let resident = county.resident("li@example.org").await;

    let anonymous = county
        .post_json("/api/v1/peers", &json!({"url": village.address}))
        .await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let not_admin = county
        .post_json_with_token("/api/v1/peers", &resident, &json!({"url": village.address}))
        .await;
    assert_problem(not_admin, StatusCode::FORBIDDEN).await;

    for (body, status) in [
        (
            json!({"url": "county.example"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"url": county.address}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"url": village.address, "media": "teleport"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"url": "http://127.0.0.1:9"}),
            StatusCode::BAD_GATEWAY,
        ),
        (
            json!({"address": village.address}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = county
            .post_json_with_token("/api/v1/peers", &admin, &body)
            .await;
        assert_problem(response, status).await;
    }

    // A peer address that redirects elsewhere is reported, not followed.
    let redirecting = serve(
        ephemeral().await,
        Router::new().fallback(|| async {
            (
                AxumStatus::FOUND,
                [(header::LOCATION, "http://elsewhere.example/")],
            )
        }),
    )
    .await;
    let response = county
        .post_json_with_token("/api/v1/peers", &admin, &json!({"url": redirecting}))
        .await;
    let problem = assert_problem(response, StatusCode::BAD_GATEWAY).await;
    assert!(problem["detail"].as_str().unwrap().contains("redirects"));

    add_peer(&county, &admin, &village.address, "mirror").await;
    let twice = county
        .post_json_with_token("/api/v1/peers", &admin, &json!({"url": village.address}))
        .await;
    assert_problem(twice, StatusCode::CONFLICT).await;

    let unknown = county
        .post_json_with_token(
            "/api/v1/peers/0190f5a0-0000-7000-8000-000000000001/sync",
            &admin,
            &json!({}),
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn operators_add_list_and_sync_peers_from_the_command_line() {
    let village = TestApp::spawn().await;
    village.course_with_staff().await;
    let province = TestApp::spawn().await;

    // The servers answer on this test's runtime: the command runs on a thread of its own.
    let run = |args: Vec<String>| {
        let mut command =
            province.cli_command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };
    let added = run(vec![
        "peer".into(),
        "add".into(),
        village.address.clone(),
        "--media".into(),
        "mirror".into(),
    ])
    .await
    .unwrap();
    assert!(added.status.success(), "{added:?}");
    let listed = run(vec!["peer".into(), "list".into()]).await.unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains(&village.address), "{text}");
    assert!(text.contains("media mirror"), "{text}");
    let synced = run(vec!["peer".into(), "sync".into()]).await.unwrap();
    assert!(synced.status.success(), "{synced:?}");
    let text = String::from_utf8_lossy(&synced.stdout);
    assert!(text.contains("1 applied"), "{text}");
    let courses: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM courses")
        .fetch_one(province.db.pool())
        .await
        .unwrap();
    assert_eq!(courses, 1);

    let bad = run(vec![
        "peer".into(),
        "add".into(),
        "http://127.0.0.1:9".into(),
    ])
    .await
    .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("127.0.0.1:9"));
}

#[tokio::test]
async fn the_harvester_pulls_peers_in_the_background() {
    let village = TestApp::spawn().await;
    let (_, course_id) = village.course_with_staff().await;
    let county = TestApp::spawn_with(|config| {
        config.federation.harvest = true;
        config.federation.poll_interval = 1;
    })
    .await;
    let admin = county.admin().await;
    add_peer(&county, &admin, &village.address, "redirect").await;
    // Nobody asks for a sync: the course arrives on its own, bounded in time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while course_status(&county, &course_id).await != StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "the harvester never pulled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_page_of_many_courses_and_files_arrives_whole() {
    // One feed page of 61 courses, 30 of them with a file: more rows than one multi-row
    // statement takes on SQLite (`store::rows_per_statement`), so the page is written in
    // several statements per table, the last of each partly filled.
    let village = TestApp::spawn().await;
    let (staff, _) = village.course_with_staff().await;
    for n in 0..60 {
        let course = village.create_course(&staff, &format!("书法课 {n}")).await;
        if n % 2 == 0 {
            let stored = village
                .put_file(
                    &staff,
                    course["id"].as_str().unwrap(),
                    "notes.txt",
                    format!("第{n}课的讲义").into_bytes(),
                )
                .await;
            assert_eq!(stored.status(), StatusCode::CREATED);
        }
    }
    let province = TestApp::spawn().await;
    let admin = province.admin().await;
    let peer = add_peer(&province, &admin, &village.address, "redirect").await;

    let report = synced(&province, &admin, &peer).await;
    assert_eq!(report["applied"], 61, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    let pool = province.db.pool();
    for (table, want) in [
        ("courses", 61),
        ("course_files", 30),
        ("catalog_log", 61),
        ("federated_records", 61),
    ] {
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(rows, want, "rows in {table}");
    }
    province.wait_for_index().await;
    assert_eq!(province.search("q=书法课").await["total"], 60);
}
