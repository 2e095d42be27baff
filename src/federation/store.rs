//! Every SQL statement about peers, pinned origins, federated records and the server identity.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::MediaPolicy;
use crate::accounts::store::parse_uuid;
use crate::catalog::store::{placeholders, rows_per_statement, value_rows};
use crate::db::Backend;
use crate::db::copy::{CopyRows, copy_in};

/// A peer and what this server knows of its feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub id: Uuid,
    pub url: String,
    pub server_id: String,
    pub name: String,
    pub public_key: String,
    pub media: MediaPolicy,
    pub last_seq: i64,
    pub records_received: i64,
    pub records_rejected: i64,
    pub mirrors_rejected: i64,
    pub failures: i64,
    pub last_sync_at_ms: Option<i64>,
    pub last_success_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_rejection: Option<String>,
    pub added_at_ms: i64,
}

const PEER_COLUMNS: &str = "id, url, server_id, name, public_key, media, last_seq, \
    records_received, records_rejected, mirrors_rejected, failures, last_sync_at, \
    last_success_at, last_error, last_rejection, added_at";

fn peer_from_row(row: &AnyRow) -> Result<Peer, sqlx::Error> {
    let media: String = row.try_get("media")?;
    Ok(Peer {
        id: parse_uuid(&row.try_get::<String, _>("id")?)?,
        url: row.try_get("url")?,
        server_id: row.try_get("server_id")?,
        name: row.try_get("name")?,
        public_key: row.try_get("public_key")?,
        media: MediaPolicy::parse(&media)
            .map_err(|e| sqlx::Error::Decode(format!("peers.media: {e}").into()))?,
        last_seq: row.try_get("last_seq")?,
        records_received: row.try_get("records_received")?,
        records_rejected: row.try_get("records_rejected")?,
        mirrors_rejected: row.try_get("mirrors_rejected")?,
        failures: row.try_get("failures")?,
        last_sync_at_ms: row.try_get("last_sync_at")?,
        last_success_at_ms: row.try_get("last_success_at")?,
        last_error: row.try_get("last_error")?,
        last_rejection: row.try_get("last_rejection")?,
        added_at_ms: row.try_get("added_at")?,
    })
}

pub async fn insert_peer(pool: &AnyPool, peer: &Peer) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO peers (id, url, server_id, name, public_key, media, added_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(peer.id.to_string())
    .bind(&peer.url)
    .bind(&peer.server_id)
    .bind(&peer.name)
    .bind(&peer.public_key)
    .bind(peer.media.as_str())
    .bind(peer.added_at_ms)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn list_peers(pool: &AnyPool) -> Result<Vec<Peer>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PEER_COLUMNS} FROM peers ORDER BY added_at, id"
    )))
    .fetch_all(pool)
    .await?
    .iter()
    .map(peer_from_row)
    .collect()
}

pub async fn find_peer(pool: &AnyPool, id: Uuid) -> Result<Option<Peer>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PEER_COLUMNS} FROM peers WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?
    .map(|row| peer_from_row(&row))
    .transpose()
}

/// Moves the peer's position from `since` to `next` inside the batch's transaction. `false`
/// when the position is no longer `since`: another node applied this batch first.
pub async fn advance(
    conn: &mut AnyConnection,
    id: Uuid,
    since: i64,
    next: i64,
    received: i64,
    rejected: i64,
    last_rejection: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE peers SET last_seq = $1, records_received = records_received + $2, \
         records_rejected = records_rejected + $3, \
         last_rejection = COALESCE($4, last_rejection) WHERE id = $5 AND last_seq = $6",
    )
    .bind(next)
    .bind(received)
    .bind(rejected)
    .bind(last_rejection)
    .bind(id.to_string())
    .bind(since)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn record_success(pool: &AnyPool, id: Uuid, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE peers SET failures = 0, last_error = NULL, last_sync_at = $1, \
         last_success_at = $1 WHERE id = $2",
    )
    .bind(now_ms)
    .bind(id.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn record_failure(
    pool: &AnyPool,
    id: Uuid,
    now_ms: i64,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE peers SET failures = failures + 1, last_error = $1, last_sync_at = $2 \
         WHERE id = $3",
    )
    .bind(error)
    .bind(now_ms)
    .bind(id.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// Starts the peer's feed over from the beginning (it no longer knows our position).
pub async fn reset_position(pool: &AnyPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE peers SET last_seq = 0 WHERE id = $1")
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn count_rejected_mirror(pool: &AnyPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE peers SET mirrors_rejected = mirrors_rejected + 1 WHERE id = $1")
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// An origin whose key this server has pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedOrigin {
    pub id: String,
    pub public_key: String,
    pub source: String,
    pub via_peer: Option<Uuid>,
    pub pinned_at_ms: i64,
}

pub async fn pinned_key(pool: &AnyPool, origin: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT public_key FROM origins WHERE id = $1")
        .bind(origin)
        .fetch_optional(pool)
        .await
}

/// Pins `key` for `origin` unless a key is pinned already; returns the key pinned now and
/// whether it was pinned by this call.
pub async fn pin_origin(
    pool: &AnyPool,
    origin: &str,
    key: &str,
    source: &str,
    via_peer: Option<Uuid>,
    now_ms: i64,
) -> Result<(String, bool), sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO origins (id, public_key, source, via_peer, pinned_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(origin)
    .bind(key)
    .bind(source)
    .bind(via_peer.map(|id| id.to_string()))
    .bind(now_ms)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    let pinned = pinned_key(pool, origin).await?.unwrap_or_default();
    Ok((pinned, inserted))
}

pub async fn list_origins(pool: &AnyPool) -> Result<Vec<PinnedOrigin>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT id, public_key, source, via_peer, pinned_at FROM origins ORDER BY id")
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|row| {
            Ok(PinnedOrigin {
                id: row.try_get("id")?,
                public_key: row.try_get("public_key")?,
                source: row.try_get("source")?,
                via_peer: row
                    .try_get::<Option<String>, _>("via_peer")?
                    .as_deref()
                    .map(parse_uuid)
                    .transpose()?,
                pinned_at_ms: row.try_get("pinned_at")?,
            })
        })
        .collect()
}

/// A course record with its origin's signature: one of this server's own courses as the
/// publisher signed it, or one received from a peer.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedRecord {
    pub course_id: Uuid,
    /// The server id the record was signed under.
    pub origin: String,
    pub origin_version: i64,
    pub op: String,
    /// The course record's JSON text, exactly the bytes the signature's canonical form covers.
    pub course: String,
    pub signature: String,
}

