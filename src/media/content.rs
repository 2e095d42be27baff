//! What a file is: its name's validity, its content type (from the name, checked against the
//! leading bytes) and its kind.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How many leading bytes the content check looks at.
pub const SNIFF_BYTES: usize = 8192;

/// What residents see a file as; decides player, viewer and indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Video,
    Audio,
    Document,
    Subtitle,
    Image,
    Other,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Video => "video",
            FileKind::Audio => "audio",
            FileKind::Document => "document",
            FileKind::Subtitle => "subtitle",
            FileKind::Image => "image",
            FileKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<FileKind> {
        Some(match text {
            "video" => FileKind::Video,
            "audio" => FileKind::Audio,
            "document" => FileKind::Document,
            "subtitle" => FileKind::Subtitle,
            "image" => FileKind::Image,
            "other" => FileKind::Other,
            _ => return None,
        })
    }

    pub fn of_content_type(content_type: &str) -> FileKind {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence {
            "text/vtt" | "application/x-subrip" | "text/srt" | "application/x-srt" => {
                FileKind::Subtitle
            }
            "application/pdf"
            | "text/html"
            | "text/markdown"
            | "text/x-markdown"
            | "text/plain"
            | "application/msword"
            | "application/epub+zip"
            | "application/rtf" => FileKind::Document,
            e if e.starts_with("application/vnd.openxmlformats")
                || e.starts_with("application/vnd.oasis.opendocument")
                || e.starts_with("application/vnd.ms-") =>
            {
                FileKind::Document
            }
            e if e.starts_with("video/") => FileKind::Video,
            e if e.starts_with("audio/") => FileKind::Audio,
            e if e.starts_with("image/") => FileKind::Image,
            _ => FileKind::Other,
        }
    }
}

/// A file name as stored and shown: 1 to 200 characters, no path separators, no control
/// characters, not `.` or `..`. Names never reach the file system (objects are keyed by id),
/// but they are shown to people and appear in URLs and `Content-Disposition`.
pub fn parse_file_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.chars().count() > 200 {
        return Err("is longer than 200 characters".into());
    }
    if name.contains(['/', '\\']) {
        return Err("may not contain '/' or '\\'".into());
    }
    if name.chars().any(char::is_control) {
        return Err("may not contain control characters".into());
    }
    if name == "." || name == ".." {
        return Err("may not be '.' or '..'".into());
    }
    Ok(name.to_owned())
}

/// The content type a name implies (`application/octet-stream` when unknown).
pub fn content_type_from_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    // mime_guess does not know subtitles' registered types.
    if lower.ends_with(".vtt") {
        return "text/vtt".into();
    }
    if lower.ends_with(".srt") {
        return "application/x-subrip".into();
    }
    if lower.ends_with(".md") || lower.ends_with(".markdown") {
        return "text/markdown".into();
    }
    mime_guess::from_path(name)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

/// Decides the stored content type from the name's type and the leading bytes. `Err` names
/// what the bytes look like when they contradict the name: an executable renamed `.mp4` is
/// refused rather than served to a browser as video.
pub fn check_leading_bytes(declared: &str, head: &[u8]) -> Result<String, String> {
    let Some(detected) = infer::get(head) else {
        // Text formats and some media containers have no magic number; trust the name.
        return Ok(declared.to_owned());
    };
    let detected_type = detected.mime_type();
    if declared == "application/octet-stream" {
        return Ok(detected_type.to_owned());
    }
    if detected_type == declared || compatible(declared, detected_type) {
        return Ok(declared.to_owned());
    }
    Err(detected_type.to_owned())
}

fn compatible(declared: &str, detected: &str) -> bool {
    // An .mp4 holding only audio is detected as audio/mp4, a .mov as video/quicktime, etc.
    let audio_or_video = |t: &str| t.starts_with("video/") || t.starts_with("audio/");
    if audio_or_video(declared) && audio_or_video(detected) {
        return true;
    }
    if declared.starts_with("image/") && detected.starts_with("image/") {
        return true;
    }
    // Office documents and e-books are zip containers.
    let zip_based = declared.starts_with("application/vnd.openxmlformats")
        || declared.starts_with("application/vnd.oasis.opendocument")
        || declared == "application/epub+zip";
    if zip_based && detected == "application/zip" {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_paths_nul_or_excess_length_are_refused() {
        assert_eq!(parse_file_name(" 第一课.mp4 ").unwrap(), "第一课.mp4");
        for bad in [
            "",
            "../etc/passwd",
            "a/b.mp4",
            "a\\b",
            "nul\0.mp4",
            "..",
            &"长".repeat(300),
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_follow_the_content_type() {
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.mp4")),
            FileKind::Video
        );
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.mp3")),
            FileKind::Audio
        );
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.pdf")),
            FileKind::Document
        );
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.srt")),
            FileKind::Subtitle
        );
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.zh.vtt")),
            FileKind::Subtitle
        );
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.md")),
            FileKind::Document
        );
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.png")),
            FileKind::Image
        );
        assert_eq!(
            FileKind::of_content_type(&content_type_from_name("a.bin")),
            FileKind::Other
        );
    }

    #[test]
    fn an_executable_named_mp4_is_refused() {
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0".to_vec();
        elf.resize(128, 0);
        let detected = check_leading_bytes("video/mp4", &elf).unwrap_err();
        assert!(
            detected.contains("executable") || detected.contains("elf"),
            "{detected}"
        );
    }

    #[test]
    fn matching_and_compatible_content_is_accepted() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
        assert_eq!(
            check_leading_bytes("application/pdf", pdf).unwrap(),
            "application/pdf"
        );
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(check_leading_bytes("application/pdf", png).is_err());
        assert_eq!(
            check_leading_bytes("application/octet-stream", png).unwrap(),
            "image/png"
        );
        assert_eq!(
            check_leading_bytes("text/vtt", b"WEBVTT\n\n").unwrap(),
            "text/vtt"
        );
    }
}
