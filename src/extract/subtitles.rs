//! WebVTT and SubRip: one segment per cue, positioned at the cue's start.
//!
//! Both formats share a shape (blank-line separated blocks, a `start --> end` timing line,
//! then text), so one tolerant parser serves both. Real-world files are messy (hand-edited,
//! converted between the two, saved with CRLF), so a block that does not parse is skipped
//! rather than failing the whole file.

use super::{Collector, ExtractError, collapse_whitespace};

pub(super) fn extract(text: &str, out: &mut Collector<'_>) -> Result<(), ExtractError> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut cues = 0usize;
    for block in text.split("\n\n") {
        if out.is_full() {
            break;
        }
        if let Some((at_ms, cue_text)) = parse_block(block) {
            cues += 1;
            out.push(Some(at_ms), None, &cue_text);
        }
    }
    // A file with content but not one timing line is almost certainly not subtitles at all;
    // saying so beats silently indexing nothing.
    let trimmed = text.trim_start();
    if cues == 0 && !trimmed.is_empty() && !trimmed.starts_with("WEBVTT") {
        return Err(ExtractError::Malformed("no subtitle cues found".into()));
    }
    Ok(())
}

/// A cue's start and its text, or `None` for headers, comments, style blocks and anything
/// malformed.
fn parse_block(block: &str) -> Option<(u64, String)> {
    let mut lines = block.lines().skip_while(|line| line.trim().is_empty());
    let first = lines.next()?;
    // WebVTT metadata blocks; a cue identifier cannot contain "-->", so these never start
    // a cue.
    if ["WEBVTT", "NOTE", "STYLE", "REGION"]
        .iter()
        .any(|keyword| first.starts_with(keyword) && !first.contains("-->"))
    {
        return None;
    }
    // The timing line comes first or after an identifier (SRT's cue number, VTT's optional
    // cue id).
    let timing = if first.contains("-->") {
        first
    } else {
        lines.next()?
    };
    let (start, _end) = timing.split_once("-->")?;
    let at_ms = parse_timestamp(start.trim())?;
    let text: Vec<String> = lines.map(strip_markup).collect();
    Some((at_ms, collapse_whitespace(&text.join(" "))))
}

