//! Upload into the object store and streaming out of it, on the local directory or the
//! S3-compatible server (`TEST_S3_ENDPOINT`).

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, assert_problem, failing_fields};

/// Bytes that no magic-number check recognises, with a recognisable pattern.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"abcdefghij"[i % 10]).collect()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The objects in the store. For the local directory, also checks that nothing else is left
/// in it: an upload's staging file, which the store's listing does not show, would be a leak.
async fn stored_object_count(app: &TestApp) -> usize {
    let listed = app.catalog.media().list_files().await.unwrap().len();
    if app.config.storage.url.is_empty() {
        let on_disk = files_under(&app.config.server.data_dir.join("objects"));
        assert_eq!(
            on_disk.len(),
            listed,
            "files in the object directory that are not objects: {on_disk:?}"
        );
    }
    listed
}

/// `GET /api/v1/courses/{id}/files`, as JSON.
async fn course_files(app: &TestApp, course_id: &str) -> Value {
    app.get_json(&format!("/api/v1/courses/{course_id}/files"))
        .await
}

async fn pending_uploads(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM pending_uploads")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_raw_upload_is_stored_and_streams_back_with_ranges() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let bytes = payload(300_000);

    let uploaded = app
        .put_file(&staff, &course_id, "lesson%201.mp3", bytes.clone())
        .await;

    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let file: Value = uploaded.json().await.unwrap();
    assert_eq!(file["name"], "lesson 1.mp3");
    assert_eq!(file["size"], 300_000);
    assert_eq!(file["sha256"], hex_sha256(&bytes));
    assert_eq!(file["content_type"], "audio/mpeg");
    assert_eq!(file["kind"], "audio");
    let url = file["url"].as_str().unwrap().to_owned();

    let full = app.get(&url).await;
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.headers()[CONTENT_TYPE], "audio/mpeg");
    assert!(
        full.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(
        full.headers()[ETAG].to_str().unwrap(),
        format!("\"{}\"", hex_sha256(&bytes))
    );
    assert!(full.headers().contains_key(LAST_MODIFIED));
    assert_eq!(full.bytes().await.unwrap().as_ref(), bytes.as_slice());

    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=299990-", 299_990, 299_999),
        ("bytes=-5", 299_995, 299_999),
    ] {
        let partial = app
            .client
            .get(app.url(&url))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            partial.headers()[CONTENT_RANGE].to_str().unwrap(),
            format!("bytes {start}-{end}/300000")
        );
        assert_eq!(
            partial.bytes().await.unwrap().as_ref(),
            &bytes[start..=end],
            "{range}"
        );
    }

    let listed = course_files(&app, &course_id).await;
    assert_eq!(listed["files"][0]["id"], file["id"]);
    let course: Value = app.get_json(&format!("/api/v1/courses/{course_id}")).await;
    assert_eq!(course["version"], 2, "a new file is a change to the course");
}

