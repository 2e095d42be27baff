//! Learning circles over HTTP and a real WebSocket client.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as Ws};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, assert_problem};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Fails a test that waits too long for a frame, instead of hanging it.
const FRAME_WAIT: Duration = Duration::from_secs(10);

async fn create_circle(app: &TestApp, token: &str, visibility: &str) -> Value {
    let response = app
        .post_json_with_token(
            "/api/v1/circles",
            token,
            &json!({"name": "周三书法小组 Wednesday calligraphy", "description": "祖孙一起练字", "visibility": visibility}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn ws_url(app: &TestApp, circle_id: &str, since: Option<i64>) -> String {
    let base = app.address.replace("http://", "ws://");
    match since {
        Some(since) => format!("{base}/api/v1/circles/{circle_id}/live?since={since}"),
        None => format!("{base}/api/v1/circles/{circle_id}/live"),
    }
}

async fn connect(app: &TestApp, circle_id: &str, token: &str, since: Option<i64>) -> Socket {
    let mut request = ws_url(app, circle_id, since).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the socket opens");
    assert_eq!(response.status(), 101);
    socket
}

/// The next JSON frame, skipping presence updates unless asked for.
async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(FRAME_WAIT, socket.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket is open")
            .expect("a valid frame");
        if let Ws::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] != "presence" {
                return value;
            }
        }
    }
}

async fn next_presence(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(FRAME_WAIT, socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Ws::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == "presence" {
                return value;
            }
        }
    }
}

async fn send(socket: &mut Socket, client_id: &str, body: &str) {
    let frame = json!({"type": "send", "client_id": client_id, "body": body}).to_string();
    socket.send(Ws::Text(frame.into())).await.unwrap();
}

/// Sends and returns the ack's seq, checking the message comes back too.
async fn send_acked(socket: &mut Socket, client_id: &str, body: &str) -> i64 {
    send(socket, client_id, body).await;
    let ack = next_frame(socket).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["client_id"], client_id);
    let echoed = next_frame(socket).await;
    assert_eq!(echoed["type"], "message", "{echoed}");
    assert_eq!(echoed["seq"], ack["seq"]);
    ack["seq"].as_i64().unwrap()
}

#[tokio::test]
async fn members_talk_live_and_history_keeps_every_message() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let grandson = app.resident("grandson@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    let joined = app
        .post_json_with_token(&format!("/api/v1/circles/{id}/join"), &grandson, &json!({}))
        .await;
    assert_eq!(joined.status(), StatusCode::OK);
    assert_eq!(joined.json::<Value>().await.unwrap()["role"], "member");

    let mut owner_socket = connect(&app, id, &owner, None).await;
    let mut grandson_socket = connect(&app, id, &grandson, None).await;
    let seq = send_acked(&mut owner_socket, "c-1", "今天练“永”字 <b>bold?</b> 🖌️").await;
    let received = next_frame(&mut grandson_socket).await;

    assert_eq!(seq, 1);
    assert_eq!(received["type"], "message");
    assert_eq!(received["seq"], 1);
    assert_eq!(
        received["body"], "今天练“永”字 <b>bold?</b> 🖌️",
        "HTML is stored and delivered as text"
    );
    assert_eq!(received["author"]["display_name"], "owner");
    assert_eq!(received["client_id"], "c-1");
    let history: Value = app
        .get_with_token(&format!("/api/v1/circles/{id}/messages"), &grandson)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["seq"], 1);
}

#[tokio::test]
async fn reconnecting_with_since_replays_the_missed_messages_then_goes_live() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    let mut writer = connect(&app, id, &owner, None).await;
    for n in 1..=4 {
        send_acked(&mut writer, &format!("c-{n}"), &format!("message {n}")).await;
    }

    let mut reader = connect(&app, id, &owner, Some(2)).await;
    let third = next_frame(&mut reader).await;
    let fourth = next_frame(&mut reader).await;
    send_acked(&mut writer, "c-5", "message 5").await;
    let fifth = next_frame(&mut reader).await;

    assert_eq!(
        [
            third["seq"].clone(),
            fourth["seq"].clone(),
            fifth["seq"].clone()
        ],
        [3, 4, 5]
    );
    assert_eq!(fifth["body"], "message 5");
}

