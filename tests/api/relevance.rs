//! The search relevance set: real course and lecture texts from `../shared/data` (read at test
//! time, never copied into the repository: their licences allow internal testing only), a few
//! hand-written community-education courses, and a table of queries a resident might type,
//! each with the course(s) that must rank in the top 3. The test prints every query's result
//! and fails when fewer than 95% pass.
//!
//! The corpus, all created through the HTTP API:
//! - `courses-en/edx_courses.csv`: the first 200 edX courses (title, summary + description,
//!   subject as a tag), key `edx:<url slug>`;
//! - `courses-en/coursera.csv`: the first 150 rows (title, organisation, level), key
//!   `coursera:<row index>`;
//! - `csl/kg/dev.tsv`: the first 200 papers (title, abstract, keywords as tags), key
//!   `csl-dev:<line>`; `csl/cls_ctg/train.tsv`: the first 60 titles, key `csl-train:<line>`;
//! - `ted-en-zh/*.tgz`: eight TED talks, each a course with an English and a Chinese SRT file
//!   built from the aligned segments, key `ted:<talkid>`. WIT3 has no time codes, so the cue
//!   times are synthetic: segment `n` starts at `(n - 1) * 4` seconds;
//! - `HAND_WRITTEN`: community courses written for this test (key `hand:<name>`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const INSTITUTION: &str = "xihu-college";
const EDX_COURSES: usize = 200;
const COURSERA_COURSES: usize = 150;
const CSL_PAPERS: usize = 200;
const CSL_TITLES: usize = 60;
const TED_TALKS: [&str; 8] = [
    "2227", "2361", "2435", "2458", "2330", "2340", "2432", "2357",
];
const SYNTHETIC_CUE_SECONDS: usize = 4;
const REQUIRED_SHARE: f64 = 0.95;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chinese,
    English,
    PinyinWhole,
    PinyinSyllables,
    Initials,
    Typo,
    Phrase,
    Subtitle,
    Mixed,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Chinese => "chinese",
            Kind::English => "english",
            Kind::PinyinWhole => "pinyin",
            Kind::PinyinSyllables => "syllables",
            Kind::Initials => "initials",
            Kind::Typo => "typo",
            Kind::Phrase => "phrase",
            Kind::Subtitle => "subtitle",
            Kind::Mixed => "mixed",
        }
    }
}

use Kind::*;