/// `hh:mm:ss.ttt`, `mm:ss.ttt` (WebVTT may omit hours) or SRT's `hh:mm:ss,ttt`; a missing
/// or short fraction is tolerated.
fn parse_timestamp(s: &str) -> Option<u64> {
    let (clock, fraction) = match s.split_once(['.', ',']) {
        Some((clock, fraction)) => (clock, fraction),
        None => (s, ""),
    };
    let mut parts = clock.split(':').rev();
    let seconds = parse_digits(parts.next()?)?;
    let minutes = parse_digits(parts.next()?)?;
    let hours = match parts.next() {
        Some(h) => parse_digits(h)?,
        None => 0,
    };
    if parts.next().is_some() || seconds >= 60 || minutes >= 60 || fraction.len() > 3 {
        return None;
    }
    let millis = if fraction.is_empty() {
        0
    } else {
        // ".5" means 500 ms, not 5.
        parse_digits(fraction)? * 10u64.pow(3 - fraction.len() as u32)
    };
    hours
        .checked_mul(3_600_000)?
        .checked_add(minutes * 60_000 + seconds * 1000 + millis)
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Drops `<i>`, `<c.x>`, `<v Speaker>`, inline `<00:01.000>` timestamps and SRT's ASS-style
/// `{\an8}` overrides, and decodes the few character references WebVTT defines.
fn strip_markup(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(['<', '{']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let close = if tail.starts_with('<') {
            tail.find('>')
        } else if tail.starts_with("{\\") {
            tail.find('}')
        } else {
            None
        };
        match close {
            Some(end) => rest = &tail[end + 1..],
            // An unmatched "<" or a plain "{" is text.
            None => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    decode_entities(&out)
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&lrm;", "\u{200E}")
        .replace("&rlm;", "\u{200F}")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        // Last, so "&amp;lt;" stays "&lt;".
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use crate::extract::{ExtractError, Limits, Segment, extract};

    fn cues(content_type: &str, text: &[u8]) -> Vec<(u64, String)> {
        extract(content_type, text, &Limits::default())
            .unwrap()
            .into_iter()
            .map(|Segment { at_ms, page, text }| {
                assert_eq!(page, None);
                (at_ms.expect("cues have a time"), text)
            })
            .collect()
    }

    #[test]
    fn vtt_with_metadata_blocks_tags_and_short_timings() {
        let vtt = "\u{FEFF}WEBVTT - 书法课\n\
                   Kind: captions\n\
                   \n\
                   STYLE\n\
                   ::cue { color: yellow }\n\
                   \n\
                   NOTE this is a comment\n\
                   spanning two lines\n\
                   \n\
                   intro\n\
                   00:01.500 --> 00:04.000 align:start position:10%\n\
                   <v Teacher>Hold the <i>brush</i></v>\n\
                   <c.yellow>upright</c> &amp; relaxed\n\
                   \n\
                   01:02:03.004 --> 01:02:05.000\n\
                   永字<00:01:02.500>八法\n\
                   \n\
                   NOTE\n\
                   another note\n\
                   \n\
                   59:59.999 --> 60:00.000\n\
                   &lt;end&gt;\n";
        assert_eq!(
            cues("text/vtt", vtt.as_bytes()),
            [
                (1_500, "Hold the brush upright & relaxed".to_owned()),
                (3_723_004, "永字八法".to_owned()),
                (3_599_999, "<end>".to_owned()),
            ]
        );
    }

    #[test]
    fn srt_with_bom_crlf_and_a_malformed_cue() {
        let srt = "\u{FEFF}1\r\n00:00:01,000 --> 00:00:02,500\r\n<i>First</i> line\r\nsecond line\r\n\r\n\
                   2\r\n00:00:xx,000 --> 00:00:04,000\r\nbroken timing\r\n\r\n\
                   just some stray text\r\n\r\n\
                   00:00:05,250 --> 00:00:06,000\r\n{\\an8}No number, top of screen\r\n\r\n\
                   4\r\n00:01:00,000 --> 00:01:02,000\r\n\r\n\
                   5\r\n01:00:00,000 --> 01:00:01,000\r\n最后\r\n";
        assert_eq!(
            cues("application/x-subrip", srt.as_bytes()),
            [
                (1_000, "First line second line".to_owned()),
                (5_250, "No number, top of screen".to_owned()),
                (3_600_000, "最后".to_owned()),
            ]
        );
    }

    #[test]
    fn lone_carriage_returns_and_extra_blank_lines() {
        let srt = b"\n\n1\r00:00:01,000 --> 00:00:02,000\rOld Mac\r\r\r\r2\r00:00:03,000 --> 00:00:04,000\rline endings\r";
        assert_eq!(
            cues("text/srt", srt),
            [
                (1_000, "Old Mac".to_owned()),
                (3_000, "line endings".to_owned())
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_decoded_lossily() {
        assert_eq!(
            cues(
                "text/vtt",
                b"WEBVTT\n\n00:00.000 --> 00:01.000\nbad \xFF byte\n"
            ),
            [(0, "bad \u{FFFD} byte".to_owned())]
        );
    }

    #[test]
    fn file_without_any_cue_is_malformed_but_empty_vtt_is_not() {
        let err = extract(
            "text/vtt",
            b"this is not a subtitle file",
            &Limits::default(),
        );
        assert!(matches!(err, Err(ExtractError::Malformed(_))), "{err:?}");
        assert!(
            extract("text/vtt", b"WEBVTT\n", &Limits::default())
                .unwrap()
                .is_empty()
        );
        assert!(
            extract("text/vtt", b"", &Limits::default())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn timestamps() {
        use super::parse_timestamp as p;
        assert_eq!(p("00:00:00.000"), Some(0));
        assert_eq!(p("12:34.567"), Some(754_567));
        assert_eq!(p("100:00:00,001"), Some(360_000_001));
        assert_eq!(p("00:01.5"), Some(1_500));
        assert_eq!(p("00:00:07"), Some(7_000));
        for bad in [
            "",
            "12",
            "1:2:3:4.000",
            "00:61.000",
            "00:00.1234",
            "aa:00.000",
            "-1:00.000",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