#[tokio::test]
async fn resending_a_client_id_never_creates_a_second_message() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    let mut socket = connect(&app, id, &owner, None).await;
    let first = send_acked(&mut socket, "same-id", "hello").await;
    drop(socket);

    let mut again = connect(&app, id, &owner, None).await;
    send(&mut again, "same-id", "hello").await;
    let ack = next_frame(&mut again).await;

    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["seq"], first);
    // The resend took no seq: the next message follows the first without a hole.
    let next = send_acked(&mut again, "next-id", "and again").await;
    assert_eq!(next, first + 1);
    let history: Value = app
        .get_json(&format!("/api/v1/circles/{id}/messages"))
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_visitor_to_a_public_circle_reads_but_cannot_write() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let visitor = app.resident("visitor@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    let mut socket = connect(&app, id, &visitor, None).await;

    send(&mut socket, "v-1", "hello").await;

    let refused = next_frame(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "not_member");
    let latest = app.state.circles.latest_seq(id.parse().unwrap()).await;
    assert_eq!(latest.unwrap(), 0);
}

#[tokio::test]
async fn concurrent_senders_get_distinct_gapless_seqs() {
    let app = TestApp::spawn_with(|config| config.limits.messages_per_second = 1000).await;
    let owner = app.resident("owner@example.org").await;
    let other = app.resident("other@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap().to_owned();
    app.post_json_with_token(&format!("/api/v1/circles/{id}/join"), &other, &json!({}))
        .await;

    let mut tasks = Vec::new();
    for (who, token) in [("a", owner.clone()), ("b", other.clone())] {
        let mut socket = connect(&app, &id, &token, None).await;
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..30 {
                send(&mut socket, &format!("{who}-{n}"), &format!("{who} {n}")).await;
            }
            while acked.len() < 30 {
                let frame = next_frame(&mut socket).await;
                if frame["type"] == "ack" {
                    acked.push(frame["seq"].as_i64().unwrap());
                }
            }
            acked
        }));
    }
    let mut seqs: Vec<i64> = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();

    assert_eq!(seqs, (1..=60).collect::<Vec<_>>());
}

/// Both databases answer alike: SQLite would store a NUL, PostgreSQL's text refuses one.
#[tokio::test]
async fn a_nul_in_a_circle_description_is_422_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let refused = app
        .post_json_with_token(
            "/api/v1/circles",
            &owner,
            &json!({"name": "读书会", "description": "a\u{0}b", "visibility": "public"}),
        )
        .await;
    let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"][0]["field"], "description", "{problem}");
    let listed: Value = app.get_json("/api/v1/circles").await;
    assert_eq!(listed["circles"], json!([]), "{listed}");
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_stays_open() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    let mut socket = connect(&app, id, &owner, None).await;

    for (frame, code) in [
        (Ws::Text("not json".into()), "bad_frame"),
        (
            Ws::Text(json!({"type": "dance"}).to_string().into()),
            "bad_frame",
        ),
        (Ws::Binary(vec![1, 2, 3].into()), "bad_frame"),
        (
            Ws::Text(json!({"type": "send", "client_id": "x"}).to_string().into()),
            "empty",
        ),
        (
            Ws::Text(
                json!({"type": "send", "client_id": "y", "body": "长".repeat(5000)})
                    .to_string()
                    .into(),
            ),
            "too_long",
        ),
        (
            Ws::Text(
                json!({"type": "send", "client_id": "z", "body": "a\u{0}b"})
                    .to_string()
                    .into(),
            ),
            "bad_frame",
        ),
    ] {
        socket.send(frame).await.unwrap();
        let error = next_frame(&mut socket).await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], code, "{error}");
    }
    assert_eq!(
        send_acked(&mut socket, "ok", "🙂").await,
        1,
        "the socket still works"
    );
}