/// (query as typed, courses that must all be in the top 3, kind). Subtitle queries also need
/// the expected hit's first media match to carry `at_seconds`.
const QUERIES: &[(&str, &[&str], Kind)] = &[
    // Chinese words, against CSL titles/abstracts/keywords and the hand-written courses.
    ("果蔬保鲜", &["csl-dev:4"], Chinese),
    ("红薯", &["csl-dev:10"], Chinese),
    ("老年高血压", &["csl-dev:3", "hand:gaoxueya"], Chinese),
    ("养老保险", &["csl-dev:18"], Chinese),
    ("篮球比赛", &["csl-dev:55"], Chinese),
    ("城市绿化", &["csl-dev:51"], Chinese),
    ("空气污染", &["csl-dev:74"], Chinese),
    ("慢性病", &["csl-dev:42"], Chinese),
    ("中学教师", &["csl-dev:79", "csl-dev:189"], Chinese),
    ("对虾养殖", &["csl-train:48"], Chinese),
    ("宣纸", &["csl-dev:166"], Chinese),
    ("台风", &["csl-dev:147"], Chinese),
    ("广场舞", &["hand:guangchangwu"], Chinese),
    ("中医养生", &["hand:zhongyi"], Chinese),
    ("防诈骗", &["hand:fangzhapian"], Chinese),
    ("书法", &["hand:shufa", "hand:yingbi"], Chinese),
    ("智能手机", &["hand:shouji"], Chinese),
    // English words, stemming.
    (
        "happiness at work",
        &["edx:the-foundations-of-happiness-at-work"],
        English,
    ),
    (
        "basic spanish",
        &[
            "edx:basic-spanish-1-getting-started",
            "edx:basic-spanish-2-one-step-further",
            "edx:basic-spanish-3-getting-there",
        ],
        English,
    ),
    ("photography", &["coursera:525"], English),
    (
        "negotiation skills",
        &["edx:successful-negotiation-essential-strategies-and-skills"],
        English,
    ),
    (
        "music theory",
        &["edx:introduction-to-music-theory-2"],
        English,
    ),
    (
        "mental health",
        &[
            "edx:managing-study-stress-and-mental-health-at-univers",
            "edx:talk-to-me-improving-mental-health",
        ],
        English,
    ),
    ("child nutrition", &["coursera:161"], English),
    ("writing essays", &["edx:how-to-write-an-essay"], English),
    ("investing", &["edx:introduction-to-investments"], English),
    ("animal welfare", &["coursera:201"], English),
    ("linux", &["edx:introduction-to-linux"], English),
    (
        "electric cars",
        &["edx:electric-cars-introduction"],
        English,
    ),
    ("learning online", &["edx:how-to-learn-online"], English),
    ("alzheimers", &["ted:2340"], English),
    // Pinyin, whole words (the last two are heteronyms: 重 chong/zhong, 行 hang/xing).
    ("taijiquan", &["hand:taiji"], PinyinWhole),
    ("shufa", &["hand:shufa", "hand:yingbi"], PinyinWhole),
    ("guangchangwu", &["hand:guangchangwu"], PinyinWhole),
    ("zhinengshouji", &["hand:shouji"], PinyinWhole),
    ("fangzhapian", &["hand:fangzhapian"], PinyinWhole),
    ("hongshu", &["csl-dev:10"], PinyinWhole),
    ("chongyang", &["hand:chongyang"], PinyinWhole),
    ("yinhang", &["hand:yinhang"], PinyinWhole),
    // Pinyin syllables, spaced.
    ("tai ji quan", &["hand:taiji"], PinyinSyllables),
    ("guang chang wu", &["hand:guangchangwu"], PinyinSyllables),
    ("zhong yi yang sheng", &["hand:zhongyi"], PinyinSyllables),
    // Initials.
    ("tjq", &["hand:taiji"], Initials),
    ("gcw", &["hand:guangchangwu"], Initials),
    ("znsj", &["hand:shouji"], Initials),
    ("fzp", &["hand:fangzhapian"], Initials),
    // Typos and spelling variants.
    ("photgraphy", &["coursera:525"], Typo),
    (
        "negotiaton",
        &["edx:successful-negotiation-essential-strategies-and-skills"],
        Typo,
    ),
    ("othelo", &["edx:shakespeares-othello-the-moor"], Typo),
    (
        "archeology",
        &["edx:pyramids-of-giza-ancient-egyptian-art-and-archaeol"],
        Typo,
    ),
    (
        "mindfullness stress",
        &["edx:mindfulness-and-resilience-to-stress-at-work"],
        Typo,
    ),
    ("taijiqaun", &["hand:taiji"], Typo),
    // Quoted phrases.
    ("\"supply chain\"", &["edx:supply-chain-analytics"], Phrase),
    (
        "\"science of happiness\"",
        &["edx:the-science-of-happiness-3"],
        Phrase,
    ),
    ("\"园林景观设计\"", &["csl-dev:182", "csl-dev:187"], Phrase),
    (
        "\"非物质文化遗产\"",
        &["csl-dev:166", "hand:jianzhi"],
        Phrase,
    ),
    // Lines remembered from a talk: only in its subtitle cues.
    ("designate a spot for your keys", &["ted:2361"], Subtitle),
    ("伦敦出租车司机", &["ted:2361"], Subtitle),
    ("如何采访他人", &["ted:2435"], Subtitle),
    ("we need to talk about your thesis", &["ted:2458"], Subtitle),
    ("2014年是有记录以来最热的一年", &["ted:2227"], Subtitle),
    // Mixed Chinese and English.
    ("Java 芯片", &["csl-dev:31"], Mixed),
    ("Excel 表格", &["hand:excel"], Mixed),
    ("火星 Mars", &["ted:2227"], Mixed),
    ("AED 急救", &["hand:jijiu"], Mixed),
];

