//! Turning what a resident typed into a tantivy query, and running it.
//!
//! User text never goes through tantivy's query-language parser: characters like `:` `^` `~`
//! `(` are just text here. Quoted parts become phrase queries; everything else is analysed
//! with the index's own analyzers and every term may match in any text field, with the field
//! boosts deciding order: title > tags > description > file text, and the pinyin fields far
//! below any Chinese-character field, so `shufa` finds 书法 but a homophone never outranks it.

use std::collections::HashMap;

use tantivy::collector::{Collector, Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, EnableScoring, FuzzyTermQuery, Occur,
    PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, Executor, Order, Searcher, TantivyDocument, Term};

use super::OpenIndex;
use super::analysis::{self, has_han, terms};
use super::documents::Summary;
use super::facets::CountAndFacets;
use super::highlight::{Highlighter, best_snippet};
use super::schema::{COURSE, Fields, SEGMENT};

/// Queries longer than this are cut (at a character boundary); documented in the README.
pub const MAX_QUERY_CHARS: usize = 500;
pub const MAX_LIMIT: usize = 100;
pub const MAX_OFFSET: usize = 10_000;
/// Below this many hits, Latin words of five letters or more are retried with typo tolerance.
const FUZZY_BELOW_HITS: usize = 3;
const MATCHES_PER_HIT: usize = 3;
/// Cue and page documents considered when boosting courses by their best-matching cue.
const CUE_CANDIDATES: usize = 50;
/// How much a course's best cue score counts next to its own fields.
const CUE_BOOST: f32 = 1.5;

const TITLE_BOOST: f32 = 5.0;
const TAGS_BOOST: f32 = 3.0;
const DESCRIPTION_BOOST: f32 = 2.0;
const BODY_BOOST: f32 = 1.0;
const PINYIN_BOOST: f32 = 0.6;
const INITIALS_BOOST: f32 = 0.4;
const FUZZY_BOOST: f32 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Newest,
}

#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub region: Option<String>,
    pub institution: Option<String>,
    pub kind: Option<String>,
    pub language: Option<String>,
    pub origin: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub text: String,
    pub filters: Filters,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MediaMatch {
    pub file_id: String,
    pub at_ms: Option<u64>,
    pub page: Option<u64>,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub course_id: String,
    pub summary: Summary,
    pub snippet: String,
    pub score: f32,
    pub matches: Vec<MediaMatch>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facets {
    pub subject: Vec<(String, u64)>,
    pub audience: Vec<(String, u64)>,
    pub region: Vec<(String, u64)>,
    pub kind: Vec<(String, u64)>,
}

#[derive(Debug, Clone)]
pub struct SearchResults {
    pub total: usize,
    pub hits: Vec<Hit>,
    pub facets: Facets,
}

/// The parts of the user's text: quoted phrases and the loose rest.
#[derive(Debug, PartialEq, Eq)]
struct ParsedText {
    phrases: Vec<String>,
    loose: String,
}

/// Splits out `"quoted phrases"`. An unbalanced quote just ends the text as loose words.
fn parse_text(text: &str) -> ParsedText {
    let mut phrases = Vec::new();
    let mut loose = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        loose.push_str(&rest[..open]);
        loose.push(' ');
        let after = &rest[open + 1..];
        match after.find('"') {
            Some(close) => {
                let phrase = after[..close].trim();
                if !phrase.is_empty() {
                    phrases.push(phrase.to_owned());
                }
                rest = &after[close + 1..];
            }
            None => {
                rest = after;
                break;
            }
        }
    }
    loose.push_str(rest);
    ParsedText {
        phrases,
        loose: loose.trim().to_owned(),
    }
}

