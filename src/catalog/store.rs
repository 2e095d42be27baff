//! Every SQL statement about courses, their files, the catalog log and pending uploads.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::model::{Audience, Course, CourseFields, CourseFile, InstitutionRef, Level, Subject};
use crate::accounts::store::parse_uuid;
use crate::db::Backend;
use crate::db::copy::{CopyRows, copy_in};
use crate::media::content::FileKind;

fn decode_error(message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::Decode(message.into().into())
}

fn json_list(row: &AnyRow, column: &str) -> Result<Vec<String>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| decode_error(format!("{column}: {e}")))
}

pub(crate) fn to_json<T: AsRef<str>>(items: &[T]) -> String {
    let strings: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    serde_json::to_string(&strings).expect("a list of strings serializes")
}

fn vocabulary<T>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, sqlx::Error> {
    json_list(row, column)?
        .iter()
        .map(|s| parse(s).map_err(decode_error))
        .collect()
}

// A federated course has no local institution row: its institution is named on the course.
const COURSE_COLUMNS: &str = "c.id, c.origin, c.institution_id, \
    COALESCE(i.slug, c.remote_institution_slug) AS institution_slug, \
    COALESCE(i.name, c.remote_institution_name) AS institution_name, c.title, c.description, c.subjects, c.audience, c.level, \
    c.languages, c.license, c.tags, c.credits, c.region, c.version, c.withdrawn_at, \
    c.created_at, c.updated_at";

fn course_from_row(row: &AnyRow) -> Result<Course, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let institution_id: Option<String> = row.try_get("institution_id")?;
    let level: String = row.try_get("level")?;
    let withdrawn_at: Option<i64> = row.try_get("withdrawn_at")?;
    Ok(Course {
        id: parse_uuid(&id)?,
        origin: row.try_get("origin")?,
        institution: InstitutionRef {
            id: institution_id.as_deref().map(parse_uuid).transpose()?,
            slug: row
                .try_get::<Option<String>, _>("institution_slug")?
                .unwrap_or_default(),
            name: row
                .try_get::<Option<String>, _>("institution_name")?
                .unwrap_or_default(),
        },
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        subjects: vocabulary(row, "subjects", Subject::parse)?,
        audience: vocabulary(row, "audience", Audience::parse)?,
        level: Level::parse(&level).map_err(decode_error)?,
        languages: json_list(row, "languages")?,
        license: row.try_get("license")?,
        tags: json_list(row, "tags")?,
        credits: row.try_get("credits")?,
        region: row.try_get("region")?,
        version: row.try_get("version")?,
        withdrawn: withdrawn_at.is_some(),
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        files: Vec::new(),
    })
}

const FILE_COLUMNS: &str = "f.id, f.course_id, f.name, f.content_type, f.kind, f.size, f.sha256, f.object_key, f.created_at, f.stored";

fn file_from_row(row: &AnyRow) -> Result<CourseFile, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let course_id: String = row.try_get("course_id")?;
    let kind: String = row.try_get("kind")?;
    let size: i64 = row.try_get("size")?;
    Ok(CourseFile {
        id: parse_uuid(&id)?,
        course_id: parse_uuid(&course_id)?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        kind: FileKind::parse(&kind).ok_or_else(|| decode_error(format!("unknown kind {kind}")))?,
        size: u64::try_from(size).map_err(|e| decode_error(e.to_string()))?,
        sha256_hex: row.try_get("sha256")?,
        object_key: row.try_get("object_key")?,
        created_at_ms: row.try_get("created_at")?,
        stored: row.try_get::<i64, _>("stored")? != 0,
    })
}

pub struct NewCourse<'a> {
    pub id: Uuid,
    pub origin: &'a str,
    pub institution_id: Uuid,
    pub region: &'a str,
    pub fields: &'a CourseFields,
    pub now_ms: i64,
}

