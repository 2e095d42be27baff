//! Courses published by other servers, written into this catalog by the federation harvester.
//!
//! A federated course lives in the same `courses` and `course_files` tables as a local one (so
//! search, the course API and onward feeds treat it alike), with its origin's id, the origin's
//! version as its version, its institution named on the row, and files marked not stored until
//! they are mirrored. These functions run inside the harvester's batch transaction and decide,
//! per record, whether it applies: a record never overwrites a newer one, a local course, or a
//! course of another origin.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::model::CourseFields;
use super::store::{self, to_json};
use crate::accounts::store::parse_uuid;
use crate::db::Backend;
use crate::db::copy::{CopyRows, copy_in};
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

/// One change to apply.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteChange {
    Upsert(Box<RemoteCourse>),
    /// A withdrawal at the origin. A withdrawal of a course never seen is still logged: it is
    /// relayed onward and stops an older record from arriving later.
    Withdraw {
        id: Uuid,
        origin: String,
        origin_version: i64,
    },
}

impl RemoteChange {
    pub fn id(&self) -> Uuid {
        match self {
            RemoteChange::Upsert(course) => course.id,
            RemoteChange::Withdraw { id, .. } => *id,
        }
    }

    fn origin(&self) -> &str {
        match self {
            RemoteChange::Upsert(course) => &course.origin,
            RemoteChange::Withdraw { origin, .. } => origin,
        }
    }

    fn version(&self) -> i64 {
        match self {
            RemoteChange::Upsert(course) => course.origin_version,
            RemoteChange::Withdraw { origin_version, .. } => *origin_version,
        }
    }
}

/// New courses in one page from which its files are inserted on generic plans: 200 rows of
/// ~1 KB fill some 30 pages, where a lookup by key is planned as an index scan.
const GENERIC_FILE_PLANS_FROM: usize = 200;

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

struct FileRow {
    course_id: Uuid,
    sha256: String,
    name: String,
    content_type: String,
}

