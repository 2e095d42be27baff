//! The SHA-256 of a body in transit, computed beside the task that receives it.
//!
//! SHA-256 is the dearest step of an upload: with SHA-NI it runs at 1.3–2 GB/s on the machines
//! measured, about as fast as the kernel copies the same bytes into the page cache. Hashed on the request task, it is added to
//! receiving and writing; here each batch of about a MiB is hashed as one blocking task, one
//! batch in flight while the next gathers (as `local_write` writes them), so a server with a
//! core to spare hashes while it receives and writes. The chunks are shared with the writer
//! (`Bytes` clones), not copied.

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

#[cfg(test)]
use super::batch::BATCH_BYTES;
use super::batch::Batch;

pub(super) struct BodyDigest {
    batch: Batch,
    /// The hasher while no batch is being hashed.
    idle: Option<Sha256>,
    /// The batch being hashed, which owns the hasher until it returns it.
    in_flight: Option<JoinHandle<Sha256>>,
}

impl BodyDigest {
    pub(super) fn new() -> BodyDigest {
        BodyDigest {
            batch: Batch::default(),
            idle: Some(Sha256::new()),
            in_flight: None,
        }
    }

    /// Adds `chunk`; once a batch has gathered, waits for the previous batch's hashing (if it
    /// is behind) and starts the next.
    pub(super) async fn update(&mut self, chunk: &Bytes) -> Result<(), DigestInterrupted> {
        if self.batch.push(chunk.clone()) {
            self.hash_batch().await?;
        }
        Ok(())
    }

    pub(super) async fn finalize(mut self) -> Result<[u8; 32], DigestInterrupted> {
        if !self.batch.is_empty() {
            self.hash_batch().await?;
        }
        Ok(self.take_hasher().await?.finalize().into())
    }

    async fn hash_batch(&mut self) -> Result<(), DigestInterrupted> {
        let mut hasher = self.take_hasher().await?;
        let (batch, _) = self.batch.take();
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            for chunk in &batch {
                hasher.update(chunk);
            }
            hasher
        }));
        Ok(())
    }

    async fn take_hasher(&mut self) -> Result<Sha256, DigestInterrupted> {
        match self.in_flight.take() {
            Some(hashing) => hashing.await.map_err(|error| {
                if error.is_panic() {
                    std::panic::resume_unwind(error.into_panic());
                }
                DigestInterrupted
            }),
            None => Ok(self.idle.take().expect("the hasher is idle or in flight")),
        }
    }
}

/// The runtime cancelled a hashing task: it is shutting down.
#[derive(Debug)]
pub(super) struct DigestInterrupted;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_digest_is_the_bodys_across_batches_and_odd_chunks() {
        let body: Vec<u8> = (0..3 * BATCH_BYTES + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut digest = BodyDigest::new();
        // Chunk sizes that straddle batch boundaries, one of them empty.
        for chunk in body.chunks(300_007).chain([&[][..]]) {
            digest.update(&Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        let expected: [u8; 32] = Sha256::digest(&body).into();
        assert_eq!(digest.finalize().await.unwrap(), expected);
    }

    #[tokio::test]
    async fn a_body_smaller_than_a_batch_is_hashed_too() {
        let mut digest = BodyDigest::new();
        digest.update(&Bytes::from_static(b"hello")).await.unwrap();
        let expected: [u8; 32] = Sha256::digest(b"hello").into();
        assert_eq!(digest.finalize().await.unwrap(), expected);
    }
}
