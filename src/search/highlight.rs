//! Highlighted snippets for search hits: a passage of the description, the extracted text or
//! the title with the query's terms in `<mark>`.
//!
//! tantivy's `SnippetGenerator` re-cuts the text it is given with the field's analyzer (jieba),
//! about 10 MB/s, so a course whose extracted text (up to 200,000 characters of subtitles) was
//! highlighted whole cost ~40 ms per hit, and even a description of a few KB cost more than
//! finding the hit did. So the places where the field's terms occur as written are found first,
//! with Aho-Corasick: a field where none occurs is not cut at all, and a longer text is cut
//! only in windows around those places, one window at a time until one holds a match.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use tantivy::query::Query;
use tantivy::schema::{Field, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Searcher, TantivyDocument, Term};

/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 160;
/// A text up to this many bytes is highlighted whole.
const WHOLE_TEXT_UP_TO: usize = 512;
/// Bytes kept on each side of a possible match in a longer text: half a snippet's
/// [`SNIPPET_CHARS`] of Chinese (3 bytes each) and more, so the snippet can centre on the
/// match. Every byte of the window is cut by jieba, the largest cost of a hit.
const CONTEXT_BYTES: usize = 256;
/// Windows tried in a longer text before its beginning is the last resort.
const MAX_WINDOWS: usize = 8;

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
                // Built for every search and run over a few KB of ten hits: a DFA's build
                // costs more than it saves there.
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(search_patterns(weighted.keys()))
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
        let mut places = windows(text, finder).peekable();
        // No term occurs here as written: the text is not cut. (A stem the patterns miss,
        // like `sky` of `skies`, then leaves this field to the next one or the title.)
        places.peek()?;
        let highlighted = |part: &str| {
            let snippet = self.generator.snippet(part);
            highlight(snippet.fragment(), snippet.highlighted())
        };
        if text.len() <= WHOLE_TEXT_UP_TO {
            return highlighted(text);
        }
        // A place the finder names may hold no token of the query (a Chinese term inside a
        // longer word), so the next is tried; the beginning last.
        places
            .chain(std::iter::once(snap(text, 0, WHOLE_TEXT_UP_TO)))
            .find_map(|(from, to)| highlighted(&text[from..to]))
    }
}

/// What the finder looks for: each term as indexed, and for an English stem that is not the
/// start of every word it stems from, the part that is:
/// - a final `i` stands for a `y` (`studi` of `study`, `histori` of `history`), and a final `e`
///   may be gone (`make` of `making`): the stem without it, if three letters are left, as two
///   (`us` of `use`) would start too many other words;
/// - a stem in `-bl` (`flexibl` of `flexibility`): without the `l`;
/// - `-ie` of `-ying` (`die` of `dying`): `-y` for `-ie`.
///
/// Other stems are the start of their words.
fn search_patterns<'a>(terms: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut patterns = Vec::new();
    for term in terms {
        patterns.push(term.clone());
        if !term.is_ascii() {
            continue;
        }
        if term.len() > 3 && (term.ends_with('i') || term.ends_with('e')) {
            patterns.push(term[..term.len() - 1].to_owned());
        }
        if let Some(stem) = term.strip_suffix("bl") {
            patterns.push(format!("{stem}b"));
        }
        if let Some(stem) = term.strip_suffix("ie") {
            patterns.push(format!("{stem}y"));
        }
    }
    patterns
}

/// Up to [`MAX_WINDOWS`] byte ranges of `text`, each around a place where a pattern occurs, in
/// order and not overlapping. A Latin pattern counts only at the start of a word: `art` inside
/// `started` cannot be the word the index matched.
fn windows<'a>(
    text: &'a str,
    finder: &'a AhoCorasick,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    let bytes = text.as_bytes();
    let mut covered_to = 0;
    finder
        .find_iter(text)
        .filter(move |found| {
            let latin = bytes[found.start()].is_ascii_alphanumeric();
            let inside_a_word =
                found.start() > 0 && bytes[found.start() - 1].is_ascii_alphanumeric();
            !(latin && inside_a_word)
        })
        .filter_map(move |found| {
            if found.start() < covered_to {
                return None;
            }
            // Text a window before has covered is not cut again.
            let window = snap(
                text,
                found.start().saturating_sub(CONTEXT_BYTES).max(covered_to),
                found.end().saturating_add(CONTEXT_BYTES),
            );
            covered_to = window.1;
            Some(window)
        })
        .take(MAX_WINDOWS)
}