/// Applies a page of federated changes inside the caller's transaction and returns what
/// became of each, in order. Reads what the page touches in a few statements, decides in
/// memory, then writes with multi-row statements: the cost of a page is a handful of round
/// trips, not several per record. For each course only its newest change in the page counts.
pub async fn apply_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    local_origin: &str,
    changes: &[RemoteChange],
    now_ms: i64,
) -> Result<Vec<Applied>, sqlx::Error> {
    // The newest change per course; any other is stale by definition.
    let mut newest: HashMap<Uuid, usize> = HashMap::new();
    for (i, change) in changes.iter().enumerate() {
        let better = newest
            .get(&change.id())
            .is_none_or(|&j| changes[j].version() <= change.version());
        if better {
            newest.insert(change.id(), i);
        }
    }
    let ids: Vec<String> = newest.keys().map(Uuid::to_string).collect();

    let mut courses: HashMap<Uuid, (String, i64)> = HashMap::new();
    for chunk in ids.chunks(store::rows_per_statement(backend, 1)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, origin, version FROM courses WHERE id IN ({})",
            store::placeholders(1, chunk.len())
        )));
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let id = parse_uuid(&row.try_get::<String, _>("id")?)?;
            courses.insert(id, (row.try_get("origin")?, row.try_get("version")?));
        }
    }
    let file_ids: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            RemoteChange::Upsert(course) => Some(course.files.iter().map(|f| f.id.to_string())),
            RemoteChange::Withdraw { .. } => None,
        })
        .flatten()
        .collect();
    let mut files: HashMap<Uuid, FileRow> = HashMap::new();
    let mut files_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let file_columns = "id, course_id, sha256, name, content_type";
    let mut remember = |row: &sqlx::any::AnyRow| -> Result<(), sqlx::Error> {
        let id = parse_uuid(&row.try_get::<String, _>("id")?)?;
        let course_id = parse_uuid(&row.try_get::<String, _>("course_id")?)?;
        if !files.contains_key(&id) {
            files_of.entry(course_id).or_default().push(id);
        }
        files.insert(
            id,
            FileRow {
                course_id,
                sha256: row.try_get("sha256")?,
                name: row.try_get("name")?,
                content_type: row.try_get("content_type")?,
            },
        );
        Ok(())
    };
    // Only courses held here can have files here: a fresh peer's catch-up, all new courses,
    // looks up none.
    let held_ids: Vec<String> = courses.keys().map(Uuid::to_string).collect();
    for (column, keys) in [("id", &file_ids), ("course_id", &held_ids)] {
        for chunk in keys.chunks(store::rows_per_statement(backend, 1)) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {file_columns} FROM course_files WHERE {column} IN ({})",
                store::placeholders(1, chunk.len())
            )));
            for key in chunk {
                query = query.bind(key);
            }
            for row in query.fetch_all(&mut *conn).await? {
                remember(&row)?;
            }
        }
    }

    // Decide.
    let mut outcomes = Vec::with_capacity(changes.len());
    let mut inserts: Vec<&RemoteCourse> = Vec::new();
    let mut updates: Vec<&RemoteCourse> = Vec::new();
    let mut withdrawals: Vec<(Uuid, i64)> = Vec::new();
    let mut file_deletes: Vec<Uuid> = Vec::new();
    let mut file_inserts: Vec<(&RemoteCourse, &RemoteFile)> = Vec::new();
    let mut log: Vec<(Uuid, &'static str, &str, i64)> = Vec::new();
    for (i, change) in changes.iter().enumerate() {
        if newest.get(&change.id()) != Some(&i) {
            outcomes.push(Applied::Stale);
            continue;
        }
        let existing = courses.get(&change.id());
        if let Some((origin, version)) = existing {
            if let Some(refused) = refuse_foreign(change.origin(), origin, local_origin) {
                outcomes.push(refused);
                continue;
            }
            if *version >= change.version() {
                outcomes.push(Applied::Stale);
                continue;
            }
        }
        match change {
            RemoteChange::Withdraw {
                id,
                origin,
                origin_version,
            } => {
                if existing.is_some() {
                    withdrawals.push((*id, *origin_version));
                }
                log.push((*id, "delete", origin, *origin_version));
            }
            RemoteChange::Upsert(course) => {
                // A file id already used by another course would break that course.
                let stolen = course.files.iter().find(|f| {
                    files
                        .get(&f.id)
                        .is_some_and(|row| row.course_id != course.id)
                });
                if let Some(file) = stolen {
                    outcomes.push(Applied::Refused(format!(
                        "file {} belongs to another course",
                        file.id
                    )));
                    continue;
                }
                let same = |file: &RemoteFile| {
                    files.get(&file.id).is_some_and(|row| {
                        row.sha256 == file.sha256_hex
                            && row.name == file.name
                            && row.content_type == file.content_type
                    })
                };
                let kept: Vec<Uuid> = course
                    .files
                    .iter()
                    .filter(|f| same(f))
                    .map(|f| f.id)
                    .collect();
                // Files the record no longer names, or names with other bytes, go; their
                // mirrored objects become unreferenced and the sweep removes them.
                for old in files_of.get(&course.id).into_iter().flatten() {
                    if !kept.contains(old) {
                        file_deletes.push(*old);
                    }
                }
                for file in course.files.iter().filter(|f| !kept.contains(&f.id)) {
                    file_inserts.push((course, file));
                    // Seen by the records after this one: two courses cannot share a file.
                    files.insert(
                        file.id,
                        FileRow {
                            course_id: course.id,
                            sha256: file.sha256_hex.clone(),
                            name: file.name.clone(),
                            content_type: file.content_type.clone(),
                        },
                    );
                }
                if existing.is_some() {
                    updates.push(course);
                } else {
                    inserts.push(course);
                }
                log.push((course.id, "upsert", &course.origin, course.origin_version));
            }
        }
        outcomes.push(Applied::Applied);
    }

    // Write: files out first (names are unique per course), courses before their files.
    for chunk in file_deletes.chunks(store::rows_per_statement(backend, 1)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM course_files WHERE id IN ({})",
            store::placeholders(1, chunk.len())
        )));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        query.execute(&mut *conn).await?;
    }
    insert_courses(conn, backend, &inserts).await?;
    for course in &updates {
        update_course(conn, course).await?;
    }
    for (id, version) in &withdrawals {
        sqlx::query(
            "UPDATE courses SET withdrawn_at = $1, version = $2, updated_at = $1 WHERE id = $3",
        )
        .bind(now_ms)
        .bind(*version)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    }
    // Each file row's foreign-key check looks its course up, planned anew per row under custom
    // plans (~2 s of a 100,000-record catch-up). A generic plan for that lookup is safe once
    // this page alone has put enough courses in the table: planned now, it cannot be the
    // sequential scan of a small table that would then stay cached as the table grows.
    let generic_files = inserts.len() >= GENERIC_FILE_PLANS_FROM;
    if generic_files {
        crate::db::use_generic_plans(conn, backend, true).await?;
    }
    insert_files(conn, backend, &file_inserts).await?;
    if generic_files {
        crate::db::use_generic_plans(conn, backend, false).await?;
    }
    store::append_log_many(conn, backend, &log, now_ms).await?;
    Ok(outcomes)
}