#[tokio::test]
async fn a_flood_is_rate_limited_without_hurting_others() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let neighbour = app.resident("neighbour@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    app.post_json_with_token(
        &format!("/api/v1/circles/{id}/join"),
        &neighbour,
        &json!({}),
    )
    .await;
    let mut flooder = connect(&app, id, &owner, None).await;
    let mut calm = connect(&app, id, &neighbour, None).await;

    for n in 0..1000 {
        send(&mut flooder, &format!("flood-{n}"), "spam").await;
    }
    let mut acks = 0;
    let mut limited = 0;
    while acks + limited < 1000 {
        let frame = next_frame(&mut flooder).await;
        match frame["type"].as_str().unwrap() {
            "ack" => acks += 1,
            "error" => {
                assert_eq!(frame["code"], "rate_limited");
                limited += 1;
            }
            _ => {}
        }
    }
    assert!(limited > 900, "acks {acks}, limited {limited}");
    send(&mut calm, "calm-1", "我还能说话").await;
    let seq = loop {
        let frame = next_frame(&mut calm).await;
        if frame["type"] == "ack" {
            break frame["seq"].as_i64().unwrap();
        }
        assert_eq!(frame["type"], "message", "others' messages only: {frame}");
    };
    assert_eq!(seq, acks + 1, "the neighbour is not rate limited");
}

