//! The fixed query mix, derived from the corpus with a fixed seed: words a resident might type,
//! taken from the titles of documents that every benchmarked size contains (the first
//! `min(size, |B|)` documents), so each size answers the same mix.
//!
//! Shares: 35% single Chinese words, 25% single English words, 20% two-word queries (Chinese
//! and English, both words from one title), 10% pinyin (whole words and syllables), 10% a word
//! with a filter (subject, audience, region, language or institution).

use pinyin::ToPinyin;
use shuyuan::search::analysis::{self, has_han};
use shuyuan::search::query::Filters;

use crate::corpus::{AUDIENCES, Corpus, INSTITUTIONS, Lang, mix};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ChineseWord,
    EnglishWord,
    TwoWords,
    Pinyin,
    Filtered,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::ChineseWord => "zh word",
            Kind::EnglishWord => "en word",
            Kind::TwoWords => "two words",
            Kind::Pinyin => "pinyin",
            Kind::Filtered => "filtered",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Subject,
    Audience,
    Region,
    Language,
    Institution,
}

impl Filter {
    pub fn parameter(self) -> &'static str {
        match self {
            Filter::Subject => "subject",
            Filter::Audience => "audience",
            Filter::Region => "region",
            Filter::Language => "language",
            Filter::Institution => "institution",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Query {
    pub kind: Kind,
    pub text: String,
    pub filter: Option<(Filter, String)>,
    /// `text` through the `zh_en` analyzer, joined by spaces: what PostgreSQL is asked.
    pub segmented: String,
}

impl Query {
    pub fn filters(&self) -> Filters {
        let mut filters = Filters::default();
        if let Some((filter, value)) = &self.filter {
            let value = Some(value.clone());
            match filter {
                Filter::Subject => filters.subject = value,
                Filter::Audience => filters.audience = value,
                Filter::Region => filters.region = value,
                Filter::Language => filters.language = value,
                Filter::Institution => filters.institution = value,
            }
        }
        filters
    }
}

const ENGLISH_STOP_WORDS: &[&str] = &[
    "about", "after", "also", "among", "and", "are", "based", "been", "between", "both", "can",
    "does", "during", "each", "from", "have", "into", "more", "most", "other", "over", "such",
    "than", "that", "their", "them", "then", "there", "these", "they", "this", "those", "through",
    "under", "using", "very", "were", "what", "when", "which", "while", "with", "within",
    "without", "your", "will", "should", "could", "would", "study", "studies", "course",
];

/// The words of a title a resident could type: Chinese words of two to four characters as
/// jieba cuts them, or English words of four letters or more that are not stop words.
fn title_words(title: &str, lang: Lang) -> Vec<String> {
    match lang {
        Lang::Zh => {
            let mut analyzer = analysis::zh_en_analyzer();
            let mut words: Vec<String> = Vec::new();
            for term in analysis::terms(&mut analyzer, title) {
                let chars = term.chars().count();
                if (2..=4).contains(&chars)
                    && term.chars().all(|c| has_han(&c.to_string()))
                    && !words.contains(&term)
                {
                    words.push(term);
                }
            }
            words
        }
        Lang::En => {
            let mut words: Vec<String> = Vec::new();
            for word in title.split(|c: char| !c.is_ascii_alphabetic()) {
                let word = word.to_ascii_lowercase();
                if word.len() >= 4
                    && !ENGLISH_STOP_WORDS.contains(&word.as_str())
                    && !words.contains(&word)
                {
                    words.push(word);
                }
            }
            words
        }
    }
}

fn whole_pinyin(word: &str) -> String {
    word.chars()
        .filter_map(|c| c.to_pinyin().map(|p| p.plain()))
        .collect()
}

fn syllables(word: &str) -> String {
    word.chars()
        .filter_map(|c| c.to_pinyin().map(|p| p.plain()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `count` queries drawn from the first `pool` documents.
pub fn mix_of(corpus: &Corpus, pool: usize, count: usize) -> anyhow::Result<Vec<Query>> {
    let shares = [
        (Kind::ChineseWord, 35),
        (Kind::EnglishWord, 25),
        (Kind::TwoWords, 20),
        (Kind::Pinyin, 10),
        (Kind::Filtered, 10),
    ];
    let mut queries = Vec::with_capacity(count);
    let mut draw = 0u64;
    let mut analyzer = analysis::zh_en_analyzer();
    for (i, (kind, share)) in shares.iter().enumerate() {
        let wanted = if i == shares.len() - 1 {
            count - queries.len()
        } else {
            count * share / 100
        };
        let mut made = 0;
        let mut seen: Vec<String> = Vec::new();
        while made < wanted {
            draw += 1;
            anyhow::ensure!(
                draw < 10_000_000,
                "the first {pool} documents do not yield {count} queries"
            );
            let k = (mix(draw, 11) % pool as u64) as usize;
            let lang = match kind {
                Kind::ChineseWord | Kind::Pinyin => Lang::Zh,
                Kind::EnglishWord => Lang::En,
                Kind::TwoWords | Kind::Filtered => {
                    if made % 2 == 0 {
                        Lang::Zh
                    } else {
                        Lang::En
                    }
                }
            };
            if corpus.lang(k) != lang {
                continue;
            }
            let doc = corpus.doc(k);
            let words = title_words(&doc.title, lang);
            if words.is_empty() {
                continue;
            }
            let pick = |salt: u64| words[(mix(draw, salt) % words.len() as u64) as usize].clone();
            let (text, filter) = match kind {
                Kind::ChineseWord | Kind::EnglishWord => (pick(12), None),
                Kind::TwoWords => {
                    if words.len() < 2 {
                        continue;
                    }
                    let first = (mix(draw, 13) % words.len() as u64) as usize;
                    let second = (first + 1 + (mix(draw, 14) % (words.len() as u64 - 1)) as usize)
                        % words.len();
                    (format!("{} {}", words[first], words[second]), None)
                }
                Kind::Pinyin => {
                    let word = pick(15);
                    if made % 3 == 2 {
                        (syllables(&word), None)
                    } else {
                        (whole_pinyin(&word), None)
                    }
                }
                Kind::Filtered => {
                    let (slug, _, region) = INSTITUTIONS[doc.institution];
                    let filter = match made % 5 {
                        0 => (Filter::Subject, doc.subjects[0].to_owned()),
                        1 => (Filter::Audience, doc.audience.to_owned()),
                        2 => (
                            Filter::Region,
                            region.split('/').next().unwrap_or(region).to_owned(),
                        ),
                        3 => (Filter::Language, doc.language.to_owned()),
                        _ => (Filter::Institution, slug.to_owned()),
                    };
                    debug_assert!(
                        filter.0 != Filter::Audience || AUDIENCES.contains(&filter.1.as_str())
                    );
                    (pick(16), Some(filter))
                }
            };
            if text.trim().is_empty() || seen.contains(&text) {
                continue;
            }
            seen.push(text.clone());
            let segmented = analysis::terms(&mut analyzer, &text).join(" ");
            queries.push(Query {
                kind: *kind,
                text,
                filter,
                segmented,
            });
            made += 1;
        }
    }
    // Interleave the kinds, so any prefix of the mix (and every concurrent task) sees all.
    let mut order: Vec<usize> = (0..queries.len()).collect();
    order.sort_by_key(|&i| mix(i as u64, 17));
    Ok(order.into_iter().map(|i| queries[i].clone()).collect())
}
