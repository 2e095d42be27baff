//! The catalog: courses, their files, and the catalog log.
//!
//! Owns the `courses`, `course_files`, `catalog_log` and `pending_uploads` tables. Every change
//! to a course or its files appends one log entry in the same transaction as the change; the
//! log is what search, federation and OAI-PMH follow (see [`Catalog::read_log`]).
//!
//! Upload protocol (why a file is visible only when complete, and nothing is left behind):
//!
//! ```text
//!   pending_uploads += key ──► stream body to object `key` (hash, count, sniff) ──┐
//!        │                         │ any error: abort object, drop pending row    │
//!        │                         ▼                                              ▼
//!        │                  nothing visible            one transaction: file row, version+1,
//!        │                                             log entry, pending row removed
//!        └─ process died mid-way: the sweep deletes objects of stale pending rows and
//!           objects no row references
//! ```
//!
//! Depends on `db`, `media` (bytes), `institutions` (who may publish), `accounts` (users).

pub mod error;
pub mod extraction;
pub mod file_cache;
pub mod model;
pub mod remote;
pub mod routes;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::accounts::model::User;
use crate::db::{self, Db};
use crate::error::{FieldError, Validation};
use crate::institutions;
use crate::media::content::{FileKind, content_type_from_name, parse_file_name};
use crate::media::upload::{self, UploadRules};
use crate::media::{MediaKey, MediaStore};
pub use error::CatalogError;
use file_cache::FileCache;
use model::{
    Audience, Course, CourseFields, CourseFile, Level, Subject, parse_credits, parse_description,
    parse_languages, parse_license, parse_list, parse_tags, parse_title,
};

/// The most courses one list request returns.
pub const MAX_PAGE: u32 = 100;

/// Course fields as a client sent them, before validation. On create every field is used;
/// on update, `None` keeps the current value.
#[derive(Debug, Default, Clone)]
pub struct CourseInput {
    pub title: Option<String>,
    pub description: Option<String>,
    pub subjects: Option<Vec<String>>,
    pub audience: Option<Vec<String>>,
    pub level: Option<String>,
    pub languages: Option<Vec<String>>,
    pub license: Option<String>,
    pub tags: Option<Vec<String>>,
    pub credits: Option<f64>,
}

impl CourseInput {
    /// Validates the input on top of `base` (the current values, or defaults for a new
    /// course), reporting every bad field at once.
    fn resolve(self, base: &CourseFields) -> Result<CourseFields, CatalogError> {
        let mut v = Validation::new();
        let title = v.check(
            "title",
            self.title
                .as_deref()
                .map_or(Ok(base.title.clone()), parse_title),
        );
        let description = v.check(
            "description",
            self.description
                .as_deref()
                .map_or(Ok(base.description.clone()), parse_description),
        );
        let subjects = v.check(
            "subjects",
            self.subjects
                .as_deref()
                .map_or(Ok(base.subjects.clone()), |s| parse_list(s, Subject::parse)),
        );
        let audience = v.check(
            "audience",
            self.audience
                .as_deref()
                .map_or(Ok(base.audience.clone()), |a| {
                    parse_list(a, Audience::parse)
                }),
        );
        let level = v.check(
            "level",
            self.level.as_deref().map_or(Ok(base.level), Level::parse),
        );
        let languages = v.check(
            "languages",
            self.languages
                .as_deref()
                .map_or(Ok(base.languages.clone()), parse_languages),
        );
        let license = v.check(
            "license",
            self.license
                .as_deref()
                .map_or(Ok(base.license.clone()), parse_license),
        );
        let tags = v.check(
            "tags",
            self.tags
                .as_deref()
                .map_or(Ok(base.tags.clone()), parse_tags),
        );
        let credits = v.check(
            "credits",
            self.credits.map_or(Ok(base.credits), parse_credits),
        );
        v.finish().map_err(CatalogError::Invalid)?;
        match (
            title,
            description,
            subjects,
            audience,
            level,
            languages,
            license,
            tags,
            credits,
        ) {
            (
                Some(title),
                Some(description),
                Some(subjects),
                Some(audience),
                Some(level),
                Some(languages),
                Some(license),
                Some(tags),
                Some(credits),
            ) => Ok(CourseFields {
                title,
                description,
                subjects,
                audience,
                level,
                languages,
                license,
                tags,
                credits,
            }),
            _ => unreachable!("validation passed, so every field parsed"),
        }
    }
}