pub fn truncate_query(text: &str) -> &str {
    match text.char_indices().nth(MAX_QUERY_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

struct Built {
    query: Box<dyn Query>,
    /// Whether the user typed anything that produced terms.
    has_text: bool,
    /// Latin words long enough for a typo-tolerant retry.
    fuzzy_words: Vec<String>,
}

fn term_query(field: Field, text: &str, boost: f32) -> Box<dyn Query> {
    let query = TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqsAndPositions,
    );
    Box::new(BoostQuery::new(Box::new(query), boost))
}

fn text_fields(fields: &Fields) -> [(Field, f32); 4] {
    [
        (fields.title, TITLE_BOOST),
        (fields.tags, TAGS_BOOST),
        (fields.description, DESCRIPTION_BOOST),
        (fields.body, BODY_BOOST),
    ]
}

fn build_text_query(fields: &Fields, zh_en: &mut TextAnalyzer, text: &str) -> Built {
    let parsed = parse_text(text);
    let mut pinyin = analysis::pinyin_analyzer();
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();

    for term in terms(zh_en, &parsed.loose) {
        for (field, boost) in text_fields(fields) {
            clauses.push((Occur::Should, term_query(field, &term, boost)));
        }
    }
    // Pinyin only for Latin words: a Chinese query must match Chinese characters.
    let latin: String = parsed
        .loose
        .split_whitespace()
        .filter(|w| !has_han(w))
        .collect::<Vec<_>>()
        .join(" ");
    let latin_words = terms(&mut pinyin, &latin);
    // Spaced syllables (`jiu yao`) must all be there. Every Chinese word is also indexed
    // syllable by syllable, so one syllable alone is in a large share of the catalog: ORed,
    // they matched most of it, which was imprecise and the slowest query of the benchmark.
    let syllables: Vec<(Occur, Box<dyn Query>)> = latin_words
        .iter()
        .map(|word| (Occur::Must, term_query(fields.pinyin, word, PINYIN_BOOST)))
        .collect();
    if !syllables.is_empty() {
        clauses.push((Occur::Should, Box::new(BooleanQuery::new(syllables))));
    }
    for word in &latin_words {
        clauses.push((
            Occur::Should,
            term_query(fields.initials, word, INITIALS_BOOST),
        ));
    }
    // Also the whole Latin run joined, so `tai ji quan` finds `taijiquan` as one word.
    if latin_words.len() > 1 {
        clauses.push((
            Occur::Should,
            term_query(fields.pinyin, &latin_words.concat(), PINYIN_BOOST),
        ));
    }
    for phrase in &parsed.phrases {
        let phrase_terms = analysis::terms_with_positions(zh_en, phrase);
        let mut per_field: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, boost) in text_fields(fields) {
            let query: Box<dyn Query> = match phrase_terms.len() {
                0 => continue,
                1 => term_query(field, &phrase_terms[0].1, boost),
                _ => Box::new(BoostQuery::new(
                    Box::new(PhraseQuery::new_with_offset(
                        phrase_terms
                            .iter()
                            .map(|(position, t)| (*position, Term::from_field_text(field, t)))
                            .collect(),
                    )),
                    boost,
                )),
            };
            per_field.push((Occur::Should, query));
        }
        if !per_field.is_empty() {
            // Every quoted phrase must appear somewhere.
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(per_field))));
        }
    }
    let fuzzy_words = latin_words
        .iter()
        .filter(|w| w.chars().count() >= 5 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .cloned()
        .collect();
    let has_text = !clauses.is_empty();
    Built {
        query: Box::new(BooleanQuery::new(clauses)),
        has_text,
        fuzzy_words,
    }
}

/// Adds to `query` a boost for each course with a subtitle cue or PDF page that matches well.
/// A course's `body` holds all its files' text, where one apt sentence is diluted by hours of
/// transcript; a cue is short, so it scores a typed-in line the way a person would. Also says
/// whether any cue or page at all matches the words.
fn with_cue_boosts(
    searcher: &Searcher,
    executor: &Executor,
    fields: &Fields,
    zh_en: &mut TextAnalyzer,
    parsed: &ParsedText,
    query: Box<dyn Query>,
) -> tantivy::Result<(Box<dyn Query>, bool)> {
    let Some(segment_query) = segment_text_query(fields, zh_en, parsed, &[]) else {
        return Ok((query, false));
    };
    let top = search_on(
        searcher,
        executor,
        &segment_query,
        &TopDocs::with_limit(CUE_CANDIDATES).order_by_score(),
    )?;
    let any_matches = !top.is_empty();
    let mut best: HashMap<String, f32> = HashMap::new();
    for (score, address) in top {
        let doc: TantivyDocument = searcher.doc(address)?;
        if let Some(course_id) = doc.get_first(fields.course_id).and_then(|v| v.as_str()) {
            let entry = best.entry(course_id.to_owned()).or_insert(0.0);
            *entry = entry.max(score);
        }
    }
    if best.is_empty() {
        return Ok((query, any_matches));
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, query)];
    for (course_id, score) in best {
        // The course's own document only: its cues share its `course_id`, and the search
        // has no `doc_kind` clause when there is text (see `filter_clauses`).
        let course = BooleanQuery::new(vec![
            must_have(Term::from_field_text(fields.course_id, &course_id)),
            must_have(Term::from_field_text(fields.doc_kind, COURSE)),
        ]);
        clauses.push((
            Occur::Should,
            Box::new(ConstScoreQuery::new(Box::new(course), score * CUE_BOOST)),
        ));
    }
    Ok((Box::new(BooleanQuery::new(clauses)), any_matches))
}

