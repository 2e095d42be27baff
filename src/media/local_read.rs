//! A byte range of a local object as a stream of chunks, for media delivery.
//!
//! Why not `tokio::fs::File`: each of its reads is a hop through the blocking pool and two
//! copies (kernel → tokio's buffer → ours), and streaming is CPU-bound on a small server. Most
//! media bytes that are asked for are in the page cache, where a read never blocks, so on Linux
//! a chunk is first read with `preadv2(RWF_NOWAIT)` on the runtime thread: the kernel copies what
//! is cached and answers `EAGAIN` instead of waiting for the disk. Only then does the read go to
//! the blocking pool, so a cold file never stalls the other connections on this worker.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, Stream};

/// Reads `range` of `file` in chunks of at most `chunk_bytes`.
pub fn range_stream(
    file: File,
    range: Range<u64>,
    chunk_bytes: usize,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let reader = Reader {
        file: Arc::new(file),
        position: range.start,
        end: range.end,
        chunk_bytes,
        nowait: NoWait::Try,
    };
    stream::try_unfold(reader, |mut reader| async move {
        if reader.position >= reader.end {
            return Ok(None);
        }
        let chunk = reader.next_chunk().await?;
        Ok(Some((chunk, reader)))
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NoWait {
    Try,
    /// The kernel or file system does not support `RWF_NOWAIT`: every read goes to the pool.
    Unsupported,
}

struct Reader {
    file: Arc<File>,
    position: u64,
    end: u64,
    chunk_bytes: usize,
    nowait: NoWait,
}

impl Reader {
    async fn next_chunk(&mut self) -> io::Result<Bytes> {
        let want = usize::try_from(self.end - self.position)
            .unwrap_or(usize::MAX)
            .min(self.chunk_bytes);
        let mut buffer = vec![0u8; want];
        let cached = match self.nowait {
            NoWait::Try => match read_cached(&self.file, &mut buffer, self.position) {
                Cached::Read(read) => Some(read),
                Cached::WouldBlock => None,
                Cached::Unsupported => {
                    self.nowait = NoWait::Unsupported;
                    None
                }
                Cached::Failed(error) => return Err(error),
            },
            NoWait::Unsupported => None,
        };
        let (buffer, read) = match cached {
            Some(read) => (buffer, read),
            None => {
                let file = Arc::clone(&self.file);
                let position = self.position;
                tokio::task::spawn_blocking(move || {
                    let read = read_at(&file, &mut buffer, position)?;
                    Ok::<_, io::Error>((buffer, read))
                })
                .await
                .map_err(io::Error::other)??
            }
        };
        if read == 0 {
            // The object is shorter than its recorded size: never send a short body silently.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("object ended at byte {} of {}", self.position, self.end),
            ));
        }
        self.position += read as u64;
        if read < want {
            // A short read (the cached part of a file still being read ahead): a `Bytes` made
            // from the vector would keep the whole allocation alive in hyper's write queue,
            // which counts bytes, not allocations.
            return Ok(Bytes::copy_from_slice(&buffer[..read]));
        }
        Ok(Bytes::from(buffer))
    }
}

enum Cached {
    Read(usize),
    WouldBlock,
    Unsupported,
    Failed(io::Error),
}

#[cfg(target_os = "linux")]
fn read_cached(file: &File, buffer: &mut [u8], position: u64) -> Cached {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    match preadv2(
        file,
        &mut [io::IoSliceMut::new(buffer)],
        position,
        ReadWriteFlags::NOWAIT,
    ) {
        Ok(read) => Cached::Read(read),
        Err(Errno::AGAIN) => Cached::WouldBlock,
        // Kernels before 4.14 and some file systems refuse the flag.
        Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => Cached::Unsupported,
        Err(errno) => Cached::Failed(errno.into()),
    }
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], position: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, position)
}

#[cfg(windows)]
fn read_at(file: &File, buffer: &mut [u8], position: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buffer, position)
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_file: &File, _buffer: &mut [u8], _position: u64) -> Cached {
    Cached::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn streams_exactly_the_range_in_bounded_chunks() {
        let bytes = pattern(100_000);
        let chunks: Vec<Bytes> = range_stream(file_of(&bytes), 1_000..90_001, 16 * 1024)
            .try_collect()
            .await
            .unwrap();
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= 16 * 1024));
        assert_eq!(chunks.concat(), bytes[1_000..90_001]);
    }

    #[tokio::test]
    async fn an_empty_range_is_an_empty_stream() {
        let chunks: Vec<Bytes> = range_stream(file_of(b"abc"), 3..3, 1024)
            .try_collect()
            .await
            .unwrap();
        assert!(chunks.is_empty());
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_range_is_an_error_not_a_short_body() {
        let result: io::Result<Vec<Bytes>> = range_stream(file_of(&pattern(10)), 0..20, 1024)
            .try_collect()
            .await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    }
}