/// A course to create: its stable key and the create-course body (without `institution`).
struct Seed {
    key: String,
    body: Value,
    /// (file name, SRT text) to upload after creating it.
    subtitles: Vec<(String, String)>,
}

/// (key, title, description, tags, subjects, audience).
type HandWritten = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

/// Community-education courses written for this test (not from the data set).
const HAND_WRITTEN: &[HandWritten] = &[
    (
        "hand:taiji",
        "太极拳入门：二十四式简化太极拳",
        "跟着老师从起势开始，一招一式学会二十四式简化太极拳。适合零基础的中老年学员，每节课四十分钟，注意呼吸与放松。",
        &["太极拳", "健身", "中老年"],
        &["fitness"],
        &["seniors"],
    ),
    (
        "hand:baduanjin",
        "八段锦：传统养生功法",
        "八段锦动作简单、运动量适中，是很适合居家练习的传统健身功法。课程逐式讲解双手托天理三焦等八个动作。",
        &["八段锦", "养生", "健身"],
        &["fitness"],
        &["seniors", "adults"],
    ),
    (
        "hand:shufa",
        "书法入门：毛笔楷书基础",
        "从执笔、运笔讲起，临摹颜真卿《多宝塔碑》，掌握楷书基本笔画与结构。",
        &["书法", "毛笔字", "楷书"],
        &["humanities_arts"],
        &["adults", "seniors"],
    ),
    (
        "hand:yingbi",
        "硬笔书法练习：写一手好字",
        "用钢笔和中性笔练习规范汉字书写，适合想把字写得工整漂亮的成年人和中小学生。",
        &["硬笔书法", "练字"],
        &["humanities_arts"],
        &["adults", "youth"],
    ),
    (
        "hand:guangchangwu",
        "广场舞基础教学",
        "社区文化广场每周二、四晚上开课，从基本步伐学起，学会三支流行广场舞曲目，锻炼身体、结交朋友。",
        &["广场舞", "舞蹈", "健身"],
        &["fitness"],
        &["seniors", "adults"],
    ),
    (
        "hand:shouji",
        "老年人智能手机使用课",
        "手把手教长辈使用智能手机：微信聊天、视频通话、扫码付款、网上挂号和打车。",
        &["智能手机", "微信", "数字技能"],
        &["digital_skills"],
        &["seniors"],
    ),
    (
        "hand:fangzhapian",
        "防诈骗知识讲座：识别电信网络诈骗",
        "民警结合真实案例讲解冒充公检法、刷单返利、虚假投资理财等常见骗局，教您守好自己的养老钱。",
        &["防诈骗", "反诈", "安全"],
        &["civic_literacy"],
        &["seniors", "adults"],
    ),
    (
        "hand:zhongyi",
        "中医养生与四季食疗",
        "了解中医体质辨识，按春夏秋冬调整饮食与作息，学做几道简单的养生药膳。",
        &["中医", "养生", "食疗"],
        &["health"],
        &["adults", "seniors"],
    ),
    (
        "hand:gaoxueya",
        "老年人高血压的日常管理",
        "社区医生讲解高血压的测量方法、低盐饮食、规律服药和运动注意事项。",
        &["高血压", "慢病管理", "健康讲座"],
        &["health"],
        &["seniors"],
    ),
    (
        "hand:chongyang",
        "重阳节敬老志愿服务",
        "重阳节前后组织志愿者走访社区独居老人，学习陪伴、沟通与居家安全检查。",
        &["重阳节", "敬老", "志愿服务"],
        &["community_service"],
        &["adults", "youth"],
    ),
    (
        "hand:yinhang",
        "手机银行与移动支付安全",
        "学会用手机银行查询余额、转账，设置支付密码，识别钓鱼短信和虚假链接。",
        &["银行", "移动支付", "数字技能"],
        &["digital_skills"],
        &["seniors", "adults"],
    ),
    (
        "hand:excel",
        "办公软件入门：Excel 表格与 Word 排版",
        "学习用 Excel 制作表格、用简单公式求和，以及用 Word 排版通知和简历。",
        &["办公软件", "Excel", "Word"],
        &["digital_skills", "vocational_skills"],
        &["adults"],
    ),
    (
        "hand:erhu",
        "二胡演奏基础",
        "认识二胡的构造，学习持弓、按弦和基本音阶，能演奏《茉莉花》等简单曲目。",
        &["二胡", "民乐", "乐器"],
        &["humanities_arts"],
        &["adults", "seniors"],
    ),
    (
        "hand:jianzhi",
        "剪纸艺术：传统窗花",
        "用一把剪刀、一张红纸剪出喜字、福字和十二生肖窗花，了解剪纸这项非物质文化遗产。",
        &["剪纸", "窗花", "民间艺术"],
        &["humanities_arts"],
        &["children", "families"],
    ),
    (
        "hand:pengren",
        "家常菜烹饪：川菜入门",
        "麻婆豆腐、回锅肉、鱼香肉丝，在社区厨房里学做地道川菜。",
        &["烹饪", "川菜", "厨艺"],
        &["life_leisure"],
        &["adults"],
    ),
    (
        "hand:jijiu",
        "急救知识：心肺复苏与 AED 使用",
        "红十字会讲师教授心肺复苏（CPR）、海姆立克急救法和自动体外除颤器（AED）的使用。",
        &["急救", "心肺复苏", "AED"],
        &["health"],
        &["adults", "youth"],
    ),
    (
        "hand:yuanyi",
        "阳台种菜与家庭园艺",
        "在阳台上种小番茄、生菜和香草，学习选土、浇水和病虫害防治。",
        &["园艺", "种菜", "阳台"],
        &["life_leisure"],
        &["adults", "families"],
    ),
    (
        "hand:qinzi",
        "家庭教育：亲子沟通的技巧",
        "面向家长的家庭教育课，学习倾听孩子、表达情绪和制定家规。",
        &["家庭教育", "亲子", "家长"],
        &["early_childhood"],
        &["families"],
    ),
    (
        "hand:sheying",
        "手机摄影技巧",
        "用手机拍出好照片：构图、光线、人像和美食拍摄，以及简单修图。",
        &["摄影", "手机", "修图"],
        &["life_leisure"],
        &["adults", "seniors"],
    ),
    (
        "hand:yingyu",
        "老年英语：日常口语 Everyday English",
        "从问候、问路、购物等生活场景学起，帮助长辈出国旅游、和孙辈交流。",
        &["英语", "口语"],
        &["humanities_arts"],
        &["seniors"],
    ),
    (
        "hand:falv",
        "社区法律常识：婚姻家庭与继承",
        "律师讲解民法典中婚姻家庭、遗嘱继承和赡养老人的常见问题。",
        &["法律", "民法典", "继承"],
        &["civic_literacy"],
        &["adults", "seniors"],
    ),
    (
        "hand:chayi",
        "茶艺与茶文化",
        "认识绿茶、红茶、乌龙茶，学习泡茶的器具与步骤，体会中国茶文化。",
        &["茶艺", "茶文化"],
        &["life_leisure"],
        &["adults"],
    ),
];

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(DATA_DIR);
    assert!(
        dir.join("README.md").is_file(),
        "the relevance set reads real course texts from {} (the shared data sets described in \
         its README.md), but that directory is missing or incomplete. CI has it; locally, put \
         the shared data next to the repository.",
        dir.display()
    );
    dir
}