/// Segment documents (of one course, or all) whose text matches the query's words.
/// Subtitle cues and document pages matching the text, of any course when `course_ids` is
/// empty, else of those courses only.
fn segment_text_query(
    fields: &Fields,
    zh_en: &mut TextAnalyzer,
    parsed: &ParsedText,
    course_ids: &[&str],
) -> Option<BooleanQuery> {
    let all_text = format!("{} {}", parsed.loose, parsed.phrases.join(" "));
    let words: Vec<(Occur, Box<dyn Query>)> = terms(zh_en, &all_text)
        .iter()
        .map(|term| (Occur::Should, term_query(fields.segment_text, term, 1.0)))
        .collect();
    if words.is_empty() {
        return None;
    }
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(fields.doc_kind, SEGMENT),
                IndexRecordOption::Basic,
            )),
        ),
        (Occur::Must, Box::new(BooleanQuery::new(words))),
    ];
    if !course_ids.is_empty() {
        let courses: Vec<(Occur, Box<dyn Query>)> = course_ids
            .iter()
            .map(|id| {
                let query: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(fields.course_id, id),
                    IndexRecordOption::Basic,
                ));
                (Occur::Should, query)
            })
            .collect();
        clauses.push((Occur::Must, Box::new(BooleanQuery::new(courses))));
    }
    Some(BooleanQuery::new(clauses))
}

fn fuzzy_query(fields: &Fields, zh_en: &mut TextAnalyzer, words: &[String]) -> Box<dyn Query> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for word in words {
        let distance = if word.chars().count() >= 8 { 2 } else { 1 };
        // Pinyin is matched as typed, so `taijiqaun` still finds 太极拳.
        let pinyin =
            FuzzyTermQuery::new(Term::from_field_text(fields.pinyin, word), distance, true);
        clauses.push((
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(pinyin),
                PINYIN_BOOST * FUZZY_BOOST,
            )),
        ));
        for stemmed in terms(zh_en, word) {
            for (field, boost) in text_fields(fields) {
                let fuzzy =
                    FuzzyTermQuery::new(Term::from_field_text(field, &stemmed), distance, true);
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(fuzzy), boost * FUZZY_BOOST)),
                ));
            }
        }
    }
    Box::new(BooleanQuery::new(clauses))
}

fn facet_of(value: &str) -> Facet {
    Facet::from_path(value.split('/').filter(|s| !s.is_empty()))
}

/// A clause that only filters: it adds nothing to a match's score, so nothing is computed
/// for it per match.
fn must_have(field_term: Term) -> (Occur, Box<dyn Query>) {
    let term = TermQuery::new(field_term, IndexRecordOption::Basic);
    (
        Occur::Must,
        Box::new(ConstScoreQuery::new(Box::new(term), 0.0)),
    )
}

/// The clauses that keep only course documents that pass the filters. With text, the query's
/// words alone keep out segment documents (they have none of the fields words are matched
/// in), and a `doc_kind` clause would be one more posting list walked for every match.
fn filter_clauses(
    fields: &Fields,
    filters: &Filters,
    with_text: bool,
) -> Vec<(Occur, Box<dyn Query>)> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !with_text {
        clauses.push(must_have(Term::from_field_text(fields.doc_kind, COURSE)));
    }
    let facet_filters = [
        (fields.subject, &filters.subject),
        (fields.audience, &filters.audience),
        (fields.kind, &filters.kind),
        // Facet terms include every ancestor, so `zhejiang` matches its counties too.
        (fields.region, &filters.region),
    ];
    for (field, value) in facet_filters {
        if let Some(value) = value.as_deref().filter(|v| !v.trim_matches('/').is_empty()) {
            clauses.push(must_have(Term::from_facet(field, &facet_of(value))));
        }
    }
    let language = filters.language.as_deref().map(str::to_lowercase);
    let text_filters = [
        (fields.institution, filters.institution.as_deref()),
        (fields.language, language.as_deref()),
        (fields.origin, filters.origin.as_deref()),
    ];
    for (field, value) in text_filters {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            clauses.push(must_have(Term::from_field_text(field, value)));
        }
    }
    clauses
}

