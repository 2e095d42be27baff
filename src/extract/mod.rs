//! Text extraction for search: turns an uploaded file's bytes into [`Segment`]s that the
//! indexer stores, so a search hit can say *where* it matched (a subtitle cue's second, a
//! PDF page).
//!
//! This module owns format detection by content type and the per-format parsers; it knows
//! nothing about storage or the index. It is run by a background task inside
//! `tokio::task::spawn_blocking`, on files that anyone may upload, so:
//!
//! - **Output is bounded** by [`Limits`]: a huge file or a decompression bomb yields a
//!   truncated result rather than an unbounded index entry, and producers stop early once
//!   the budget is spent so the work is bounded too.
//! - **Panics are caught**: third-party parsers (notably `pdf-extract`) panic on input they
//!   do not understand. A panic must not take down the worker or leave a file unindexed
//!   forever, so [`extract`] wraps everything in `catch_unwind` and reports
//!   [`ExtractError::Panicked`]. The PDF path additionally catches panics per page and falls
//!   back to `lopdf`, so one odd font costs nothing but a log line.
//!
//! Not covered by `catch_unwind`: stack overflow and allocation failure abort the process.

mod html;
mod markdown;
mod pdf;
mod subtitles;

use std::panic::{self, AssertUnwindSafe};

/// A piece of searchable text and where in the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where in the file: a subtitle cue's start, or a PDF page (from 1). Both `None` for
    /// documents without positions (HTML, Markdown, plain text): one or a few segments.
    pub at_ms: Option<u64>,
    pub page: Option<u32>,
    pub text: String,
}

/// Upper bounds on what one file may contribute to the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total characters (Unicode scalar values) over all segments.
    pub max_total_chars: usize,
    pub max_segments: usize,
}

