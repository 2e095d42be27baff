//! Accounts: registration, sign-in, sessions and bearer tokens.
//!
//! Owns the `users` and `sessions` tables. A sign-in creates one session and hands its random
//! token to the client twice: in the JSON body (for scripts, sent back as
//! `Authorization: Bearer`) and as an HttpOnly cookie (for browsers). Only the token's SHA-256
//! is stored, so a copy of the database does not let anyone sign in.
//!
//! Depends on `db`. Knows nothing about axum except in `routes.rs`.

pub mod error;
pub mod model;
pub mod password;
pub mod rate_limit;
pub mod routes;
pub mod store;

use std::net::IpAddr;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{self, Db};
use crate::error::Validation;
pub use error::AccountsError;
use model::{DisplayName, Email, NewPassword, Session, User};
use rate_limit::LoginLimiter;

/// Name of the cookie that carries the session token for browsers.
pub const SESSION_COOKIE: &str = "shuyuan_session";

/// Tokens carry a prefix so secret scanners and people can recognise a leaked one.
const TOKEN_PREFIX: &str = "sy_";

/// The signed-in user of a request, with the session it came through.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session_id: Uuid,
}

/// A freshly issued session token: shown once to the client, never stored.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: Duration,
}

pub struct NewAccount<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
    pub is_admin: bool,
}

/// Validates and creates an account. Every invalid field is reported at once.
pub async fn create_account(db: &Db, account: NewAccount<'_>) -> Result<User, AccountsError> {
    let mut validation = Validation::new();
    let email = validation.check("email", Email::parse(account.email));
    let display_name = validation.check("display_name", DisplayName::parse(account.display_name));
    let password = validation.check(
        "password",
        NewPassword::parse(account.password, &[account.email, account.display_name]),
    );
    validation.finish().map_err(AccountsError::Invalid)?;
    let (Some(email), Some(display_name), Some(password)) = (email, display_name, password) else {
        unreachable!("validation passed, so every field parsed");
    };

    if store::find_user_by_email(db.pool(), email.as_str())
        .await?
        .is_some()
    {
        return Err(AccountsError::EmailTaken);
    }
    let password_hash = password::hash(password.expose().to_owned()).await?;
    let new_user = store::NewUser {
        email: email.as_str(),
        display_name: display_name.as_str(),
        password_hash: &password_hash,
        is_admin: account.is_admin,
    };
    // The lookup above gives the common case a clear answer; the unique index settles races.
    store::insert_user(db.pool(), &new_user, db::now_ms())
        .await
        .map_err(|e| {
            if db::is_unique_violation(&e) {
                AccountsError::EmailTaken
            } else {
                AccountsError::Db(e)
            }
        })
}

pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub client_ip: IpAddr,
    pub user_agent: Option<&'a str>,
    pub session_ttl: Duration,
}

/// Checks the rate limits, then the password, then opens a session.
pub async fn sign_in(
    db: &Db,
    limiter: &LoginLimiter,
    attempt: SignIn<'_>,
) -> Result<(User, IssuedToken), AccountsError> {
    let email = attempt.email.trim().to_lowercase();
    limiter
        .check(attempt.client_ip, &email)
        .map_err(|retry_after| AccountsError::RateLimited { retry_after })?;

    let found = store::find_credentials(db.pool(), &email).await?;
    let (user, stored_hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let verified = password::verify(attempt.password.to_owned(), stored_hash).await?;
    let user = match user {
        Some(user) if verified => user,
        _ => return Err(AccountsError::InvalidCredentials),
    };

    let token = new_token();
    let now = db::now_ms();
    let ttl_ms = i64::try_from(attempt.session_ttl.as_millis()).unwrap_or(i64::MAX / 2);
    let user_agent = attempt.user_agent.map(|ua| truncate(ua, 256));
    store::insert_session(
        db.pool(),
        user.id,
        &hash_token(&token),
        user_agent,
        now,
        now.saturating_add(ttl_ms),
    )
    .await?;
    Ok((
        user,
        IssuedToken {
            token,
            expires_in: attempt.session_ttl,
        },
    ))
}

/// The user behind a token, if its session is live. Forged, expired and revoked tokens all
/// get the same `Unauthenticated`.
pub async fn authenticate(db: &Db, token: &str) -> Result<Authenticated, AccountsError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
        return Err(AccountsError::Unauthenticated);
    }
    match store::find_live_session(db.pool(), &hash_token(token), db::now_ms()).await? {
        Some((user, session_id)) => Ok(Authenticated { user, session_id }),
        None => Err(AccountsError::Unauthenticated),
    }
}

/// Ends the session the request came through.
pub async fn sign_out(db: &Db, auth: &Authenticated) -> Result<(), AccountsError> {
    store::revoke_session(db.pool(), auth.user.id, auth.session_id, db::now_ms()).await?;
    Ok(())
}

pub async fn list_sessions(db: &Db, user_id: Uuid) -> Result<Vec<Session>, AccountsError> {
    Ok(store::list_live_sessions(db.pool(), user_id, db::now_ms()).await?)
}

/// Revokes one of the user's own sessions (e.g. a lost phone).
pub async fn revoke_session(db: &Db, user_id: Uuid, session_id: Uuid) -> Result<(), AccountsError> {
    if store::revoke_session(db.pool(), user_id, session_id, db::now_ms()).await? {
        Ok(())
    } else {
        Err(AccountsError::SessionNotFound)
    }
}

/// The account registered under `email`; `None` also for text that is no e-mail address.
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    match Email::parse(email) {
        Ok(email) => store::find_user_by_email(db.pool(), email.as_str()).await,
        Err(_) => Ok(None),
    }
}

/// Deletes expired and revoked sessions; run periodically.
pub async fn purge_dead_sessions(db: &Db) -> Result<u64, AccountsError> {
    Ok(store::delete_dead_sessions(db.pool(), db::now_ms()).await?)
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert!(
            a[TOKEN_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    #[test]
    fn truncate_respects_character_boundaries() {
        assert_eq!(truncate("书院书院", 2), "书院");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