pub async fn insert_course(
    conn: &mut AnyConnection,
    course: &NewCourse<'_>,
) -> Result<(), sqlx::Error> {
    let f = course.fields;
    sqlx::query(
        "INSERT INTO courses (id, origin, institution_id, title, description, subjects, audience, \
         level, languages, license, tags, credits, region, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14)",
    )
    .bind(course.id.to_string())
    .bind(course.origin)
    .bind(course.institution_id.to_string())
    .bind(&f.title)
    .bind(&f.description)
    .bind(to_json(
        &f.subjects.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    ))
    .bind(to_json(
        &f.audience.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    ))
    .bind(f.level.as_str())
    .bind(to_json(&f.languages))
    .bind(&f.license)
    .bind(to_json(&f.tags))
    .bind(f.credits)
    .bind(course.region)
    .bind(course.now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the editable fields and raises the version; returns the new version.
pub async fn update_course(
    conn: &mut AnyConnection,
    id: Uuid,
    fields: &CourseFields,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE courses SET title = $1, description = $2, subjects = $3, audience = $4, \
         level = $5, languages = $6, license = $7, tags = $8, credits = $9, \
         version = version + 1, updated_at = $10 WHERE id = $11 RETURNING version",
    )
    .bind(&fields.title)
    .bind(&fields.description)
    .bind(to_json(
        &fields
            .subjects
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    ))
    .bind(to_json(
        &fields
            .audience
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
    ))
    .bind(fields.level.as_str())
    .bind(to_json(&fields.languages))
    .bind(&fields.license)
    .bind(to_json(&fields.tags))
    .bind(fields.credits)
    .bind(now_ms)
    .bind(id.to_string())
    .fetch_one(conn)
    .await
}

/// Raises the version after a change to the course's files; returns the new version.
pub async fn bump_version(
    conn: &mut AnyConnection,
    id: Uuid,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE courses SET version = version + 1, updated_at = $1 WHERE id = $2 RETURNING version",
    )
    .bind(now_ms)
    .bind(id.to_string())
    .fetch_one(conn)
    .await
}

pub async fn mark_withdrawn(
    conn: &mut AnyConnection,
    id: Uuid,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE courses SET withdrawn_at = $1, version = version + 1, updated_at = $1 \
         WHERE id = $2 RETURNING version",
    )
    .bind(now_ms)
    .bind(id.to_string())
    .fetch_one(conn)
    .await
}

pub async fn find_course(pool: &AnyPool, id: Uuid) -> Result<Option<Course>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COURSE_COLUMNS} FROM courses c LEFT JOIN institutions i ON i.id = c.institution_id \
         WHERE c.id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut course = course_from_row(&row)?;
    course.files = files_of(pool, id).await?;
    Ok(Some(course))
}

pub async fn files_of(pool: &AnyPool, course_id: Uuid) -> Result<Vec<CourseFile>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS} FROM course_files f WHERE f.course_id = $1 ORDER BY f.name"
    )))
    .bind(course_id.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter().map(file_from_row).collect()
}

/// `$first, $first+1, …` for an `IN (…)` list of `count` values.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $columns), ($columns+1, …), …`: the `VALUES` of a multi-row insert.
pub(crate) fn value_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|i| format!("({})", placeholders(i * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ids bound in one `IN (…)` list at most. SQLite finds each bound parameter's name by a scan
/// of the statement's parameter list, so binding costs the square of the list's length: a
/// list of 4,096 ids took more of the indexer's time than reading the rows. In lists of this
/// size that is a small part of the read.
pub const IDS_PER_STATEMENT: usize = 256;

/// Rows of `columns` values each per multi-row statement. PostgreSQL takes 500 (measured by
/// the federation benchmark; well under its limit on bound values); SQLite's binding costs the
/// square of a statement's values (see [`IDS_PER_STATEMENT`]), so there a statement binds
/// about as many values as an `IN` list.
pub(crate) fn rows_per_statement(backend: Backend, columns: usize) -> usize {
    match backend {
        Backend::Postgres => 500,
        Backend::Sqlite => (IDS_PER_STATEMENT / columns.max(1)).max(1),
    }
}

/// Courses by id in any state, with their files; ids not found are left out. Two queries per
/// [`IDS_PER_STATEMENT`] ids, for readers that take many at once (a feed page, an indexer batch).
pub async fn find_courses(pool: &AnyPool, ids: &[Uuid]) -> Result<Vec<Course>, sqlx::Error> {
    let mut courses = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        courses.extend(find_courses_in_one_list(pool, chunk).await?);
    }
    Ok(courses)
}

async fn find_courses_in_one_list(
    pool: &AnyPool,
    ids: &[Uuid],
) -> Result<Vec<Course>, sqlx::Error> {
    let list = placeholders(1, ids.len());
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COURSE_COLUMNS} FROM courses c LEFT JOIN institutions i ON i.id = c.institution_id \
         WHERE c.id IN ({list})"
    )));
    for id in ids {
        query = query.bind(id.to_string());
    }
    let mut courses = query
        .fetch_all(pool)
        .await?
        .iter()
        .map(course_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut files_query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS} FROM course_files f WHERE f.course_id IN ({list}) ORDER BY f.name"
    )));
    for id in ids {
        files_query = files_query.bind(id.to_string());
    }
    let mut by_course: HashMap<Uuid, Vec<CourseFile>> = HashMap::new();
    for row in files_query.fetch_all(pool).await? {
        let file = file_from_row(&row)?;
        by_course.entry(file.course_id).or_default().push(file);
    }
    for course in &mut courses {
        course.files = by_course.remove(&course.id).unwrap_or_default();
    }
    Ok(courses)
}