#[tokio::test]
async fn bad_and_impossible_ranges_and_validators() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let file: Value = app
        .put_file(&staff, &course_id, "notes.txt", payload(100))
        .await
        .json()
        .await
        .unwrap();
    let url = app.url(file["url"].as_str().unwrap());
    let get = |headers: Vec<(&'static str, String)>| {
        let mut request = app.client.get(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };

    for ignored in ["bytes=5-1", "bytes=abc", "bytes=0-0,5-9"] {
        let response = get(vec![("range", ignored.into())]).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{ignored}");
        assert_eq!(response.bytes().await.unwrap().len(), 100, "{ignored}");
    }
    for impossible in ["bytes=100-", "bytes=99999999999999999999999-"] {
        let unsatisfiable = get(vec![("range", impossible.into())]).await.unwrap();
        assert_eq!(
            unsatisfiable.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{impossible}"
        );
        assert_eq!(unsatisfiable.headers()[CONTENT_RANGE], "bytes */100");
    }

    let etag = file["sha256"].as_str().map(|h| format!("\"{h}\"")).unwrap();
    let not_modified = get(vec![("if-none-match", etag.clone())]).await.unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    let last_modified = get(vec![]).await.unwrap().headers()[LAST_MODIFIED]
        .to_str()
        .unwrap()
        .to_owned();
    let since = get(vec![("if-modified-since", last_modified)])
        .await
        .unwrap();
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);
    let if_range_ok = get(vec![("range", "bytes=0-9".into()), ("if-range", etag)])
        .await
        .unwrap();
    assert_eq!(if_range_ok.status(), StatusCode::PARTIAL_CONTENT);
    let if_range_stale = get(vec![
        ("range", "bytes=0-9".into()),
        ("if-range", "\"stale\"".into()),
    ])
    .await
    .unwrap();
    assert_eq!(if_range_stale.status(), StatusCode::OK);

    let head = app.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "100");
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_multipart_upload_is_stored_under_its_file_name() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(payload(5000)).file_name("讲义.md"),
    );

    let response = app
        .client
        .post(app.url(&format!("/api/v1/courses/{course_id}/files")))
        .bearer_auth(&staff)
        .multipart(form)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["name"], "讲义.md");
    assert_eq!(file["kind"], "document");
    let missing_part = app
        .client
        .post(app.url(&format!("/api/v1/courses/{course_id}/files")))
        .bearer_auth(&staff)
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_problem(missing_part, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn the_content_digest_is_checked_and_a_mismatch_stores_nothing() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let bytes = payload(10_000);
    let digest = |data: &[u8]| {
        format!(
            "sha-256=:{}:",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
        )
    };
    let url = app.url(&format!("/api/v1/courses/{course_id}/files/a.txt"));

    let wrong = app
        .client
        .put(&url)
        .bearer_auth(&staff)
        .header("content-digest", digest(b"something else"))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let problem = assert_problem(wrong, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["type"], "/problems/digest-mismatch");
    let files = course_files(&app, &course_id).await;
    assert_eq!(files["files"], serde_json::json!([]));
    assert_eq!(stored_object_count(&app).await, 0);

    let right = app
        .client
        .put(&url)
        .bearer_auth(&staff)
        .header("content-digest", digest(&bytes))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn uploads_over_the_limit_are_413_and_leave_nothing() {
    let app = TestApp::spawn_with(|config| config.limits.max_upload_bytes = 50_000).await;
    let (staff, course_id) = app.course_with_staff().await;

    let declared = app
        .put_file(&staff, &course_id, "big.txt", payload(60_000))
        .await;
    assert_problem(declared, StatusCode::PAYLOAD_TOO_LARGE).await;

    // Chunked, so the size is only discovered while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..6).map(|_| Ok(payload(10_000))).collect();
    let streamed = app
        .client
        .put(app.url(&format!("/api/v1/courses/{course_id}/files/big.txt")))
        .bearer_auth(&staff)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(streamed, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(stored_object_count(&app).await, 0);
}

#[tokio::test]
async fn bad_names_empty_files_and_disguised_executables_are_refused() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;

    for name in ["..%2F..%2Fetc%2Fpasswd", "nul%00byte.txt", &"x".repeat(300)] {
        let response = app.put_file(&staff, &course_id, name, payload(10)).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(failing_fields(&problem), ["name"], "{name}");
    }
    let empty = app
        .put_file(&staff, &course_id, "empty.txt", Vec::new())
        .await;
    assert_eq!(
        assert_problem(empty, StatusCode::UNPROCESSABLE_ENTITY).await["type"],
        "/problems/empty-file"
    );
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0".to_vec();
    elf.extend(payload(20_000));
    let disguised = app.put_file(&staff, &course_id, "lesson.mp4", elf).await;
    assert_eq!(
        assert_problem(disguised, StatusCode::UNPROCESSABLE_ENTITY).await["type"],
        "/problems/content-mismatch"
    );
    assert_eq!(stored_object_count(&app).await, 0);
}

#[tokio::test]
async fn uploads_need_an_existing_course_and_staff_rights() {
    let app = TestApp::spawn().await;
    let (_, course_id) = app.course_with_staff().await;
    let outsider = app.resident("outsider@example.org").await;

    let forbidden = app
        .put_file(&outsider, &course_id, "a.txt", payload(10))
        .await;
    assert_problem(forbidden, StatusCode::FORBIDDEN).await;
    let missing = app
        .put_file(
            &outsider,
            &uuid::Uuid::new_v4().to_string(),
            "a.txt",
            payload(10),
        )
        .await;
    assert_problem(missing, StatusCode::NOT_FOUND).await;
    let anonymous = app
        .client
        .put(app.url(&format!("/api/v1/courses/{course_id}/files/a.txt")))
        .body(payload(10))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn identical_bytes_are_idempotent_and_new_bytes_replace_the_old_object() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;

    let first: Value = app
        .put_file(&staff, &course_id, "a.txt", payload(1000))
        .await
        .json()
        .await
        .unwrap();
    let again = app
        .put_file(&staff, &course_id, "a.txt", payload(1000))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(stored_object_count(&app).await, 1);
    let first_url = first["url"].as_str().unwrap();
    assert_eq!(app.get(first_url).await.status(), StatusCode::OK);

    let replaced = app
        .put_file(&staff, &course_id, "a.txt", payload(2000))
        .await;
    assert_eq!(replaced.status(), StatusCode::CREATED);
    let replaced: Value = replaced.json().await.unwrap();
    assert_ne!(replaced["id"], first["id"]);
    assert_eq!(stored_object_count(&app).await, 1, "the old object is gone");
    assert_problem(app.get(first_url).await, StatusCode::NOT_FOUND).await;

    let replaced_url = replaced["url"].as_str().unwrap();
    assert_eq!(app.get(replaced_url).await.status(), StatusCode::OK);
    let deleted = app
        .client
        .delete(app.url(&format!(
            "/api/v1/files/{}",
            replaced["id"].as_str().unwrap()
        )))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(stored_object_count(&app).await, 0);
    assert_problem(app.get(replaced_url).await, StatusCode::NOT_FOUND).await;
}

/// A raw `PUT` of a file announcing `content_length` bytes, of which only `first` is sent: an
/// upload left under way, as a slow or vanishing client leaves it.
async fn start_raw_put(
    app: &TestApp,
    staff: &str,
    course_id: &str,
    name: &str,
    content_length: usize,
    first: &[u8],
) -> tokio::net::TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "PUT /api/v1/courses/{course_id}/files/{name} HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {staff}\r\nContent-Length: {content_length}\r\n\
         Connection: close\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(first).await.unwrap();
    socket
}