fn new_course_defaults() -> CourseFields {
    CourseFields {
        title: String::new(),
        description: String::new(),
        subjects: Vec::new(),
        audience: Vec::new(),
        level: Level::Beginner,
        languages: Vec::new(),
        license: "CC-BY-4.0".into(),
        tags: Vec::new(),
        credits: 0.0,
    }
}

/// One entry of the catalog log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: i64,
    pub course_id: Uuid,
    pub op: LogOp,
    pub origin: String,
    pub origin_version: i64,
    pub at_ms: i64,
}

impl From<store::LogRow> for LogEntry {
    fn from(row: store::LogRow) -> Self {
        LogEntry {
            seq: row.seq,
            course_id: row.course_id,
            op: if row.op == "delete" {
                LogOp::Delete
            } else {
                LogOp::Upsert
            },
            origin: row.origin,
            origin_version: row.origin_version,
            at_ms: row.created_at_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOp {
    Upsert,
    Delete,
}

impl LogOp {
    pub fn as_str(self) -> &'static str {
        match self {
            LogOp::Upsert => "upsert",
            LogOp::Delete => "delete",
        }
    }
}

/// Resolves after catalog changes on this node; each follower of the log holds its own.
/// Changes made by other nodes are not signalled: followers also poll.
pub struct ChangeSignal(watch::Receiver<()>);

impl ChangeSignal {
    /// Resolves after the next change, or at once if one happened since the last call.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            // The catalog is gone; so is every change to come.
            std::future::pending::<()>().await;
        }
    }
}

/// Whether an upload stored new bytes or found the same bytes already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    Stored,
    AlreadyPresent,
}

/// What the sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub stale_uploads: usize,
    pub orphan_objects: usize,
}

/// A file upload as received: the name from the URL or multipart part, and the body stream.
pub struct IncomingFile<'a, S> {
    pub course_id: Uuid,
    pub name: &'a str,
    pub content_digest: Option<&'a str>,
    pub content_length: Option<u64>,
    pub body: S,
}

/// How long a file looked up for `/media` is served without asking the database again. A
/// change on this node is seen at once; one made by another node of a cluster within this.
pub const MEDIA_LOOKUP_TTL: Duration = Duration::from_secs(1);

/// The catalog's handle: cheap to clone, shared by handlers and background tasks.
#[derive(Clone, Debug)]
pub struct Catalog {
    db: Db,
    media: MediaStore,
    /// This server's id: the `origin` of every course published here.
    origin: Arc<str>,
    max_upload_bytes: u64,
    sweep_grace: Duration,
    /// Bumped after every committed log append, so local followers of the log (the search
    /// indexer, the federation publisher) need not poll for this node's own changes. A watch
    /// channel, not a `Notify`: every follower must wake, not just one of them.
    changes: Arc<watch::Sender<()>>,
    /// Signalled when a file is added, for the text-extraction worker.
    files_added: Arc<Notify>,
    /// Files looked up for `/media`, forgotten whenever this catalog changes.
    media_lookups: Arc<FileCache>,
}

impl Catalog {
    pub fn new(
        db: Db,
        media: MediaStore,
        origin: Arc<str>,
        max_upload_bytes: u64,
        sweep_grace: Duration,
    ) -> Self {
        Self {
            db,
            media,
            origin,
            max_upload_bytes,
            sweep_grace,
            changes: Arc::new(watch::Sender::new(())),
            files_added: Arc::new(Notify::new()),
            media_lookups: Arc::new(FileCache::new(MEDIA_LOOKUP_TTL)),
        }
    }

    /// Resolves after the next file added on this node (or at once if one was added since
    /// the last call).
    pub async fn files_added(&self) {
        self.files_added.notified().await;
    }

    /// A signal for one follower of the log: see [`ChangeSignal`].
    pub fn change_signal(&self) -> ChangeSignal {
        ChangeSignal(self.changes.subscribe())
    }

    /// Ids of every live course, for rebuilding derived data.
    pub async fn live_course_ids(&self) -> Result<Vec<Uuid>, CatalogError> {
        Ok(store::live_course_ids(self.db.pool()).await?)
    }

