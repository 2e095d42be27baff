//! A body's chunks gathered into batches of about a MiB, each batch then handed to one
//! blocking task (`local_write` writes them, `digest` hashes them).

use bytes::Bytes;

/// Bytes gathered before a batch is handed on: large enough that handing it to another thread
/// costs nothing beside the work on it, small enough that a batch held adds little to an
/// upload's memory.
pub(super) const BATCH_BYTES: usize = 1024 * 1024;

#[derive(Default)]
pub(super) struct Batch {
    chunks: Vec<Bytes>,
    bytes: usize,
}

impl Batch {
    /// Adds `chunk`; true once the batch has gathered [`BATCH_BYTES`].
    pub(super) fn push(&mut self, chunk: Bytes) -> bool {
        self.bytes += chunk.len();
        self.chunks.push(chunk);
        self.bytes >= BATCH_BYTES
    }

    pub(super) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The chunks and their length in bytes, leaving the batch empty.
    pub(super) fn take(&mut self) -> (Vec<Bytes>, usize) {
        (
            std::mem::take(&mut self.chunks),
            std::mem::take(&mut self.bytes),
        )
    }
}
