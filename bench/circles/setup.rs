//! Setup, not measured: the accounts, sessions, circles and memberships of a run.
//!
//! Accounts and sessions go straight into the server's database, through the library's own
//! `accounts::store::insert_user` / `insert_session`, before the server starts: registering
//! 10,000 residents over HTTP would cost 10,000 argon2 hashes and signing in another 10,000
//! verifications (minutes of CPU on 2 cores), none of which the benchmark is about. Every
//! account is distinct, with its own display name and its own session; they share one real
//! argon2 hash (nobody signs in with a password here). Each session token is minted here the
//! way the server mints them (`sy_` + 32 random bytes, base64url) and stored as its SHA-256,
//! so the server authenticates every socket through its normal path.
//!
//! Circles are then created and joined **through the HTTP API** on the running server: one
//! organiser account creates them (it owns them and opens no socket), and every member joins
//! its circle with `POST /api/v1/circles/{id}/join`, as a resident's browser would.

use std::time::Instant;

use anyhow::Context;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shuyuan::accounts::{password, store};
use shuyuan::db::{self, Db};
use uuid::Uuid;

/// Concurrent writes while seeding and joining.
const SEED_CONCURRENCY: usize = 8;
const JOIN_CONCURRENCY: usize = 16;

/// One resident with a live session.
pub struct Account {
    pub token: String,
}

/// `accounts` members (index 0 is the organiser), seeded into the database at `url`, which is
/// created and migrated when new.
pub async fn seed_accounts(url: &str, members: usize) -> anyhow::Result<Vec<Account>> {
    let started = Instant::now();
    let db = Db::connect(url, SEED_CONCURRENCY as u32).await?;
    db.migrate().await?;
    let shared_hash = password::hash("circles benchmark: nobody signs in with this".into())
        .await
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let now = db::now_ms();
    let expires = now + 7 * 24 * 3600 * 1000;
    let accounts = futures::stream::iter(0..=members)
        .map(|i| {
            let db = db.clone();
            let shared_hash = shared_hash.clone();
            async move {
                let email = format!("member{i:05}@circles-bench.example.org");
                let display_name = if i == 0 {
                    "书院组织者 Organiser".to_owned()
                } else {
                    format!("学员{i:05} Learner")
                };
                let user = store::insert_user(
                    db.pool(),
                    &store::NewUser {
                        email: &email,
                        display_name: &display_name,
                        password_hash: &shared_hash,
                        is_admin: false,
                    },
                    now,
                )
                .await?;
                let token = new_token();
                store::insert_session(
                    db.pool(),
                    user.id,
                    &token_hash(&token),
                    Some("circles-bench"),
                    now,
                    expires,
                )
                .await?;
                Ok::<_, sqlx::Error>(Account { token })
            }
        })
        .buffered(SEED_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("seeding accounts")?;
    db.pool().close().await;
    println!(
        "  seeded {} accounts with sessions in {:.1} s",
        accounts.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(accounts)
}

/// `sy_` + 32 random bytes in base64url, like `accounts::new_token`.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "sy_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates `count` public circles as `organiser` through the API; returns their ids.
pub async fn create_circles(
    http: &reqwest::Client,
    base: &str,
    organiser: &str,
    count: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let response = http
            .post(format!("{base}/api/v1/circles"))
            .bearer_auth(organiser)
            .json(&json!({
                "name": format!("学习圈 {n:02} Study circle"),
                "description": "周三晚上一起读书 Reading together on Wednesday evenings",
                "visibility": "public",
            }))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::CREATED,
            "creating a circle: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await?;
        ids.push(
            body["id"]
                .as_str()
                .context("a circle id")?
                .parse()
                .context("a circle id")?,
        );
    }
    Ok(ids)
}

/// Every `(token, circle)` joins through `POST /api/v1/circles/{id}/join`.
pub async fn join_all(
    http: &reqwest::Client,
    base: &str,
    joins: Vec<(String, Uuid)>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let count = joins.len();
    let results = futures::stream::iter(joins)
        .map(|(token, circle)| async move {
            let response = http
                .post(format!("{base}/api/v1/circles/{circle}/join"))
                .bearer_auth(&token)
                .json(&json!({}))
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == StatusCode::OK,
                "joining: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
            Ok(())
        })
        .buffer_unordered(JOIN_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    println!(
        "  {count} members joined their circles over HTTP in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