fn course_binds<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    course: &'q RemoteCourse,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    let f = &course.fields;
    let subjects: Vec<&str> = f.subjects.iter().map(|s| s.as_str()).collect();
    let audience: Vec<&str> = f.audience.iter().map(|a| a.as_str()).collect();
    query = query
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
        .bind(&course.institution_name);
    query
}

const COURSE_COLUMNS: &str = "id, origin, title, description, subjects, audience, level, \
     languages, license, tags, credits, region, version, created_at, updated_at, \
     remote_institution_slug, remote_institution_name";
const COURSE_VALUES: usize = 17;

/// Inserts new courses: `COPY` on PostgreSQL (the bulk of a catch-up's writes, see
/// `db::copy`), multi-row `INSERT`s on SQLite.
async fn insert_courses(
    conn: &mut AnyConnection,
    backend: Backend,
    courses: &[&RemoteCourse],
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        let mut rows = CopyRows::new();
        for course in courses {
            let f = &course.fields;
            let subjects: Vec<&str> = f.subjects.iter().map(|s| s.as_str()).collect();
            let audience: Vec<&str> = f.audience.iter().map(|a| a.as_str()).collect();
            rows.text(&course.id.to_string())
                .text(&course.origin)
                .text(&f.title)
                .text(&f.description)
                .text(&to_json(&subjects))
                .text(&to_json(&audience))
                .text(f.level.as_str())
                .text(&to_json(&f.languages))
                .text(&f.license)
                .text(&to_json(&f.tags))
                .float(f.credits)
                .text(&course.region)
                .int(course.origin_version)
                .int(course.created_at_ms)
                .int(course.updated_at_ms)
                .text(&course.institution_slug)
                .text(&course.institution_name)
                .end_row();
        }
        copy_in(conn, "courses", COURSE_COLUMNS, rows).await?;
        return Ok(());
    }
    for chunk in courses.chunks(store::rows_per_statement(backend, COURSE_VALUES)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO courses ({COURSE_COLUMNS}) VALUES {}",
            store::value_rows(chunk.len(), COURSE_VALUES)
        )));
        for course in chunk {
            query = course_binds(query, course);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn update_course(conn: &mut AnyConnection, course: &RemoteCourse) -> Result<(), sqlx::Error> {
    let query = sqlx::query(
        "UPDATE courses SET origin = $2, title = $3, description = $4, subjects = $5, \
         audience = $6, level = $7, languages = $8, license = $9, tags = $10, credits = $11, \
         region = $12, version = $13, created_at = $14, updated_at = $15, \
         remote_institution_slug = $16, remote_institution_name = $17, institution_id = NULL, \
         withdrawn_at = NULL WHERE id = $1",
    );
    course_binds(query, course).execute(&mut *conn).await?;
    Ok(())
}

const FILE_COLUMNS: &str = "id, course_id, name, content_type, kind, size, sha256, object_key, \
     created_at, extraction, stored";
const FILE_VALUES: usize = 9;

/// Inserts new file rows, not yet extracted or stored: `COPY` on PostgreSQL, multi-row
/// `INSERT`s on SQLite.
async fn insert_files(
    conn: &mut AnyConnection,
    backend: Backend,
    files: &[(&RemoteCourse, &RemoteFile)],
) -> Result<(), sqlx::Error> {
    let size = |file: &RemoteFile| i64::try_from(file.size).unwrap_or(i64::MAX);
    if backend == Backend::Postgres {
        let mut rows = CopyRows::new();
        for (course, file) in files {
            rows.text(&file.id.to_string())
                .text(&course.id.to_string())
                .text(&file.name)
                .text(&file.content_type)
                .text(file.kind.as_str())
                .int(size(file))
                .text(&file.sha256_hex)
                .text(MediaKey::file(file.id).as_str())
                .int(course.updated_at_ms)
                .text("none")
                .int(0)
                .end_row();
        }
        copy_in(conn, "course_files", FILE_COLUMNS, rows).await?;
        return Ok(());
    }
    for chunk in files.chunks(store::rows_per_statement(backend, FILE_VALUES)) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "({}, 'none', 0)",
                    store::placeholders(i * FILE_VALUES + 1, FILE_VALUES)
                )
            })
            .collect();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO course_files ({FILE_COLUMNS}) VALUES {}",
            rows.join(", ")
        )));
        for (course, file) in chunk {
            query = query
                .bind(file.id.to_string())
                .bind(course.id.to_string())
                .bind(&file.name)
                .bind(&file.content_type)
                .bind(file.kind.as_str())
                .bind(size(file))
                .bind(&file.sha256_hex)
                .bind(MediaKey::file(file.id).as_str().to_owned())
                .bind(course.updated_at_ms);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
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