fn read(path: &Path) -> String {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned()
}

/// RFC 4180 records: quoted fields may hold commas, newlines and doubled quotes; a quote
/// inside an unquoted field is literal. CRLF or LF ends a record.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                quoted = true;
                at_field_start = false;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                at_field_start = true;
            }
            other => {
                field.push(other);
                at_field_start = false;
            }
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

fn cut(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

fn edx_subject(subject: &str) -> Option<&'static str> {
    let s = subject.to_lowercase();
    let mapped = if s.contains("computer") || s.contains("data") {
        "digital_skills"
    } else if s.contains("health") || s.contains("medicine") || s.contains("food") {
        "health"
    } else if s.contains("business") || s.contains("economics") || s.contains("communication") {
        "vocational_skills"
    } else if s.contains("human")
        || s.contains("art")
        || s.contains("history")
        || s.contains("language")
        || s.contains("philosophy")
    {
        "humanities_arts"
    } else if s.contains("science")
        || s.contains("engineering")
        || s.contains("math")
        || s.contains("biology")
        || s.contains("electronics")
    {
        "science_technology"
    } else {
        return None;
    };
    Some(mapped)
}

fn edx_language(language: &str) -> &'static str {
    match language.trim() {
        "Español" => "es",
        "Italiano" => "it",
        "Français" => "fr",
        "Português" => "pt",
        _ => "en",
    }
}

