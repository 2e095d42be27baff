//! Highlighted snippets for search hits: a passage of the description, the extracted text or
//! the title with the query's terms in `<mark>`.
//!
//! tantivy's `SnippetGenerator` re-cuts the text it is given with the field's analyzer (jieba),
//! about 10 MB/s, so a course whose extracted text (up to 200,000 characters of subtitles) was
//! highlighted whole cost ~40 ms per hit. A long text is first cut down to the neighbourhood of
//! the first place one of the field's terms occurs, found with Aho-Corasick in one pass.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::AhoCorasick;
use tantivy::query::Query;
use tantivy::schema::{Field, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Searcher, TantivyDocument, Term};

/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 160;
/// A text up to this many bytes is highlighted whole.
const WHOLE_TEXT_UP_TO: usize = 4096;
/// Bytes kept on each side of the first match in a longer text.
const CONTEXT_BYTES: usize = 1024;

/// Highlights one field of the hits of one query.
pub struct Highlighter {
    field: Field,
    generator: SnippetGenerator,
    /// Finds the field's terms in raw text (ASCII letters in any case). `None` when the query
    /// has no term in this field that any document holds: nothing there can be highlighted.
    finder: Option<AhoCorasick>,
}

impl Highlighter {
    /// Like `SnippetGenerator::create` (the same terms, weighted by rarity), keeping the terms'
    /// text for the finder.
    pub fn create(
        searcher: &Searcher,
        query: &dyn Query,
        field: Field,
    ) -> tantivy::Result<Highlighter> {
        let mut terms: BTreeSet<&Term> = BTreeSet::new();
        query.query_terms(&mut |term, _| {
            if term.field() == field {
                terms.insert(term);
            }
        });
        let mut weighted: BTreeMap<String, f32> = BTreeMap::new();
        for term in terms {
            let value = term.value();
            let Some(text) = value.as_str() else {
                continue;
            };
            let doc_freq = searcher.doc_freq(term)?;
            if doc_freq > 0 {
                weighted.insert(text.to_owned(), 1.0 / (1.0 + doc_freq as f32));
            }
        }
        let finder = if weighted.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(weighted.keys())
                .ok()
        };
        let tokenizer = searcher.index().tokenizer_for_field(field)?;
        Ok(Highlighter {
            field,
            generator: SnippetGenerator::new(weighted, tokenizer, field, SNIPPET_CHARS),
            finder,
        })
    }

    /// The hit's snippet from this field, if a term of the query is highlighted in it.
    fn snippet(&self, doc: &TantivyDocument) -> Option<String> {
        let finder = self.finder.as_ref()?;
        let text = doc.get_first(self.field).and_then(|v| v.as_str())?;
        let snippet = self.generator.snippet(excerpt(text, finder));
        highlight(snippet.fragment(), snippet.highlighted())
    }
}

/// The first field's snippet that highlights something; else the escaped title (browsing, or a
/// match in pinyin or tags only).
pub fn best_snippet(highlighters: &[Highlighter], doc: &TantivyDocument, title: &str) -> String {
    highlighters
        .iter()
        .find_map(|highlighter| highlighter.snippet(doc))
        .unwrap_or_else(|| html_escape(title))
}

/// The part of `text` worth highlighting: all of a short text; of a long one, the bytes around
/// the first occurrence of a term, or its beginning when none occurs as written (a stem that
/// is no substring of its word, `studi` of `study`, or a capital outside ASCII).
fn excerpt<'a>(text: &'a str, finder: &AhoCorasick) -> &'a str {
    if text.len() <= WHOLE_TEXT_UP_TO {
        return text;
    }
    let (mut from, mut to) = match finder.find(text) {
        Some(found) => (
            found.start().saturating_sub(CONTEXT_BYTES),
            found.end().saturating_add(CONTEXT_BYTES),
        ),
        None => (0, WHOLE_TEXT_UP_TO),
    };
    to = to.min(text.len());
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    while !text.is_char_boundary(to) {
        to += 1;
    }
    &text[from..to]
}