pub struct CourseFilter {
    pub institution_id: Option<Uuid>,
    pub subject: Option<Subject>,
    /// Only courses whose id sorts after this one (ids are time-ordered UUIDv7).
    pub after: Option<Uuid>,
    pub limit: u32,
}

/// Live (not withdrawn) courses in id order, with their files.
pub async fn list_courses(
    pool: &AnyPool,
    filter: &CourseFilter,
) -> Result<Vec<Course>, sqlx::Error> {
    // Subjects are stored as a JSON array of known tokens, so matching the quoted token is exact.
    let subject_pattern = filter.subject.map(|s| format!("%\"{}\"%", s.as_str()));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COURSE_COLUMNS} FROM courses c LEFT JOIN institutions i ON i.id = c.institution_id \
         WHERE c.withdrawn_at IS NULL \
           AND ($1 IS NULL OR c.institution_id = $1) \
           AND ($2 IS NULL OR c.subjects LIKE $2) \
           AND ($3 IS NULL OR c.id > $3) \
         ORDER BY c.id LIMIT $4"
    )))
    .bind(filter.institution_id.map(|id| id.to_string()))
    .bind(subject_pattern)
    .bind(filter.after.map(|id| id.to_string()))
    .bind(i64::from(filter.limit))
    .fetch_all(pool)
    .await?;
    let mut courses = Vec::with_capacity(rows.len());
    for row in rows {
        let mut course = course_from_row(&row)?;
        course.files = files_of(pool, course.id).await?;
        courses.push(course);
    }
    Ok(courses)
}

pub async fn insert_file(conn: &mut AnyConnection, file: &CourseFile) -> Result<(), sqlx::Error> {
    // Only documents and subtitles carry text; everything else is marked done at once.
    let extraction = match file.kind {
        FileKind::Document | FileKind::Subtitle => "pending",
        _ => "none",
    };
    sqlx::query(
        "INSERT INTO course_files (id, course_id, name, content_type, kind, size, sha256, object_key, created_at, extraction) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(file.id.to_string())
    .bind(file.course_id.to_string())
    .bind(&file.name)
    .bind(&file.content_type)
    .bind(file.kind.as_str())
    .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
    .bind(&file.sha256_hex)
    .bind(&file.object_key)
    .bind(file.created_at_ms)
    .bind(extraction)
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims one file waiting for text extraction (or whose claim went stale: a node died
/// mid-extraction). The conditional update makes the claim safe between nodes.
pub async fn claim_extraction(
    pool: &AnyPool,
    now_ms: i64,
    stale_before_ms: i64,
) -> Result<Option<CourseFile>, sqlx::Error> {
    let candidates = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS} FROM course_files f \
         WHERE f.extraction = 'pending' OR (f.extraction = 'running' AND f.extraction_claimed_at < $1) \
         ORDER BY f.created_at LIMIT 8"
    )))
    .bind(stale_before_ms)
    .fetch_all(pool)
    .await?;
    for row in candidates {
        let file = file_from_row(&row)?;
        let claimed = sqlx::query(
            "UPDATE course_files SET extraction = 'running', extraction_claimed_at = $1 \
             WHERE id = $2 AND (extraction = 'pending' OR (extraction = 'running' AND extraction_claimed_at < $3))",
        )
        .bind(now_ms)
        .bind(file.id.to_string())
        .bind(stale_before_ms)
        .execute(pool)
        .await?;
        if claimed.rows_affected() == 1 {
            return Ok(Some(file));
        }
    }
    Ok(None)
}

