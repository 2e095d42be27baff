//! Every SQL statement about circles, members and messages.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::model::{Author, Circle, CircleRole, Message, Visibility};
use crate::accounts::store::parse_uuid;

fn decode_error(message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::Decode(message.into().into())
}

const CIRCLE_COLUMNS: &str = "c.id, c.name, c.description, c.visibility, c.owner_id, c.invite_code, c.last_seq, c.created_at";

fn circle_from_row(row: &AnyRow) -> Result<Circle, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let owner: String = row.try_get("owner_id")?;
    let visibility: String = row.try_get("visibility")?;
    Ok(Circle {
        id: parse_uuid(&id)?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        visibility: Visibility::parse(&visibility).map_err(decode_error)?,
        owner_id: parse_uuid(&owner)?,
        invite_code: row.try_get("invite_code")?,
        last_seq: row.try_get("last_seq")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

pub async fn insert_circle(conn: &mut AnyConnection, circle: &Circle) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO circles (id, name, description, visibility, owner_id, invite_code, last_seq, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
    )
    .bind(circle.id.to_string())
    .bind(&circle.name)
    .bind(&circle.description)
    .bind(circle.visibility.as_str())
    .bind(circle.owner_id.to_string())
    .bind(&circle.invite_code)
    .bind(circle.created_at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find_circle(pool: &AnyPool, id: Uuid) -> Result<Option<Circle>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CIRCLE_COLUMNS} FROM circles c WHERE c.id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?
    .map(|row| circle_from_row(&row))
    .transpose()
}

/// Public circles and the private ones `user_id` belongs to, newest first.
pub async fn list_visible(
    pool: &AnyPool,
    user_id: Option<Uuid>,
) -> Result<Vec<Circle>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CIRCLE_COLUMNS} FROM circles c WHERE c.visibility = 'public' \
         OR EXISTS (SELECT 1 FROM circle_members m WHERE m.circle_id = c.id AND m.user_id = $1) \
         ORDER BY c.created_at DESC LIMIT 200"
    )))
    .bind(user_id.map(|id| id.to_string()))
    .fetch_all(pool)
    .await?;
    rows.iter().map(circle_from_row).collect()
}

pub async fn upsert_member(
    conn: &mut AnyConnection,
    circle_id: Uuid,
    user_id: Uuid,
    role: CircleRole,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO circle_members (circle_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (circle_id, user_id) DO NOTHING",
    )
    .bind(circle_id.to_string())
    .bind(user_id.to_string())
    .bind(role.as_str())
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_member(
    pool: &AnyPool,
    circle_id: Uuid,
    user_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM circle_members WHERE circle_id = $1 AND user_id = $2")
        .bind(circle_id.to_string())
        .bind(user_id.to_string())
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The member's role and mute deadline, if they are a member.
pub async fn membership(
    pool: &AnyPool,
    circle_id: Uuid,
    user_id: Uuid,
) -> Result<Option<(CircleRole, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT role, muted_until FROM circle_members WHERE circle_id = $1 AND user_id = $2",
    )
    .bind(circle_id.to_string())
    .bind(user_id.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let role: String = row.try_get("role")?;
        Ok((
            CircleRole::parse(&role).map_err(decode_error)?,
            row.try_get("muted_until")?,
        ))
    })
    .transpose()
}

const MESSAGE_COLUMNS: &str = "m.seq, m.id, m.author_id, u.display_name, m.client_id, m.body, m.card, m.sent_at, m.deleted_at";

fn message_from_row(row: &AnyRow) -> Result<Message, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let author: String = row.try_get("author_id")?;
    let deleted: Option<i64> = row.try_get("deleted_at")?;
    Ok(Message {
        seq: row.try_get("seq")?,
        id: parse_uuid(&id)?,
        author: Author {
            id: parse_uuid(&author)?,
            display_name: row.try_get("display_name")?,
        },
        client_id: row.try_get("client_id")?,
        body: if deleted.is_some() {
            String::new()
        } else {
            row.try_get("body")?
        },
        sent_at_ms: row.try_get("sent_at")?,
        deleted: deleted.is_some(),
        card: if deleted.is_some() {
            None
        } else {
            row.try_get::<Option<String>, _>("card")?
                .and_then(|json| serde_json::from_str(&json).ok())
        },
    })
}

pub async fn find_by_client_id(
    conn: &mut AnyConnection,
    circle_id: Uuid,
    author_id: Uuid,
    client_id: &str,
) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM circle_messages m JOIN users u ON u.id = m.author_id \
         WHERE m.circle_id = $1 AND m.author_id = $2 AND m.client_id = $3"
    )))
    .bind(circle_id.to_string())
    .bind(author_id.to_string())
    .bind(client_id)
    .fetch_optional(conn)
    .await?
    .map(|row| message_from_row(&row))
    .transpose()
}

