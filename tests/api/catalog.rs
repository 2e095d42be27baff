use reqwest::StatusCode;
use serde_json::{Value, json};
use shuyuan::catalog::LogOp;

use crate::helpers::{TestApp, assert_problem, failing_fields};

#[tokio::test]
async fn staff_publish_a_course_that_everyone_can_read() {
    let app = TestApp::spawn().await;
    let (_staff, course_id) = app.course_with_staff().await;

    let course: Value = app.get_json(&format!("/api/v1/courses/{course_id}")).await;

    assert_eq!(course["title"], "太极拳入门 Tai chi for beginners");
    assert_eq!(course["institution"]["slug"], "xihu-college");
    assert_eq!(course["region"], "zhejiang/hangzhou/xihu");
    assert_eq!(course["subjects"], json!(["fitness"]));
    assert_eq!(course["audience"], json!(["seniors"]));
    assert_eq!(course["level"], "beginner");
    assert_eq!(course["license"], "CC-BY-4.0");
    assert_eq!(course["version"], 1);
    assert_eq!(course["origin"], app.address);
    assert_eq!(course["files"], json!([]));
}

/// Both databases answer alike: SQLite would store a NUL, PostgreSQL's text refuses one.
#[tokio::test]
async fn a_nul_in_a_description_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;

    let create = app
        .post_json_with_token(
            "/api/v1/courses",
            &staff,
            &json!({"institution": "xihu-college", "title": "X", "description": "a\u{0}b"}),
        )
        .await;
    let problem = assert_problem(create, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(failing_fields(&problem), ["description"]);

    let patch = app
        .patch_json_with_token(
            &format!("/api/v1/courses/{course_id}"),
            &staff,
            &json!({"description": "line one\n\u{0}"}),
        )
        .await;
    let problem = assert_problem(patch, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(failing_fields(&problem), ["description"]);
    let course: Value = app.get_json(&format!("/api/v1/courses/{course_id}")).await;
    assert_eq!(course["version"], 1);
    assert_eq!(course["description"], "");
    let listed: Value = app.get_json("/api/v1/courses").await;
    assert_eq!(listed["courses"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_vocabulary_is_422_naming_the_value() {
    let app = TestApp::spawn().await;
    let (staff, _) = app.course_with_staff().await;

    let response = app
        .post_json_with_token(
            "/api/v1/courses",
            &staff,
            &json!({"institution": "xihu-college", "title": "X", "subjects": ["cooking"], "audience": ["aliens"], "level": "expert"}),
        )
        .await;

    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut fields = failing_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["audience", "level", "subjects"]);
    assert!(problem["detail"].as_str().unwrap().contains("cooking"));
}

#[tokio::test]
async fn only_staff_of_the_institution_may_publish() {
    let app = TestApp::spawn().await;
    let (_, course_id) = app.course_with_staff().await;
    let outsider = app.resident("outsider@example.org").await;

    let create = app
        .post_json_with_token(
            "/api/v1/courses",
            &outsider,
            &json!({"institution": "xihu-college", "title": "X"}),
        )
        .await;
    assert_problem(create, StatusCode::FORBIDDEN).await;
    let patch = app
        .patch_json_with_token(
            &format!("/api/v1/courses/{course_id}"),
            &outsider,
            &json!({"title": "Hijacked"}),
        )
        .await;
    assert_problem(patch, StatusCode::FORBIDDEN).await;
    let unknown = app
        .post_json_with_token(
            "/api/v1/courses",
            &outsider,
            &json!({"institution": "nowhere", "title": "X"}),
        )
        .await;
    assert_eq!(
        failing_fields(&assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["institution"]
    );
}

#[tokio::test]
async fn edits_raise_the_version_and_withdrawal_leaves_a_tombstone_in_the_log() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;

    let patched = app
        .patch_json_with_token(
            &format!("/api/v1/courses/{course_id}"),
            &staff,
            &json!({"title": "太极拳 Tai chi", "credits": 1.5}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["title"], "太极拳 Tai chi");
    assert_eq!(patched["credits"], 1.5);
    assert_eq!(
        patched["subjects"],
        json!(["fitness"]),
        "untouched fields stay"
    );
    assert_eq!(patched["version"], 2);

    let withdrawn = app
        .client
        .delete(app.url(&format!("/api/v1/courses/{course_id}")))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get(&format!("/api/v1/courses/{course_id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let log = app.catalog.read_log(0, 100).await.unwrap();
    let ops: Vec<(LogOp, i64)> = log.iter().map(|e| (e.op, e.origin_version)).collect();
    assert_eq!(
        ops,
        [(LogOp::Upsert, 1), (LogOp::Upsert, 2), (LogOp::Delete, 3)]
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        log.iter()
            .all(|e| e.course_id.to_string() == course_id && e.origin == app.address)
    );
    assert!(
        app.catalog.read_log(log[1].seq, 100).await.unwrap().len() == 1,
        "reading resumes after a seq"
    );
}

#[tokio::test]
async fn listing_filters_by_subject_and_institution_and_pages_with_a_cursor() {
    let app = TestApp::spawn().await;
    let (staff, first) = app.course_with_staff().await;
    let mut ids = vec![first];
    for n in 0..4 {
        let subject = if n % 2 == 0 {
            "digital_skills"
        } else {
            "health"
        };
        let created: Value = app
            .post_json_with_token(
                "/api/v1/courses",
                &staff,
                &json!({"institution": "xihu-college", "title": format!("Course {n}"), "subjects": [subject]}),
            )
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/courses?limit=2&cursor={c}"),
            None => "/api/v1/courses?limit=2".to_owned(),
        };
        let page: Value = app.get_json(&path).await;
        for course in page["courses"].as_array().unwrap() {
            seen.push(course["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every course once, in creation order");

    let digital: Value = app.get_json("/api/v1/courses?subject=digital_skills").await;
    assert_eq!(digital["courses"].as_array().unwrap().len(), 2);
    let by_institution: Value = app
        .get_json("/api/v1/courses?institution=xihu-college")
        .await;
    assert_eq!(by_institution["courses"].as_array().unwrap().len(), 5);
    assert_problem(
        app.get("/api/v1/courses?subject=cooking").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_problem(
        app.get("/api/v1/courses?cursor=garbage").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_problem(
        app.get("/api/v1/courses?limit=1000").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn a_malformed_course_id_is_404() {
    let app = TestApp::spawn().await;

    assert_problem(
        app.get("/api/v1/courses/not-a-uuid").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(app.get("/media/not-a-uuid").await, StatusCode::NOT_FOUND).await;
}
