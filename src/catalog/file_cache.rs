//! A short-lived cache of the file lookups behind `GET /media/{file_id}`.
//!
//! A player sends a range request for every seek and every buffer refill, and each one looked
//! its file up in the database (on SQLite a hand-off to the database thread and back): about a
//! tenth of the server's CPU while 64 clients fetched random 1 MiB ranges (bench/README,
//! "Media"). An entry lives at most [`FileCache::ttl`]; this node forgets every entry whenever
//! its catalog changes (a withdrawal, a deleted file, a federated batch, a mirrored file), so
//! such a change takes effect here at once. A change committed by another node of a cluster
//! reaches this node's cache within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::model::CourseFile;

/// Entries kept at most; past it the cache starts over (a lookup is cheap, memory is bounded).
const MAX_ENTRIES: usize = 4096;

#[derive(Debug)]
pub struct FileCache {
    ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every [`FileCache::forget_all`]: a lookup that began before it must not
    /// store what it read.
    generation: u64,
    entries: HashMap<Uuid, (Arc<CourseFile>, Instant)>,
}

impl FileCache {
    pub fn new(ttl: Duration) -> FileCache {
        FileCache {
            ttl,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map holds no invariant a panic elsewhere could break halfway.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Read before looking a file up in the database; hand it to [`FileCache::put`].
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<CourseFile>> {
        let inner = self.lock();
        let (file, at) = inner.entries.get(&id)?;
        (at.elapsed() < self.ttl).then(|| Arc::clone(file))
    }

    /// Keeps a live file read from the database, unless the catalog changed since
    /// `generation` was read (the row may be older than that change).
    pub fn put(&self, generation: u64, file: Arc<CourseFile>) {
        let mut inner = self.lock();
        if inner.generation != generation || self.ttl.is_zero() {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner.entries.insert(file.id, (file, Instant::now()));
    }

    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::content::FileKind;

    fn file() -> Arc<CourseFile> {
        Arc::new(CourseFile {
            id: Uuid::now_v7(),
            course_id: Uuid::now_v7(),
            name: "a.mp4".into(),
            content_type: "video/mp4".into(),
            kind: FileKind::Video,
            size: 10,
            sha256_hex: "00".repeat(32),
            object_key: "files/x".into(),
            created_at_ms: 0,
            stored: true,
        })
    }

    #[test]
    fn a_stored_file_is_found_until_the_catalog_changes() {
        let cache = FileCache::new(Duration::from_secs(60));
        let file = file();
        assert!(cache.get(file.id).is_none());
        cache.put(cache.generation(), Arc::clone(&file));
        assert_eq!(cache.get(file.id).as_deref(), Some(&*file));
        cache.forget_all();
        assert!(cache.get(file.id).is_none());
    }

    #[test]
    fn a_lookup_that_began_before_a_change_is_not_kept() {
        let cache = FileCache::new(Duration::from_secs(60));
        let file = file();
        let before = cache.generation();
        cache.forget_all(); // e.g. the course was withdrawn while the row was being read
        cache.put(before, Arc::clone(&file));
        assert!(cache.get(file.id).is_none());
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_keeps_nothing() {
        let cache = FileCache::new(Duration::ZERO);
        let file = file();
        cache.put(cache.generation(), Arc::clone(&file));
        assert!(cache.get(file.id).is_none());
        let cache = FileCache::new(Duration::from_nanos(1));
        cache.put(cache.generation(), Arc::clone(&file));
        let later = Instant::now() + Duration::from_millis(1);
        while Instant::now() < later {
            std::hint::spin_loop();
        }
        assert!(cache.get(file.id).is_none());
    }
}