impl Default for Limits {
    /// Roomy enough for a long book or a feature film's subtitles, small enough that one
    /// upload cannot dominate the index.
    fn default() -> Self {
        Self {
            max_total_chars: 2_000_000,
            max_segments: 20_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// No extractor for this content type; the caller simply indexes no file text.
    #[error("no text extraction for content type {0}")]
    Unsupported(String),
    #[error("malformed file: {0}")]
    Malformed(String),
    #[error("text extraction panicked: {0}")]
    Panicked(String),
}

/// Extracts searchable text from `bytes` of type `content_type` (essence like
/// `application/pdf`, `text/html`, `text/markdown`, `text/plain`, `text/vtt`,
/// `application/x-subrip`; parameters such as `; charset=utf-8` are ignored, text is
/// decoded as UTF-8 lossily). Output is bounded by `limits` (truncate, never fail, when
/// over). Never panics: a panic inside a third-party parser is caught and returned as
/// [`ExtractError::Panicked`].
pub fn extract(
    content_type: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<Segment>, ExtractError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let kind = Kind::from_essence(&essence).ok_or(ExtractError::Unsupported(essence))?;
    panic::catch_unwind(AssertUnwindSafe(|| {
        let mut out = Collector::new(limits);
        kind.extract(bytes, &mut out)?;
        Ok(out.finish())
    }))
    .unwrap_or_else(|payload| Err(ExtractError::Panicked(panic_message(payload.as_ref()))))
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Pdf,
    Html,
    Markdown,
    Plain,
    Vtt,
    Srt,
}

impl Kind {
    fn from_essence(essence: &str) -> Option<Self> {
        // Besides the canonical types, accept the aliases that browsers and `mime_guess`
        // produce for the same files.
        Some(match essence {
            "application/pdf" | "application/x-pdf" => Self::Pdf,
            "text/html" | "application/xhtml+xml" => Self::Html,
            "text/markdown" | "text/x-markdown" => Self::Markdown,
            "text/plain" => Self::Plain,
            "text/vtt" => Self::Vtt,
            "application/x-subrip"
            | "application/srt"
            | "text/srt"
            | "text/x-srt"
            | "text/x-subrip" => Self::Srt,
            _ => return None,
        })
    }

    fn extract(self, bytes: &[u8], out: &mut Collector<'_>) -> Result<(), ExtractError> {
        match self {
            Self::Pdf => pdf::extract(bytes, out),
            Self::Html => {
                out.push(None, None, &html::to_text(&decode_text(bytes)));
                Ok(())
            }
            Self::Markdown => {
                out.push(None, None, &markdown::to_text(&decode_text(bytes)));
                Ok(())
            }
            Self::Plain => {
                out.push(None, None, &decode_text(bytes));
                Ok(())
            }
            Self::Vtt | Self::Srt => subtitles::extract(&decode_text(bytes), out),
        }
    }
}

/// Lossy UTF-8 without the byte-order mark, which editors on Windows like to add and which
/// would otherwise end up glued to the first word.
fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Collapses every whitespace run to one space: PDF and subtitle layout (line breaks inside
/// a cue, column gaps) carries no meaning for search or snippets.
fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Accumulates segments within [`Limits`]; producers check [`Collector::is_full`] to stop
/// parsing early instead of doing work whose output would be thrown away.
struct Collector<'a> {
    limits: &'a Limits,
    chars_left: usize,
    segments: Vec<Segment>,
}

impl<'a> Collector<'a> {
    fn new(limits: &'a Limits) -> Self {
        Self {
            limits,
            chars_left: limits.max_total_chars,
            segments: Vec::new(),
        }
    }

    fn is_full(&self) -> bool {
        self.chars_left == 0 || self.segments.len() >= self.limits.max_segments
    }

    /// Adds a segment unless its text is blank, truncating it (at a char boundary) to what
    /// is left of the character budget. Silently drops it once the collector is full.
    fn push(&mut self, at_ms: Option<u64>, page: Option<u32>, text: &str) {
        // NUL is no text to search, and PostgreSQL's text cannot store it.
        let without_nul;
        let text = if text.contains('\0') {
            without_nul = text.replace('\0', "");
            without_nul.trim()
        } else {
            text.trim()
        };
        if text.is_empty() || self.is_full() {
            return;
        }
        let text = match text.char_indices().nth(self.chars_left) {
            Some((cut, _)) => {
                self.chars_left = 0;
                &text[..cut]
            }
            None => {
                self.chars_left -= text.chars().count();
                text
            }
        };
        self.segments.push(Segment {
            at_ms,
            page,
            text: text.to_owned(),
        });
    }

    fn finish(self) -> Vec<Segment> {
        self.segments
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(segments: &[Segment]) -> Vec<&str> {
        segments.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn plain_text_is_one_segment_lossy_and_without_bom() {
        let segments = extract(
            "text/plain; charset=utf-8",
            b"\xEF\xBB\xBF  Hello \xFF world\n\n",
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            segments,
            vec![Segment {
                at_ms: None,
                page: None,
                text: "Hello \u{FFFD} world".into()
            }]
        );
    }

    #[test]
    fn nul_characters_are_dropped() {
        let segments = extract("text/plain", b"\0lesson\0 one\0", &Limits::default()).unwrap();
        assert_eq!(texts(&segments), ["lesson one"]);
        let segments = extract("text/plain", b"\0\0", &Limits::default()).unwrap();
        assert!(segments.is_empty());
    }

    #[test]
    fn unsupported_type_names_the_essence() {
        let err =
            extract("Video/MP4; codecs=avc1", b"\0\0\0 ftyp", &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, ExtractError::Unsupported(t) if t == "video/mp4"),
            "{err:?}"
        );
    }

    #[test]
    fn truncates_total_chars_at_a_char_boundary() {
        let limits = Limits {
            max_total_chars: 5,
            max_segments: 100,
        };
        // Each Hanzi is three bytes in UTF-8; a byte-based cut would split one.
        let segments = extract("text/plain", "太极拳与书法".as_bytes(), &limits).unwrap();
        assert_eq!(texts(&segments), ["太极拳与书"]);
    }

    #[test]
    fn truncation_spans_segments_and_stops_adding() {
        let limits = Limits {
            max_total_chars: 7,
            max_segments: 100,
        };
        let vtt = "WEBVTT\n\n00:01.000 --> 00:02.000\n书法入门\n\n00:03.000 --> 00:04.000\n太极拳基础\n\n00:05.000 --> 00:06.000\n不会出现\n";
        let segments = extract("text/vtt", vtt.as_bytes(), &limits).unwrap();
        assert_eq!(texts(&segments), ["书法入门", "太极拳"]);
    }

    #[test]
    fn stops_after_max_segments() {
        let limits = Limits {
            max_total_chars: 1000,
            max_segments: 2,
        };
        let srt = "1\n00:00:01,000 --> 00:00:02,000\none\n\n2\n00:00:03,000 --> 00:00:04,000\ntwo\n\n3\n00:00:05,000 --> 00:00:06,000\nthree\n";
        let segments = extract("application/x-subrip", srt.as_bytes(), &limits).unwrap();
        assert_eq!(texts(&segments), ["one", "two"]);
    }

    #[test]
    fn zero_limits_give_nothing() {
        let limits = Limits {
            max_total_chars: 0,
            max_segments: 10,
        };
        assert!(extract("text/plain", b"abc", &limits).unwrap().is_empty());
    }

    #[test]
    fn panic_messages_are_recovered() {
        let payload = panic::catch_unwind(|| panic!("boom {}", 42)).unwrap_err();
        assert_eq!(panic_message(payload.as_ref()), "boom 42");
    }
}
