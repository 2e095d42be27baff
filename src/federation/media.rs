//! Bytes of federated files, which live at their origin until mirrored here.
//!
//! Per peer, `media = "redirect"` answers 302 to the origin's `/media/{id}`. With `"mirror"`,
//! the first request is streamed from the origin (ranges passed through) while a background
//! task copies the whole file into this server's object store, checking it against the
//! SHA-256 the origin signed; a copy whose bytes differ is discarded and counted on the peer.
//! Once the copy is complete the file is marked stored and served like any local file.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use super::store::{self, Peer};
use super::{Federation, MediaPolicy, describe};
use crate::catalog::model::CourseFile;
use crate::catalog::{remote, store as catalog_store};
use crate::db;
use crate::error::{ApiError, ErrorCode};
use crate::media::MediaKey;
use crate::media::upload::{self, UploadError, UploadRules};

/// Request headers passed on to the origin, and response headers passed back.
const FORWARDED_REQUEST: [header::HeaderName; 4] = [
    header::RANGE,
    header::IF_RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
];
const FORWARDED_RESPONSE: [header::HeaderName; 8] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
];

impl Federation {
    /// Answers `GET|HEAD /media/{id}` for a federated file whose bytes are not stored here.
    pub async fn remote_media(
        &self,
        file: &CourseFile,
        method: &Method,
        query: Option<&str>,
        request: &HeaderMap,
    ) -> Result<Response, ApiError> {
        let Some((origin, peer)) =
            store::source_of_course(self.inner.db.pool(), file.course_id).await?
        else {
            return Err(ApiError::not_found("no such file"));
        };
        let suffix = query.map_or(String::new(), |q| format!("?{q}"));
        let at_origin = format!("{origin}/media/{}{suffix}", file.id);
        if peer.media == MediaPolicy::Redirect {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&at_origin)
                    .map_err(|_| ApiError::internal(format!("origin URL {at_origin:?}")))?,
            );
            return Ok(response);
        }
        self.start_mirror(file.clone(), origin.clone(), peer.clone());
        let via_peer = format!("{}/media/{}{suffix}", peer.url, file.id);
        let mut last_error = String::new();
        for url in [at_origin, via_peer] {
            match self.proxy(&url, method, request).await {
                Ok(response) => return Ok(response),
                Err(error) => last_error = error,
            }
        }
        Err(ApiError::new(
            ErrorCode::BadGateway,
            "media-unreachable",
            format!("the file's origin could not be reached: {last_error}"),
        ))
    }

    /// Streams the origin's answer through, status and range headers included.
    async fn proxy(
        &self,
        url: &str,
        method: &Method,
        request: &HeaderMap,
    ) -> Result<Response, String> {
        let mut outgoing = self.inner.media_client.request(method.clone(), url);
        for name in FORWARDED_REQUEST {
            if let Some(value) = request.get(&name) {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = outgoing
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?;
        let status = answer.status();
        if status.is_server_error() || status.is_redirection() || status == StatusCode::NOT_FOUND {
            return Err(format!("{url} answered {status}"));
        }
        let mut headers = HeaderMap::new();
        for name in FORWARDED_RESPONSE {
            if let Some(value) = answer.headers().get(&name) {
                headers.insert(name, value.clone());
            }
        }
        let body = Body::from_stream(answer.bytes_stream().map_err(std::io::Error::other));
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }

    /// Copies the file here in the background, once however many requests ask.
    fn start_mirror(&self, file: CourseFile, origin: String, peer: Peer) {
        {
            let mut mirroring = self
                .inner
                .mirroring
                .lock()
                .expect("the mirror set is never poisoned");
            if !mirroring.insert(file.id) {
                return;
            }
        }
        let federation = self.clone();
        tokio::spawn(async move {
            let sources = [
                format!("{origin}/media/{}", file.id),
                format!("{}/media/{}", peer.url, file.id),
            ];
            for url in sources {
                match federation.mirror_from(&url, &file).await {
                    Ok(()) => break,
                    Err(MirrorError::Mismatch(reason)) => {
                        tracing::warn!(file = %file.id, %url, %reason, "mirrored bytes do not match the signed record; discarded");
                        if let Err(error) =
                            store::count_rejected_mirror(federation.inner.db.pool(), peer.id).await
                        {
                            tracing::warn!(%error, "could not count a rejected mirror");
                        }
                        break;
                    }
                    Err(MirrorError::Failed(reason)) => {
                        tracing::warn!(file = %file.id, %url, %reason, "could not mirror a file");
                    }
                }
            }
            federation
                .inner
                .mirroring
                .lock()
                .expect("the mirror set is never poisoned")
                .remove(&file.id);
        });
    }

    async fn mirror_from(&self, url: &str, file: &CourseFile) -> Result<(), MirrorError> {
        let answer = self
            .inner
            .media_client
            .get(url)
            .send()
            .await
            .map_err(|e| MirrorError::Failed(describe(&e)))?;
        if answer.status() != StatusCode::OK {
            return Err(MirrorError::Failed(format!("answered {}", answer.status())));
        }
        let expected = hex_bytes(&file.sha256_hex)
            .ok_or_else(|| MirrorError::Mismatch("the record's SHA-256 is not hex".into()))?;
        let key = MediaKey::file(file.id);
        let pool = self.inner.db.pool();
        // Registered like an upload, so a copy cut short by a crash is swept.
        catalog_store::insert_pending_upload(pool, key.as_str(), db::now_ms())
            .await
            .map_err(|e| MirrorError::Failed(e.to_string()))?;
        let stored = upload::store_stream(
            self.inner.catalog.media(),
            &key,
            answer.bytes_stream(),
            UploadRules {
                max_bytes: file.size,
                expected_sha256: Some(expected),
                declared_content_type: &file.content_type,
            },
        )
        .await;
        let outcome = match stored {
            Ok(done) if done.size == file.size => {
                remote::mark_stored(pool, file.id, &file.sha256_hex)
                    .await
                    .map_err(|e| MirrorError::Failed(e.to_string()))?;
                self.inner.catalog.forget_media_lookups();
                tracing::info!(file = %file.id, bytes = done.size, "mirrored a federated file");
                Ok(())
            }
            Ok(done) => Err(MirrorError::Mismatch(format!(
                "{} bytes, the record says {}",
                done.size, file.size
            ))),
            Err(UploadError::DigestMismatch | UploadError::TooLarge { .. }) => Err(
                MirrorError::Mismatch("the bytes differ from the signed SHA-256".into()),
            ),
            Err(UploadError::ContentMismatch { detected, declared }) => Err(MirrorError::Mismatch(
                format!("the bytes look like {detected}, not {declared}"),
            )),
            Err(other) => Err(MirrorError::Failed(other.to_string())),
        };
        if let Ok(mut conn) = pool.acquire().await {
            let _ = catalog_store::delete_pending_upload(&mut conn, key.as_str()).await;
        }
        outcome
    }
}

enum MirrorError {
    /// The bytes are not what the origin signed: discarded and reported.
    Mismatch(String),
    /// The source failed; another may do.
    Failed(String),
}

fn hex_bytes(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
