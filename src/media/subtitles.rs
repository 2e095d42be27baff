//! SubRip (SRT) to WebVTT, so a browser `<track>` can show subtitles uploaded as SRT.

/// Converts SRT text to WebVTT: a `WEBVTT` header, and cue timings with `.` instead of `,`
/// before the milliseconds. Cue numbers are valid WebVTT cue identifiers and stay.
pub fn srt_to_vtt(srt: &str) -> String {
    let srt = srt.strip_prefix('\u{feff}').unwrap_or(srt);
    let mut out = String::with_capacity(srt.len() + 16);
    out.push_str("WEBVTT\n\n");
    for line in srt.lines() {
        if line.contains("-->") {
            out.push_str(&line.replace(',', "."));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_timings_and_keeps_text() {
        let srt = "\u{feff}1\r\n00:00:01,000 --> 00:00:02,500\r\n你好，世界, friends\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nBye\r\n";
        let vtt = srt_to_vtt(srt);
        assert!(vtt.starts_with("WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\n"));
        assert!(
            vtt.contains("你好，世界, friends\n"),
            "commas in text stay: {vtt}"
        );
        assert!(vtt.contains("00:00:03.000 --> 00:00:04.000\nBye\n"));
    }
}
