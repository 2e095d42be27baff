//! Streaming a request body into the object store: hashing, counting, checking the content
//! and the client's digest on the way, and leaving nothing behind when anything fails.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use super::content::{SNIFF_BYTES, check_leading_bytes};
use super::digest::{BodyDigest, DigestInterrupted};
use super::local_write::LocalUpload;
use super::{MediaKey, MediaStore};

/// Parts are this large: S3's minimum part size, and the bound on what one upload buffers.
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts in flight at once per upload.
const PARTS_IN_FLIGHT: usize = 2;

/// What the upload must satisfy.
pub struct UploadRules<'a> {
    pub max_bytes: u64,
    /// From `Content-Digest: sha-256=:…:`, when the client sent one.
    pub expected_sha256: Option<[u8; 32]>,
    /// The type the file name implies.
    pub declared_content_type: &'a str,
}

/// A completed upload.
#[derive(Debug)]
pub struct Uploaded {
    pub size: u64,
    pub sha256: [u8; 32],
    pub content_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("the bytes received do not match the Content-Digest the client sent")]
    DigestMismatch,
    #[error("the file's content looks like {detected}, not {declared} as its name says")]
    ContentMismatch { declared: String, detected: String },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("object store: {0}")]
    Store(String),
}

/// Streams `body` to `key`. On any error the partial object is aborted, so either the whole
/// verified object exists afterwards, on disk, or nothing does (an abort that itself fails
/// leaves an object the sweep removes).
pub async fn store_stream<S, E>(
    media: &MediaStore,
    key: &MediaKey,
    body: S,
    rules: UploadRules<'_>,
) -> Result<Uploaded, UploadError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut writer = ObjectWriter::open(media, key);
    let uploaded = match copy_verified(&mut writer, body, &rules).await {
        Ok(uploaded) => uploaded,
        Err(error) => {
            writer.abort(key).await;
            let _ = media.delete(key).await;
            return Err(error);
        }
    };
    if let Err(error) = writer.finish().await {
        let _ = media.delete(key).await;
        return Err(error);
    }
    Ok(uploaded)
}

/// Where an upload's bytes go: a local directory is written by `local_write`, which flushes
/// to disk as it goes; any other store through `object_store`'s multipart writer, for which
/// an answered part is durable.
enum ObjectWriter {
    Local(LocalUpload),
    Remote(BufWriter),
}

impl ObjectWriter {
    fn open(media: &MediaStore, key: &MediaKey) -> ObjectWriter {
        match media.local_path(key) {
            Some((root, path)) => ObjectWriter::Local(LocalUpload::start(root, path)),
            None => ObjectWriter::Remote(
                BufWriter::with_capacity(Arc::clone(media.inner()), key.0.clone(), PART_BYTES)
                    .with_max_concurrency(PARTS_IN_FLIGHT),
            ),
        }
    }

    async fn put(&mut self, chunk: Bytes) -> Result<(), UploadError> {
        match self {
            ObjectWriter::Local(upload) => upload.put(chunk).await.map_err(UploadError::from),
            ObjectWriter::Remote(writer) => writer
                .put(chunk)
                .await
                .map_err(|e| UploadError::Store(e.to_string())),
        }
    }

    /// Makes the object visible, whole and durable.
    async fn finish(self) -> Result<(), UploadError> {
        match self {
            ObjectWriter::Local(upload) => upload.finish().await.map_err(UploadError::from),
            ObjectWriter::Remote(mut writer) => writer
                .shutdown()
                .await
                .map_err(|e| UploadError::Store(e.to_string())),
        }
    }

    async fn abort(self, key: &MediaKey) {
        let failure = match self {
            ObjectWriter::Local(upload) => upload.abort().await.map(|e| e.to_string()),
            ObjectWriter::Remote(mut writer) => writer.abort().await.err().map(|e| e.to_string()),
        };
        if let Some(error) = failure {
            tracing::warn!(object = key.as_str(), %error, "the failed upload's writer reported an error; anything it left is removed");
        }
    }
}

impl From<DigestInterrupted> for UploadError {
    fn from(_: DigestInterrupted) -> Self {
        UploadError::Interrupted("the server is shutting down".into())
    }
}

impl From<std::io::Error> for UploadError {
    fn from(error: std::io::Error) -> Self {
        UploadError::Store(format!("writing to the local object directory: {error}"))
    }
}

async fn copy_verified<S, E>(
    writer: &mut ObjectWriter,
    body: S,
    rules: &UploadRules<'_>,
) -> Result<Uploaded, UploadError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let mut digest = BodyDigest::new();
    let mut size: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut content_type: Option<String> = None;

    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UploadError::Interrupted(e.to_string()))?;
        size += chunk.len() as u64;
        if size > rules.max_bytes {
            return Err(UploadError::TooLarge {
                limit: rules.max_bytes,
            });
        }
        if content_type.is_none() {
            let wanted = SNIFF_BYTES - head.len();
            head.extend_from_slice(&chunk[..wanted.min(chunk.len())]);
            if head.len() == SNIFF_BYTES {
                content_type = Some(decide_content_type(rules.declared_content_type, &head)?);
            }
        }
        digest.update(&chunk).await?;
        writer.put(chunk).await?;
    }
    if size == 0 {
        return Err(UploadError::Empty);
    }
    let content_type = match content_type {
        Some(decided) => decided,
        None => decide_content_type(rules.declared_content_type, &head)?,
    };
    let sha256 = digest.finalize().await?;
    if rules
        .expected_sha256
        .is_some_and(|expected| expected != sha256)
    {
        return Err(UploadError::DigestMismatch);
    }
    Ok(Uploaded {
        size,
        sha256,
        content_type,
    })
}

fn decide_content_type(declared: &str, head: &[u8]) -> Result<String, UploadError> {
    check_leading_bytes(declared, head).map_err(|detected| UploadError::ContentMismatch {
        declared: declared.to_owned(),
        detected,
    })
}

/// Reads `sha-256=:<base64>:` out of a `Content-Digest` header (RFC 9530). `Ok(None)` when the
/// header carries only other algorithms; `Err` when it is malformed.
pub fn parse_content_digest(header: &str) -> Result<Option<[u8; 32]>, String> {
    let dictionary = sfv::Parser::new(header)
        .parse::<sfv::Dictionary>()
        .map_err(|e| format!("Content-Digest is not a structured-field dictionary: {e}"))?;
    let Some(entry) = dictionary.get("sha-256") else {
        return Ok(None);
    };
    let sfv::ListEntry::Item(item) = entry else {
        return Err("Content-Digest sha-256 must be a byte sequence".into());
    };
    let sfv::BareItem::ByteSequence(bytes) = &item.bare_item else {
        return Err("Content-Digest sha-256 must be a byte sequence (:base64:)".into());
    };
    let digest: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "Content-Digest sha-256 must be 32 bytes".to_owned())?;
    Ok(Some(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_digest_is_parsed_per_rfc_9530() {
        // sha-256 of "hello"
        let header = "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:";
        let digest = parse_content_digest(header).unwrap().unwrap();
        assert_eq!(digest[..4], [0x2c, 0xf2, 0x4d, 0xba]);
        assert_eq!(parse_content_digest("sha-512=:AAAA:").unwrap(), None);
        assert!(parse_content_digest("sha-256=notbytes").is_err());
        assert!(parse_content_digest("sha-256=:AAAA:").is_err());
        assert!(parse_content_digest(":::").is_err());
    }
}