/// The columns a [`SignedRecord`] is stored in, in both record tables.
const SIGNED_COLUMNS: &str = "course_id, origin, origin_version, op, course, signature";

impl SignedRecord {
    fn from_row(row: &AnyRow) -> Result<SignedRecord, sqlx::Error> {
        Ok(SignedRecord {
            course_id: parse_uuid(&row.try_get::<String, _>("course_id")?)?,
            origin: row.try_get("origin")?,
            origin_version: row.try_get("origin_version")?,
            op: row.try_get("op")?,
            course: row.try_get("course")?,
            signature: row.try_get("signature")?,
        })
    }

    /// Binds [`SIGNED_COLUMNS`], in that order.
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        query
            .bind(self.course_id.to_string())
            .bind(&self.origin)
            .bind(self.origin_version)
            .bind(&self.op)
            .bind(&self.course)
            .bind(&self.signature)
    }
}

/// A federated record as received, kept to relay onward.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub signed: SignedRecord,
    pub origin_key: String,
    pub peer_id: Uuid,
}

/// The versions of the newest records held for these courses.
pub async fn record_versions(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
    rows_by_course_ids(
        conn,
        backend,
        "SELECT course_id, origin_version FROM federated_records",
        ids,
    )
    .await?
    .iter()
    .map(|row| {
        Ok((
            parse_uuid(&row.try_get::<String, _>("course_id")?)?,
            row.try_get("origin_version")?,
        ))
    })
    .collect()
}

/// Records per multi-row statement that keeps or publishes them: 200 on PostgreSQL (as
/// measured), fewer on SQLite, whose binding costs the square of a statement's values.
fn records_per_statement(backend: Backend, columns: usize) -> usize {
    rows_per_statement(backend, columns).min(200)
}

const KEPT_COLUMNS: &str = "origin_key, peer_id, received_at";

/// Keeps records for courses that have none kept yet (ids distinct, none held: see
/// [`record_versions`]): one `COPY` on PostgreSQL; [`save_records`] on SQLite.
pub async fn insert_records(
    conn: &mut AnyConnection,
    backend: Backend,
    records: &[StoredRecord],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    if backend != Backend::Postgres {
        return save_records(conn, backend, records, now_ms).await;
    }
    let mut rows = CopyRows::new();
    for record in records {
        let signed = &record.signed;
        rows.text(&signed.course_id.to_string())
            .text(&signed.origin)
            .int(signed.origin_version)
            .text(&signed.op)
            .text(&signed.course)
            .text(&signed.signature)
            .text(&record.origin_key)
            .text(&record.peer_id.to_string())
            .int(now_ms)
            .end_row();
    }
    copy_in(
        conn,
        "federated_records",
        &format!("{SIGNED_COLUMNS}, {KEPT_COLUMNS}"),
        rows,
    )
    .await?;
    Ok(())
}

