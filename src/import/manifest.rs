//! The bulk-import manifest: `manifest.json` in the import directory.
//!
//! ```json
//! { "courses": [ {
//!     "key": "taiji-101",
//!     "title": "太极拳入门 Tai chi for beginners",
//!     "description": "…", "subjects": ["fitness"], "audience": ["seniors"],
//!     "level": "beginner", "languages": ["zh", "en"], "license": "CC-BY-4.0",
//!     "tags": ["太极"], "credits": 1,
//!     "files": ["taiji/lesson-1.mp4", "taiji/lesson-1.zh.srt"]
//! } ] }
//! ```
//!
//! `key` names the course within the institution for good: a second run recognises what the
//! first one imported by it. File paths are relative to the manifest's directory.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::catalog::CourseInput;

pub const FILE_NAME: &str = "manifest.json";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseEntry {
    pub key: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    #[serde(default)]
    pub audience: Option<Vec<String>>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub credits: Option<f64>,
    #[serde(default)]
    pub files: Vec<String>,
}

impl CourseEntry {
    pub fn course_input(&self) -> CourseInput {
        CourseInput {
            title: Some(self.title.clone()),
            description: self.description.clone(),
            subjects: self.subjects.clone(),
            audience: self.audience.clone(),
            level: self.level.clone(),
            languages: self.languages.clone(),
            license: self.license.clone(),
            tags: self.tags.clone(),
            credits: self.credits,
        }
    }
}

/// One manifest entry: parsed, or why not. A broken entry does not stop the others.
pub enum Entry {
    Course(Box<CourseEntry>),
    Broken { label: String, reason: String },
}

/// Reads the manifest. Only a manifest that is missing or not a JSON object with a `courses`
/// list is an error; each entry is parsed on its own.
pub fn read(dir: &Path) -> Result<Vec<Entry>, String> {
    let path = dir.join(FILE_NAME);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let document: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let Some(courses) = document.get("courses").and_then(|c| c.as_array()) else {
        return Err(format!("{} has no \"courses\" list", path.display()));
    };
    Ok(courses
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let label = value.get("key").and_then(|k| k.as_str()).map_or_else(
                || format!("entry {}", index + 1),
                |k| format!("entry {} ({k})", index + 1),
            );
            match serde_json::from_value::<CourseEntry>(value.clone()) {
                Ok(entry) if entry.key.trim().is_empty() => Entry::Broken {
                    label,
                    reason: "key is empty".into(),
                },
                Ok(entry) => Entry::Course(Box::new(entry)),
                Err(error) => Entry::Broken {
                    label,
                    reason: error.to_string(),
                },
            }
        })
        .collect())
}

/// Resolves a manifest file path inside `dir`; paths that leave it are refused.
pub fn resolve_file(dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = Path::new(relative);
    let inside = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if relative.is_empty() || !inside {
        return Err(format!(
            "{relative:?} must be a relative path inside the import directory"
        ));
    }
    Ok(dir.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_entries_are_reported_and_the_rest_parse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            r#"{"courses": [
                {"key": "a", "title": "A", "files": ["a.txt"]},
                {"key": "b", "title": 5},
                {"title": "no key"},
                {"key": "d", "title": "D", "colour": "red"}
            ]}"#,
        )
        .unwrap();
        let entries = read(dir.path()).unwrap();
        assert!(matches!(&entries[0], Entry::Course(c) if c.key == "a"));
        assert!(matches!(&entries[1], Entry::Broken { label, .. } if label == "entry 2 (b)"));
        assert!(matches!(&entries[2], Entry::Broken { reason, .. } if reason.contains("key")));
        assert!(matches!(&entries[3], Entry::Broken { reason, .. } if reason.contains("colour")));
    }

    #[test]
    fn file_paths_stay_inside_the_directory() {
        let dir = Path::new("/import");
        assert_eq!(
            resolve_file(dir, "a/b.mp4").unwrap(),
            Path::new("/import/a/b.mp4")
        );
        assert!(resolve_file(dir, "../etc/passwd").is_err());
        assert!(resolve_file(dir, "/etc/passwd").is_err());
        assert!(resolve_file(dir, "").is_err());
    }
}
