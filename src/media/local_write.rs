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
//! The writes are blocking: each batch of about a MiB goes to tokio's blocking pool as one task,
//! one batch in flight while the next gathers, so the request task never waits on the disk
//! and a slow client holds no thread while its bytes trickle in.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::task::JoinHandle;

#[cfg(test)]
use super::batch::BATCH_BYTES;
use super::batch::Batch;

/// Appended to an object's path to name its staging file. `object_store`'s local listing skips
/// file names that end in `#` and digits (its own staging files), and `MediaKey::parse_stored`
/// refuses them, so nothing mistakes an unfinished upload for an object.
const STAGING_SUFFIX: &str = "#0";

/// Writeback is started after each this many bytes: large enough for sequential disk writes,
/// small enough that little is left for the final flush.
const WRITEBACK_BYTES: u64 = 8 * 1024 * 1024;

/// Where the staging file of the object at `target` lives.
pub(super) fn staging_path(target: &Path) -> PathBuf {
    let mut path = target.as_os_str().to_owned();
    path.push(STAGING_SUFFIX);
    path.into()
}

/// When the staging file of the object at `target` was last written, if there is one.
pub(super) async fn staging_modified(target: &Path) -> Option<SystemTime> {
    tokio::fs::metadata(staging_path(target))
        .await
        .ok()?
        .modified()
        .ok()
}

/// One upload in progress. Dropped unfinished (the request was cancelled), it removes its
/// staging file in the background; a process that dies mid-upload leaves the file to the
/// sweep, through the upload's pending row.
pub(super) struct LocalUpload {
    /// Chunks not yet handed to a write.
    batch: Batch,
    /// The last write started, which owns the file until it returns it; `None` before the
    /// first write (which creates the file) and while the file is in hand.
    in_flight: Option<JoinHandle<io::Result<File>>>,
    written: u64,
    writeback_from: u64,
    staging: PathBuf,
    target: PathBuf,
    root: PathBuf,
    /// Finished or aborted: nothing left for `Drop` to clean.
    settled: bool,
}

impl LocalUpload {
    /// Starts writing the object at `target`, a path inside the store directory `root`.
    pub(super) fn start(root: PathBuf, target: PathBuf) -> LocalUpload {
        LocalUpload {
            batch: Batch::default(),
            in_flight: None,
            written: 0,
            writeback_from: 0,
            staging: staging_path(&target),
            target,
            root,
            settled: false,
        }
    }

    /// Adds `chunk`; once a batch has gathered, waits for the previous write (if the disk is
    /// behind) and starts the next.
    pub(super) async fn put(&mut self, chunk: Bytes) -> io::Result<()> {
        if self.batch.push(chunk) {
            self.write_batch().await?;
        }
        Ok(())
    }

