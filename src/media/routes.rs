//! `GET|HEAD /media/{file_id}`: courseware bytes with ranges and validators (SPEC §6).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use headers::{HeaderMapExt, LastModified};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::MediaKey;
use super::content::FileKind;
use super::delivery::{Delivery, Representation, plan};
use super::subtitles::srt_to_vtt;
use crate::catalog::model::CourseFile;
use crate::error::{ApiError, Problem};
use crate::http::{AppPath, AppQuery};
use crate::state::AppState;

/// Subtitles converted on the fly are read whole; anything larger is not a subtitle file.
const MAX_SUBTITLE_BYTES: u64 = 8 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream_media, stream_media_head))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MediaQuery {
    /// `vtt`: a subtitle file as WebVTT (SRT is converted), for `<track>`.
    format: Option<String>,
}

/// `GET /media/{file_id}`: the file's bytes; `Range` gives 206, validators give 304.
#[utoipa::path(get, path = "/media/{file_id}", tag = "media",
    params(("file_id" = Uuid, Path), MediaQuery),
    responses(
        (status = 200, description = "the whole file"),
        (status = 206, description = "the requested range"),
        (status = 304, description = "not modified"),
        (status = 404, description = "no such file", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "range not satisfiable"),
    ))]
async fn stream_media(
    State(state): State<AppState>,
    method: Method,
    AppPath(file_id): AppPath<Uuid>,
    AppQuery(query): AppQuery<MediaQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = state.catalog.file(file_id).await?;
    if !file.stored {
        // A federated file not mirrored here (yet): its origin has the bytes.
        return state
            .federation
            .remote_media(&file, &method, uri.query(), &headers)
            .await;
    }
    match query.format.as_deref() {
        None => deliver(&state, &file, &method, &headers).await,
        Some("vtt") if file.kind == FileKind::Subtitle => deliver_vtt(&state, &file).await,
        Some(other) => Err(ApiError::bad_request(format!(
            "format {other:?} is not available for this file"
        ))),
    }
}

/// `HEAD /media/{file_id}`: the headers `GET` would send, without opening the object.
#[utoipa::path(head, path = "/media/{file_id}", tag = "media",
    params(("file_id" = Uuid, Path)),
    responses((status = 200, description = "headers only")))]
async fn stream_media_head(
    State(state): State<AppState>,
    AppPath(file_id): AppPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = state.catalog.file(file_id).await?;
    if !file.stored {
        return state
            .federation
            .remote_media(&file, &Method::HEAD, None, &headers)
            .await;
    }
    deliver(&state, &file, &Method::HEAD, &headers).await
}

async fn deliver(
    state: &AppState,
    file: &CourseFile,
    method: &Method,
    request: &HeaderMap,
) -> Result<Response, ApiError> {
    let representation = Representation {
        size: file.size,
        sha256_hex: file.sha256_hex.clone(),
        last_modified_ms: file.created_at_ms,
    };
    let delivery = plan(request, &representation);
    let (status, range) = match delivery {
        Delivery::NotModified => (StatusCode::NOT_MODIFIED, None),
        Delivery::Full => (StatusCode::OK, None),
        Delivery::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, Some((start, end))),
        Delivery::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{}", file.size)),
            );
            response
                .headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(response);
        }
    };
    let body = if status == StatusCode::NOT_MODIFIED || method == Method::HEAD {
        Body::empty()
    } else {
        let key = MediaKey::parse_stored(&file.object_key).ok_or_else(|| {
            ApiError::internal(format!("file {} has a foreign object key", file.id))
        })?;
        let byte_range = range.map(|(start, end)| start..end + 1);
        let stream = state
            .catalog
            .media()
            .read(&key, byte_range)
            .await
            .map_err(|e| ApiError::internal(format!("reading {}: {e}", key.as_str())))?;
        Body::from_stream(stream)
    };

    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.typed_insert(representation.etag());
    headers.typed_insert(LastModified::from(representation.last_modified()));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // File ids are never reused for other bytes: a replaced file gets a new id.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if status == StatusCode::NOT_MODIFIED {
        return Ok(response);
    }
    headers.insert(header::CONTENT_TYPE, header_value(&file.content_type));
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(&file.name));
    let length = match range {
        Some((start, end)) => {
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{}", file.size)),
            );
            end - start + 1
        }
        None => file.size,
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}

async fn deliver_vtt(state: &AppState, file: &CourseFile) -> Result<Response, ApiError> {
    let key = MediaKey::parse_stored(&file.object_key)
        .ok_or_else(|| ApiError::internal(format!("file {} has a foreign object key", file.id)))?;
    let bytes = state
        .catalog
        .media()
        .read_small(&key, MAX_SUBTITLE_BYTES)
        .await
        .map_err(|e| ApiError::internal(format!("reading {}: {e}", key.as_str())))?;
    let text = String::from_utf8_lossy(&bytes);
    let vtt = if file.content_type == "text/vtt" {
        text.into_owned()
    } else {
        srt_to_vtt(&text)
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/vtt; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        vtt,
    )
        .into_response())
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// `inline` with the name in RFC 8187 form, so Chinese names survive and no quote or newline
/// from a name can break the header.
fn content_disposition(name: &str) -> HeaderValue {
    let ascii_fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    header_value(&format!(
        "inline; filename=\"{ascii_fallback}\"; filename*=UTF-8''{encoded}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_encodes_non_ascii_and_quotes() {
        let value = content_disposition("第1课 \"intro\".mp4");
        let text = value.to_str().unwrap();
        assert!(
            text.starts_with("inline; filename=\"_1___intro_.mp4\""),
            "{text}"
        );
        assert!(
            text.contains("filename*=UTF-8''%E7%AC%AC1%E8%AF%BE%20%22intro%22.mp4"),
            "{text}"
        );
    }
}
