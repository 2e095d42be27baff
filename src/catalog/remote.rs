//! Courses published by other servers, written into this catalog by the federation harvester.
//!
//! A federated course lives in the same `courses` and `course_files` tables as a local one (so
//! search, the course API and onward feeds treat it alike), with its origin's id, the origin's
//! version as its version, its institution named on the row, and files marked not stored until
//! they are mirrored. These functions run inside the harvester's batch transaction and decide,
//! per record, whether it applies: a record never overwrites a newer one, a local course, or a
//! course of another origin.

use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::model::CourseFields;
use super::store::{self, to_json};
use crate::accounts::store::parse_uuid;
use crate::db::Backend;
use crate::media::MediaKey;
use crate::media::content::FileKind;

/// A validated course record from another server.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteCourse {
    pub id: Uuid,
    pub origin: String,
    pub origin_version: i64,
    pub institution_slug: String,
    pub institution_name: String,
    pub region: String,
    pub fields: CourseFields,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub files: Vec<RemoteFile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub kind: FileKind,
    pub size: u64,
    pub sha256_hex: String,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Written, with a new catalog log entry.
    Applied,
    /// This catalog already holds this version or a newer one.
    Stale,
    /// The record may not apply here (the reason is reported).
    Refused(String),
}

/// The origin and version of a course already in the catalog.
async fn current(conn: &mut AnyConnection, id: Uuid) -> Result<Option<(String, i64)>, sqlx::Error> {
    let row = sqlx::query("SELECT origin, version FROM courses WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|row| Ok((row.try_get("origin")?, row.try_get("version")?)))
        .transpose()
}

fn refuse_foreign(origin: &str, current_origin: &str, local_origin: &str) -> Option<Applied> {
    if current_origin == local_origin {
        Some(Applied::Refused(
            "the course id belongs to a course published on this server".into(),
        ))
    } else if current_origin != origin {
        Some(Applied::Refused(format!(
            "the course id belongs to a course of {current_origin}"
        )))
    } else {
        None
    }
}

/// Inserts or replaces a federated course and its files, and appends its log entry.
pub async fn upsert(
    conn: &mut AnyConnection,
    backend: Backend,
    local_origin: &str,
    course: &RemoteCourse,
    now_ms: i64,
) -> Result<Applied, sqlx::Error> {
    let existing = current(conn, course.id).await?;
    if let Some((origin, version)) = &existing {
        if let Some(refused) = refuse_foreign(&course.origin, origin, local_origin) {
            return Ok(refused);
        }
        if *version >= course.origin_version {
            return Ok(Applied::Stale);
        }
    }
    // A file id already used by another course would break that course: refuse the record.
    let mut kept: Vec<Uuid> = Vec::new();
    for file in &course.files {
        let row = sqlx::query(
            "SELECT course_id, sha256, name, content_type FROM course_files WHERE id = $1",
        )
        .bind(file.id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            let owner: String = row.try_get("course_id")?;
            if parse_uuid(&owner)? != course.id {
                return Ok(Applied::Refused(format!(
                    "file {} belongs to another course",
                    file.id
                )));
            }
            let same = row.try_get::<String, _>("sha256")? == file.sha256_hex
                && row.try_get::<String, _>("name")? == file.name
                && row.try_get::<String, _>("content_type")? == file.content_type;
            if same {
                kept.push(file.id);
            }
        }
    }

    let f = &course.fields;
    let subjects: Vec<&str> = f.subjects.iter().map(|s| s.as_str()).collect();
    let audience: Vec<&str> = f.audience.iter().map(|a| a.as_str()).collect();
    let sql = if existing.is_some() {
        "UPDATE courses SET origin = $2, title = $3, description = $4, subjects = $5, \
         audience = $6, level = $7, languages = $8, license = $9, tags = $10, credits = $11, \
         region = $12, version = $13, created_at = $14, updated_at = $15, \
         remote_institution_slug = $16, remote_institution_name = $17, institution_id = NULL, \
         withdrawn_at = NULL WHERE id = $1"
    } else {
        "INSERT INTO courses (id, origin, title, description, subjects, audience, level, \
         languages, license, tags, credits, region, version, created_at, updated_at, \
         remote_institution_slug, remote_institution_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    };
    sqlx::query(sql)
        .bind(course.id.to_string())
        .bind(&course.origin)
        .bind(&f.title)
        .bind(&f.description)
        .bind(to_json(&subjects))
        .bind(to_json(&audience))
        .bind(f.level.as_str())
        .bind(to_json(&f.languages))
        .bind(&f.license)
        .bind(to_json(&f.tags))
        .bind(f.credits)
        .bind(&course.region)
        .bind(course.origin_version)
        .bind(course.created_at_ms)
        .bind(course.updated_at_ms)
        .bind(&course.institution_slug)
        .bind(&course.institution_name)
        .execute(&mut *conn)
        .await?;

    // Files the record no longer names, or names with other bytes, go; their mirrored
    // objects become unreferenced and the sweep removes them.
    let rows = sqlx::query("SELECT id FROM course_files WHERE course_id = $1")
        .bind(course.id.to_string())
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let id = parse_uuid(&row.try_get::<String, _>("id")?)?;
        if !kept.contains(&id) {
            store::delete_file(conn, id).await?;
        }
    }
    for file in course.files.iter().filter(|f| !kept.contains(&f.id)) {
        sqlx::query(
            "INSERT INTO course_files (id, course_id, name, content_type, kind, size, sha256, \
             object_key, created_at, extraction, stored) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'none', 0)",
        )
        .bind(file.id.to_string())
        .bind(course.id.to_string())
        .bind(&file.name)
        .bind(&file.content_type)
        .bind(file.kind.as_str())
        .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
        .bind(&file.sha256_hex)
        .bind(MediaKey::file(file.id).as_str())
        .bind(course.updated_at_ms)
        .execute(&mut *conn)
        .await?;
    }
    store::append_log(
        conn,
        backend,
        course.id,
        "upsert",
        &course.origin,
        course.origin_version,
        now_ms,
    )
    .await?;
    Ok(Applied::Applied)
}

/// Withdraws a federated course (if this catalog has it) and appends the log entry, so the
/// withdrawal reaches search and this server's own followers. A withdrawal of a course never
/// seen is still logged: it is relayed onward and stops an older record from arriving later.
pub async fn withdraw(
    conn: &mut AnyConnection,
    backend: Backend,
    local_origin: &str,
    id: Uuid,
    origin: &str,
    origin_version: i64,
    now_ms: i64,
) -> Result<Applied, sqlx::Error> {
    if let Some((current_origin, version)) = current(conn, id).await? {
        if let Some(refused) = refuse_foreign(origin, &current_origin, local_origin) {
            return Ok(refused);
        }
        if version >= origin_version {
            return Ok(Applied::Stale);
        }
        sqlx::query(
            "UPDATE courses SET withdrawn_at = $1, version = $2, updated_at = $1 WHERE id = $3",
        )
        .bind(now_ms)
        .bind(origin_version)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    }
    store::append_log(conn, backend, id, "delete", origin, origin_version, now_ms).await?;
    Ok(Applied::Applied)
}

/// Marks a federated file's bytes as present in this server's store (mirrored), if the row
/// still describes those bytes.
pub async fn mark_stored(
    pool: &sqlx::AnyPool,
    file_id: Uuid,
    sha256_hex: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE course_files SET stored = 1 WHERE id = $1 AND sha256 = $2")
        .bind(file_id.to_string())
        .bind(sha256_hex)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
