//! Text analysis: how course text and queries become terms.
//!
//! - `zh_en`: jieba word segmentation (search mode, so 太极拳 also yields 太极), punctuation and
//!   whitespace tokens dropped, lower-cased, English stemmed. Mixed Chinese/English text works
//!   because jieba passes Latin words through as words.
//! - `pinyin`: whitespace-separated Latin syllables, lower-cased. Fed by [`pinyin_forms`], which
//!   spells each Chinese word three ways: whole (`taijiquan`), by syllable (`tai ji quan`) and,
//!   in a separate field, by initials (`tjq`).

use pinyin::{ToPinyin, ToPinyinMulti};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenFilter, TokenStream,
    Tokenizer, WhitespaceTokenizer,
};
use tantivy_jieba::JiebaTokenizer;

pub const ZH_EN: &str = "zh_en";
pub const PINYIN: &str = "pinyin";

pub fn zh_en_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(JiebaTokenizer::with_ordinal_position_mode(true))
        .filter(WordsOnly)
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
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
    let mut tokenizer = JiebaTokenizer::with_search_mode(false);
    let mut stream = tokenizer.token_stream(text);
    while stream.advance() {
        let word = &stream.token().text;
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
    type TokenStream<'a> = WordsOnlyStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        WordsOnlyStream {
            tail: self.0.token_stream(text),
            next_position: 0,
            covered_to: 0,
        }
    }
}

pub struct WordsOnlyStream<T> {
    tail: T,
    next_position: usize,
    /// End offset of the text covered by the tokens seen so far.
    covered_to: usize,
}

impl<T: TokenStream> TokenStream for WordsOnlyStream<T> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            if !self.tail.token().text.chars().any(char::is_alphanumeric) {
                continue;
            }
            let covered_to = self.covered_to;
            let token = self.tail.token_mut();
            if token.offset_from >= covered_to || self.next_position == 0 {
                token.position = self.next_position;
                self.next_position += 1;
            } else {
                token.position = self.next_position - 1;
            }
            token.position_length = 1;
            self.covered_to = covered_to.max(token.offset_to);
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
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
    fn heteronyms_are_spelled_every_way() {
        let (spelled, _) = pinyin_forms("长城 音乐");
        let spelled: Vec<&str> = spelled.split_whitespace().collect();
        assert!(spelled.contains(&"changcheng"), "{spelled:?}");
        assert!(spelled.contains(&"yinyue"), "{spelled:?}");
    }
}