#[tokio::test]
async fn a_client_that_hangs_up_halfway_leaves_no_row_and_the_sweep_leaves_no_object() {
    let app = TestApp::spawn_with(|config| config.storage.sweep_grace_seconds = 0).await;
    let (staff, course_id) = app.course_with_staff().await;

    let socket = start_raw_put(
        &app,
        &staff,
        &course_id,
        "half.txt",
        10_000_000,
        &payload(6 * 1024 * 1024),
    )
    .await;
    drop(socket);

    // The server notices the hang-up when the body stream fails; wait for it to clean up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pending = pending_uploads(&app).await;
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the interrupted upload was never cleaned up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.catalog.sweep().await.unwrap();

    let files = course_files(&app, &course_id).await;
    assert_eq!(files["files"], serde_json::json!([]));
    assert_eq!(stored_object_count(&app).await, 0);
}

#[tokio::test]
async fn a_slow_upload_older_than_the_sweep_grace_survives_the_sweep() {
    let app = TestApp::spawn_with(|config| config.storage.sweep_grace_seconds = 3600).await;
    let (staff, course_id) = app.course_with_staff().await;
    let body = payload(8 * 1024 * 1024);

    let mut socket = start_raw_put(
        &app,
        &staff,
        &course_id,
        "slow.txt",
        body.len(),
        &body[..6 * 1024 * 1024],
    )
    .await;
    // The upload is under way: its pending row is there and, on the local store, its bytes
    // are reaching the disk.
    let local = app.config.storage.url.is_empty();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pending = pending_uploads(&app).await;
        let writing =
            !local || !files_under(&app.config.server.data_dir.join("objects")).is_empty();
        if pending == 1 && writing {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Hours later, as far as the sweep can tell from the pending row.
    sqlx::query("UPDATE pending_uploads SET started_at = 0")
        .execute(app.db.pool())
        .await
        .unwrap();
    let report = app.catalog.sweep().await.unwrap();
    if local {
        assert_eq!(report.stale_uploads, 0, "a live upload was swept");
    }

    socket.write_all(&body[6 * 1024 * 1024..]).await.unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut socket, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let files = course_files(&app, &course_id).await;
    let url = files["files"][0]["url"].as_str().unwrap().to_owned();
    let stored = app.get(&url).await.bytes().await.unwrap();
    assert_eq!(stored.len(), body.len());
    assert!(stored[..] == body[..], "the stored bytes differ");
    assert_eq!(stored_object_count(&app).await, 1);
}

#[tokio::test]
async fn the_sweep_removes_objects_of_uploads_that_died_with_the_process() {
    let app = TestApp::spawn_with(|config| config.storage.sweep_grace_seconds = 0).await;
    let (staff, course_id) = app.course_with_staff().await;
    let kept: Value = app
        .put_file(&staff, &course_id, "kept.txt", payload(100))
        .await
        .json()
        .await
        .unwrap();
    // What a crash mid-upload leaves: a pending row, and the object as far as it got (on S3
    // a whole object, if the crash came after the last part; locally a staging file beside
    // where the object would go, which only the key names).
    let orphan = shuyuan::media::MediaKey::file(uuid::Uuid::now_v7());
    let local_staging = app.config.storage.url.is_empty().then(|| {
        let objects = app.config.server.data_dir.join("objects");
        let staging = objects.join(format!("{}#0", orphan.as_str()));
        std::fs::write(&staging, payload(100)).unwrap();
        staging
    });
    if local_staging.is_none() {
        shuyuan::media::upload::store_stream(
            app.catalog.media(),
            &orphan,
            futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(payload(100)))]),
            shuyuan::media::upload::UploadRules {
                max_bytes: 1000,
                expected_sha256: None,
                declared_content_type: "text/plain",
            },
        )
        .await
        .unwrap();
        assert_eq!(stored_object_count(&app).await, 2);
    }
    sqlx::query("INSERT INTO pending_uploads (object_key, started_at) VALUES ($1, 0)")
        .bind(orphan.as_str())
        .execute(app.db.pool())
        .await
        .unwrap();

    let report = app.catalog.sweep().await.unwrap();

    assert_eq!(report.stale_uploads, 1);
    if let Some(staging) = local_staging {
        assert!(
            !staging.exists(),
            "the crashed upload's staging file was left"
        );
    }
    assert_eq!(stored_object_count(&app).await, 1);
    assert_eq!(
        app.get(kept["url"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn srt_subtitles_are_also_served_as_webvtt() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let srt = "1\n00:00:01,000 --> 00:00:03,000\n起势，双脚与肩同宽\n"
        .as_bytes()
        .to_vec();

    let file: Value = app
        .put_file(&staff, &course_id, "taiji.zh.srt", srt.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(file["kind"], "subtitle");
    let track = app.get(file["track_url"].as_str().unwrap()).await;

    assert_eq!(track.status(), StatusCode::OK);
    assert!(
        track.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/vtt")
    );
    let text = track.text().await.unwrap();
    assert!(text.starts_with("WEBVTT"), "{text}");
    assert!(
        text.contains("00:00:01.000 --> 00:00:03.000\n起势，双脚与肩同宽"),
        "{text}"
    );
    assert_eq!(
        app.get(file["url"].as_str().unwrap())
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        srt.as_slice()
    );
}

#[tokio::test]
async fn files_of_a_withdrawn_course_are_no_longer_served() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let file: Value = app
        .put_file(&staff, &course_id, "a.txt", payload(100))
        .await
        .json()
        .await
        .unwrap();
    // Served once, so this node holds the lookup (catalog::file_cache) when the course goes.
    let served = app.get(file["url"].as_str().unwrap()).await;
    assert_eq!(served.status(), StatusCode::OK);

    app.client
        .delete(app.url(&format!("/api/v1/courses/{course_id}")))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();

    assert_problem(
        app.get(file["url"].as_str().unwrap()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}