    async fn write_batch(&mut self) -> io::Result<()> {
        let file = self.take_file().await?;
        let (batch, bytes) = self.batch.take();
        self.written += bytes as u64;
        let writeback = (self.written - self.writeback_from >= WRITEBACK_BYTES).then(|| {
            let range = (self.writeback_from, self.written - self.writeback_from);
            self.writeback_from = self.written;
            range
        });
        let staging = self.staging.clone();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(file) => file,
                None => create(&staging)?,
            };
            for chunk in &batch {
                file.write_all(chunk)?;
            }
            if let Some((offset, len)) = writeback {
                start_writeback(&file, offset, len);
            }
            Ok(file)
        }));
        Ok(())
    }

    /// The file, once the last write has returned it; `None` if nothing was written yet.
    async fn take_file(&mut self) -> io::Result<Option<File>> {
        match self.in_flight.take() {
            Some(write) => write.await.map_err(io::Error::other)?.map(Some),
            None => Ok(None),
        }
    }

    /// Writes what is left, flushes it to disk and moves it to the object's path.
    pub(super) async fn finish(mut self) -> io::Result<()> {
        if !self.batch.is_empty() || self.in_flight.is_none() {
            self.write_batch().await?;
        }
        let file = self
            .take_file()
            .await?
            .expect("a write has created the file");
        let (staging, target, root) =
            (self.staging.clone(), self.target.clone(), self.root.clone());
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
            Ok::<_, io::Error>(())
        })
        .await
        .map_err(io::Error::other)??;
        self.settled = true;
        Ok(())
    }

    /// Stops writing and removes the staging file; returns the error of the write in flight,
    /// if it failed, as the likely cause of the abort.
    pub(super) async fn abort(mut self) -> Option<io::Error> {
        self.settled = true;
        let failure = self.take_file().await.err();
        remove_staging(&self.staging).await;
        failure
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // Cancelled mid-upload: the write in flight may still create the file, so the removal
        // waits for it.
        let in_flight = self.in_flight.take();
        let staging = std::mem::take(&mut self.staging);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Some(write) = in_flight {
                        let _ = write.await;
                    }
                    remove_staging(&staging).await;
                });
            }
            Err(_) => {
                let _ = std::fs::remove_file(&staging);
            }
        }
    }
}

async fn remove_staging(staging: &Path) {
    if let Err(error) = tokio::fs::remove_file(staging).await
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(file = %staging.display(), %error, "could not remove an unfinished upload's staging file");
    }
}

/// Creates the staging file, and the object's directory if it is missing. The directory can
/// vanish between the two (the local store removes a directory when its last object goes), so
/// that is tried again. An existing staging file is truncated: one a crash left for this key
/// (a mirror is retried under the same key) holds nothing anyone needs.
fn create(path: &Path) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    };
    let mut attempts = 0;
    loop {
        match open() {
            Err(error) if error.kind() == io::ErrorKind::NotFound && attempts < 3 => {
                attempts += 1;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
            }
            other => return other,
        }
    }
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

    /// An upload three batches in, with its staging file written to.
    async fn under_way(root: &Path) -> (LocalUpload, PathBuf, PathBuf) {
        let target = root.join("object");
        let staging = staging_path(&target);
        let mut upload = LocalUpload::start(root.to_owned(), target.clone());
        for chunk in chunks(3 * BATCH_BYTES, 100_000) {
            upload.put(chunk).await.unwrap();
        }
        (upload, target, staging)
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let (upload, target, staging) = under_way(root.path()).await;
        assert!(staging.exists(), "nothing was written yet");
        assert!(upload.abort().await.is_none());
        assert!(!target.exists());
        assert!(!staging.exists());
    }

    #[tokio::test]
    async fn a_cancelled_upload_removes_its_staging_file() {
        let root = tempfile::tempdir().unwrap();
        let (upload, target, staging) = under_way(root.path()).await;
        // What a dropped request future does: neither finish nor abort.
        drop(upload);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while staging.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the staging file outlived its upload"
            );
            tokio::task::yield_now().await;
        }
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_upload_with_its_own_error() {
        let root = tempfile::tempdir().unwrap();
        // A file where the object's directory should be.
        std::fs::write(root.path().join("files"), b"").unwrap();
        let target = root.path().join("files").join("object");
        let mut upload = LocalUpload::start(root.path().to_owned(), target.clone());
        // The write starts with the first full batch and fails on its own thread; its error
        // comes back with the next batch or with finish.
        let mut failure = None;
        for chunk in chunks(3 * BATCH_BYTES, BATCH_BYTES) {
            if let Err(error) = upload.put(chunk).await {
                failure = Some(error);
                break;
            }
        }
        let failure = match failure {
            Some(error) => error,
            None => upload.finish().await.unwrap_err(),
        };
        #[cfg(target_os = "linux")]
        assert_eq!(failure.kind(), io::ErrorKind::NotADirectory, "{failure}");
        let _ = failure;
        assert!(!target.exists());
    }
}
