//! Uploads into a local object directory, written here rather than through `object_store`.
//!
//! An upload is answered only once its bytes are on disk. Written through the page cache and
//! flushed at the end, a 2 GiB upload spends seconds in that final flush after the last byte
//! arrived: with gigabytes of free memory the kernel starts no writeback of its own. So the
//! bytes go to a staging file beside the object, the kernel is asked to start writing each
//! few MiB to disk while the rest is still arriving, and the final flush has little left to
//! wait for. Only then is the staging file renamed to the object's path, so that path always
//! names complete, durable bytes. `object_store`'s local multipart writer has no handle on
//! which to start writeback early, which is why this module exists.
//!
//! The writes are blocking and run on one thread of tokio's blocking pool per upload, fed by a
//! bounded channel: the request task never waits on the disk, and the bytes queued between
//! them are bounded.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Appended to an object's path to name its staging file. `object_store`'s local listing skips
/// file names that end in `#` and digits (its own staging files), so the sweep's listing never
/// mistakes an unfinished upload for an object.
const STAGING_SUFFIX: &str = "#0";

/// Writeback is started after each this many bytes: large enough for sequential disk writes,
/// small enough that little is left for the final flush.
const WRITEBACK_BYTES: u64 = 8 * 1024 * 1024;

/// Chunks queued for the writer thread. hyper's chunks are at most ~400 KiB, so this bounds
/// what an upload holds in memory to a few MiB.
const QUEUED_CHUNKS: usize = 16;

/// Where the staging file of the object at `target` lives.
pub(super) fn staging_path(target: &Path) -> PathBuf {
    let mut path = target.as_os_str().to_owned();
    path.push(STAGING_SUFFIX);
    path.into()
}

/// One upload in progress. Dropped without [`LocalUpload::finish`], it leaves its staging file
/// behind, which [`super::MediaStore::delete`] of the same key removes (so does the sweep, for
/// a process that died mid-upload).
pub(super) struct LocalUpload {
    chunks: mpsc::Sender<Bytes>,
    writer: JoinHandle<io::Result<File>>,
    staging: PathBuf,
    target: PathBuf,
    root: PathBuf,
}

impl LocalUpload {
    /// Starts writing the object at `target`, a path inside the store directory `root`.
    pub(super) fn start(root: PathBuf, target: PathBuf) -> LocalUpload {
        let staging = staging_path(&target);
        let (chunks, received) = mpsc::channel(QUEUED_CHUNKS);
        let writer = {
            let staging = staging.clone();
            tokio::task::spawn_blocking(move || write_staged(&staging, received))
        };
        LocalUpload {
            chunks,
            writer,
            staging,
            target,
            root,
        }
    }

    /// Queues `chunk` for writing; waits only while the queue is full.
    pub(super) async fn put(&mut self, chunk: Bytes) -> io::Result<()> {
        if self.chunks.send(chunk).await.is_ok() {
            return Ok(());
        }
        // The writer stopped early: it failed, and says why when joined. `finish` and `abort`
        // join it again, so the error is only reported here.
        Err(io::Error::other(
            "the upload's writer stopped; see the error it finished with",
        ))
    }

    /// Writes what is queued, flushes it to disk and moves it to the object's path.
    pub(super) async fn finish(self) -> io::Result<()> {
        let LocalUpload {
            chunks,
            writer,
            staging,
            target,
            root,
        } = self;
        drop(chunks);
        let file = writer.await.map_err(io::Error::other)??;
        tokio::task::spawn_blocking(move || {
            file.sync_all()?;
            drop(file);
            std::fs::rename(&staging, &target)?;
            // The rename is an entry in the object's directory, which the first upload created
            // in the store's.
            #[cfg(unix)]
            for directory in target.parent().into_iter().chain([root.as_path()]) {
                File::open(directory)?.sync_all()?;
            }
            #[cfg(not(unix))]
            let _ = root;
            Ok(())
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Stops writing and removes the staging file; returns the writer's own error, if it had
    /// one, as the likely cause of the abort.
    pub(super) async fn abort(self) -> Option<io::Error> {
        drop(self.chunks);
        let failure = match self.writer.await {
            Ok(Ok(_file)) => None,
            Ok(Err(error)) => Some(error),
            Err(join) => Some(io::Error::other(join)),
        };
        if let Err(error) = tokio::fs::remove_file(&self.staging).await
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(file = %self.staging.display(), %error, "could not remove an aborted upload's staging file");
        }
        failure
    }
}

/// The writer thread: everything received, in order, into a new staging file.
fn write_staged(staging: &Path, mut chunks: mpsc::Receiver<Bytes>) -> io::Result<File> {
    let mut file = match create(staging) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = staging.parent() {
                std::fs::create_dir_all(parent)?;
            }
            create(staging)?
        }
        other => other?,
    };
    let mut written = 0u64;
    let mut writeback_from = 0u64;
    while let Some(chunk) = chunks.blocking_recv() {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
        if written - writeback_from >= WRITEBACK_BYTES {
            start_writeback(&file, writeback_from, written - writeback_from);
            writeback_from = written;
        }
    }
    Ok(file)
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Asks the kernel to start writing `len` bytes at `offset` to disk, without waiting for it.
/// `POSIX_FADV_DONTNEED` starts writeback of a range's dirty pages (then drops the pages that
/// are already clean); it is what PostgreSQL falls back to for `backend_flush_after` where
/// `sync_file_range` is missing, and the only such call reachable without `unsafe` here. It is
/// advice: if it fails, the final flush does all the work, as it would have anyway.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(total: usize, size: usize) -> Vec<Bytes> {
        (0..total)
            .step_by(size)
            .map(|start| {
                Bytes::from(
                    (start..(start + size).min(total))
                        .map(|i| (i % 251) as u8)
                        .collect::<Vec<u8>>(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_finished_upload_is_at_its_path_and_its_staging_file_is_gone() {
        let root = tempfile::tempdir().unwrap();
        // The object's directory does not exist yet: the first upload creates it.
        let target = root.path().join("files").join("object");
        let mut upload = LocalUpload::start(root.path().to_owned(), target.clone());
        // Past several writeback windows, with a last chunk of odd size.
        let total = 3 * WRITEBACK_BYTES as usize + 12_345;
        let sent = chunks(total, 300_000);
        for chunk in &sent {
            upload.put(chunk.clone()).await.unwrap();
        }
        assert!(!target.exists(), "visible before it was finished");
        upload.finish().await.unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), sent.concat());
        assert!(!staging_path(&target).exists());
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("object");
        let mut upload = LocalUpload::start(root.path().to_owned(), target.clone());
        upload.put(Bytes::from_static(b"partial")).await.unwrap();
        assert!(upload.abort().await.is_none());
        assert!(!target.exists());
        assert!(!staging_path(&target).exists());
    }

    #[tokio::test]
    async fn a_writer_that_cannot_create_its_file_fails_the_upload() {
        let root = tempfile::tempdir().unwrap();
        // A file where the object's directory should be.
        std::fs::write(root.path().join("files"), b"").unwrap();
        let target = root.path().join("files").join("object");
        let mut upload = LocalUpload::start(root.path().to_owned(), target.clone());
        // Accepted into the queue or refused, depending on how soon the writer failed.
        let _ = upload.put(Bytes::from_static(b"x")).await;
        let cause = upload.abort().await;
        assert!(cause.is_some(), "abort did not report the writer's error");
    }
}