    /// The newest `seq` in the catalog log (0 when empty).
    pub async fn latest_seq(&self) -> Result<i64, CatalogError> {
        Ok(store::latest_seq(self.db.pool()).await?)
    }

    /// Every extracted text segment of these courses' files, per course, in one query.
    pub async fn segments_of_courses(
        &self,
        course_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<store::StoredSegment>>, CatalogError> {
        Ok(store::segments_of_courses(self.db.pool(), course_ids).await?)
    }

    pub fn media(&self) -> &MediaStore {
        &self.media
    }

    /// This server's id, written as the origin of the courses it publishes.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Wakes this node's followers after a change committed (by these methods, or outside
    /// them: a batch of federated courses) and forgets the files looked up for `/media`.
    pub fn notify_changed(&self) {
        self.media_lookups.forget_all();
        self.changes.send_replace(());
    }

    /// Forgets the files looked up for `/media` after a change to a file row that is no
    /// change of the catalog (a federated file now mirrored here).
    pub fn forget_media_lookups(&self) {
        self.media_lookups.forget_all();
    }

    /// Courses by id in any state, with their files (for feeds that read a page at a time).
    pub async fn courses_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Course>, CatalogError> {
        Ok(store::find_courses(self.db.pool(), ids).await?)
    }

    /// The newest log entry of each course changed after `since`, at most `limit`.
    pub async fn latest_changes(
        &self,
        since: i64,
        limit: u32,
    ) -> Result<Vec<LogEntry>, CatalogError> {
        let rows = store::read_latest_changes(self.db.pool(), since, limit).await?;
        Ok(rows.into_iter().map(LogEntry::from).collect())
    }

    /// Site administrators and the institution's staff and managers may publish.
    async fn authorize(
        &self,
        actor: &User,
        institution_id: Option<Uuid>,
    ) -> Result<(), CatalogError> {
        if actor.is_admin {
            return Ok(());
        }
        let Some(institution_id) = institution_id else {
            return Err(CatalogError::NotStaff);
        };
        match institutions::store::find_role(self.db.pool(), institution_id, actor.id).await? {
            Some(_) => Ok(()),
            None => Err(CatalogError::NotStaff),
        }
    }

    pub async fn create_course(
        &self,
        actor: &User,
        institution_slug: &str,
        input: CourseInput,
    ) -> Result<Course, CatalogError> {
        let (institution, fields) = self.prepare_new_course(institution_slug, input).await?;
        self.authorize(actor, Some(institution.id)).await?;
        self.insert_course(Uuid::now_v7(), &institution, &fields)
            .await
    }

    /// Creates a course with a chosen id and no permission check: for the operator's tools
    /// (bulk import, the demo catalog), whose re-runs find their earlier work by id.
    pub async fn create_course_with_id(
        &self,
        institution_slug: &str,
        id: Uuid,
        input: CourseInput,
    ) -> Result<Course, CatalogError> {
        let (institution, fields) = self.prepare_new_course(institution_slug, input).await?;
        self.insert_course(id, &institution, &fields).await
    }

    async fn prepare_new_course(
        &self,
        institution_slug: &str,
        input: CourseInput,
    ) -> Result<(institutions::model::Institution, CourseFields), CatalogError> {
        let mut missing = Validation::new();
        if input.title.is_none() {
            missing.push("title", "is required");
        }
        missing.finish().map_err(CatalogError::Invalid)?;
        let fields = input.resolve(&new_course_defaults())?;
        let institution = institutions::store::find_by_slug(self.db.pool(), institution_slug)
            .await?
            .ok_or(CatalogError::InstitutionNotFound)?;
        Ok((institution, fields))
    }

    async fn insert_course(
        &self,
        id: Uuid,
        institution: &institutions::model::Institution,
        fields: &CourseFields,
    ) -> Result<Course, CatalogError> {
        let now = db::now_ms();
        let mut tx = self.db.begin_write().await?;
        store::insert_course(
            &mut tx,
            &store::NewCourse {
                id,
                origin: &self.origin,
                institution_id: institution.id,
                region: &institution.region,
                fields,
                now_ms: now,
            },
        )
        .await?;
        store::append_log(
            &mut tx,
            self.db.backend(),
            id,
            LogOp::Upsert.as_str(),
            &self.origin,
            1,
            now,
        )
        .await?;
        tx.commit().await?;
        self.notify_changed();
        self.course(id).await
    }

    /// A course by id whatever its state, for the operator's tools; `None` if it never existed.
    pub async fn find_course_any_state(&self, id: Uuid) -> Result<Option<Course>, CatalogError> {
        Ok(store::find_course(self.db.pool(), id).await?)
    }

    /// A live course with its files.
    pub async fn course(&self, id: Uuid) -> Result<Course, CatalogError> {
        match store::find_course(self.db.pool(), id).await? {
            Some(course) if !course.withdrawn => Ok(course),
            _ => Err(CatalogError::CourseNotFound),
        }
    }

    /// A page of live courses; the second value is the cursor of the next page.
    pub async fn list_courses(
        &self,
        institution_slug: Option<&str>,
        subject: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<(Vec<Course>, Option<String>), CatalogError> {
        let mut v = Validation::new();
        let subject = subject.and_then(|s| v.check("subject", Subject::parse(s)));
        let after = cursor.and_then(|c| {
            v.check(
                "cursor",
                Uuid::parse_str(c).map_err(|_| "is not a cursor from a previous page".to_owned()),
            )
        });
        let limit = limit.unwrap_or(20);
        if !(1..=MAX_PAGE).contains(&limit) {
            v.push("limit", format!("must be from 1 to {MAX_PAGE}"));
        }
        v.finish().map_err(CatalogError::Invalid)?;
        let institution_id = match institution_slug {
            Some(slug) => Some(
                institutions::store::find_by_slug(self.db.pool(), slug)
                    .await?
                    .ok_or(CatalogError::InstitutionNotFound)?
                    .id,
            ),
            None => None,
        };
        let filter = store::CourseFilter {
            institution_id,
            subject,
            after,
            limit: limit + 1,
        };
        let mut courses = store::list_courses(self.db.pool(), &filter).await?;
        let next = if courses.len() > limit as usize {
            courses.truncate(limit as usize);
            courses.last().map(|c| c.id.to_string())
        } else {
            None
        };
        Ok((courses, next))
    }

    pub async fn update_course(
        &self,
        actor: &User,
        id: Uuid,
        input: CourseInput,
    ) -> Result<Course, CatalogError> {
        let current = self.course(id).await?;
        self.authorize(actor, current.institution.id).await?;
        let base = CourseFields {
            title: current.title,
            description: current.description,
            subjects: current.subjects,
            audience: current.audience,
            level: current.level,
            languages: current.languages,
            license: current.license,
            tags: current.tags,
            credits: current.credits,
        };
        let fields = input.resolve(&base)?;
        let now = db::now_ms();
        let mut tx = self.db.begin_write().await?;
        let version = store::update_course(&mut tx, id, &fields, now).await?;
        store::append_log(
            &mut tx,
            self.db.backend(),
            id,
            LogOp::Upsert.as_str(),
            &self.origin,
            version,
            now,
        )
        .await?;
        tx.commit().await?;
        self.notify_changed();
        self.course(id).await
    }

    /// Withdraws a course: it disappears from the catalog and a `delete` entry (a tombstone)
    /// goes into the log. Its files stay stored so a mistaken withdrawal can be investigated.
    pub async fn withdraw_course(&self, actor: &User, id: Uuid) -> Result<(), CatalogError> {
        let current = self.course(id).await?;
        self.authorize(actor, current.institution.id).await?;
        let now = db::now_ms();
        let mut tx = self.db.begin_write().await?;
        let version = store::mark_withdrawn(&mut tx, id, now).await?;
        store::append_log(
            &mut tx,
            self.db.backend(),
            id,
            LogOp::Delete.as_str(),
            &self.origin,
            version,
            now,
        )
        .await?;
        tx.commit().await?;
        self.notify_changed();
        Ok(())
    }

    /// Streams an uploaded file into the store and, once every byte is there and verified,
    /// makes it part of the course. Identical bytes under the same name change nothing.
    pub async fn upload_file<S, E>(
        &self,
        actor: &User,
        incoming: IncomingFile<'_, S>,
    ) -> Result<(CourseFile, UploadOutcome), CatalogError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let name = parse_file_name(incoming.name)
            .map_err(|message| CatalogError::Invalid(vec![FieldError::new("name", message)]))?;
        let expected_sha256 = match incoming.content_digest {
            Some(header) => {
                upload::parse_content_digest(header).map_err(CatalogError::BadDigest)?
            }
            None => None,
        };
        if incoming
            .content_length
            .is_some_and(|length| length > self.max_upload_bytes)
        {
            return Err(upload::UploadError::TooLarge {
                limit: self.max_upload_bytes,
            }
            .into());
        }
        let course = self.course(incoming.course_id).await?;
        self.authorize(actor, course.institution.id).await?;
        self.store_file(&course, name, expected_sha256, incoming.body)
            .await
    }

    /// Adds a file to a course with no permission check: for the operator's tools.
    pub async fn add_file<S, E>(
        &self,
        course_id: Uuid,
        name: &str,
        body: S,
    ) -> Result<(CourseFile, UploadOutcome), CatalogError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let name = parse_file_name(name)
            .map_err(|message| CatalogError::Invalid(vec![FieldError::new("name", message)]))?;
        let course = self.course(course_id).await?;
        self.store_file(&course, name, None, body).await
    }

