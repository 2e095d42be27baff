//! Bulk import: `shuyuan import DIR --institution SLUG` reads `DIR/manifest.json` and publishes
//! each course with its files, showing a progress bar of bytes and items.
//!
//! Resumable by construction: a course's id is derived from the institution and the entry's
//! `key` (UUIDv5), and a file whose name and SHA-256 are already on the course is skipped, so
//! running the import again after a crash or Ctrl-C finishes the rest and duplicates nothing.
//! Objects half-written by an interrupted run are removed by the upload sweep.
//!
//! Depends on `catalog` (its operator entry points, which skip permission checks: whoever runs
//! the command already controls the server).

pub mod manifest;

use std::path::Path;

use futures::StreamExt;
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;
use uuid::Uuid;

use crate::catalog::{Catalog, CatalogError, UploadOutcome};
use manifest::{CourseEntry, Entry};

/// Namespace of import course ids; never change it, or re-runs would duplicate courses.
const COURSE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a0e_5f4c_2b8d_4d7e_9c3a_51f2_0b6e_7d19);

/// The course id an entry always maps to.
pub fn course_id(institution_slug: &str, key: &str) -> Uuid {
    Uuid::new_v5(
        &COURSE_ID_NAMESPACE,
        format!("{institution_slug}/{key}").as_bytes(),
    )
}

/// What one run did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub courses_created: usize,
    pub courses_already_there: usize,
    pub files_stored: usize,
    pub files_already_there: usize,
    /// Item (course key or file path) and why it failed.
    pub failures: Vec<(String, String)>,
}

/// Imports every entry of `dir`'s manifest into `institution_slug`. A failing entry or file is
/// reported and skipped; only an unreadable manifest stops the run.
pub async fn run(
    catalog: &Catalog,
    dir: &Path,
    institution_slug: &str,
    progress: &ProgressBar,
) -> Result<ImportReport, String> {
    let entries = manifest::read(dir)?;
    progress.set_length(total_bytes(dir, &entries));
    let mut report = ImportReport::default();
    let count = entries.len();
    for (index, entry) in entries.into_iter().enumerate() {
        let entry = match entry {
            Entry::Course(entry) => entry,
            Entry::Broken { label, reason } => {
                progress.println(format!("skipped {label}: {reason}"));
                report.failures.push((label, reason));
                continue;
            }
        };
        progress.set_message(format!("{}/{count} {}", index + 1, entry.key));
        if let Err(reason) = import_course(
            catalog,
            dir,
            institution_slug,
            &entry,
            progress,
            &mut report,
        )
        .await
        {
            progress.println(format!("failed {}: {reason}", entry.key));
            report.failures.push((entry.key.clone(), reason));
        }
    }
    progress.finish_with_message(format!("{count} entries"));
    Ok(report)
}

async fn import_course(
    catalog: &Catalog,
    dir: &Path,
    institution_slug: &str,
    entry: &CourseEntry,
    progress: &ProgressBar,
    report: &mut ImportReport,
) -> Result<(), String> {
    let id = course_id(institution_slug, &entry.key);
    let course = match catalog.find_course_any_state(id).await.map_err(describe)? {
        Some(course) if course.withdrawn => {
            return Err("was imported before and has since been withdrawn; not re-imported".into());
        }
        Some(course) => {
            report.courses_already_there += 1;
            course
        }
        None => {
            let course = catalog
                .create_course_with_id(institution_slug, id, entry.course_input())
                .await
                .map_err(describe)?;
            report.courses_created += 1;
            course
        }
    };
    for relative in &entry.files {
        let label = format!("{}: {relative}", entry.key);
        match import_file(catalog, dir, &course, relative, progress).await {
            Ok(UploadOutcome::Stored) => report.files_stored += 1,
            Ok(UploadOutcome::AlreadyPresent) => report.files_already_there += 1,
            Err(reason) => {
                progress.println(format!("failed {label}: {reason}"));
                report.failures.push((label, reason));
            }
        }
    }
    Ok(())
}

async fn import_file(
    catalog: &Catalog,
    dir: &Path,
    course: &crate::catalog::model::Course,
    relative: &str,
    progress: &ProgressBar,
) -> Result<UploadOutcome, String> {
    let path = manifest::resolve_file(dir, relative)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{relative:?} has no usable file name"))?
        .to_owned();
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|e| e.to_string())?
        .len();
    // Hashing locally first is cheaper than sending the bytes to find out they are there.
    if let Some(existing) = course
        .files
        .iter()
        .find(|f| f.name == name && f.size == size)
        && sha256_file(&path).await? == existing.sha256_hex
    {
        progress.inc(size);
        return Ok(UploadOutcome::AlreadyPresent);
    }
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| e.to_string())?;
    let progress = progress.clone();
    let body = ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            progress.inc(bytes.len() as u64);
        }
    });
    catalog
        .add_file(course.id, &name, body)
        .await
        .map(|(_, outcome)| outcome)
        .map_err(describe)
}

async fn sha256_file(path: &Path) -> Result<String, String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file.read(&mut buffer).await.map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn total_bytes(dir: &Path, entries: &[Entry]) -> u64 {
    let mut total = 0;
    for entry in entries {
        if let Entry::Course(course) = entry {
            for relative in &course.files {
                if let Ok(path) = manifest::resolve_file(dir, relative)
                    && let Ok(meta) = std::fs::metadata(path)
                {
                    total += meta.len();
                }
            }
        }
    }
    total
}

/// A failure in words for the operator, with the failing fields spelled out.
fn describe(error: CatalogError) -> String {
    match error {
        CatalogError::Invalid(fields) => fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