/// Total hits, the requested page of (score, address), and facet counts.
type Collected = (usize, Vec<(f32, DocAddress)>, Facets);

/// Runs a search against one index generation, its segments on the index's search threads.
/// Blocking: call it off the async runtime.
pub fn search(open: &OpenIndex, request: &SearchRequest) -> tantivy::Result<SearchResults> {
    search_with(open, request, open.index.search_executor())
}

/// [`search`], with its segments collected by `executor`: the search threads, or the calling
/// thread alone when other searches are waiting for those threads (`SearchService::search`).
pub fn search_with(
    open: &OpenIndex,
    request: &SearchRequest,
    executor: &Executor,
) -> tantivy::Result<SearchResults> {
    let fields = &open.fields;
    let searcher = open.reader.searcher();
    let text = truncate_query(request.text.trim());
    // The analyzer the index was built with, not a fresh `zh_en_analyzer()`: queries must be
    // cut into the terms the documents were, and an index built with another analyzer (the
    // relevance benchmark's bigram baseline) is then queried with that one.
    let mut zh_en = open.index.tokenizer_for_field(fields.title)?;
    let built = build_text_query(fields, &mut zh_en, text);
    let browse = !built.has_text;

    let run = |text_query: Option<Box<dyn Query>>| -> tantivy::Result<Collected> {
        let with_text = text_query.is_some();
        let mut clauses = filter_clauses(fields, &request.filters, with_text);
        clauses.push((
            Occur::Must,
            text_query.unwrap_or_else(|| Box::new(AllQuery)),
        ));
        let query = BooleanQuery::new(clauses);
        let sort = if with_text {
            request.sort
        } else {
            Sort::Newest
        };
        collect(open, &searcher, executor, &query, sort, request, with_text)
    };

    let parsed = parse_text(text);
    let (text_query, segments_match) = if browse {
        (built.query.box_clone(), false)
    } else {
        with_cue_boosts(
            &searcher,
            executor,
            fields,
            &mut zh_en,
            &parsed,
            built.query.box_clone(),
        )?
    };
    let (mut total, mut hits, mut facets) = run((!browse).then(|| text_query.box_clone()))?;
    let mut scoring_query = built.query.box_clone();
    if !browse && total < FUZZY_BELOW_HITS && !built.fuzzy_words.is_empty() {
        let combined: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::Should, built.query.box_clone()),
            (
                Occur::Should,
                fuzzy_query(fields, &mut zh_en, &built.fuzzy_words),
            ),
        ]));
        let retried = run(Some(combined.box_clone()))?;
        if retried.0 > total {
            (total, hits, facets) = retried;
            scoring_query = combined;
        }
    }

    let highlighters = if browse {
        Vec::new()
    } else {
        [fields.description, fields.body, fields.title]
            .into_iter()
            .map(|field| Highlighter::create(&searcher, scoring_query.as_ref(), field))
            .collect::<tantivy::Result<Vec<_>>>()?
    };
    let mut page = Vec::with_capacity(hits.len());
    for (score, address) in hits.drain(..) {
        let doc: TantivyDocument = searcher.doc(address)?;
        let course_id = doc
            .get_first(fields.course_id)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        page.push((score, doc, course_id));
    }
    // One count over the page's courses decides whether any of them has a matching cue or
    // page; most pages have none, and then no hit pays for a search of its own. When no cue or
    // page in the whole index matched, none of the page's can, and the count is skipped.
    let with_media = segments_match && {
        let ids: Vec<&str> = page.iter().map(|(_, _, id)| id.as_str()).collect();
        match segment_text_query(fields, &mut zh_en, &parsed, &ids) {
            Some(query) => search_on(&searcher, executor, &query, &Count)? > 0,
            None => false,
        }
    };
    let mut out = Vec::with_capacity(page.len());
    for (score, doc, course_id) in page {
        let summary: Summary = doc
            .get_first(fields.summary)
            .and_then(|v| v.as_str())
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(|| {
                tantivy::TantivyError::InternalError("course document without summary".into())
            })?;
        let snippet = best_snippet(&highlighters, &doc, &summary.title);
        let matches = if with_media {
            media_matches(&searcher, executor, fields, &mut zh_en, &course_id, &parsed)?
        } else {
            Vec::new()
        };
        out.push(Hit {
            course_id,
            summary,
            snippet,
            score,
            matches,
        });
    }
    Ok(SearchResults {
        total,
        hits: out,
        facets,
    })
}

