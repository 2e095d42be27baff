//! The SQL of OAI-PMH: reading courses (withdrawn ones too) as records, and the shared token
//! secret. Reads the catalog's `courses` and `institutions` tables and writes only
//! `server_secrets`.

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::request::{Selection, SetSpec};
use super::token::Position;
use crate::accounts::store::parse_uuid;

/// A course as a record: what the header and the Dublin Core need.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseRecord {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub subjects: Vec<String>,
    pub languages: Vec<String>,
    pub license: String,
    pub region: String,
    /// The publishing institution; for a course federated from another server, as its origin
    /// named it. `None` only for rows written before federation existed.
    pub institution: Option<InstitutionName>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub withdrawn: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionName {
    pub slug: String,
    pub name: String,
}

const RECORD_COLUMNS: &str = "c.id, c.title, c.description, c.subjects, c.languages, \
    c.license, c.region, c.created_at, c.updated_at, c.withdrawn_at, \
    COALESCE(i.slug, c.remote_institution_slug) AS institution_slug, \
    COALESCE(i.name, c.remote_institution_name) AS institution_name";

fn json_list(row: &AnyRow, column: &str) -> Result<Vec<String>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(format!("{column}: {e}").into()))
}

fn record_from_row(row: &AnyRow) -> Result<CourseRecord, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let slug: Option<String> = row.try_get("institution_slug")?;
    let name: Option<String> = row.try_get("institution_name")?;
    let withdrawn_at: Option<i64> = row.try_get("withdrawn_at")?;
    Ok(CourseRecord {
        id: parse_uuid(&id)?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        subjects: json_list(row, "subjects")?,
        languages: json_list(row, "languages")?,
        license: row.try_get("license")?,
        region: row.try_get("region")?,
        institution: slug
            .zip(name)
            .map(|(slug, name)| InstitutionName { slug, name }),
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        withdrawn: withdrawn_at.is_some(),
    })
}

/// The `WHERE` shared by [`list`] and [`count`]: datestamp bounds, the set, and the position
/// after which the page starts. Without a position, `(i64::MIN, '')` lies before every row,
/// so the row comparison is always there and the `(updated_at, id)` index serves it.
const SELECTION: &str = "c.updated_at >= $1 AND c.updated_at <= $2 \
    AND (c.updated_at, c.id) > ($3, $4) \
    AND ($5 IS NULL OR c.subjects LIKE $5) \
    AND ($6 IS NULL OR COALESCE(i.slug, c.remote_institution_slug) LIKE $6)";

/// Binds the parameters of [`SELECTION`] in order.
fn bind_selection<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    selection: &Selection,
    after: Option<Position>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    // Subjects are stored as a JSON array of vocabulary words, so the quoted word matches
    // exactly, and `%"%` means "has a subject". Slugs hold no LIKE wildcards (a-z, 0-9, -);
    // `%` means "has an institution", which a NULL slug (LEFT JOIN, no institution) fails.
    let (subject, institution) = match &selection.set {
        None => (None, None),
        Some(SetSpec::AnySubject) => (Some("%\"%".to_owned()), None),
        Some(SetSpec::Subject(subject)) => (Some(format!("%\"{}\"%", subject.as_str())), None),
        Some(SetSpec::AnyInstitution) => (None, Some("%".to_owned())),
        Some(SetSpec::Institution(slug)) => (None, Some(slug.as_str().to_owned())),
    };
    let (after_ms, after_id) = match after {
        Some(position) => (position.updated_at_ms, position.id.to_string()),
        None => (i64::MIN, String::new()),
    };
    query
        .bind(selection.from_ms.unwrap_or(i64::MIN))
        .bind(selection.until_ms.unwrap_or(i64::MAX))
        .bind(after_ms)
        .bind(after_id)
        .bind(subject)
        .bind(institution)
}

/// Up to `limit` records of the selection after `after`, in `(updated_at, id)` order. Paging
/// by position rather than offset means courses added or changed meanwhile never shift a
/// record into a page already served or out of one still to come; a changed course shows up
/// again further on, under its new datestamp.
pub async fn list(
    pool: &AnyPool,
    selection: &Selection,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<CourseRecord>, sqlx::Error> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM courses c LEFT JOIN institutions i ON i.id = c.institution_id \
         WHERE {SELECTION} ORDER BY c.updated_at, c.id LIMIT $7"
    );
    let rows = bind_selection(sqlx::query(sqlx::AssertSqlSafe(sql)), selection, after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(record_from_row).collect()
}

/// How many records of the selection lie after `after`.
pub async fn count(
    pool: &AnyPool,
    selection: &Selection,
    after: Option<Position>,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM courses c LEFT JOIN institutions i ON i.id = c.institution_id \
         WHERE {SELECTION}"
    );
    let row = bind_selection(sqlx::query(sqlx::AssertSqlSafe(sql)), selection, after)
        .fetch_one(pool)
        .await?;
    let n: i64 = row.try_get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// A course in any state, or `None` if there never was one with this id.
pub async fn find(pool: &AnyPool, id: Uuid) -> Result<Option<CourseRecord>, sqlx::Error> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM courses c LEFT JOIN institutions i ON i.id = c.institution_id \
         WHERE c.id = $1"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(record_from_row)
        .transpose()
}

/// The oldest datestamp of any record, withdrawn ones included.
pub async fn earliest_update(pool: &AnyPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(updated_at) FROM courses")
        .fetch_one(pool)
        .await
}

/// The secret called `name`, storing `candidate` first if there is none yet. When nodes race,
/// the first insert wins and every node reads that one.
pub async fn shared_secret(
    pool: &AnyPool,
    name: &str,
    candidate: &str,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(candidate)
    .bind(now_ms)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}