/// The first `EDX_COURSES` edX courses (rows whose URL column is an edX course address; the
/// file's spilled syllabus rows are skipped). A repeated URL slug keeps its first course.
fn edx_seeds(dir: &Path) -> Vec<Seed> {
    const URL_PREFIX: &str = "https://www.edx.org/course/";
    let records = parse_csv(&read(&dir.join("courses-en/edx_courses.csv")));
    let mut seen = HashSet::new();
    let mut seeds = Vec::new();
    for r in records.iter().skip(1) {
        if seeds.len() == EDX_COURSES {
            break;
        }
        if r.len() < 16 || !r[15].starts_with(URL_PREFIX) {
            continue;
        }
        let slug = r[15][URL_PREFIX.len()..].trim_matches('/').to_owned();
        if !seen.insert(slug.clone()) {
            continue;
        }
        let summary = if r[1].trim() == "NA" { "" } else { r[1].trim() };
        let description = cut(&format!("{summary} {}", r[13].trim()), 2000);
        seeds.push(Seed {
            key: format!("edx:{slug}"),
            body: json!({
                "title": r[0].trim(),
                "description": description,
                "tags": [cut(r[7].trim(), 50)],
                "subjects": edx_subject(&r[7]).into_iter().collect::<Vec<_>>(),
                "languages": [edx_language(&r[8])],
            }),
            subtitles: Vec::new(),
        });
    }
    seeds
}

/// The first `COURSERA_COURSES` Coursera rows: title, organisation, certificate type, level.
fn coursera_seeds(dir: &Path) -> Vec<Seed> {
    let records = parse_csv(&read(&dir.join("courses-en/coursera.csv")));
    records
        .iter()
        .skip(1)
        .filter(|r| r.len() >= 6)
        .take(COURSERA_COURSES)
        .map(|r| Seed {
            key: format!("coursera:{}", r[0].trim()),
            body: json!({
                "title": r[1].trim(),
                "description": format!("Offered by {}. {} {}.", r[2].trim(), r[5].trim(), r[3].trim().to_lowercase()),
                "tags": [cut(r[2].trim(), 50)],
                "languages": ["en"],
            }),
            subtitles: Vec::new(),
        })
        .collect()
}