/// `searcher.search`, with the segments collected by `executor`.
fn search_on<C: Collector>(
    searcher: &Searcher,
    executor: &Executor,
    query: &dyn Query,
    collector: &C,
) -> tantivy::Result<C::Fruit> {
    let scoring = if collector.requires_scoring() {
        EnableScoring::enabled_from_searcher(searcher)
    } else {
        EnableScoring::disabled_from_searcher(searcher)
    };
    searcher.search_with_executor(query, collector, executor, scoring)
}

fn collect(
    open: &OpenIndex,
    searcher: &Searcher,
    executor: &Executor,
    query: &dyn Query,
    sort: Sort,
    request: &SearchRequest,
    with_text: bool,
) -> tantivy::Result<Collected> {
    let limit = request.limit.clamp(1, MAX_LIMIT);
    let counter = CountAndFacets {
        profiles: open.facet_profiles.clone(),
        selected_region: request
            .filters
            .region
            .as_deref()
            .filter(|r| !r.trim_matches('/').is_empty())
            .map(facet_of),
    };
    let top = TopDocs::with_limit(limit).and_offset(request.offset);
    let (addresses, counted) = if sort == Sort::Newest || !with_text {
        let (newest, counted) = search_on(
            searcher,
            executor,
            query,
            &(
                top.order_by_fast_field::<i64>("created_at", Order::Desc),
                counter,
            ),
        )?;
        (newest.into_iter().map(|(_, a)| (0.0, a)).collect(), counted)
    } else {
        search_on(searcher, executor, query, &(top.order_by_score(), counter))?
    };
    Ok((counted.total, addresses, counted.facets))
}

/// The cues and pages of the course where the query's words occur.
fn media_matches(
    searcher: &Searcher,
    executor: &Executor,
    fields: &Fields,
    zh_en: &mut TextAnalyzer,
    course_id: &str,
    parsed: &ParsedText,
) -> tantivy::Result<Vec<MediaMatch>> {
    let Some(query) = segment_text_query(fields, zh_en, parsed, &[course_id]) else {
        return Ok(Vec::new());
    };
    let top = search_on(
        searcher,
        executor,
        &query,
        &TopDocs::with_limit(MATCHES_PER_HIT).order_by_score(),
    )?;
    let mut matches = Vec::with_capacity(top.len());
    for (_, address) in top {
        let doc: TantivyDocument = searcher.doc(address)?;
        let text_of = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        matches.push(MediaMatch {
            file_id: text_of(fields.file_id),
            at_ms: doc.get_first(fields.at_ms).and_then(|v| v.as_u64()),
            page: doc.get_first(fields.page).and_then(|v| v.as_u64()),
            text: text_of(fields.segment_text),
        });
    }
    // Media order reads better than score order: earliest cue or page first.
    matches.sort_by_key(|m| (m.file_id.clone(), m.page.unwrap_or(0), m.at_ms.unwrap_or(0)));
    Ok(matches)
}

/// Facet counts keyed by value, for serializing as a JSON object.
pub fn as_map(values: &[(String, u64)]) -> HashMap<String, u64> {
    values.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_phrases_are_split_out_and_unbalanced_quotes_tolerated() {
        assert_eq!(
            parse_text(r#"tai chi "commencing form" 起势"#),
            ParsedText {
                phrases: vec!["commencing form".into()],
                loose: "tai chi   起势".into()
            }
        );
        let unbalanced = parse_text(r#"first "aid"#);
        assert!(unbalanced.phrases.is_empty());
        assert!(unbalanced.loose.contains("aid"));
    }

    #[test]
    fn long_queries_are_cut_at_a_character_boundary() {
        let long = "书".repeat(MAX_QUERY_CHARS + 10);
        assert_eq!(truncate_query(&long).chars().count(), MAX_QUERY_CHARS);
    }
}
