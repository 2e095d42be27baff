//! Text analysis: how course text and queries become terms.
//!
//! - `zh_en`: jieba word segmentation (search mode, so 太极拳 also yields 太极), punctuation and
//!   whitespace tokens dropped, lower-cased, English stemmed. Mixed Chinese/English text works
//!   because jieba passes Latin words through as words.
//! - [`bigram_analyzer`]: not used to index; the plain baseline the relevance benchmark measures
//!   `zh_en` against (Han text in overlapping character pairs, no stemming).
//! - `pinyin`: whitespace-separated Latin syllables, lower-cased. Fed by [`pinyin_forms`], which
//!   spells each Chinese word three ways: whole (`taijiquan`), by syllable (`tai ji quan`) and,
//!   in a separate field, by initials (`tjq`).

use pinyin::{ToPinyin, ToPinyinMulti};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token,
    TokenFilter, TokenStream, Tokenizer, WhitespaceTokenizer,
};
use tantivy_jieba::JiebaTokenizer;

pub const ZH_EN: &str = "zh_en";
pub const PINYIN: &str = "pinyin";

/// Words too common to tell courses apart, in English and Chinese. Dropping them keeps a
/// sentence typed as a query (a subtitle line, say) from matching every course on "we", "the"
/// or 的.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with", "i", "me", "my", "we", "our", "you", "your", "he",
    "she", "his", "her", "its", "us", "them", "what", "which", "who", "how", "do", "does", "did",
    "have", "has", "had", "can", "would", "should", "about", "from", "so", "just", "的", "了",
    "是", "在", "有", "和", "与", "及", "或", "也", "就", "都", "而", "这", "那", "一个", "我们",
    "你们", "他们", "我", "你", "他", "她", "它", "如何", "怎么", "什么", "吗", "呢", "吧", "啊",
    "之", "其", "为", "对", "从", "把", "被", "让", "给", "很",
];

pub fn zh_en_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(JiebaTokenizer::with_ordinal_position_mode(true))
        .filter(WordsOnly)
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The classic analysis of Chinese without a dictionary, as a baseline for `zh_en`: every run of
/// Han characters becomes its overlapping character pairs (a lone character stays alone), other
/// letters and digits become words, lower-cased, with `zh_en`'s stop words and length limit and
/// no stemming. `bench/relevance` indexes and queries with it to show what jieba and the stemmer
/// add; nothing in the server uses it.
pub fn bigram_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(HanBigramTokenizer)
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .build()
}

pub fn pinyin_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(WhitespaceTokenizer::default())
        .filter(LowerCaser)
        .build()
}

/// Most reading combinations indexed per word (heteronyms multiply: 重庆 has several).
const MAX_READINGS_PER_WORD: usize = 8;

/// The three pinyin spellings of every Chinese word in `text`: (whole words and syllables,
/// initials), each space-separated. Characters without pinyin (Latin, digits) are skipped.
/// Heteronyms are spelled every way (长城 → changcheng and zhangcheng, 音乐 → yinyue and
/// yinle), capped per word; a wrong reading only adds a low-boosted pinyin match.
pub fn pinyin_forms(text: &str) -> (String, String) {
    let mut spelled = String::new();
    let mut initials = String::new();
    // Sub-words (书法 inside 硬笔书法) and whole runs of characters (广场舞, which jieba cuts
    // into 广场 + 舞) are spelled too, so `shufa` and `guangchangwu` both find their course.
    let mut words: Vec<String> = Vec::new();
    let mut tokenizer = JiebaTokenizer::new();
    let mut stream = tokenizer.token_stream(text);
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words.extend(han_runs(text));
    words.sort();
    words.dedup();
    for word in &words {
        let readings: Vec<Vec<&str>> = word
            .chars()
            .filter_map(|c| c.to_pinyin_multi())
            .map(|multi| {
                let mut plain: Vec<&str> = multi.into_iter().map(|p| p.plain()).collect();
                plain.dedup();
                plain
            })
            .collect();
        if readings.is_empty() {
            continue;
        }
        for combination in combinations(&readings, MAX_READINGS_PER_WORD) {
            spelled.push_str(&combination.concat());
            spelled.push(' ');
            let first_letters: String = combination
                .iter()
                .filter_map(|s| s.chars().next())
                .collect();
            initials.push_str(&first_letters);
            initials.push(' ');
        }
        if readings.len() > 1 {
            for syllables in &readings {
                for syllable in syllables {
                    spelled.push_str(syllable);
                    spelled.push(' ');
                }
            }
        }
    }
    (spelled, initials)
}

/// Maximal runs of 2 to 8 Chinese characters.
fn han_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.to_pinyin().is_some() {
            current.push(c);
        } else {
            let length = current.chars().count();
            if (2..=8).contains(&length) {
                runs.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    runs
}

/// Up to `cap` ways to read a word, the most common reading of each character first.
fn combinations<'a>(readings: &[Vec<&'a str>], cap: usize) -> Vec<Vec<&'a str>> {
    let mut out: Vec<Vec<&'a str>> = vec![Vec::new()];
    for choices in readings {
        let mut next = Vec::new();
        for prefix in &out {
            for choice in choices {
                if next.len() == cap {
                    break;
                }
                let mut extended = prefix.clone();
                extended.push(*choice);
                next.push(extended);
            }
        }
        out = next;
    }
    out
}

