//! `/api/v1/courses*` and `/api/v1/files/{id}`.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::model::{Audience, Course, CourseFile, Level, Subject};
use super::{CourseInput, IncomingFile, UploadOutcome};
use crate::db::rfc3339;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::http::{AppJson, AppPath, AppQuery, AuthUser};
use crate::media::content::FileKind;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload_file_multipart, list_files))
        .routes(routes!(upload_file_raw))
        // Uploads stream to the object store and enforce limits.max_upload_bytes themselves.
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(create_course, list_courses))
        .routes(routes!(show_course, update_course, withdraw_course))
        .routes(routes!(delete_file))
        .merge(uploads)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCourseRequest {
    /// Slug of the publishing institution.
    institution: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Vec<Subject>)]
    subjects: Option<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Vec<Audience>)]
    audience: Option<Vec<String>>,
    /// Default `beginner`.
    #[serde(default)]
    #[schema(value_type = Option<Level>)]
    level: Option<String>,
    /// Language tags, e.g. `["zh", "en"]`.
    #[serde(default)]
    languages: Option<Vec<String>>,
    /// SPDX-style; default `CC-BY-4.0`.
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// Learning credits a completion earns; default 0.
    #[serde(default)]
    credits: Option<f64>,
}

/// Every field optional; absent fields keep their value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCourseRequest {
    title: Option<String>,
    description: Option<String>,
    #[schema(value_type = Option<Vec<Subject>>)]
    subjects: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Audience>>)]
    audience: Option<Vec<String>>,
    #[schema(value_type = Option<Level>)]
    level: Option<String>,
    languages: Option<Vec<String>>,
    license: Option<String>,
    tags: Option<Vec<String>>,
    credits: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct InstitutionSummary {
    slug: String,
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct FileView {
    id: Uuid,
    name: String,
    size: u64,
    /// Hex SHA-256 of the bytes.
    sha256: String,
    content_type: String,
    kind: FileKind,
    /// Where the bytes stream from (ranges supported).
    url: String,
    /// For subtitles: a WebVTT rendition for `<track>` (SRT is converted).
    track_url: Option<String>,
    created_at: String,
}

impl From<CourseFile> for FileView {
    fn from(file: CourseFile) -> Self {
        let url = format!("/media/{}", file.id);
        let track_url = (file.kind == FileKind::Subtitle).then(|| format!("{url}?format=vtt"));
        FileView {
            id: file.id,
            name: file.name,
            size: file.size,
            sha256: file.sha256_hex,
            content_type: file.content_type,
            kind: file.kind,
            url,
            track_url,
            created_at: rfc3339(file.created_at_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CourseView {
    id: Uuid,
    /// The server that published the course.
    origin: String,
    institution: InstitutionSummary,
    region: String,
    title: String,
    description: String,
    subjects: Vec<Subject>,
    audience: Vec<Audience>,
    level: Level,
    languages: Vec<String>,
    license: String,
    tags: Vec<String>,
    credits: f64,
    /// Rises with every change (the origin version).
    version: i64,
    created_at: String,
    updated_at: String,
    files: Vec<FileView>,
}

impl From<Course> for CourseView {
    fn from(c: Course) -> Self {
        CourseView {
            id: c.id,
            origin: c.origin,
            institution: InstitutionSummary {
                slug: c.institution.slug,
                name: c.institution.name,
            },
            region: c.region,
            title: c.title,
            description: c.description,
            subjects: c.subjects,
            audience: c.audience,
            level: c.level,
            languages: c.languages,
            license: c.license,
            tags: c.tags,
            credits: c.credits,
            version: c.version,
            created_at: rfc3339(c.created_at_ms),
            updated_at: rfc3339(c.updated_at_ms),
            files: c.files.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CourseList {
    courses: Vec<CourseView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FileList {
    files: Vec<FileView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListCoursesQuery {
    /// Institution slug.
    institution: Option<String>,
    subject: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 100, default 20.
    limit: Option<u32>,
}

/// `POST /api/v1/courses`: publishes a course (staff of the institution, site administrators).
#[utoipa::path(post, path = "/api/v1/courses", tag = "catalog",
    security(("bearer" = []), ("cookie" = [])),
    request_body = CreateCourseRequest,
    responses(
        (status = 201, description = "created", body = CourseView),
        (status = 403, description = "not staff of the institution", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields, named in errors", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_course(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppJson(body): AppJson<CreateCourseRequest>,
) -> Result<(StatusCode, AppJson<CourseView>), ApiError> {
    let input = CourseInput {
        title: Some(body.title),
        description: body.description,
        subjects: body.subjects,
        audience: body.audience,
        level: body.level,
        languages: body.languages,
        license: body.license,
        tags: body.tags,
        credits: body.credits,
    };
    let course = state
        .catalog
        .create_course(&auth.user, &body.institution, input)
        .await?;
    Ok((StatusCode::CREATED, AppJson(course.into())))
}

/// `GET /api/v1/courses`: live courses, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/courses", tag = "catalog",
    params(ListCoursesQuery),
    responses(
        (status = 200, description = "a page of courses", body = CourseList),
        (status = 422, description = "unknown subject, bad cursor or limit", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_courses(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ListCoursesQuery>,
) -> Result<AppJson<CourseList>, ApiError> {
    let (courses, next_cursor) = state
        .catalog
        .list_courses(
            query.institution.as_deref(),
            query.subject.as_deref(),
            query.cursor.as_deref(),
            query.limit,
        )
        .await?;
    Ok(AppJson(CourseList {
        courses: courses.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/courses/{id}`: a course with its files.
#[utoipa::path(get, path = "/api/v1/courses/{id}", tag = "catalog",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "the course", body = CourseView),
        (status = 404, description = "no such course, or withdrawn", body = Problem, content_type = "application/problem+json"),
    ))]
async fn show_course(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<AppJson<CourseView>, ApiError> {
    Ok(AppJson(state.catalog.course(id).await?.into()))
}

/// `PATCH /api/v1/courses/{id}`: changes some fields.
#[utoipa::path(patch, path = "/api/v1/courses/{id}", tag = "catalog",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    request_body = UpdateCourseRequest,
    responses(
        (status = 200, description = "updated", body = CourseView),
        (status = 403, description = "not staff of the institution", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such course", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_course(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<UpdateCourseRequest>,
) -> Result<AppJson<CourseView>, ApiError> {
    let input = CourseInput {
        title: body.title,
        description: body.description,
        subjects: body.subjects,
        audience: body.audience,
        level: body.level,
        languages: body.languages,
        license: body.license,
        tags: body.tags,
        credits: body.credits,
    };
    Ok(AppJson(
        state
            .catalog
            .update_course(&auth.user, id, input)
            .await?
            .into(),
    ))
}

/// `DELETE /api/v1/courses/{id}`: withdraws the course (a tombstone in the catalog log).
#[utoipa::path(delete, path = "/api/v1/courses/{id}", tag = "catalog",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "withdrawn"),
        (status = 403, description = "not staff of the institution", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such course", body = Problem, content_type = "application/problem+json"),
    ))]
async fn withdraw_course(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.catalog.withdraw_course(&auth.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/courses/{id}/files`.
#[utoipa::path(get, path = "/api/v1/courses/{id}/files", tag = "catalog",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "the course's files", body = FileList),
        (status = 404, description = "no such course", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_files(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<AppJson<FileList>, ApiError> {
    let course = state.catalog.course(id).await?;
    Ok(AppJson(FileList {
        files: course.files.into_iter().map(Into::into).collect(),
    }))
}

fn upload_response(file: CourseFile, outcome: UploadOutcome) -> (StatusCode, AppJson<FileView>) {
    let status = match outcome {
        UploadOutcome::Stored => StatusCode::CREATED,
        UploadOutcome::AlreadyPresent => StatusCode::OK,
    };
    (status, AppJson(file.into()))
}

fn content_digest(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get("content-digest")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::bad_request("Content-Digest is not readable text"))
        })
        .transpose()
}

/// `PUT /api/v1/courses/{id}/files/{name}`: the raw body is the file (`curl -T` works).
/// 201 when stored, 200 when the same bytes were already there under that name.
#[utoipa::path(put, path = "/api/v1/courses/{id}/files/{name}", tag = "catalog",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("name" = String, Path, description = "file name, URL-encoded"),
        ("Content-Digest" = Option<String>, Header, description = "sha-256=:<base64>: checked against the bytes")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored", body = FileView),
        (status = 200, description = "identical bytes already stored", body = FileView),
        (status = 400, description = "digest mismatch or interrupted body; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "not staff of the institution", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such course", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "larger than limits.max_upload_bytes; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad name, empty file, or content that contradicts the name", body = Problem, content_type = "application/problem+json"),
    ))]
async fn upload_file_raw(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath((id, name)): AppPath<(Uuid, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, AppJson<FileView>), ApiError> {
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let incoming = IncomingFile {
        course_id: id,
        name: &name,
        content_digest: content_digest(&headers)?,
        content_length,
        body: body.into_data_stream(),
    };
    let (file, outcome) = state.catalog.upload_file(&auth.user, incoming).await?;
    Ok(upload_response(file, outcome))
}

/// `POST /api/v1/courses/{id}/files`: multipart upload; the part named `file` is stored under
/// its file name.
#[utoipa::path(post, path = "/api/v1/courses/{id}/files", tag = "catalog",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    request_body(content_type = "multipart/form-data", description = "a part named `file` with a filename"),
    responses(
        (status = 201, description = "stored", body = FileView),
        (status = 200, description = "identical bytes already stored", body = FileView),
        (status = 400, description = "no `file` part, digest mismatch, or truncated body", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "too large; nothing stored", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "bad name, empty file, or content that contradicts the name", body = Problem, content_type = "application/problem+json"),
    ))]
async fn upload_file_multipart(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Result<(StatusCode, AppJson<FileView>), ApiError> {
    let digest = content_digest(&headers)?;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, "bad-multipart", e.body_text()))?;
        let Some(field) = field else {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "bad-multipart",
                "the form has no part named `file`",
            ));
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or_default().to_owned();
        let incoming = IncomingFile {
            course_id: id,
            name: &name,
            content_digest: digest,
            content_length: None,
            body: field,
        };
        let (file, outcome) = state.catalog.upload_file(&auth.user, incoming).await?;
        return Ok(upload_response(file, outcome));
    }
}

/// `DELETE /api/v1/files/{id}`: removes a file from its course.
#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "catalog",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "not staff of the institution", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such file", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_file(
    State(state): State<AppState>,
    AuthUser(auth): AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .catalog
        .delete_file(&auth.user, id)
        .await
        .map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitles_get_a_track_url_and_other_files_do_not() {
        let file = |kind| CourseFile {
            id: Uuid::nil(),
            course_id: Uuid::nil(),
            name: "x".into(),
            content_type: "text/vtt".into(),
            kind,
            size: 1,
            sha256_hex: String::new(),
            object_key: String::new(),
            created_at_ms: 0,
            stored: true,
        };
        let subtitle = FileView::from(file(FileKind::Subtitle));
        assert_eq!(
            subtitle.track_url.as_deref(),
            Some(format!("/media/{}?format=vtt", Uuid::nil()).as_str())
        );
        assert!(FileView::from(file(FileKind::Video)).track_url.is_none());
    }
}
