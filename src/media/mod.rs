//! Media: the object store behind courseware bytes, uploads into it and ranged delivery out.
//!
//! Owns every object path: nothing outside this module builds one, and none comes from a
//! client (`MediaKey` is made from our own ids). The store is the local directory by default or
//! an S3-compatible bucket; both are `object_store` implementations behind one
//! `Arc<dyn ObjectStore>`. Bytes are streamed both ways, never held whole in memory.
//!
//! Depends on nothing else in the crate but `config`; `catalog` decides what to store.

mod batch;
pub mod content;
pub mod delivery;
mod digest;
mod local_read;
mod local_write;
pub mod routes;
pub mod subtitles;
pub mod upload;

use std::ops::Range;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt};
use uuid::Uuid;

use crate::config::StorageConfig;

/// The path of one object, built only from server-generated ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaKey(Path);

impl MediaKey {
    const FILES_PREFIX: &'static str = "files";

    /// Where the bytes of courseware file `file_id` live.
    pub fn file(file_id: Uuid) -> MediaKey {
        MediaKey(Path::from_iter([Self::FILES_PREFIX, &file_id.to_string()]))
    }

    /// A key read back from the database; `None` if it is not one of ours.
    pub fn parse_stored(text: &str) -> Option<MediaKey> {
        let (prefix, id) = text.split_once('/')?;
        (prefix == Self::FILES_PREFIX)
            .then(|| Uuid::parse_str(id).ok())
            .flatten()
            .map(MediaKey::file)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

/// Bytes per read when streaming from the local directory. hyper asks for the next chunk only
/// while its write queue holds less than `http::serve::WRITE_QUEUE_BYTES`, so a connection
/// holds at most that plus one chunk (~384 KiB). Halving it cost a sixth of the random-range
/// throughput in the media benchmark (bench/README.md).
const LOCAL_READ_BYTES: usize = 256 * 1024;

/// Idle chunk buffers kept for reuse (4 MiB): enough for the chunks that finish writing while
/// the next reads happen, few enough not to count in the memory budget.
const LOCAL_READ_POOL: usize = 16;

/// An object found by [`MediaStore::list_files`].
pub struct StoredObject {
    pub key: MediaKey,
    pub last_modified_ms: i64,
}

/// A cheap-to-clone handle to the object store.
#[derive(Clone, Debug)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store, into which uploads are written by `local_write`.
    local_dir: Option<PathBuf>,
    chunks: Arc<local_read::ChunkPool>,
}

impl MediaStore {
    /// Builds the store `storage.url` names: a directory (created if missing) or `s3://bucket`.
    pub fn from_config(storage: &StorageConfig, data_dir: &FsPath) -> anyhow::Result<MediaStore> {
        let url = storage.url.trim();
        let mut local_dir = None;
        let store: Arc<dyn ObjectStore> = if let Some(bucket) = url.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(if storage.s3_region.is_empty() {
                    "us-east-1"
                } else {
                    &storage.s3_region
                })
                .with_allow_http(storage.s3_allow_http)
                // Path-style addressing: S3-compatible servers on one host have no per-bucket
                // DNS names.
                .with_virtual_hosted_style_request(false);
            if !storage.s3_endpoint.is_empty() {
                builder = builder.with_endpoint(&storage.s3_endpoint);
            }
            if !storage.s3_access_key_id.is_empty() {
                builder = builder
                    .with_access_key_id(&storage.s3_access_key_id)
                    .with_secret_access_key(&storage.s3_secret_access_key);
            }
            Arc::new(builder.build().context("configuring the S3 object store")?)
        } else {
            let dir = match url {
                "" => data_dir.join("objects"),
                other => other.strip_prefix("file://").unwrap_or(other).into(),
            };
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the object directory {}", dir.display()))?;
            local_dir = Some(dir.clone());
            Arc::new(
                LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("opening the object directory {}", dir.display()))?
                    .with_automatic_cleanup(true),
            )
        };
        Ok(MediaStore {
            store,
            local_dir,
            chunks: local_read::ChunkPool::new(LOCAL_READ_BYTES, LOCAL_READ_POOL),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The object's bytes, or only `range` of them, as a stream.
    pub async fn read(
        &self,
        key: &MediaKey,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, object_store::Error> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let result = self.store.get_opts(&key.0, options).await?;
        let range = result.range.clone();
        match result.payload {
            // object_store streams local files in 8 KiB reads, each a round trip through the
            // blocking pool; see `local_read` for what is done instead.
            GetResultPayload::File(file, _) => {
                Ok(local_read::range_stream(file, range, Arc::clone(&self.chunks)).boxed())
            }
            GetResultPayload::Stream(stream) => Ok(stream
                .map_err(|e| std::io::Error::other(e.to_string()))
                .boxed()),
        }
    }

    /// The whole object, for small files only (subtitles); `limit` guards the memory.
    pub async fn read_small(
        &self,
        key: &MediaKey,
        limit: u64,
    ) -> Result<Bytes, object_store::Error> {
        let result = self.store.get(&key.0).await?;
        if result.meta.size > limit {
            return Err(object_store::Error::Generic {
                store: "media",
                source: format!("object is {} bytes, more than {limit}", result.meta.size).into(),
            });
        }
        result.bytes().await
    }

    /// For a local store: its directory, and the path of the object at `key` in it.
    fn local_path(&self, key: &MediaKey) -> Option<(PathBuf, PathBuf)> {
        let dir = self.local_dir.as_ref()?;
        Some((dir.clone(), dir.join(key.as_str())))
    }

    /// Whether an upload to `key` wrote bytes at or after `since_ms` (Unix milliseconds): a
    /// slow upload whose pending row is older than the sweep's grace period is still alive,
    /// and its staging file must not be pulled from under it. Only a local store can tell; for
    /// S3 this is `false`.
    pub async fn upload_active_since(&self, key: &MediaKey, since_ms: i64) -> bool {
        let Some((_, path)) = self.local_path(key) else {
            return false;
        };
        let Some(modified) = local_write::staging_modified(&path).await else {
            return false;
        };
        let modified_ms = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        modified_ms >= since_ms
    }

    /// Deletes the object; an object already gone is not an error.
    pub async fn delete(&self, key: &MediaKey) -> Result<(), object_store::Error> {
        // What an upload interrupted by a crash left, which only a key names.
        if let Some((_, path)) = self.local_path(key) {
            let staging = local_write::staging_path(&path);
            match tokio::fs::remove_file(&staging).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(object_store::Error::Generic {
                        store: "media",
                        source: format!("removing {}: {error}", staging.display()).into(),
                    });
                }
                _ => {}
            }
        }
        match self.store.delete(&key.0).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every courseware object in the store, for the sweep.
    pub async fn list_files(&self) -> Result<Vec<StoredObject>, object_store::Error> {
        let prefix = Path::from(MediaKey::FILES_PREFIX);
        let mut listing = self.store.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if let Some(key) = MediaKey::parse_stored(meta.location.as_ref()) {
                found.push(StoredObject {
                    key,
                    last_modified_ms: meta.last_modified.timestamp_millis(),
                });
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_ids_and_round_trip() {
        let id = Uuid::new_v4();
        let key = MediaKey::file(id);
        assert_eq!(key.as_str(), format!("files/{id}"));
        assert_eq!(MediaKey::parse_stored(key.as_str()), Some(key));
        assert_eq!(MediaKey::parse_stored("files/../../etc/passwd"), None);
        assert_eq!(MediaKey::parse_stored("other/x"), None);
    }
}
