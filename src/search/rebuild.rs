//! `shuyuan reindex`: rebuilds the whole index from the database into a new generation, then
//! points `CURRENT` at it. A running server keeps answering from the old generation until its
//! indexer sees `CURRENT` change, switches, and applies whatever the log gained meanwhile.

use std::path::Path;

use indicatif::ProgressBar;
use tantivy::TantivyDocument;
use uuid::Uuid;

use super::documents::course_documents;
use super::indexer::{GenerationWriter, commit_batch};
use super::{create_generation, new_generation_name, write_current};
use crate::catalog::Catalog;

const COURSES_PER_COMMIT: usize = 500;

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
    let mut batch: Vec<(Uuid, Vec<TantivyDocument>)> = Vec::with_capacity(COURSES_PER_COMMIT);
    for id in &ids {
        if let Some(course) = catalog.find_course_any_state(*id).await?
            && !course.withdrawn
        {
            let segments = catalog.segments_of_course(*id).await?;
            batch.push((*id, course_documents(&open.fields, &course, &segments)));
        }
        progress.inc(1);
        if batch.len() == COURSES_PER_COMMIT {
            // Intermediate commits claim nothing (seq 0): the generation is not live yet.
            commit_batch(open.clone(), writer.shared(), std::mem::take(&mut batch), 0).await?;
        }
    }
    commit_batch(open.clone(), writer.shared(), batch, seq).await?;
    drop(writer);
    write_current(root, &generation)?;
    progress.finish();
    Ok(RebuildReport {
        generation,
        courses: ids.len(),
        seq,
    })
}