/// CSL: `kg/dev.tsv` lines are `to keywords<TAB>abstract title<TAB>kw_kw_…` (the title is
/// the abstract's last space-separated part); `cls_ctg/train.tsv` lines are
/// `to category<TAB>title<TAB>category`. No quoting: quotes are literal.
fn csl_seeds(dir: &Path) -> Vec<Seed> {
    let mut seeds = Vec::new();
    let papers = read(&dir.join("csl/kg/dev.tsv"));
    for (number, line) in papers.lines().enumerate().take(CSL_PAPERS) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "csl/kg/dev.tsv line {}", number + 1);
        let (abstract_text, title) = fields[1]
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("csl/kg/dev.tsv line {}: no title", number + 1));
        let mut tags: Vec<String> = Vec::new();
        for keyword in fields[2]
            .split('_')
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            let keyword = cut(keyword, 50);
            if !tags.contains(&keyword) && tags.len() < 50 {
                tags.push(keyword);
            }
        }
        seeds.push(Seed {
            key: format!("csl-dev:{}", number + 1),
            body: json!({
                "title": cut(title.trim(), 300),
                "description": abstract_text.trim(),
                "tags": tags,
                "subjects": ["science_technology"],
                "languages": ["zh"],
            }),
            subtitles: Vec::new(),
        });
    }
    let titles = read(&dir.join("csl/cls_ctg/train.tsv"));
    for (number, line) in titles.lines().enumerate().take(CSL_TITLES) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 3, "csl/cls_ctg/train.tsv line {}", number + 1);
        seeds.push(Seed {
            key: format!("csl-train:{}", number + 1),
            body: json!({
                "title": cut(fields[1].trim(), 300),
                "tags": [fields[2].trim()],
                "languages": ["zh"],
            }),
            subtitles: Vec::new(),
        });
    }
    seeds
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text between `<tag>` and `</tag>`, first occurrence.
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..end])
}

/// A talk from a WIT3 XML file: title and `(seg id, text)` in order.
struct Talk {
    title: String,
    segments: Vec<(usize, String)>,
}

/// Every talk of the `.xml` files under `dir`, by talk id.
fn talks_in(dir: &Path) -> HashMap<String, Talk> {
    let mut talks = HashMap::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("xml") {
            continue;
        }
        let xml = read(&path);
        for doc in xml.split("<doc ").skip(1) {
            let doc = doc.split("</doc>").next().unwrap_or_default();
            let talk_id = element(doc, "talkid").expect("talkid").trim().to_owned();
            let title = xml_unescape(element(doc, "title").expect("title").trim());
            let mut segments = Vec::new();
            for piece in doc.split("<seg id=\"").skip(1) {
                let (id, rest) = piece.split_once("\">").expect("seg id");
                let text = rest.split("</seg>").next().unwrap_or_default();
                let text = xml_unescape(text)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                segments.push((id.parse().expect("numeric seg id"), text));
            }
            talks.insert(talk_id, Talk { title, segments });
        }
    }
    talks
}

fn srt_time(total_seconds: usize) -> String {
    format!(
        "{:02}:{:02}:{:02},000",
        total_seconds / 3600,
        total_seconds / 60 % 60,
        total_seconds % 60
    )
}

/// One cue per segment; segment `n` starts at `(n - 1) * 4` s (synthetic: WIT3 has no times).
fn srt(segments: &[(usize, String)]) -> String {
    let mut out = String::new();
    for (number, (id, text)) in segments.iter().enumerate() {
        let start = (id - 1) * SYNTHETIC_CUE_SECONDS;
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            number + 1,
            srt_time(start),
            srt_time(start + SYNTHETIC_CUE_SECONDS),
            text
        ));
    }
    out
}

/// The chosen TED talks: English title, Chinese title as description, and two SRT files. The
/// archives are unpacked with the system `tar` into a temporary directory.
fn ted_seeds(dir: &Path) -> Vec<Seed> {
    let unpacked = tempfile::tempdir().expect("temporary directory");
    for archive in ["en-zh.tgz", "zh-en.tgz"] {
        let status = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(dir.join("ted-en-zh").join(archive))
            .arg("-C")
            .arg(unpacked.path())
            .status()
            .expect("running tar");
        assert!(status.success(), "tar -xzf {archive}: {status}");
    }
    let english = talks_in(&unpacked.path().join("en-zh"));
    let chinese = talks_in(&unpacked.path().join("zh-en"));
    TED_TALKS
        .iter()
        .map(|id| {
            let en = &english[*id];
            let zh = &chinese[*id];
            Seed {
                key: format!("ted:{id}"),
                body: json!({
                    "title": en.title,
                    "description": zh.title,
                    "tags": ["TED"],
                    "languages": ["en", "zh"],
                }),
                subtitles: vec![
                    (format!("talk-{id}.en.srt"), srt(&en.segments)),
                    (format!("talk-{id}.zh.srt"), srt(&zh.segments)),
                ],
            }
        })
        .collect()
}

