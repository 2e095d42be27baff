//! The demo catalog behind `shuyuan serve --demo`: a few bilingual courses (tai chi with a
//! video and subtitles, smartphones for grandparents, calligraphy, first aid) from the `demo/`
//! folder, embedded in the binary, so a newcomer sees real content at once.
//!
//! Loading goes through the ordinary bulk import, so it is idempotent: a second start with
//! `--demo` finds everything in place and changes nothing.

use indicatif::ProgressBar;
use rust_embed::RustEmbed;

use crate::import::{self, ImportReport};
use crate::institutions::{self, InstitutionsError, NewInstitution};
use crate::state::AppState;

#[derive(RustEmbed)]
#[folder = "demo/"]
struct DemoFiles;

/// The institution that publishes the demo courses.
pub const DEMO_INSTITUTION: &str = "shuyuan-demo";

/// Registers the demo institution if needed and imports the demo catalog.
pub async fn load(state: &AppState) -> anyhow::Result<ImportReport> {
    let created = institutions::create(
        &state.db,
        NewInstitution {
            slug: DEMO_INSTITUTION,
            name: "书院示范社区学院 Shuyuan Demo Community College",
            kind: "county_college",
            region: "zhejiang/hangzhou/xihu",
        },
    )
    .await;
    match created {
        Ok(_) | Err(InstitutionsError::SlugTaken) => {}
        Err(error) => return Err(anyhow::anyhow!("creating the demo institution: {error}")),
    }

    // The import reads a directory; the embedded files are small, so writing them out is cheap.
    let dir = tempfile::tempdir()?;
    for path in DemoFiles::iter() {
        let file = DemoFiles::get(&path).expect("an iterated embedded file exists");
        let target = dir.path().join(path.as_ref());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(target, file.data)?;
    }
    let report = import::run(
        &state.catalog,
        dir.path(),
        DEMO_INSTITUTION,
        &ProgressBar::hidden(),
    )
    .await
    .map_err(|reason| anyhow::anyhow!("loading the demo catalog: {reason}"))?;
    if let Some((item, reason)) = report.failures.first() {
        anyhow::bail!("the demo catalog did not load: {item}: {reason}");
    }
    tracing::info!(
        courses_created = report.courses_created,
        files_stored = report.files_stored,
        "demo catalog loaded"
    );
    Ok(report)
}