/// Loads jieba's dictionary now rather than on the first search (it takes most of a second).
pub fn warm_up() {
    let mut analyzer = zh_en_analyzer();
    let _ = terms(&mut analyzer, "书院");
}

/// True when `text` holds at least one Han character.
pub fn has_han(text: &str) -> bool {
    text.chars().any(|c| c.to_pinyin().is_some())
}

/// Drops tokens with no letter or digit (the spaces and punctuation jieba emits as tokens), and
/// numbers positions by word: a token that overlaps the previous one (jieba's search mode
/// yields 太极 and 太极拳 for the same text) shares its position, so phrase queries line up.
#[derive(Clone)]
pub struct WordsOnly;

impl TokenFilter for WordsOnly {
    type Tokenizer<T: Tokenizer> = WordsOnlyWrapper<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> WordsOnlyWrapper<T> {
        WordsOnlyWrapper(tokenizer)
    }
}

#[derive(Clone)]
pub struct WordsOnlyWrapper<T>(T);

impl<T: Tokenizer> Tokenizer for WordsOnlyWrapper<T> {
    type TokenStream<'a> = TokenList;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        let mut inner = self.0.token_stream(text);
        let mut tokens = Vec::new();
        while inner.advance() {
            let token = inner.token();
            // Offsets must point into `text`: the highlighter slices it with them, and a bad
            // offset there would be a panic instead of a snippet.
            let in_bounds = token.offset_from < token.offset_to
                && token.offset_to <= text.len()
                && text.is_char_boundary(token.offset_from)
                && text.is_char_boundary(token.offset_to);
            if in_bounds && token.text.chars().any(char::is_alphanumeric) {
                tokens.push(token.clone());
            }
        }
        // jieba's search mode yields 园林, 景观 and then 园林景观: sort by where each starts
        // (longer first), because the snippet highlighter expects offsets in order.
        tokens.sort_by(|a, b| {
            a.offset_from
                .cmp(&b.offset_from)
                .then(b.offset_to.cmp(&a.offset_to))
        });
        let mut next_position = 0;
        let mut covered_to = 0;
        for token in &mut tokens {
            if token.offset_from >= covered_to || next_position == 0 {
                token.position = next_position;
                next_position += 1;
            } else {
                token.position = next_position - 1;
            }
            token.position_length = 1;
            covered_to = covered_to.max(token.offset_to);
        }
        TokenList::new(tokens)
    }
}

/// Tokens worked out in advance (filtered and renumbered, or cut into pairs), streamed.
pub struct TokenList {
    tokens: Vec<Token>,
    /// One past the current token.
    index: usize,
    empty: Token,
}

impl TokenList {
    fn new(tokens: Vec<Token>) -> TokenList {
        TokenList {
            tokens,
            index: 0,
            empty: Token::default(),
        }
    }
}

impl TokenStream for TokenList {
    fn advance(&mut self) -> bool {
        if self.index < self.tokens.len() {
            self.index += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        self.index
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .unwrap_or(&self.empty)
    }

    fn token_mut(&mut self) -> &mut Token {
        match self.index.checked_sub(1) {
            Some(i) if i < self.tokens.len() => &mut self.tokens[i],
            _ => &mut self.empty,
        }
    }
}

/// Han runs as overlapping character pairs, other alphanumeric runs as words; everything else
/// separates. Tantivy's `NgramTokenizer` cuts the whole text into n-grams, across words and
/// scripts, so the runs are split here first.
#[derive(Clone)]
pub struct HanBigramTokenizer;

impl Tokenizer for HanBigramTokenizer {
    type TokenStream<'a> = TokenList;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> TokenList {
        let mut tokens: Vec<Token> = Vec::new();
        let mut push = |from: usize, to: usize| {
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position: tokens.len(),
                text: text[from..to].to_owned(),
                position_length: 1,
            });
        };
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let end_of = |i: usize| chars.get(i).map_or(text.len(), |(at, _)| *at);
        let is_han = |c: char| c.to_pinyin().is_some();
        let mut i = 0;
        while i < chars.len() {
            let (start, c) = chars[i];
            let han = is_han(c);
            let run = chars[i..]
                .iter()
                .take_while(|(_, d)| {
                    if han {
                        is_han(*d)
                    } else {
                        d.is_alphanumeric() && !is_han(*d)
                    }
                })
                .count();
            if run == 0 {
                i += 1;
                continue;
            }
            if han && run > 1 {
                for (j, (from, _)) in chars[i..i + run - 1].iter().enumerate() {
                    push(*from, end_of(i + j + 2));
                }
            } else {
                // A word, or a lone Han character.
                push(start, end_of(i + run));
            }
            i += run;
        }
        TokenList::new(tokens)
    }
}

/// The terms with their positions, for phrase queries.
pub fn terms_with_positions(analyzer: &mut TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push((stream.token().position, stream.token().text.clone()));
    }
    out
}

