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

use std::sync::Mutex;

use bytes::Bytes;
use futures::stream::{self, Stream};

/// Chunk buffers, reused once hyper has written them.
///
/// Why: a fresh chunk is an allocation the size of the mmap threshold, zero-filled before the
/// kernel overwrites it, and then freed: at a gigabyte a second that is a memset and an
/// allocator round trip per 256 KiB that nginx (sendfile) never pays. A buffer goes back to the
/// pool when the last `Bytes` of it is dropped; the pool keeps at most `keep` idle buffers, so
/// its memory is bounded by that plus what the connections hold in flight anyway.
pub struct ChunkPool {
    chunk_bytes: usize,
    keep: usize,
    idle: Mutex<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for ChunkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkPool")
            .field("chunk_bytes", &self.chunk_bytes)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl ChunkPool {
    pub fn new(chunk_bytes: usize, keep: usize) -> Arc<ChunkPool> {
        Arc::new(ChunkPool {
            chunk_bytes: chunk_bytes.max(1),
            keep,
            idle: Mutex::new(Vec::with_capacity(keep)),
        })
    }

    fn take(&self) -> Vec<u8> {
        let reused = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| vec![0; self.chunk_bytes])
    }

    fn give_back(&self, buffer: Vec<u8>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.keep {
            idle.push(buffer);
        }
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// The owner behind a pooled chunk's `Bytes`: the first `len` bytes of a pool buffer.
struct PooledChunk {
    buffer: Vec<u8>,
    len: usize,
    pool: Arc<ChunkPool>,
}

impl AsRef<[u8]> for PooledChunk {
    fn as_ref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

impl Drop for PooledChunk {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

/// Reads `range` of `file` in chunks of at most the pool's chunk size.
pub fn range_stream(
    file: File,
    range: Range<u64>,
    pool: Arc<ChunkPool>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let reader = Reader {
        file: Arc::new(file),
        position: range.start,
        end: range.end,
        pool,
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
    pool: Arc<ChunkPool>,
    nowait: NoWait,
}

impl Reader {
    async fn next_chunk(&mut self) -> io::Result<Bytes> {
        let want = usize::try_from(self.end - self.position)
            .unwrap_or(usize::MAX)
            .min(self.pool.chunk_bytes);
        let mut buffer = self.pool.take();
        let cached = match self.nowait {
            NoWait::Try => match read_cached(&self.file, &mut buffer[..want], self.position) {
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
                    let read = read_at(&file, &mut buffer[..want], position)?;
                    Ok::<_, io::Error>((buffer, read))
                })
                .await
                .map_err(io::Error::other)??
            }
        };
        if read == 0 {
            self.pool.give_back(buffer);
            // The object is shorter than its recorded size: never send a short body silently.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("object ended at byte {} of {}", self.position, self.end),
            ));
        }
        self.position += read as u64;
        if read < self.pool.chunk_bytes / 2 {
            // A short read (the end of a range, or the cached part of a file still being read
            // ahead): a `Bytes` of the pool buffer would keep all of it alive in hyper's write
            // queue, which counts bytes, not allocations.
            let chunk = Bytes::copy_from_slice(&buffer[..read]);
            self.pool.give_back(buffer);
            return Ok(chunk);
        }
        Ok(Bytes::from_owner(PooledChunk {
            buffer,
            len: read,
            pool: Arc::clone(&self.pool),
        }))
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
        let chunks: Vec<Bytes> =
            range_stream(file_of(&bytes), 1_000..90_001, ChunkPool::new(16 * 1024, 4))
                .try_collect()
                .await
                .unwrap();
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= 16 * 1024));
        assert_eq!(chunks.concat(), bytes[1_000..90_001]);
    }

    #[tokio::test]
    async fn buffers_return_to_the_pool_when_written_and_reused_ones_carry_no_old_bytes() {
        let pool = ChunkPool::new(1024, 2);
        let first = pattern(4096);
        let chunks: Vec<Bytes> = range_stream(file_of(&first), 0..4096, Arc::clone(&pool))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(pool.idle_count(), 0, "chunks still held by the caller");
        drop(chunks);
        assert_eq!(pool.idle_count(), 2, "at most `keep` idle buffers are kept");

        // The reused buffers held `first`; a shorter read must not show any of it.
        let second = vec![7u8; 1500];
        let chunks: Vec<Bytes> = range_stream(file_of(&second), 0..1500, Arc::clone(&pool))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(chunks.concat(), second);
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [1024, 476]
        );
    }

    #[tokio::test]
    async fn an_empty_range_is_an_empty_stream() {
        let chunks: Vec<Bytes> = range_stream(file_of(b"abc"), 3..3, ChunkPool::new(1024, 4))
            .try_collect()
            .await
            .unwrap();
        assert!(chunks.is_empty());
    }

    #[tokio::test]
    async fn a_file_shorter_than_the_range_is_an_error_not_a_short_body() {
        let result: io::Result<Vec<Bytes>> =
            range_stream(file_of(&pattern(10)), 0..20, ChunkPool::new(1024, 4))
                .try_collect()
                .await;
        let error = result.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
    }
}