/// `from..to` clipped to `text` and widened to character boundaries.
fn snap(text: &str, mut from: usize, to: usize) -> (usize, usize) {
    let mut to = to.min(text.len());
    from = from.min(to);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    while !text.is_char_boundary(to) {
        to += 1;
    }
    (from, to)
}

/// The first field's snippet that highlights something; else the escaped title (browsing, or a
/// match in pinyin or tags only).
pub fn best_snippet(highlighters: &[Highlighter], doc: &TantivyDocument, title: &str) -> String {
    highlighters
        .iter()
        .find_map(|highlighter| highlighter.snippet(doc))
        .unwrap_or_else(|| html_escape(title))
}

/// The fragment as HTML with `<mark>` around the highlighted byte ranges; `None` when no
/// range marks anything. tantivy's own `Snippet::to_html` slices the fragment by these ranges
/// unchecked, and with jieba's overlapping tokens a range can run past the fragment's end or
/// into a character (a panic per search seen on real Chinese queries): here ranges are merged,
/// clipped to the fragment and widened to character boundaries.
fn highlight(fragment: &str, ranges: &[std::ops::Range<usize>]) -> Option<String> {
    let mut clipped: Vec<(usize, usize)> = ranges
        .iter()
        // Empty once clipped: nothing to mark, though widening would make it a character.
        .filter(|range| range.start < range.end.min(fragment.len()))
        .map(|range| snap(fragment, range.start, range.end))
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
        let terms: Vec<String> = terms.iter().map(|t| (*t).to_owned()).collect();
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(search_patterns(terms.iter()))
            .unwrap()
    }

    fn window_texts<'a>(text: &'a str, terms: &[&str]) -> Vec<&'a str> {
        let finder = finder(terms);
        windows(text, &finder)
            .map(|(from, to)| &text[from..to])
            .collect()
    }

    #[test]
    fn windows_surround_matches_at_character_boundaries_without_overlap() {
        let text = format!(
            "{}揽雀尾{}揽雀尾{}",
            "序".repeat(3000),
            "中".repeat(50),
            "跋".repeat(3000)
        );
        let found = window_texts(&text, &["揽雀尾"]);
        // The second occurrence is inside the first window: one window.
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with('序') && found[0].ends_with('跋'));
        assert!(found[0].contains("揽雀尾"));
        assert!(found[0].len() <= 2 * CONTEXT_BYTES + 3 * 50 + 2 * 9 + 6);
    }

    #[test]
    fn latin_terms_count_at_word_starts_and_stems_in_i_find_their_y() {
        let text = format!(
            "{} Folk Art of the village. {} Village history.",
            "We started again. ".repeat(400),
            "x".repeat(3000)
        );
        let art = window_texts(&text, &["art"]);
        assert!(art[0].contains("Folk Art"), "{:?}", &art[0][..80]);
        let history = window_texts(&text, &["histori"]);
        assert!(history[0].contains("history"), "{history:?}");
        let tea = format!("{} making tea", "x".repeat(3000));
        let making = window_texts(&tea, &["make"]);
        assert!(making[0].contains("making"), "{making:?}");
        let yoga = format!("{} Yoga for flexibility. Dying cloth.", "x".repeat(3000));
        assert!(window_texts(&yoga, &["flexibl"])[0].contains("flexibility"));
        assert!(window_texts(&yoga, &["die"])[0].contains("Dying"));
        // Two letters left would be the start of too many words.
        assert!(window_texts(&format!("{} on the bus", "x".repeat(3000)), &["one"]).is_empty());
    }

    #[test]
    fn at_most_a_few_windows_are_tried_in_order_without_overlap() {
        let text = "太极 ".repeat(4000);
        let finder = finder(&["太极"]);
        let found: Vec<(usize, usize)> = windows(&text, &finder).collect();
        assert_eq!(found.len(), MAX_WINDOWS);
        assert!(
            found.windows(2).all(|pair| pair[0].1 <= pair[1].0),
            "{found:?}"
        );
    }
}