    async fn store_file<S, E>(
        &self,
        course: &Course,
        name: String,
        expected_sha256: Option<[u8; 32]>,
        body: S,
    ) -> Result<(CourseFile, UploadOutcome), CatalogError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let file_id = Uuid::now_v7();
        let key = MediaKey::file(file_id);
        store::insert_pending_upload(self.db.pool(), key.as_str(), db::now_ms()).await?;
        let declared = content_type_from_name(&name);
        let rules = UploadRules {
            max_bytes: self.max_upload_bytes,
            expected_sha256,
            declared_content_type: &declared,
        };
        let stored = match upload::store_stream(&self.media, &key, body, rules).await {
            Ok(stored) => stored,
            Err(error) => {
                self.forget_pending(&key).await;
                return Err(error.into());
            }
        };
        let file = CourseFile {
            id: file_id,
            course_id: course.id,
            name,
            kind: FileKind::of_content_type(&stored.content_type),
            content_type: stored.content_type,
            size: stored.size,
            sha256_hex: hex(&stored.sha256),
            object_key: key.as_str().to_owned(),
            created_at_ms: db::now_ms(),
            stored: true,
        };
        match self.commit_upload(&file).await {
            Ok(CommitOutcome::Stored { replaced }) => {
                if let Some(old_key) = replaced.as_deref().and_then(MediaKey::parse_stored)
                    && let Err(error) = self.media.delete(&old_key).await
                {
                    tracing::warn!(object = old_key.as_str(), %error, "replaced object not deleted; the sweep will");
                }
                Ok((file, UploadOutcome::Stored))
            }
            Ok(CommitOutcome::Identical(existing)) => {
                let _ = self.media.delete(&key).await;
                Ok((existing, UploadOutcome::AlreadyPresent))
            }
            Err(error) => {
                let _ = self.media.delete(&key).await;
                self.forget_pending(&key).await;
                Err(error)
            }
        }
    }

    async fn commit_upload(&self, file: &CourseFile) -> Result<CommitOutcome, CatalogError> {
        let now = db::now_ms();
        let mut tx = self.db.begin_write().await?;
        let existing = store::find_file_by_name(&mut tx, file.course_id, &file.name).await?;
        if let Some(existing) = existing
            .as_ref()
            .filter(|e| e.sha256_hex == file.sha256_hex)
        {
            store::delete_pending_upload(&mut tx, &file.object_key).await?;
            tx.commit().await?;
            return Ok(CommitOutcome::Identical(existing.clone()));
        }
        if let Some(existing) = &existing {
            store::delete_file(&mut tx, existing.id).await?;
        }
        store::insert_file(&mut tx, file).await?;
        let version = store::bump_version(&mut tx, file.course_id, now).await?;
        store::append_log(
            &mut tx,
            self.db.backend(),
            file.course_id,
            LogOp::Upsert.as_str(),
            &self.origin,
            version,
            now,
        )
        .await?;
        store::delete_pending_upload(&mut tx, &file.object_key).await?;
        tx.commit().await?;
        self.notify_changed();
        self.files_added.notify_one();
        Ok(CommitOutcome::Stored {
            replaced: existing.map(|e| e.object_key),
        })
    }

    async fn forget_pending(&self, key: &MediaKey) {
        let result = async {
            let mut conn = self.db.pool().acquire().await?;
            store::delete_pending_upload(&mut conn, key.as_str()).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(object = key.as_str(), %error, "pending upload row not removed; the sweep will");
        }
    }

    pub async fn delete_file(&self, actor: &User, file_id: Uuid) -> Result<(), CatalogError> {
        let (file, live) = store::find_file(self.db.pool(), file_id)
            .await?
            .ok_or(CatalogError::FileNotFound)?;
        if !live {
            return Err(CatalogError::FileNotFound);
        }
        let course = self.course(file.course_id).await?;
        self.authorize(actor, course.institution.id).await?;
        let now = db::now_ms();
        let mut tx = self.db.begin_write().await?;
        store::delete_file(&mut tx, file.id).await?;
        let version = store::bump_version(&mut tx, course.id, now).await?;
        store::append_log(
            &mut tx,
            self.db.backend(),
            course.id,
            LogOp::Upsert.as_str(),
            &self.origin,
            version,
            now,
        )
        .await?;
        tx.commit().await?;
        self.notify_changed();
        if let Some(key) = MediaKey::parse_stored(&file.object_key)
            && let Err(error) = self.media.delete(&key).await
        {
            tracing::warn!(object = key.as_str(), %error, "deleted file's object not removed; the sweep will");
        }
        Ok(())
    }

    /// A file of a live course, for streaming. Kept for up to [`MEDIA_LOOKUP_TTL`] (see
    /// [`file_cache`]).
    pub async fn file(&self, file_id: Uuid) -> Result<Arc<CourseFile>, CatalogError> {
        if let Some(file) = self.media_lookups.get(file_id) {
            return Ok(file);
        }
        let generation = self.media_lookups.generation();
        match store::find_file(self.db.pool(), file_id).await? {
            Some((file, true)) => {
                let file = Arc::new(file);
                self.media_lookups.put(generation, Arc::clone(&file));
                Ok(file)
            }
            _ => Err(CatalogError::FileNotFound),
        }
    }

    /// Log entries after `since`, oldest first, at most `limit`.
    pub async fn read_log(&self, since: i64, limit: u32) -> Result<Vec<LogEntry>, CatalogError> {
        let rows = store::read_log(self.db.pool(), since, limit).await?;
        Ok(rows.into_iter().map(LogEntry::from).collect())
    }

    /// Deletes what interrupted uploads left: objects of pending uploads older than the grace
    /// period (unless the upload is still writing), and objects that no file row or pending
    /// upload references.
    pub async fn sweep(&self) -> Result<SweepReport, CatalogError> {
        let cutoff =
            db::now_ms() - i64::try_from(self.sweep_grace.as_millis()).unwrap_or(i64::MAX / 2);
        let mut report = SweepReport::default();
        for object_key in store::stale_pending_uploads(self.db.pool(), cutoff).await? {
            if let Some(key) = MediaKey::parse_stored(&object_key) {
                if self.media.upload_active_since(&key, cutoff).await {
                    continue;
                }
                self.media
                    .delete(&key)
                    .await
                    .map_err(|e| CatalogError::Store(e.to_string()))?;
            }
            let mut conn = self.db.pool().acquire().await?;
            store::delete_pending_upload(&mut conn, &object_key).await?;
            report.stale_uploads += 1;
        }
        let objects = self
            .media
            .list_files()
            .await
            .map_err(|e| CatalogError::Store(e.to_string()))?;
        for object in objects {
            if object.last_modified_ms >= cutoff {
                continue;
            }
            if !store::object_in_use(self.db.pool(), object.key.as_str()).await? {
                self.media
                    .delete(&object.key)
                    .await
                    .map_err(|e| CatalogError::Store(e.to_string()))?;
                report.orphan_objects += 1;
            }
        }
        Ok(report)
    }
}

enum CommitOutcome {
    Stored { replaced: Option<String> },
    Identical(CourseFile),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
