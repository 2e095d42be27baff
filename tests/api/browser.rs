//! The web shell in a real headless Chromium, driven over `WebDriver`.
//!
//! Runs when `TEST_CHROMEDRIVER` names a chromedriver binary (Debian: `/usr/bin/chromedriver`
//! from the `chromium-driver` package); `TEST_CHROMIUM` may name the browser (default
//! `/usr/bin/chromium`). Unset, the test reports that it did nothing; set but unusable, it fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

struct Driver {
    process: Child,
    client: Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn driver() -> Option<Driver> {
    let chromedriver = match std::env::var("TEST_CHROMEDRIVER") {
        Ok(path) if !path.is_empty() => path,
        _ => {
            eprintln!("browser test not run: TEST_CHROMEDRIVER is not set");
            return None;
        }
    };
    let chromium = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut process = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("TEST_CHROMEDRIVER={chromedriver} does not start: {e}"));
    // chromedriver prints one line once it listens; reading it avoids guessing with sleeps.
    let stdout = process.stdout.take().expect("chromedriver stdout");
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, BufReader};
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("started successfully"))
    })
    .await
    .unwrap();
    assert!(ready, "chromedriver did not report that it started");

    let user_data_dir = tempfile::tempdir().unwrap().keep();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--lang=en-US",
                format!("--user-data-dir={}", user_data_dir.display()),
            ],
        }),
    );
    // Both ring and aws-lc are linked in; rustls wants the choice made explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = ClientBuilder::rustls()
        .expect("TLS set-up")
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"));
    Some(Driver { process, client })
}