/// The fragment as HTML with `<mark>` around the highlighted byte ranges; `None` when no
/// range marks anything. tantivy's own `Snippet::to_html` slices the fragment by these ranges
/// unchecked, and with jieba's overlapping tokens a range can run past the fragment's end or
/// into a character (a panic per search seen on real Chinese queries): here ranges are merged,
/// clipped to the fragment and widened to character boundaries.
fn highlight(fragment: &str, ranges: &[std::ops::Range<usize>]) -> Option<String> {
    let mut clipped: Vec<(usize, usize)> = ranges
        .iter()
        .filter_map(|range| {
            let mut start = range.start.min(fragment.len());
            let mut end = range.end.min(fragment.len());
            if start >= end {
                return None;
            }
            while !fragment.is_char_boundary(start) {
                start -= 1;
            }
            while !fragment.is_char_boundary(end) {
                end += 1;
            }
            Some((start, end))
        })
        .collect();
    if clipped.is_empty() {
        return None;
    }
    clipped.sort_unstable();
    // Overlapping or touching ranges become one mark.
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(clipped.len());
    for (start, end) in clipped {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut html = String::with_capacity(fragment.len() + 13 * merged.len());
    let mut done = 0;
    for (start, end) in merged {
        html.push_str(&html_escape(&fragment[done..start]));
        html.push_str("<mark>");
        html.push_str(&html_escape(&fragment[start..end]));
        html.push_str("</mark>");
        done = end;
    }
    html.push_str(&html_escape(&fragment[done..]));
    Some(html)
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_survive_ranges_past_the_end_or_inside_a_character() {
        let text = "用康妇消炎栓后有褐色分泌"; // 12 characters, 36 bytes
        // Past the end, as tantivy produced for this very title.
        assert_eq!(
            highlight(text, &[30..39, 40..41]).unwrap(),
            "用康妇消炎栓后有褐色<mark>分泌</mark>"
        );
        // Inside a character, overlapping, out of order, and one wholly past the end.
        assert_eq!(
            highlight(text, &[4..6, 0..3, 1..6, 40..50]).unwrap(),
            "<mark>用康</mark>妇消炎栓后有褐色分泌"
        );
        assert_eq!(
            highlight("a<b> & c", &[0..1, 7..8]).unwrap(),
            "<mark>a</mark>&lt;b&gt; &amp; <mark>c</mark>"
        );
        assert_eq!(highlight(text, &[]), None);
        assert_eq!(highlight(text, &[36..40, 5..5]), None);
        assert_eq!(
            highlight("ab cd", &[3..5, 0..2]).unwrap(),
            "<mark>ab</mark> <mark>cd</mark>"
        );
    }

    #[test]
    fn html_is_escaped_in_fallback_snippets() {
        assert_eq!(html_escape("<b>&'\""), "&lt;b&gt;&amp;&#39;&quot;");
    }

    fn finder(terms: &[&str]) -> AhoCorasick {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(terms)
            .unwrap()
    }

    #[test]
    fn a_long_text_is_cut_around_its_first_match_at_character_boundaries() {
        let before = "序".repeat(3000); // 9,000 bytes
        let after = "跋".repeat(3000);
        let text = format!("{before}Breathing exercises{after}");
        let cut = excerpt(&text, &finder(&["breath"]));
        assert!(cut.contains("Breathing exercises"), "{cut}");
        assert!(
            cut.len() <= 2 * CONTEXT_BYTES + "breath".len() + 6,
            "{}",
            cut.len()
        );
        assert!(cut.starts_with('序') && cut.ends_with('跋'));

        // No term as written: the beginning, still cut at a character boundary.
        let cut = excerpt(&text, &finder(&["studi"]));
        assert!(text.starts_with(cut) && cut.len() <= WHOLE_TEXT_UP_TO + 3);
        // A short text stays whole.
        assert_eq!(excerpt("太极拳入门", &finder(&["太极"])), "太极拳入门");
    }
}
