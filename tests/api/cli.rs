//! The `shuyuan` binary's commands, run as an operator would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

fn shuyuan(args: &[&str], database_url: &str, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shuyuan"))
        .args(["--database-url", database_url])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin_and_creates_an_admin() {
    let app = TestApp::spawn().await;

    let output = shuyuan(
        &[
            "user",
            "add",
            "ops@example.org",
            "--name",
            "Operator",
            "--admin",
        ],
        &app.config.database.url,
        &format!("{PASSWORD}\n"),
    );

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = app.login("ops@example.org").await;
    let me: serde_json::Value = app
        .get_with_token("/api/v1/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["display_name"], "Operator");
}

#[tokio::test]
async fn user_add_refuses_a_weak_password_and_says_why() {
    let app = TestApp::spawn().await;

    let output = shuyuan(
        &["user", "add", "ops@example.org", "--name", "Operator"],
        &app.config.database.url,
        "123456\n",
    );

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("password"), "{stderr}");
    let login = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "ops@example.org", "password": "123456"}),
        )
        .await;
    assert_eq!(login.status(), 401);
}

#[tokio::test]
async fn institution_add_registers_and_reports_invalid_regions() {
    let app = TestApp::spawn().await;
    let url = app.config.database.url.clone();

    let ok = shuyuan(
        &[
            "institution",
            "add",
            "fayun-point",
            "--name",
            "法云村教学点",
            "--kind",
            "teaching_point",
            "--region",
            "zhejiang/hangzhou/xihu/lingyin/fayun",
        ],
        &url,
        "",
    );
    let bad = shuyuan(
        &[
            "institution",
            "add",
            "bad-one",
            "--name",
            "Bad",
            "--kind",
            "teaching_point",
            "--region",
            "a/b/c/d/e/f",
        ],
        &url,
        "",
    );

    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let shown: serde_json::Value = app.get_json("/api/v1/institutions/fayun-point").await;
    assert_eq!(shown["name"], "法云村教学点");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("region"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["user", "add", "--help"],
        vec!["institution", "add", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_shuyuan"))
            .args(&args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn an_invalid_config_is_a_clear_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nlisten = 8080\n").unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_shuyuan"))
        .args(["--config", file.to_str().unwrap(), "migrate"])
        .current_dir(dir.path())
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.listen"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn serve_in_an_empty_directory_keeps_its_data_under_dot_data_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shuyuan"))
        .current_dir(dir.path())
        .env("SHUYUAN_SERVER__LISTEN", "127.0.0.1:0")
        .env("SHUYUAN_LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listen = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let entry: serde_json::Value = serde_json::from_str(&line).ok()?;
            (entry["fields"]["message"] == "shuyuan is serving")
                .then(|| entry["fields"]["listen"].as_str().unwrap().to_owned())
        })
        .expect("the server logs where it listens");

    let health = reqwest::blocking_get(&format!("http://{listen}/healthz"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();

    assert_eq!(health, 200);
    assert!(status.success(), "graceful exit on SIGTERM, got {status}");
    assert!(dir.path().join("data/shuyuan.db").is_file());
}

mod reqwest {
    /// A minimal blocking GET on a thread of its own, so this test needs no async runtime.
    pub fn blocking_get(url: &str) -> u16 {
        let url = url.to_owned();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                ::reqwest::get(&url)
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .join()
        .unwrap()
    }
}