#[tokio::test]
async fn refusals_come_before_the_upgrade() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let stranger = app.resident("stranger@example.org").await;
    let private = create_circle(&app, &owner, "private").await;
    let private_id = private["id"].as_str().unwrap();
    let public = create_circle(&app, &owner, "public").await;
    let public_id = public["id"].as_str().unwrap();

    let status_of = |url: String, token: Option<String>| async move {
        let mut request = url.into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Err(WsError::Http(response)) => response.status().as_u16(),
            Ok(_) => 101,
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(
        status_of(ws_url(&app, private_id, None), Some(stranger.clone())).await,
        403
    );
    assert_eq!(status_of(ws_url(&app, public_id, None), None).await, 401);
    assert_eq!(
        status_of(ws_url(&app, public_id, Some(-1)), Some(owner.clone())).await,
        400
    );
    assert_eq!(
        status_of(ws_url(&app, public_id, Some(99)), Some(owner.clone())).await,
        400
    );
    assert_problem(
        app.get_with_token(&format!("/api/v1/circles/{private_id}/messages"), &stranger)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let wrong_code = app
        .post_json_with_token(
            &format!("/api/v1/circles/{private_id}/join"),
            &stranger,
            &json!({"invite_code": "WRONG"}),
        )
        .await;
    assert_problem(wrong_code, StatusCode::FORBIDDEN).await;
    let code = private["invite_code"].as_str().unwrap();
    let right_code = app
        .post_json_with_token(
            &format!("/api/v1/circles/{private_id}/join"),
            &stranger,
            &json!({"invite_code": code}),
        )
        .await;
    assert_eq!(right_code.status(), StatusCode::OK);
    assert_eq!(
        status_of(ws_url(&app, private_id, None), Some(stranger)).await,
        101
    );
}

#[tokio::test]
async fn an_oversized_frame_closes_the_socket_with_1009() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let mut socket = connect(&app, circle["id"].as_str().unwrap(), &owner, None).await;

    socket
        .send(Ws::Text("x".repeat(70 * 1024).into()))
        .await
        .unwrap();

    loop {
        match tokio::time::timeout(FRAME_WAIT, socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Ws::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Size);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn presence_shows_who_is_online_and_leaving_closes_the_socket() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let member = app.resident("member@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    app.post_json_with_token(&format!("/api/v1/circles/{id}/join"), &member, &json!({}))
        .await;

    let mut owner_socket = connect(&app, id, &owner, None).await;
    let alone = next_presence(&mut owner_socket).await;
    assert_eq!(alone["online"].as_array().unwrap().len(), 1);
    assert_eq!(alone["count"], 1);
    let mut member_socket = connect(&app, id, &member, None).await;
    let together = next_presence(&mut owner_socket).await;
    let names: Vec<&str> = together["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["member", "owner"]);
    assert_eq!(together["count"], 2);

    let left = app
        .client
        .post(app.url(&format!("/api/v1/circles/{id}/leave")))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), StatusCode::NO_CONTENT);
    loop {
        match tokio::time::timeout(FRAME_WAIT, member_socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Ws::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Policy);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn close_code(socket: &mut Socket) -> CloseCode {
    loop {
        match tokio::time::timeout(FRAME_WAIT, socket.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Ws::Close(Some(frame)))) => return frame.code,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let me: Value = app
        .get_with_token("/api/v1/me", token)
        .await
        .json()
        .await
        .unwrap();
    me["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn moderators_delete_messages_mute_and_remove_members() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let helper = app.resident("helper@example.org").await;
    let troll = app.resident("troll@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    for token in [&helper, &troll] {
        app.post_json_with_token(&format!("/api/v1/circles/{id}/join"), token, &json!({}))
            .await;
    }
    let helper_id = user_id(&app, &helper).await;
    let troll_id = user_id(&app, &troll).await;
    let not_yet = app
        .post_json_with_token(
            &format!("/api/v1/circles/{id}/members/{troll_id}/mute"),
            &helper,
            &json!({"minutes": 10}),
        )
        .await;
    assert_problem(not_yet, StatusCode::FORBIDDEN).await;
    let appointed = app
        .client
        .put(app.url(&format!("/api/v1/circles/{id}/members/{helper_id}")))
        .bearer_auth(&owner)
        .json(&json!({"role": "moderator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(appointed.status(), StatusCode::OK);

    let mut owner_socket = connect(&app, id, &owner, None).await;
    let mut troll_socket = connect(&app, id, &troll, None).await;
    let seq = send_acked(&mut troll_socket, "t-1", "buy cheap pills").await;
    assert_eq!(next_frame(&mut owner_socket).await["seq"], seq);

    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/circles/{id}/messages/{seq}")))
        .bearer_auth(&helper)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let notice = next_frame(&mut owner_socket).await;
    assert_eq!(notice, json!({"type": "deleted", "seq": seq}));
    let history: Value = app
        .get_json(&format!("/api/v1/circles/{id}/messages"))
        .await;
    assert_eq!(history["messages"][0]["deleted"], true);
    assert_eq!(history["messages"][0]["body"], "");

    let muted = app
        .post_json_with_token(
            &format!("/api/v1/circles/{id}/members/{troll_id}/mute"),
            &helper,
            &json!({"minutes": 10}),
        )
        .await;
    assert_eq!(muted.status(), StatusCode::NO_CONTENT);
    send(&mut troll_socket, "t-2", "still here").await;
    let refused = loop {
        let frame = next_frame(&mut troll_socket).await;
        if frame["type"] != "deleted" {
            break frame;
        }
    };
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "muted");
    // The refused message took no seq.
    assert_eq!(
        app.state
            .circles
            .latest_seq(id.parse().unwrap())
            .await
            .unwrap(),
        seq
    );
    // A resend of what was stored before the mute (its ack lost, say) is acked, not refused.
    send(&mut troll_socket, "t-1", "buy cheap pills").await;
    let ack = next_frame(&mut troll_socket).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["seq"], seq);

    let removed = app
        .client
        .delete(app.url(&format!("/api/v1/circles/{id}/members/{troll_id}")))
        .bearer_auth(&helper)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut troll_socket).await, CloseCode::Policy);
    let owner_id = circle["owner_id"].as_str().unwrap();
    let against_owner = app
        .client
        .delete(app.url(&format!("/api/v1/circles/{id}/members/{owner_id}")))
        .bearer_auth(&helper)
        .send()
        .await
        .unwrap();
    assert_problem(against_owner, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn the_owner_rotates_the_invite_code() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let friend = app.resident("friend@example.org").await;
    let circle = create_circle(&app, &owner, "private").await;
    let id = circle["id"].as_str().unwrap();
    let old_code = circle["invite_code"].as_str().unwrap();

    let rotated: Value = app
        .post_json_with_token(
            &format!("/api/v1/circles/{id}/invite-code"),
            &owner,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let new_code = rotated["invite_code"].as_str().unwrap();

    assert_ne!(old_code, new_code);
    let with_old = app
        .post_json_with_token(
            &format!("/api/v1/circles/{id}/join"),
            &friend,
            &json!({"invite_code": old_code}),
        )
        .await;
    assert_problem(with_old, StatusCode::FORBIDDEN).await;
    let with_new = app
        .post_json_with_token(
            &format!("/api/v1/circles/{id}/join"),
            &friend,
            &json!({"invite_code": new_code}),
        )
        .await;
    assert_eq!(with_new.status(), StatusCode::OK);
    let by_friend = app
        .post_json_with_token(
            &format!("/api/v1/circles/{id}/invite-code"),
            &friend,
            &json!({}),
        )
        .await;
    assert_problem(by_friend, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn shutting_down_closes_sockets_with_1001() {
    let app = TestApp::spawn().await;
    let owner = app.resident("owner@example.org").await;
    let circle = create_circle(&app, &owner, "public").await;
    let mut socket = connect(&app, circle["id"].as_str().unwrap(), &owner, None).await;

    app.state.shutdown.cancel();

    assert_eq!(close_code(&mut socket).await, CloseCode::Away);
}

#[tokio::test]
async fn a_message_sent_on_one_node_reaches_a_socket_on_another() {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        eprintln!("two-node fan-out not run: it needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    }
    let node_a = TestApp::spawn().await;
    let node_b = node_a.spawn_second_node().await;
    let owner = node_a.resident("owner@example.org").await;
    let circle = create_circle(&node_a, &owner, "public").await;
    let id = circle["id"].as_str().unwrap();
    let mut on_b = connect(&node_b, id, &owner, None).await;
    let mut on_a = connect(&node_a, id, &owner, None).await;

    for n in 1..=5 {
        send_acked(&mut on_a, &format!("a-{n}"), &format!("from A {n}")).await;
    }

    for n in 1..=5 {
        let frame = next_frame(&mut on_b).await;
        assert_eq!(frame["type"], "message", "{frame}");
        assert_eq!(frame["seq"], n, "in order, exactly once");
        assert_eq!(frame["body"], format!("from A {n}"));
    }
}

#[tokio::test]
async fn every_acked_message_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, address) = crate::helpers::start_server(dir.path());
    let client = reqwest::Client::new();
    let register = client
        .post(format!("{address}/api/v1/auth/register"))
        .json(&json!({"email": "li@example.org", "password": crate::helpers::PASSWORD, "display_name": "Li"}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::CREATED);
    let login: Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"email": "li@example.org", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let circle: Value = client
        .post(format!("{address}/api/v1/circles"))
        .bearer_auth(&token)
        .json(&json!({"name": "夜校", "visibility": "public"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = circle["id"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v1/circles/{id}/live",
        address.replace("http://", "ws://")
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    for n in 0..20 {
        send(&mut socket, &format!("k-{n}"), &format!("message {n}")).await;
    }
    let mut acked: Vec<(String, i64)> = Vec::new();
    while acked.len() < 10 {
        let frame = next_frame(&mut socket).await;
        if frame["type"] == "ack" {
            acked.push((
                frame["client_id"].as_str().unwrap().to_owned(),
                frame["seq"].as_i64().unwrap(),
            ));
        }
    }
    // Killed with no warning while messages may still be in flight.
    std::process::Command::new("kill")
        .args(["-9", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();

    let (mut restarted, address) = crate::helpers::start_server(dir.path());
    let history: Value = client
        .get(format!(
            "{address}/api/v1/circles/{id}/messages?limit=200&after=0"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<(String, i64)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["client_id"].as_str().unwrap().to_owned(),
                m["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    for (client_id, seq) in &acked {
        let copies = stored.iter().filter(|(c, _)| c == client_id).count();
        assert_eq!(copies, 1, "{client_id} stored {copies} times");
        assert!(
            stored.contains(&(client_id.clone(), *seq)),
            "{client_id} kept its seq {seq}"
        );
    }
    let seqs: Vec<i64> = stored.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "no holes"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &restarted.id().to_string()])
        .status()
        .unwrap();
    restarted.wait().unwrap();
}

#[tokio::test]
async fn a_link_to_a_course_here_arrives_with_a_card() {
    let app = TestApp::spawn().await;
    let (staff, course_id) = app.course_with_staff().await;
    let circle = create_circle(&app, &staff, "public").await;
    let id = circle["id"].as_str().unwrap();
    let mut socket = connect(&app, id, &staff, None).await;

    send(
        &mut socket,
        "share-1",
        &format!("一起学这个：{}/#/courses/{course_id}", app.address),
    )
    .await;
    let ack = next_frame(&mut socket).await;
    let message = next_frame(&mut socket).await;
    send_acked(&mut socket, "plain-1", "no link here").await;

    assert_eq!(ack["type"], "ack");
    assert_eq!(message["card"]["course_id"], course_id.as_str());
    assert_eq!(message["card"]["title"], "太极拳入门 Tai chi for beginners");
    assert_eq!(message["card"]["institution"], "xihu-college college");
    let history: Value = app
        .get_json(&format!("/api/v1/circles/{id}/messages"))
        .await;
    assert_eq!(
        history["messages"][0]["card"]["title"],
        "太极拳入门 Tai chi for beginners"
    );
    assert!(history["messages"][1]["card"].is_null());
}