/// Keeps (or replaces) the records, several per statement. Ids must be distinct.
pub async fn save_records(
    conn: &mut AnyConnection,
    backend: Backend,
    records: &[StoredRecord],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    for chunk in records.chunks(records_per_statement(backend, 9)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO federated_records ({SIGNED_COLUMNS}, {KEPT_COLUMNS}) \
             VALUES {} \
             ON CONFLICT (course_id) DO UPDATE SET origin = excluded.origin, \
             origin_version = excluded.origin_version, op = excluded.op, \
             course = excluded.course, signature = excluded.signature, \
             origin_key = excluded.origin_key, peer_id = excluded.peer_id, \
             received_at = excluded.received_at",
            value_rows(chunk.len(), 9)
        )));
        for record in chunk {
            query = record
                .signed
                .bind(query)
                .bind(&record.origin_key)
                .bind(record.peer_id.to_string())
                .bind(now_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn records_by_ids(
    pool: &AnyPool,
    backend: Backend,
    ids: &[Uuid],
) -> Result<Vec<StoredRecord>, sqlx::Error> {
    rows_by_course_ids(
        &mut *pool.acquire().await?,
        backend,
        &format!("SELECT {SIGNED_COLUMNS}, origin_key, peer_id FROM federated_records"),
        ids,
    )
    .await?
    .iter()
    .map(|row| {
        Ok(StoredRecord {
            signed: SignedRecord::from_row(row)?,
            origin_key: row.try_get("origin_key")?,
            peer_id: parse_uuid(&row.try_get::<String, _>("peer_id")?)?,
        })
    })
    .collect()
}

/// The origin of a federated course and the peer it came through.
pub async fn source_of_course(
    pool: &AnyPool,
    course_id: Uuid,
) -> Result<Option<(String, Peer)>, sqlx::Error> {
    let columns = PEER_COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT r.origin AS record_origin, {columns} FROM federated_records r \
         JOIN peers p ON p.id = r.peer_id WHERE r.course_id = $1"
    )))
    .bind(course_id.to_string())
    .fetch_optional(pool)
    .await?
    .map(|row| Ok((row.try_get("record_origin")?, peer_from_row(&row)?)))
    .transpose()
}

/// Records this server's id and public key on first start; returns the id and key recorded
/// (the key differs when this node was started with another key file than the cluster's).
pub async fn claim_identity(
    pool: &AnyPool,
    server_id: &str,
    public_key: &str,
) -> Result<(String, String), sqlx::Error> {
    sqlx::query(
        "INSERT INTO server_identity (singleton, server_id, public_key) VALUES (1, $1, $2) \
         ON CONFLICT (singleton) DO NOTHING",
    )
    .bind(server_id)
    .bind(public_key)
    .execute(pool)
    .await?;
    let row = sqlx::query("SELECT server_id, public_key FROM server_identity WHERE singleton = 1")
        .fetch_one(pool)
        .await?;
    Ok((row.try_get("server_id")?, row.try_get("public_key")?))
}

/// A server whose public URL changed publishes under its new id from now on.
pub async fn set_server_id(pool: &AnyPool, server_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE server_identity SET server_id = $1 WHERE singleton = 1")
        .bind(server_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The log seq the publisher has signed through.
pub async fn publisher_position(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT last_seq FROM publisher_position WHERE singleton = 1")
        .fetch_one(pool)
        .await
}

/// Stores signed records (never over a newer version another node stored meanwhile) and moves
/// the publisher to `through_seq`, in one transaction. Ids must be distinct; records are
/// written in id order, so two nodes publishing at once lock rows in the same order.
pub async fn save_published(
    conn: &mut AnyConnection,
    backend: Backend,
    records: &[SignedRecord],
    through_seq: i64,
) -> Result<(), sqlx::Error> {
    let mut records: Vec<&SignedRecord> = records.iter().collect();
    records.sort_by_key(|record| record.course_id);
    for chunk in records.chunks(records_per_statement(backend, 6)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO published_records ({SIGNED_COLUMNS}) VALUES {} \
             ON CONFLICT (course_id) DO UPDATE SET \
             origin = excluded.origin, origin_version = excluded.origin_version, op = excluded.op, \
             course = excluded.course, signature = excluded.signature \
             WHERE published_records.origin_version <= excluded.origin_version",
            value_rows(chunk.len(), 6)
        )));
        for record in chunk {
            query = record.bind(query);
        }
        query.execute(&mut *conn).await?;
    }
    sqlx::query(
        "UPDATE publisher_position SET last_seq = $1 WHERE singleton = 1 AND last_seq < $1",
    )
    .bind(through_seq)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn published_by_ids(
    pool: &AnyPool,
    backend: Backend,
    ids: &[Uuid],
) -> Result<Vec<SignedRecord>, sqlx::Error> {
    rows_by_course_ids(
        &mut *pool.acquire().await?,
        backend,
        &format!("SELECT {SIGNED_COLUMNS} FROM published_records"),
        ids,
    )
    .await?
    .iter()
    .map(SignedRecord::from_row)
    .collect()
}

/// The rows of `select` (a `SELECT … FROM table`) whose `course_id` is one of `ids`.
async fn rows_by_course_ids(
    conn: &mut AnyConnection,
    backend: Backend,
    select: &str,
    ids: &[Uuid],
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(rows_per_statement(backend, 1)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{select} WHERE course_id IN ({})",
            placeholders(1, chunk.len())
        )));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}
