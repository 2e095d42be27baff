//! The index as a follower of the catalog log: across nodes, across a rebuild, across a crash.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, start_server};

#[tokio::test]
async fn a_course_created_on_one_node_is_found_on_another() {
    let node_a = TestApp::spawn().await;
    let node_b = node_a.spawn_second_node().await;
    let (staff, _) = node_a.course_with_staff().await;

    node_b.wait_for_index().await;
    let on_b = node_b.search("q=太极拳").await;
    assert_eq!(on_b["total"], 1, "{on_b}");

    let created_on_b = node_b
        .post_json_with_token(
            "/api/v1/courses",
            &staff,
            &json!({"institution": "xihu-college", "title": "广场舞 Square dancing"}),
        )
        .await;
    assert_eq!(created_on_b.status(), StatusCode::CREATED);
    node_a.wait_for_index().await;
    assert_eq!(node_a.search("q=广场舞").await["total"], 1);
}

#[tokio::test]
async fn reindex_rebuilds_while_searches_keep_answering() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.course_with_staff().await;
    for n in 0..40 {
        app.create_course(&staff, &format!("书法第{n}课 Calligraphy lesson {n}"))
            .await;
    }
    app.wait_for_index().await;
    let before = app.state.search.snapshot().generation.clone();

    let mut reindex = app
        .cli_command(&["reindex"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut answered = 0;
    while reindex.try_wait().unwrap().is_none() {
        let results = app.search("q=calligraphy").await;
        assert_eq!(
            results["total"], 40,
            "searches answer in full during the rebuild"
        );
        answered += 1;
    }
    let status = reindex.wait().unwrap();
    assert!(status.success());
    assert!(answered > 0);

    let deadline = Instant::now() + Duration::from_secs(30);
    while app.state.search.snapshot().generation == before {
        assert!(
            Instant::now() < deadline,
            "the server never switched to the rebuilt index"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.search("q=calligraphy").await["total"], 40);
    assert_eq!(app.search("q=太极拳").await["total"], 1);
    app.post_json_with_token(
        "/api/v1/courses",
        &staff,
        &json!({"institution": "xihu-college", "title": "书法第四十课"}),
    )
    .await;
    app.wait_for_index().await;
    assert_eq!(
        app.search("q=书法").await["total"],
        41,
        "indexing goes on in the new generation"
    );
}

#[tokio::test]
async fn indexing_survives_kill_9_and_catches_up_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_shuyuan"))
            .current_dir(dir.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "{args:?}");
    };
    run(
        &[
            "institution",
            "add",
            "xihu-college",
            "--name",
            "Xihu",
            "--kind",
            "county_college",
            "--region",
            "zhejiang",
        ],
        "",
    );
    // More than one indexer batch: the crash may land while batches are added but not yet
    // committed, which the restart must redo from the last commit's seq.
    const COURSES: usize = shuyuan::search::indexer::BATCH as usize + 500;
    let courses: Vec<Value> = (0..COURSES)
        .map(|n| json!({"key": format!("c{n}"), "title": format!("社区课程{n} community course number{n}")}))
        .collect();
    let import_dir = dir.path().join("import");
    std::fs::create_dir(&import_dir).unwrap();
    std::fs::write(
        import_dir.join("manifest.json"),
        json!({"courses": courses}).to_string(),
    )
    .unwrap();
    run(&["import", "import", "--institution", "xihu-college"], "");

    // The first start begins indexing the courses; kill it without warning straight away.
    let (mut first, _) = start_server(dir.path());
    Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status()
        .unwrap();
    first.wait().unwrap();

    let (mut second, address) = start_server(dir.path());
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let total = loop {
        let results: Value = client
            .get(format!("{address}/api/v1/search?q=community"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let total = results["total"].as_u64().unwrap();
        if total as usize >= COURSES || Instant::now() > deadline {
            break total;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        total as usize, COURSES,
        "every course indexed exactly once after the crash"
    );
    let one: Value = client
        .get(format!("{address}/api/v1/search?q=number777"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["total"], 1, "no duplicates: {one}");
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    second.wait().unwrap();
}
