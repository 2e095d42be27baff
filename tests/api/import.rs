//! `shuyuan import DIR --institution SLUG`, run as an operator would, against the test server's
//! own database and object store.

use std::process::Output;

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn import(app: &TestApp, dir: &std::path::Path) -> Output {
    app.cli(&[
        "import",
        dir.to_str().unwrap(),
        "--institution",
        "xihu-college",
    ])
}

async fn courses(app: &TestApp) -> Vec<Value> {
    let list: Value = app.get_json("/api/v1/courses?limit=100").await;
    list["courses"].as_array().unwrap().clone()
}

#[tokio::test]
async fn import_publishes_good_entries_reports_broken_ones_and_is_safe_to_rerun() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("taiji")).unwrap();
    std::fs::write(
        dir.path().join("taiji/notes.md"),
        "# 太极拳\n起势、揽雀尾、单鞭。\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("taiji/lesson.zh.srt"),
        "1\n00:00:01,000 --> 00:00:02,000\n起势\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("phones.txt"),
        "Video calls with grandchildren, step by step.\n",
    )
    .unwrap();
    let manifest = json!({"courses": [
        {"key": "taiji", "title": "太极拳入门", "subjects": ["fitness"], "audience": ["seniors"],
         "languages": ["zh"], "files": ["taiji/notes.md", "taiji/lesson.zh.srt"]},
        {"key": "cooking", "title": "Cooking", "subjects": ["cooking"]},
        {"key": "phones", "title": "Smartphones together", "subjects": ["digital_skills"],
         "audience": ["families"], "files": ["phones.txt", "missing.pdf", "../../etc/passwd"]},
        {"title": "no key at all"}
    ]});
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();

    let first = import(&app, dir.path());

    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        !first.status.success(),
        "failures make the exit status non-zero"
    );
    assert!(
        stdout.contains(
            "courses: 2 created, 0 already there; files: 3 stored, 0 already there; 4 failed"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("cooking"), "{stdout}");
    assert!(stdout.contains("missing.pdf"), "{stdout}");
    assert!(stdout.contains("etc/passwd"), "{stdout}");
    let imported = courses(&app).await;
    let titles: Vec<&str> = imported
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2);
    assert!(titles.contains(&"太极拳入门") && titles.contains(&"Smartphones together"));
    let taiji = imported
        .iter()
        .find(|c| c["title"] == "太极拳入门")
        .unwrap();
    let kinds: Vec<&str> = taiji["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["subtitle", "document"]);

    // Fix the missing file, run again: only the rest is done, nothing is duplicated.
    std::fs::write(
        dir.path().join("missing.pdf"),
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
    )
    .unwrap();
    let second = import(&app, dir.path());

    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout.contains(
            "courses: 0 created, 2 already there; files: 1 stored, 3 already there; 3 failed"
        ),
        "{stdout}"
    );
    assert_eq!(courses(&app).await.len(), 2, "no course was imported twice");
}

#[tokio::test]
async fn the_demo_catalog_loads_once_with_video_subtitles_and_documents() {
    let app = TestApp::spawn().await;

    let first = shuyuan::demo::load(&app.state).await.unwrap();
    let second = shuyuan::demo::load(&app.state).await.unwrap();

    assert_eq!(first.courses_created, 4);
    assert_eq!(second.courses_created, 0);
    assert_eq!(second.files_stored, 0, "a second start changes nothing");
    let listed = courses(&app).await;
    assert_eq!(listed.len(), 4);
    let taiji = listed
        .iter()
        .find(|c| c["title"].as_str().unwrap().contains("Tai chi"))
        .unwrap();
    let mut kinds: Vec<&str> = taiji["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["document", "subtitle", "subtitle", "video"]);
    let video = taiji["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "video")
        .unwrap();
    let partial = app
        .client
        .get(app.url(video["url"].as_str().unwrap()))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), 206);
    assert_eq!(partial.headers()["content-type"], "video/mp4");
}