/// Takes the circle's next seq for a message by `author_id`, if they are a member not muted
/// at `now`; `None` otherwise. The row update serialises concurrent senders on PostgreSQL (row
/// lock) and SQLite (one writer), and rolls back with the transaction: no holes. The
/// membership check rides in the same statement because every statement of a send is a round
/// trip to the database, and a send's latency is mostly those.
pub async fn take_seq_as_member(
    conn: &mut AnyConnection,
    circle_id: Uuid,
    author_id: Uuid,
    now_ms: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE circles SET last_seq = last_seq + 1 WHERE id = $1 AND EXISTS (\
             SELECT 1 FROM circle_members WHERE circle_id = $1 AND user_id = $2 \
             AND (muted_until IS NULL OR muted_until <= $3)) \
         RETURNING last_seq",
    )
    .bind(circle_id.to_string())
    .bind(author_id.to_string())
    .bind(now_ms)
    .fetch_optional(conn)
    .await
}

pub struct NewMessage<'a> {
    pub circle_id: Uuid,
    pub seq: i64,
    pub id: Uuid,
    pub author_id: Uuid,
    pub client_id: &'a str,
    pub body: &'a str,
    pub card: Option<&'a super::model::CourseCard>,
    pub sent_at_ms: i64,
}

/// Stores the message; `false` if its author already sent one with this `client_id` (a
/// retried send), which is left as it was.
pub async fn insert_message(
    conn: &mut AnyConnection,
    message: &NewMessage<'_>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO circle_messages (circle_id, seq, id, author_id, client_id, body, card, sent_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (circle_id, author_id, client_id) DO NOTHING",
    )
    .bind(message.circle_id.to_string())
    .bind(message.seq)
    .bind(message.id.to_string())
    .bind(message.author_id.to_string())
    .bind(message.client_id)
    .bind(message.body)
    .bind(message.card.map(|c| serde_json::to_string(c).expect("a card always serializes")))
    .bind(message.sent_at_ms)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Messages with `after < seq < before`, in seq order: the first `limit` of them, or the last
/// `limit` when `newest` (paging back from the present).
pub async fn list_messages(
    pool: &AnyPool,
    circle_id: Uuid,
    after: i64,
    before: i64,
    limit: u32,
    newest: bool,
) -> Result<Vec<Message>, sqlx::Error> {
    let order = if newest { "DESC" } else { "ASC" };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM circle_messages m JOIN users u ON u.id = m.author_id \
         WHERE m.circle_id = $1 AND m.seq > $2 AND m.seq < $3 ORDER BY m.seq {order} LIMIT $4"
    )))
    .bind(circle_id.to_string())
    .bind(after)
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let mut messages: Vec<Message> = rows
        .iter()
        .map(message_from_row)
        .collect::<Result<_, _>>()?;
    messages.sort_by_key(|m| m.seq);
    Ok(messages)
}

/// Blanks a message's body and marks it deleted; false when there is no such message.
pub async fn delete_message(
    pool: &AnyPool,
    circle_id: Uuid,
    seq: i64,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE circle_messages SET deleted_at = $1, body = '' \
         WHERE circle_id = $2 AND seq = $3 AND deleted_at IS NULL",
    )
    .bind(now_ms)
    .bind(circle_id.to_string())
    .bind(seq)
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn message_author(
    pool: &AnyPool,
    circle_id: Uuid,
    seq: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    let author: Option<String> = sqlx::query_scalar(
        "SELECT author_id FROM circle_messages WHERE circle_id = $1 AND seq = $2",
    )
    .bind(circle_id.to_string())
    .bind(seq)
    .fetch_optional(pool)
    .await?;
    author.map(|a| parse_uuid(&a)).transpose()
}

pub async fn find_message(
    pool: &AnyPool,
    circle_id: Uuid,
    seq: i64,
) -> Result<Option<Message>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS} FROM circle_messages m JOIN users u ON u.id = m.author_id \
         WHERE m.circle_id = $1 AND m.seq = $2"
    )))
    .bind(circle_id.to_string())
    .bind(seq)
    .fetch_optional(pool)
    .await?
    .map(|row| message_from_row(&row))
    .transpose()
}

pub async fn set_muted_until(
    pool: &AnyPool,
    circle_id: Uuid,
    user_id: Uuid,
    until_ms: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE circle_members SET muted_until = $1 WHERE circle_id = $2 AND user_id = $3",
    )
    .bind(until_ms)
    .bind(circle_id.to_string())
    .bind(user_id.to_string())
    .execute(pool)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn set_role(
    pool: &AnyPool,
    circle_id: Uuid,
    user_id: Uuid,
    role: CircleRole,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE circle_members SET role = $1 WHERE circle_id = $2 AND user_id = $3 AND role <> 'owner'")
        .bind(role.as_str())
        .bind(circle_id.to_string())
        .bind(user_id.to_string())
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn set_invite_code(
    pool: &AnyPool,
    circle_id: Uuid,
    code: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE circles SET invite_code = $1 WHERE id = $2")
        .bind(code)
        .bind(circle_id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}