pub async fn set_extraction_state(
    conn: &mut AnyConnection,
    file_id: Uuid,
    state: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE course_files SET extraction = $1 WHERE id = $2")
        .bind(state)
        .bind(file_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn replace_segments(
    conn: &mut AnyConnection,
    file_id: Uuid,
    segments: &[crate::extract::Segment],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM file_segments WHERE file_id = $1")
        .bind(file_id.to_string())
        .execute(&mut *conn)
        .await?;
    for (ord, segment) in segments.iter().enumerate() {
        sqlx::query("INSERT INTO file_segments (file_id, ord, at_ms, page, text) VALUES ($1, $2, $3, $4, $5)")
            .bind(file_id.to_string())
            .bind(i64::try_from(ord).unwrap_or(i64::MAX))
            .bind(segment.at_ms.and_then(|v| i64::try_from(v).ok()))
            .bind(segment.page.map(i64::from))
            .bind(&segment.text)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The course's current version, for a log entry that records a derived change.
pub async fn course_version(
    conn: &mut AnyConnection,
    course_id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM courses WHERE id = $1")
        .bind(course_id.to_string())
        .fetch_optional(conn)
        .await
}

pub async fn find_file_by_name(
    conn: &mut AnyConnection,
    course_id: Uuid,
    name: &str,
) -> Result<Option<CourseFile>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS} FROM course_files f WHERE f.course_id = $1 AND f.name = $2"
    )))
    .bind(course_id.to_string())
    .bind(name)
    .fetch_optional(conn)
    .await?
    .map(|row| file_from_row(&row))
    .transpose()
}

/// A file and whether its course is still live.
pub async fn find_file(
    pool: &AnyPool,
    id: Uuid,
) -> Result<Option<(CourseFile, bool)>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FILE_COLUMNS}, c.withdrawn_at FROM course_files f JOIN courses c ON c.id = f.course_id \
         WHERE f.id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?
    .map(|row| {
        let withdrawn: Option<i64> = row.try_get("withdrawn_at")?;
        Ok((file_from_row(&row)?, withdrawn.is_none()))
    })
    .transpose()
}

pub async fn delete_file(conn: &mut AnyConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM course_files WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends to the catalog log. Runs inside the transaction that made the change.
///
/// On PostgreSQL, identity values are handed out at insert but become visible at commit, so
/// two concurrent writers could commit seq 8 before seq 7 and a reader that saw 8 would skip 7
/// forever. A transaction-scoped advisory lock makes appends commit in seq order. SQLite has a
/// single writer and needs nothing.
pub async fn append_log(
    conn: &mut AnyConnection,
    backend: Backend,
    course_id: Uuid,
    op: &str,
    origin: &str,
    origin_version: i64,
    now_ms: i64,
) -> Result<i64, sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7001001)")
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query_scalar(
        "INSERT INTO catalog_log (course_id, op, origin, origin_version, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
    )
    .bind(course_id.to_string())
    .bind(op)
    .bind(origin)
    .bind(origin_version)
    .bind(now_ms)
    .fetch_one(conn)
    .await
}

const LOG_COLUMNS: &str = "course_id, op, origin, origin_version, created_at";

/// Appends several entries, in order, in one `COPY` on PostgreSQL and several per statement on
/// SQLite (see [`append_log`] for the lock). Entries are `(course_id, op, origin,
/// origin_version)`.
pub async fn append_log_many(
    conn: &mut AnyConnection,
    backend: Backend,
    entries: &[(Uuid, &str, &str, i64)],
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7001001)")
            .execute(&mut *conn)
            .await?;
        // COPY numbers its rows in order, as multi-row VALUES do: seqs follow the entries.
        let mut rows = CopyRows::new();
        for (course_id, op, origin, version) in entries {
            rows.text(&course_id.to_string())
                .text(op)
                .text(origin)
                .int(*version)
                .int(now_ms)
                .end_row();
        }
        copy_in(conn, "catalog_log", LOG_COLUMNS, rows).await?;
        return Ok(());
    }
    // One statement per entry would cost a round trip each; multi-row VALUES are numbered in
    // order, so seqs follow the entries.
    for chunk in entries.chunks(rows_per_statement(backend, 5)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO catalog_log ({LOG_COLUMNS}) VALUES {}",
            value_rows(chunk.len(), 5)
        )));
        for (course_id, op, origin, version) in chunk {
            query = query
                .bind(course_id.to_string())
                .bind(*op)
                .bind(*origin)
                .bind(*version)
                .bind(now_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub struct LogRow {
    pub seq: i64,
    pub course_id: Uuid,
    pub op: String,
    pub origin: String,
    pub origin_version: i64,
    pub created_at_ms: i64,
}

pub async fn read_log(pool: &AnyPool, since: i64, limit: u32) -> Result<Vec<LogRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, course_id, op, origin, origin_version, created_at FROM catalog_log \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(since)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(log_row).collect()
}

/// The newest log entry of each course changed after `since`, oldest first: what a follower
/// that only needs each course's current state must read (the federation feed). Cost follows
/// the number of courses changed, not the number of changes.
///
/// Written as a correlated `MAX` (one probe of `catalog_log_by_course_seq` per row, walking
/// `seq` in order until `limit` rows qualify) rather than `NOT EXISTS`: PostgreSQL's generic
/// plan for the prepared anti-join hashed the whole log on every page.
pub async fn read_latest_changes(
    pool: &AnyPool,
    since: i64,
    limit: u32,
) -> Result<Vec<LogRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, course_id, op, origin, origin_version, created_at FROM catalog_log l \
         WHERE seq > $1 \
           AND seq = (SELECT MAX(n.seq) FROM catalog_log n WHERE n.course_id = l.course_id) \
         ORDER BY seq LIMIT $2",
    )
    .bind(since)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(log_row).collect()
}

