//! `shuyuan reindex`: rebuilds the whole index from the database into a new generation, then
//! points `CURRENT` at it. A running server keeps answering from the old generation until its
//! indexer sees `CURRENT` change, switches, and applies whatever the log gained meanwhile.

use std::path::Path;

use indicatif::ProgressBar;

use super::indexer::{GenerationWriter, add_batch, commit, documents_for};
use super::{create_generation, new_generation_name, write_current};
use crate::catalog::Catalog;

/// Courses read from the database at a time.
const COURSES_PER_BATCH: usize = 500;

#[derive(Debug)]
pub struct RebuildReport {
    pub generation: String,
    pub courses: usize,
    /// The log position the new generation is complete up to.
    pub seq: i64,
}

pub async fn rebuild(
    catalog: &Catalog,
    root: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<RebuildReport> {
    std::fs::create_dir_all(root)?;
    // Everything up to this seq is in the database now, so reading the courses afterwards
    // yields data at least this new; later entries are applied by the server's indexer.
    let seq = catalog.latest_seq().await?;
    let ids = catalog.live_course_ids().await?;
    progress.set_length(ids.len() as u64);
    let generation = new_generation_name();
    let open = std::sync::Arc::new(create_generation(root, &generation)?);
    let writer = GenerationWriter::open(&open)?;
    for chunk in ids.chunks(COURSES_PER_BATCH) {
        let batch = documents_for(catalog, &open, chunk.iter().copied().collect()).await?;
        add_batch(open.clone(), writer.shared(), batch).await?;
        progress.inc(chunk.len() as u64);
    }
    // One commit: the generation is not live until `CURRENT` names it, so nothing needs to
    // see it sooner, and one commit leaves fewer segments for merges to rewrite.
    commit(open.clone(), writer.shared(), seq).await?;
    drop(writer);
    write_current(root, &generation)?;
    progress.finish();
    Ok(RebuildReport {
        generation,
        courses: ids.len(),
        seq,
    })
}