/// The terms `analyzer` makes of `text`, in order.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_segmented_and_english_stemmed() {
        let mut analyzer = zh_en_analyzer();
        let tokens = terms(&mut analyzer, "太极拳入门：Learning Tai Chi, gardens!");
        assert!(tokens.contains(&"太极拳".to_owned()), "{tokens:?}");
        assert!(tokens.contains(&"入门".to_owned()), "{tokens:?}");
        assert!(tokens.contains(&"learn".to_owned()), "{tokens:?}");
        assert!(tokens.contains(&"garden".to_owned()), "{tokens:?}");
        assert!(
            !tokens
                .iter()
                .any(|t| t.trim().is_empty() || t == "：" || t == ","),
            "{tokens:?}"
        );
    }

    #[test]
    fn overlapping_words_share_a_position_and_words_count_up() {
        let mut analyzer = zh_en_analyzer();
        let positioned = terms_with_positions(&mut analyzer, "太极拳入门 small gardens");
        let position_of = |t: &str| {
            positioned
                .iter()
                .find(|(_, term)| term == t)
                .map(|(p, _)| *p)
        };
        assert_eq!(position_of("太极"), position_of("太极拳"), "{positioned:?}");
        assert_eq!(
            position_of("入门"),
            position_of("太极拳").map(|p| p + 1),
            "{positioned:?}"
        );
        assert_eq!(
            position_of("garden"),
            position_of("small").map(|p| p + 1),
            "{positioned:?}"
        );
    }

    #[test]
    fn pinyin_has_whole_words_syllables_and_initials() {
        let (spelled, initials) = pinyin_forms("太极拳 书法 Tai chi");
        let spelled: Vec<&str> = spelled.split_whitespace().collect();
        assert!(spelled.contains(&"taijiquan"), "{spelled:?}");
        assert!(spelled.contains(&"shufa"), "{spelled:?}");
        assert!(spelled.contains(&"quan"), "{spelled:?}");
        assert!(
            initials.split_whitespace().any(|i| i == "tjq"),
            "{initials}"
        );
        assert!(initials.split_whitespace().any(|i| i == "sf"), "{initials}");
        assert!(has_han("书法") && !has_han("shufa"));
    }

    #[test]
    fn sub_words_and_whole_runs_get_pinyin() {
        let (spelled, initials) = pinyin_forms("硬笔书法 广场舞 防诈骗");
        let spelled: Vec<&str> = spelled.split_whitespace().collect();
        assert!(spelled.contains(&"shufa"), "{spelled:?}");
        assert!(spelled.contains(&"guangchangwu"), "{spelled:?}");
        assert!(spelled.contains(&"fangzhapian"), "{spelled:?}");
        assert!(
            initials.split_whitespace().any(|i| i == "gcw"),
            "{initials}"
        );
    }

    #[test]
    fn overlapping_tokens_come_sorted_by_offset() {
        let mut analyzer = zh_en_analyzer();
        let mut stream = analyzer.token_stream("园林景观设计");
        let mut last = 0;
        while stream.advance() {
            assert!(stream.token().offset_from >= last);
            last = stream.token().offset_from;
        }
    }

    #[test]
    fn stop_words_are_dropped() {
        let mut analyzer = zh_en_analyzer();
        let tokens = terms(
            &mut analyzer,
            "we need to talk about your thesis 我们的论文",
        );
        assert!(
            !tokens
                .iter()
                .any(|t| ["we", "to", "your", "的", "我们"].contains(&t.as_str())),
            "{tokens:?}"
        );
        assert!(
            tokens.contains(&"thesi".to_owned()) || tokens.contains(&"thesis".to_owned()),
            "{tokens:?}"
        );
    }

    #[test]
    fn the_bigram_baseline_pairs_han_characters_and_keeps_words_unstemmed() {
        let mut analyzer = bigram_analyzer();
        let positioned =
            terms_with_positions(&mut analyzer, "宝宝快十个月了，Learning Tai-Chi 10岁 的");
        let terms: Vec<&str> = positioned.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            terms,
            [
                "宝宝", "宝快", "快十", "十个", "个月", "月了", "learning", "tai", "chi", "10",
                "岁"
            ],
            "a lone character stays a unigram, 的 is a stop word: {positioned:?}"
        );
        let positions: Vec<usize> = positioned.iter().map(|(p, _)| *p).collect();
        assert!(
            positions.windows(2).all(|w| w[1] == w[0] + 1),
            "{positioned:?}"
        );
        let mut stream = analyzer.token_stream("书法 课");
        assert!(stream.advance());
        assert_eq!(
            (stream.token().offset_from, stream.token().offset_to),
            (0, 6)
        );
    }

    #[test]
    fn heteronyms_are_spelled_every_way() {
        let (spelled, _) = pinyin_forms("长城 音乐");
        let spelled: Vec<&str> = spelled.split_whitespace().collect();
        assert!(spelled.contains(&"changcheng"), "{spelled:?}");
        assert!(spelled.contains(&"yinyue"), "{spelled:?}");
    }
}