async fn wait_for_page(client: &Client, page: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(&format!(r#"main[data-page="{page}"]"#)))
        .await
        .unwrap_or_else(|e| panic!("page {page} did not render: {e}"));
}

#[tokio::test]
async fn a_resident_signs_in_through_the_web_page() {
    let Some(driver) = driver().await else { return };
    let app = TestApp::spawn().await;
    app.register("grandma.li@example.org", "李奶奶").await;
    let browser = &driver.client;

    browser.goto(&app.url("/#/signin")).await.unwrap();
    wait_for_page(browser, "signin").await;
    browser
        .find(Locator::Id("signin-email"))
        .await
        .unwrap()
        .send_keys("grandma.li@example.org")
        .await
        .unwrap();
    browser
        .find(Locator::Id("signin-password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("signin-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let current_user = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Id("current-user"))
        .await
        .expect("the header shows who is signed in");
    assert_eq!(current_user.text().await.unwrap(), "李奶奶");
    wait_for_page(browser, "home").await;

    // The session cookie is HttpOnly: the page's scripts cannot read it.
    let visible_cookies = browser
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert!(
        !visible_cookies
            .as_str()
            .unwrap_or_default()
            .contains("shuyuan_session")
    );

    // Large-text mode and the language switch, as a senior learner would use them.
    browser
        .find(Locator::Id("large-text"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let pressed = browser
        .find(Locator::Id("large-text"))
        .await
        .unwrap()
        .attr("aria-pressed")
        .await
        .unwrap();
    assert_eq!(pressed.as_deref(), Some("true"));
    browser
        .find(Locator::Id("lang-zh"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let lang = browser
        .execute("return document.documentElement.lang", vec![])
        .await
        .unwrap();
    assert!(lang.as_str().unwrap().starts_with("zh"), "{lang}");

    driver.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_shows_an_error_and_keeps_the_resident_signed_out() {
    let Some(driver) = driver().await else { return };
    let app = TestApp::spawn().await;
    app.register("chen@example.org", "Chen").await;
    let browser = &driver.client;

    browser.goto(&app.url("/#/signin")).await.unwrap();
    wait_for_page(browser, "signin").await;
    browser
        .find(Locator::Id("signin-email"))
        .await
        .unwrap()
        .send_keys("chen@example.org")
        .await
        .unwrap();
    browser
        .find(Locator::Id("signin-password"))
        .await
        .unwrap()
        .send_keys("not the password")
        .await
        .unwrap();
    browser
        .find(Locator::Id("signin-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let error = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#signin-error:not(:empty)"))
        .await
        .expect("an error message appears");
    assert!(!error.text().await.unwrap().is_empty());
    assert!(browser.find(Locator::Id("signin-link")).await.is_ok());

    driver.client.clone().close().await.unwrap();
}

/// A short test clip made with ffmpeg (CI installs it alongside Chromium).
fn make_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let clip = dir.join("taiji-lesson.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
        ])
        .args([
            "-t",
            "10",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg is needed by the browser tests (Debian package ffmpeg)");
    assert!(status.success(), "ffmpeg failed to make the test clip");
    clip
}

async fn sign_in(browser: &Client, app: &TestApp, email: &str) {
    browser.goto(&app.url("/#/signin")).await.unwrap();
    wait_for_page(browser, "signin").await;
    browser
        .find(Locator::Id("signin-email"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    browser
        .find(Locator::Id("signin-password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("signin-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Id("current-user"))
        .await
        .expect("signed in");
}

#[tokio::test]
async fn staff_upload_a_video_in_the_browser_and_a_resident_plays_and_seeks_it() {
    let Some(driver) = driver().await else { return };
    let app = TestApp::spawn().await;
    let (_, course_id) = app.course_with_staff().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = make_clip(dir.path());
    let browser = &driver.client;

    sign_in(browser, &app, "teacher@example.org").await;
    browser
        .goto(&app.url(&format!("/#/upload?course={course_id}")))
        .await
        .unwrap();
    wait_for_page(browser, "upload").await;
    browser
        .find(Locator::Id("upload-input"))
        .await
        .unwrap()
        .send_keys(clip.to_str().unwrap())
        .await
        .unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#view-course-link:not([hidden])"))
        .await
        .expect("the upload finishes and offers a link to the course");
    let files: serde_json::Value = app
        .get_json(&format!("/api/v1/courses/{course_id}/files"))
        .await;
    assert_eq!(files["files"][0]["name"], "taiji-lesson.mp4");
    assert_eq!(files["files"][0]["kind"], "video");

    browser
        .goto(&app.url(&format!("/#/courses/{course_id}")))
        .await
        .unwrap();
    wait_for_page(browser, "course").await;
    let position = browser
        .execute_async(
            r#"
            const done = arguments[arguments.length - 1];
            const video = document.getElementById('player');
            const seek = () => {
                video.addEventListener('seeked', () => done(video.currentTime), { once: true });
                video.currentTime = 6;
            };
            if (video.readyState >= 1) seek(); else video.addEventListener('loadedmetadata', seek, { once: true });
            "#,
            vec![],
        )
        .await
        .expect("the video loads and seeks");
    let position = position.as_f64().unwrap();
    assert!(
        (5.5..=6.5).contains(&position),
        "currentTime after seeking: {position}"
    );

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"route="/media/{file_id}",status="206"}"#),
        "the browser fetched the video with range requests: {metrics}"
    );
    driver.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_resident_searches_in_chinese_and_opens_the_course() {
    let Some(driver) = driver().await else { return };
    let app = TestApp::spawn().await;
    app.course_with_staff().await;
    app.wait_for_index().await;
    let browser = &driver.client;

    browser.goto(&app.url("/#/search")).await.unwrap();
    wait_for_page(browser, "search").await;
    browser
        .find(Locator::Id("search-q"))
        .await
        .unwrap()
        .send_keys("太极拳")
        .await
        .unwrap();
    browser
        .find(Locator::Id("search-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page first lists every course (no query yet), so a course link alone
    // may belong to that list, which the answer to our query replaces. Only the
    // answer has highlighted words: wait for those, then take its link.
    let mark = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#search-results li mark"))
        .await
        .expect("the match is highlighted");
    assert_eq!(mark.text().await.unwrap(), "太极拳");
    let link = browser
        .find(Locator::Css("#search-results li a[href^='#/courses/']"))
        .await
        .expect("a result links to its course");
    link.click().await.unwrap();
    wait_for_page(browser, "course").await;
    let title = browser
        .find(Locator::Id("course-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, "太极拳入门 Tai chi for beginners");

    driver.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn a_subtitle_match_opens_the_player_at_that_second() {
    let Some(driver) = driver().await else { return };
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let dir = tempfile::tempdir().unwrap();
    let clip = std::fs::read(make_clip(dir.path())).unwrap();
    app.put_file(&staff, &course_id, "lesson.mp4", clip).await;
    let srt = "1\n00:00:01,000 --> 00:00:03,000\n起势\n\n2\n00:00:07,000 --> 00:00:09,000\n揽雀尾，注意呼吸\n";
    app.put_file(&staff, &course_id, "lesson.zh.srt", srt.as_bytes().to_vec())
        .await;
    app.wait_for_extraction().await;
    app.wait_for_index().await;
    let browser = &driver.client;

    browser.goto(&app.url("/#/search?q=揽雀尾")).await.unwrap();
    wait_for_page(browser, "search").await;
    let jump = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#search-results a[href*='&t=7']"))
        .await
        .expect("the hit links to the second the words are spoken");
    jump.click().await.unwrap();
    wait_for_page(browser, "course").await;
    let position = browser
        .execute_async(
            r#"
            const done = arguments[arguments.length - 1];
            const video = document.getElementById('player');
            const check = () => done(video.currentTime);
            if (video.readyState >= 1 && video.currentTime > 0) check();
            else video.addEventListener('seeked', check, { once: true });
            "#,
            vec![],
        )
        .await
        .expect("the player seeks");
    let position = position.as_f64().unwrap();
    assert!((6.5..=7.5).contains(&position), "currentTime {position}");

    driver.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn two_residents_chat_live_in_a_circle() {
    let Some(grandma) = driver().await else {
        return;
    };
    let Some(grandson) = driver().await else {
        return;
    };
    let app = TestApp::spawn().await;
    let owner = app.resident("grandma@example.org").await;
    let member = app.resident("grandson@example.org").await;
    let circle: serde_json::Value = app
        .post_json_with_token(
            "/api/v1/circles",
            &owner,
            &json!({"name": "祖孙学手机", "visibility": "public"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = circle["id"].as_str().unwrap();
    app.post_json_with_token(&format!("/api/v1/circles/{id}/join"), &member, &json!({}))
        .await;

    for (driver, email) in [
        (&grandma, "grandma@example.org"),
        (&grandson, "grandson@example.org"),
    ] {
        sign_in(&driver.client, &app, email).await;
        driver
            .client
            .goto(&app.url(&format!("/#/circles/{id}")))
            .await
            .unwrap();
        driver
            .client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css("#chat-messages[data-connected='true']"))
            .await
            .expect("the room connects");
    }

    let input = grandma
        .client
        .find(Locator::Id("chat-input"))
        .await
        .unwrap();
    input.send_keys("<b>怎么</b>发语音？").await.unwrap();
    grandma
        .client
        .find(Locator::Id("chat-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let received = grandson
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//ol[@id='chat-messages']/li[contains(., '发语音')]",
        ))
        .await
        .expect("the message arrives in the other browser");
    assert!(
        received
            .text()
            .await
            .unwrap()
            .contains("<b>怎么</b>发语音？"),
        "shown as text, not HTML"
    );

    grandson
        .client
        .find(Locator::Id("chat-input"))
        .await
        .unwrap()
        .send_keys("按住说话就行")
        .await
        .unwrap();
    grandson
        .client
        .find(Locator::Id("chat-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    grandma
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//ol[@id='chat-messages']/li[contains(., '按住说话就行')]",
        ))
        .await
        .expect("the reply arrives");
    let presence = grandma
        .client
        .find(Locator::Id("chat-presence"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        presence.contains("grandma") && presence.contains("grandson"),
        "{presence}"
    );
    let bubbles = grandma
        .client
        .find_all(Locator::Css("#chat-messages li[data-seq]"))
        .await
        .unwrap();
    assert_eq!(bubbles.len(), 2, "each message once");

    grandma.client.clone().close().await.unwrap();
    grandson.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn an_administrator_syncs_a_peer_and_residents_see_where_its_courses_come_from() {
    let Some(driver) = driver().await else { return };
    let village = TestApp::spawn().await;
    village.course_with_staff().await;
    let county = TestApp::spawn().await;
    let admin = county.admin().await;
    let added = county
        .post_json_with_token("/api/v1/peers", &admin, &json!({"url": village.address}))
        .await;
    assert_eq!(added.status(), reqwest::StatusCode::CREATED);
    let browser = &driver.client;

    sign_in(browser, &county, "admin@example.org").await;
    browser.goto(&county.url("/#/peers")).await.unwrap();
    wait_for_page(browser, "peers").await;
    let state = browser
        .find(Locator::Css(".peer-item .badge"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(state, "Not synced yet");
    browser
        .find(Locator::Css(".peer-item button.peer-sync"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let status = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//p[@id='peers-status'][contains(., 'records applied')]",
        ))
        .await
        .expect("the sync reports what it did");
    assert!(
        status.text().await.unwrap().contains("1 records applied"),
        "{}",
        status.text().await.unwrap()
    );
    browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::XPath(
            "//li[contains(@class,'peer-item')]//span[contains(@class,'badge')][.='In sync']",
        ))
        .await
        .expect("the peer shows as in sync");

    county.wait_for_index().await;
    browser
        .goto(&county.url("/#/search?q=太极拳"))
        .await
        .unwrap();
    wait_for_page(browser, "search").await;
    let origin = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#search-results li .search-hit-origin"))
        .await
        .expect("a federated hit says where it comes from");
    let host = village.address.trim_start_matches("http://");
    assert_eq!(origin.text().await.unwrap(), format!("from {host}"));

    driver.client.clone().close().await.unwrap();
}
