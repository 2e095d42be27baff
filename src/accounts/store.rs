//! Every SQL statement about users and sessions.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::model::{Session, User};

pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(User {
        id: parse_uuid(&id)?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        is_admin: row.try_get::<i64, _>("is_admin")? != 0,
        created_at_ms: row.try_get("created_at")?,
    })
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub async fn insert_user(
    pool: &AnyPool,
    user: &NewUser<'_>,
    now_ms: i64,
) -> Result<User, sqlx::Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO users (id, email, display_name, password_hash, is_admin, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(user.email)
    .bind(user.display_name)
    .bind(user.password_hash)
    .bind(i64::from(user.is_admin))
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(User {
        id,
        email: user.email.to_owned(),
        display_name: user.display_name.to_owned(),
        is_admin: user.is_admin,
        created_at_ms: now_ms,
    })
}

/// The user and their password hash, for signing in.
pub async fn find_credentials(
    pool: &AnyPool,
    email: &str,
) -> Result<Option<(User, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, email, display_name, is_admin, created_at, password_hash \
         FROM users WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?;
    row.map(|row| Ok((user_from_row(&row)?, row.try_get("password_hash")?)))
        .transpose()
}

pub async fn find_user_by_email(pool: &AnyPool, email: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query("SELECT id, email, display_name, is_admin, created_at FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await?
        .map(|row| user_from_row(&row))
        .transpose()
}

pub async fn insert_session(
    pool: &AnyPool,
    user_id: Uuid,
    token_hash: &str,
    user_agent: Option<&str>,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(token_hash)
    .bind(user_id.to_string())
    .bind(now_ms)
    .bind(expires_at_ms)
    .bind(user_agent)
    .execute(pool)
    .await?;
    Ok(id)
}

/// The user and session id behind a token hash, if that session is neither expired nor revoked.
pub async fn find_live_session(
    pool: &AnyPool,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<(User, Uuid)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.display_name, u.is_admin, u.created_at, s.id AS session_id \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let session_id: String = row.try_get("session_id")?;
        Ok((user_from_row(&row)?, parse_uuid(&session_id)?))
    })
    .transpose()
}

pub async fn list_live_sessions(
    pool: &AnyPool,
    user_id: Uuid,
    now_ms: i64,
) -> Result<Vec<Session>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, created_at, expires_at, user_agent FROM sessions \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at",
    )
    .bind(user_id.to_string())
    .bind(now_ms)
    .fetch_all(pool)
    .await?;
    let mut sessions = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        sessions.push(Session {
            id: parse_uuid(&id)?,
            created_at_ms: row.try_get("created_at")?,
            expires_at_ms: row.try_get("expires_at")?,
            user_agent: row.try_get("user_agent")?,
        });
    }
    Ok(sessions)
}

/// Revokes one of `user_id`'s sessions; false when there was no such live session.
pub async fn revoke_session(
    pool: &AnyPool,
    user_id: Uuid,
    session_id: Uuid,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE sessions SET revoked_at = $1 \
         WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms)
    .bind(session_id.to_string())
    .bind(user_id.to_string())
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes sessions that can no longer be used, so the table does not grow forever.
pub async fn delete_dead_sessions(pool: &AnyPool, now_ms: i64) -> Result<u64, sqlx::Error> {
    let result =
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at IS NOT NULL")
            .bind(now_ms)
            .execute(pool)
            .await?;
    Ok(result.rows_affected())
}
