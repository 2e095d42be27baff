use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, failing_fields};

#[tokio::test]
async fn an_admin_registers_an_institution_that_anyone_can_read() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let response = app
        .post_json_with_token(
            "/api/v1/institutions",
            &admin,
            &json!({"slug": "xihu-college", "name": "西湖社区学院", "kind": "county_college", "region": "zhejiang/hangzhou/xihu"}),
        )
        .await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["kind"], "county_college");
    let shown: Value = app.get_json("/api/v1/institutions/xihu-college").await;
    assert_eq!(shown["name"], "西湖社区学院");
    assert_eq!(shown["region"], "zhejiang/hangzhou/xihu");
}

#[tokio::test]
async fn listing_by_region_includes_everything_beneath_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    app.institution(
        &admin,
        "fayun-point",
        "zhejiang/hangzhou/xihu/lingyin/fayun",
    )
    .await;
    app.institution(&admin, "ningbo-library", "zhejiang/ningbo")
        .await;
    app.institution(&admin, "xihu-other-province", "zhejiangx/xihu")
        .await;

    let listed: Value = app
        .get_json("/api/v1/institutions?region=zhejiang/hangzhou")
        .await;

    let slugs: Vec<&str> = listed["institutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["fayun-point", "xihu-college"]);
    let all: Value = app.get_json("/api/v1/institutions").await;
    assert_eq!(all["institutions"].as_array().unwrap().len(), 4);

    // '_' is allowed in segments; it must match itself, not any character.
    app.institution(&admin, "underscore-point", "zhe_x/a").await;
    app.institution(&admin, "lookalike-point", "zhexx/a").await;
    let listed: Value = app.get_json("/api/v1/institutions?region=zhe_x").await;
    assert_eq!(listed["institutions"].as_array().unwrap().len(), 1);
    assert_eq!(listed["institutions"][0]["slug"], "underscore-point");
}

#[tokio::test]
async fn only_admins_register_institutions() {
    let app = TestApp::spawn().await;
    let resident = app.resident("resident@example.org").await;
    let body = json!({"slug": "x-college", "name": "X", "kind": "school", "region": "zhejiang"});

    let anonymous = app.post_json("/api/v1/institutions", &body).await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let forbidden = app
        .post_json_with_token("/api/v1/institutions", &resident, &body)
        .await;
    assert_problem(forbidden, StatusCode::FORBIDDEN).await;
    assert_problem(
        app.get("/api/v1/institutions/x-college").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_duplicate_slug_is_409() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang").await;

    let again = app
        .post_json_with_token(
            "/api/v1/institutions",
            &admin,
            &json!({"slug": "xihu-college", "name": "Another", "kind": "library", "region": "jiangsu"}),
        )
        .await;

    let problem = assert_problem(again, StatusCode::CONFLICT).await;
    assert_eq!(problem["type"], "/problems/slug-taken");
}

#[tokio::test]
async fn unknown_kinds_and_bad_regions_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;

    let cases = [
        (
            json!({"slug": "a-b", "name": "A", "kind": "castle", "region": "zhejiang"}),
            vec!["kind"],
        ),
        (
            json!({"slug": "a-b", "name": "A", "kind": "museum", "region": "zhejiang//xihu"}),
            vec!["region"],
        ),
        (
            json!({"slug": "a-b", "name": "A", "kind": "museum", "region": "a/b/c/d/e/f"}),
            vec!["region"],
        ),
        (
            json!({"slug": "a-b", "name": "A", "kind": "museum", "region": ""}),
            vec!["region"],
        ),
        (
            json!({"slug": "Bad Slug", "name": "", "kind": "museum", "region": "zhejiang"}),
            vec!["name", "slug"],
        ),
    ];
    for (body, expected) in cases {
        let response = app
            .post_json_with_token("/api/v1/institutions", &admin, &body)
            .await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let mut fields = failing_fields(&problem);
        fields.sort();
        assert_eq!(fields, expected, "{body}");
    }
    let all: Value = app.get_json("/api/v1/institutions").await;
    assert!(
        all["institutions"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_manager_adds_staff_and_staff_cannot() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang/hangzhou/xihu")
        .await;
    let manager = app.resident("manager@example.org").await;
    let staff = app.resident("teacher@example.org").await;
    app.register("volunteer@example.org", "Volunteer").await;

    let made_manager = app
        .post_json_with_token(
            "/api/v1/institutions/xihu-college/members",
            &admin,
            &json!({"email": "manager@example.org", "role": "manager"}),
        )
        .await;
    assert_eq!(made_manager.status(), StatusCode::CREATED);
    let added = app
        .post_json_with_token(
            "/api/v1/institutions/xihu-college/members",
            &manager,
            &json!({"email": "Teacher@example.org", "role": "staff"}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    assert_eq!(added.json::<Value>().await.unwrap()["role"], "staff");

    let by_staff = app
        .post_json_with_token(
            "/api/v1/institutions/xihu-college/members",
            &staff,
            &json!({"email": "volunteer@example.org", "role": "staff"}),
        )
        .await;
    assert_problem(by_staff, StatusCode::FORBIDDEN).await;

    let promoted = app
        .post_json_with_token(
            "/api/v1/institutions/xihu-college/members",
            &manager,
            &json!({"email": "teacher@example.org", "role": "manager"}),
        )
        .await;
    assert_eq!(promoted.status(), StatusCode::OK);

    let members: Value = app
        .get_with_token("/api/v1/institutions/xihu-college/members", &manager)
        .await
        .json()
        .await
        .unwrap();
    let roles: Vec<(&str, &str)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [
            ("manager@example.org", "manager"),
            ("teacher@example.org", "manager")
        ]
    );
}

#[tokio::test]
async fn adding_members_reports_unknown_people_roles_and_institutions() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    app.institution(&admin, "xihu-college", "zhejiang").await;
    app.register("known@example.org", "Known").await;

    let unknown_person = app
        .post_json_with_token(
            "/api/v1/institutions/xihu-college/members",
            &admin,
            &json!({"email": "stranger@example.org", "role": "staff"}),
        )
        .await;
    let problem = assert_problem(unknown_person, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(failing_fields(&problem), ["email"]);

    let unknown_role = app
        .post_json_with_token(
            "/api/v1/institutions/xihu-college/members",
            &admin,
            &json!({"email": "known@example.org", "role": "owner"}),
        )
        .await;
    let problem = assert_problem(unknown_role, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(failing_fields(&problem), ["role"]);

    let unknown_institution = app
        .post_json_with_token(
            "/api/v1/institutions/nowhere/members",
            &admin,
            &json!({"email": "known@example.org", "role": "staff"}),
        )
        .await;
    assert_problem(unknown_institution, StatusCode::NOT_FOUND).await;
}