fn hand_written_seeds() -> Vec<Seed> {
    HAND_WRITTEN
        .iter()
        .map(|(key, title, description, tags, subjects, audience)| Seed {
            key: (*key).to_owned(),
            body: json!({
                "title": title,
                "description": description,
                "tags": tags,
                "subjects": subjects,
                "audience": audience,
                "languages": ["zh"],
            }),
            subtitles: Vec::new(),
        })
        .collect()
}

/// A site admin registers the institution and adds a staff member; returns the staff token.
async fn staff_of_a_new_institution(app: &TestApp) -> String {
    let admin = app.admin().await;
    app.institution(&admin, INSTITUTION, "zhejiang/hangzhou/xihu")
        .await;
    let staff = app.resident("teacher@example.org").await;
    let added = app
        .post_json_with_token(
            &format!("/api/v1/institutions/{INSTITUTION}/members"),
            &admin,
            &json!({"email": "teacher@example.org", "role": "staff"}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    staff
}

/// Creates every seed through the API (a few at a time), uploads the subtitles, and returns
/// key → course id.
async fn create_corpus(app: &TestApp, token: &str, seeds: Vec<Seed>) -> HashMap<String, String> {
    let created: Vec<(String, String)> = futures::stream::iter(seeds)
        .map(|seed| async move {
            let mut body = seed.body;
            body["institution"] = json!(INSTITUTION);
            let response = app
                .post_json_with_token("/api/v1/courses", token, &body)
                .await;
            assert_eq!(
                response.status(),
                StatusCode::CREATED,
                "{}: {body}",
                seed.key
            );
            let id = response.json::<Value>().await.expect("course JSON")["id"]
                .as_str()
                .expect("id")
                .to_owned();
            for (name, text) in seed.subtitles {
                let uploaded = app.put_file(token, &id, &name, text.into_bytes()).await;
                assert_eq!(uploaded.status(), StatusCode::CREATED, "{name}");
            }
            (seed.key, id)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut ids = HashMap::new();
    for (key, id) in created {
        assert!(ids.insert(key.clone(), id).is_none(), "duplicate key {key}");
    }
    ids
}

struct Outcome {
    passed: bool,
    /// Rank (from 1, within the first 10) of each expected course, `None` when absent.
    ranks: Vec<Option<usize>>,
    total: u64,
    top: Vec<String>,
    timestamped: Option<bool>,
    /// Set when the search did not answer 200.
    status: Option<StatusCode>,
}

async fn run_query(
    app: &TestApp,
    query: &str,
    expected: &[&str],
    kind: Kind,
    ids: &HashMap<String, String>,
) -> Outcome {
    let response = app
        .client
        .get(app.url("/api/v1/search"))
        .query(&[("q", query), ("limit", "10")])
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    if status != StatusCode::OK {
        // Counted as a failure, not a crash of the whole set: the table shows the status.
        return Outcome {
            passed: false,
            ranks: vec![None; expected.len()],
            total: 0,
            top: vec![format!(
                "HTTP {status}: {}",
                response.text().await.unwrap_or_default()
            )],
            timestamped: None,
            status: Some(status),
        };
    }
    let results: Value = response.json().await.expect("search JSON");
    let hits = results["hits"].as_array().expect("hits").clone();
    let hit_ids: Vec<&str> = hits
        .iter()
        .map(|h| h["id"].as_str().unwrap_or(""))
        .collect();
    let ranks: Vec<Option<usize>> = expected
        .iter()
        .map(|key| {
            let id = &ids[*key];
            hit_ids.iter().position(|h| h == id).map(|p| p + 1)
        })
        .collect();
    let in_top_3 = ranks.iter().all(|r| r.is_some_and(|r| r <= 3));
    let timestamped = (kind == Subtitle).then(|| {
        expected.iter().all(|key| {
            hits.iter()
                .find(|h| h["id"].as_str() == Some(ids[*key].as_str()))
                .is_some_and(|h| h["matches"][0]["at_seconds"].is_number())
        })
    });
    let key_of: HashMap<&str, &str> = ids.iter().map(|(k, v)| (v.as_str(), k.as_str())).collect();
    let top = hits
        .iter()
        .take(3)
        .map(|h| {
            let id = h["id"].as_str().unwrap_or("");
            format!(
                "{} {}",
                key_of.get(id).copied().unwrap_or("?"),
                cut(h["title"].as_str().unwrap_or(""), 40)
            )
        })
        .collect();
    Outcome {
        passed: in_top_3 && timestamped.unwrap_or(true),
        ranks,
        total: results["total"].as_u64().unwrap_or(0),
        top,
        timestamped,
        status: None,
    }
}

#[tokio::test]
async fn relevance_set_passes_at_least_95_percent() {
    let started = Instant::now();
    let dir = data_dir();
    let mut seeds = hand_written_seeds();
    seeds.extend(ted_seeds(&dir));
    seeds.extend(edx_seeds(&dir));
    seeds.extend(coursera_seeds(&dir));
    seeds.extend(csl_seeds(&dir));
    let known: HashSet<&str> = seeds.iter().map(|s| s.key.as_str()).collect();
    for (query, expected, _) in QUERIES {
        for key in *expected {
            assert!(
                known.contains(key),
                "{query:?} expects {key}, not in the corpus"
            );
        }
    }

    let app = TestApp::spawn().await;
    let staff = staff_of_a_new_institution(&app).await;
    let course_count = seeds.len();
    let ids = create_corpus(&app, &staff, seeds).await;
    app.wait_for_extraction().await;
    app.wait_for_index().await;
    let indexed = started.elapsed();

    let mut passed = 0;
    let mut by_kind: Vec<(Kind, usize, usize)> = Vec::new();
    println!(
        "\n{:<4} {:<10} {:<36} {:<10} {:>5}  top 3 / ranks",
        "", "kind", "query", "ranks", "total"
    );
    for (query, expected, kind) in QUERIES {
        let outcome = run_query(&app, query, expected, *kind, &ids).await;
        if outcome.passed {
            passed += 1;
        }
        match by_kind.iter_mut().find(|(k, _, _)| k == kind) {
            Some(entry) => {
                entry.1 += usize::from(outcome.passed);
                entry.2 += 1;
            }
            None => by_kind.push((*kind, usize::from(outcome.passed), 1)),
        }
        let ranks = outcome
            .ranks
            .iter()
            .map(|r| r.map_or("-".to_owned(), |r| r.to_string()))
            .collect::<Vec<_>>()
            .join(",");
        let note = match (outcome.status, outcome.timestamped) {
            (Some(status), _) => format!(" (HTTP {})", status.as_u16()),
            (None, Some(false)) => " (no at_seconds)".to_owned(),
            _ => String::new(),
        };
        println!(
            "{:<4} {:<10} {:<36} {:<10} {:>5}{}",
            if outcome.passed { "PASS" } else { "FAIL" },
            kind.label(),
            query,
            ranks,
            outcome.total,
            note
        );
        if !outcome.passed {
            println!("       expected {expected:?}; top 3: {:?}", outcome.top);
        }
    }
    let share = passed as f64 / QUERIES.len() as f64;
    println!(
        "\nby kind: {}",
        by_kind
            .iter()
            .map(|(k, p, n)| format!("{} {p}/{n}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "relevance: {passed}/{} passed ({:.1}%) over {course_count} courses; corpus ready in {:.1} s, total {:.1} s",
        QUERIES.len(),
        share * 100.0,
        indexed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        share >= REQUIRED_SHARE,
        "relevance: {passed}/{} queries passed ({:.1}%), below {:.0}%",
        QUERIES.len(),
        share * 100.0,
        REQUIRED_SHARE * 100.0
    );
}