fn log_row(row: &AnyRow) -> Result<LogRow, sqlx::Error> {
    let course_id: String = row.try_get("course_id")?;
    Ok(LogRow {
        seq: row.try_get("seq")?,
        course_id: parse_uuid(&course_id)?,
        op: row.try_get("op")?,
        origin: row.try_get("origin")?,
        origin_version: row.try_get("origin_version")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

pub async fn insert_pending_upload(
    pool: &AnyPool,
    object_key: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO pending_uploads (object_key, started_at) VALUES ($1, $2)")
        .bind(object_key)
        .bind(now_ms)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn delete_pending_upload(
    conn: &mut AnyConnection,
    object_key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM pending_uploads WHERE object_key = $1")
        .bind(object_key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Object keys of uploads started before `cutoff_ms` and never finished.
pub async fn stale_pending_uploads(
    pool: &AnyPool,
    cutoff_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT object_key FROM pending_uploads WHERE started_at < $1")
        .bind(cutoff_ms)
        .fetch_all(pool)
        .await
}

/// Whether an object is referenced by a file row or an upload in progress.
pub async fn object_in_use(pool: &AnyPool, object_key: &str) -> Result<bool, sqlx::Error> {
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM course_files WHERE object_key = $1 \
         UNION ALL SELECT 1 FROM pending_uploads WHERE object_key = $1 LIMIT 1",
    )
    .bind(object_key)
    .fetch_optional(pool)
    .await?;
    Ok(used.is_some())
}

/// A stored piece of a file's extracted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSegment {
    pub file_id: Uuid,
    pub at_ms: Option<u64>,
    pub page: Option<u32>,
    pub text: String,
}

/// Every extracted segment of these courses' files, per course, each course's in file-name
/// then segment order.
pub async fn segments_of_courses(
    pool: &AnyPool,
    course_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<StoredSegment>>, sqlx::Error> {
    let mut segments: HashMap<Uuid, Vec<StoredSegment>> = HashMap::new();
    for chunk in course_ids.chunks(IDS_PER_STATEMENT) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT f.course_id, s.file_id, s.at_ms, s.page, s.text FROM file_segments s \
             JOIN course_files f ON f.id = s.file_id WHERE f.course_id IN ({}) \
             ORDER BY f.course_id, f.name, s.ord",
            placeholders(1, chunk.len())
        )));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(pool).await? {
            let course_id: String = row.try_get("course_id")?;
            segments
                .entry(parse_uuid(&course_id)?)
                .or_default()
                .push(segment_from_row(&row)?);
        }
    }
    Ok(segments)
}

fn segment_from_row(row: &AnyRow) -> Result<StoredSegment, sqlx::Error> {
    let file_id: String = row.try_get("file_id")?;
    let at_ms: Option<i64> = row.try_get("at_ms")?;
    let page: Option<i64> = row.try_get("page")?;
    Ok(StoredSegment {
        file_id: parse_uuid(&file_id)?,
        at_ms: at_ms.and_then(|v| u64::try_from(v).ok()),
        page: page.and_then(|v| u32::try_from(v).ok()),
        text: row.try_get("text")?,
    })
}

pub async fn latest_seq(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM catalog_log")
        .fetch_one(pool)
        .await?;
    Ok(seq.unwrap_or(0))
}

pub async fn live_course_ids(pool: &AnyPool) -> Result<Vec<Uuid>, sqlx::Error> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM courses WHERE withdrawn_at IS NULL ORDER BY id")
            .fetch_all(pool)
            .await?;
    ids.iter().map(|id| parse_uuid(id)).collect()
}
