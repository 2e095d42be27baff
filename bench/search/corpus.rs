//! The benchmark corpus: real texts from the shared data sets, read at run time (their licences
//! allow internal testing only, so nothing is copied into the repository), recombined to any
//! size with the scheme of the data README ("Catalogue and benchmark load").
//!
//! Base list B: KUAKE-QTR distinct titles (Chinese), `NFCorpus` dev docs (English: title = the
//! text before `pubmed ncbi abstract`, body = the abstract), Udemy titles, edX courses (summary +
//! description), Coursera titles, CSL papers (`kg/dev`, `kg/test` with abstract and keywords,
//! then `cls_ctg/train` titles with their category). Unlike the README's scheme, B interleaves
//! the sources evenly (each source's records keep their file order and are spread across B),
//! so that any prefix, such as the 5,000 documents of a quick run, mixes every source and both
//! languages. The 50 TED talk headers are left out: they sit in `.tgz` archives and the crate
//! has no tar reader.
//!
//! Document `k`: `b = B[k mod |B|]`, `r = k div |B|`. Round 0 emits `b` as is; round `r > 0`
//! appends a donor `d` of the same language pool, `d = P[(p + 7919·r) mod |P|]` where `p` is
//! `b`'s position in its pool `P`: title `b.title + " " + d.title`, description
//! `b.body + " " + d.body`, tags of both. Every document is distinct without artificial
//! tokens, and documents are generated on demand, so a million of them never sit in memory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// How far apart a document's donor is from it in its language pool (prime, coprime with both
/// pool sizes).
const DONOR_STRIDE: usize = 7919;
const MAX_TITLE_CHARS: usize = 300;
const MAX_DESCRIPTION_CHARS: usize = 20_000;
const MAX_TAGS: usize = 20;
const MAX_TAG_CHARS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Kuake,
    NfCorpus,
    Udemy,
    Edx,
    Coursera,
    Csl,
}

/// One record of the base list.
#[derive(Debug, Clone)]
pub struct Item {
    pub source: Source,
    pub lang: Lang,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    /// The course subject the record maps to (the catalog's vocabulary).
    pub subject: &'static str,
}

/// A generated course.
#[derive(Debug, Clone)]
pub struct Doc {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub subjects: Vec<&'static str>,
    pub audience: &'static str,
    pub level: &'static str,
    pub language: &'static str,
    /// Index into [`INSTITUTIONS`].
    pub institution: usize,
}

/// Institutions the courses are spread over: (slug, name, region).
pub const INSTITUTIONS: [(&str, &str, &str); 12] = [
    ("xihu-college", "西湖社区学院", "zhejiang/hangzhou/xihu"),
    (
        "gongshu-school",
        "拱墅社区学校",
        "zhejiang/hangzhou/gongshu",
    ),
    ("yinzhou-college", "鄞州社区学院", "zhejiang/ningbo/yinzhou"),
    ("haidian-center", "海淀学习中心", "beijing/haidian"),
    ("chaoyang-center", "朝阳学习中心", "beijing/chaoyang"),
    ("pudong-college", "浦东社区学院", "shanghai/pudong"),
    ("xuhui-school", "徐汇社区学校", "shanghai/xuhui"),
    (
        "tianhe-college",
        "天河社区学院",
        "guangdong/guangzhou/tianhe",
    ),
    (
        "nanshan-school",
        "南山社区学校",
        "guangdong/shenzhen/nanshan",
    ),
    ("wuhou-center", "武侯学习中心", "sichuan/chengdu/wuhou"),
    ("gulou-college", "鼓楼社区学院", "jiangsu/nanjing/gulou"),
    ("lixia-school", "历下社区学校", "shandong/jinan/lixia"),
];

pub const AUDIENCES: [&str; 5] = ["children", "youth", "adults", "seniors", "families"];
const LEVELS: [&str; 3] = ["beginner", "intermediate", "advanced"];

pub struct Corpus {
    pub dir: PathBuf,
    pub items: Vec<Item>,
    /// Positions in `items` of each language's records, and each record's place in its pool.
    zh: Vec<usize>,
    en: Vec<usize>,
    pool_position: Vec<usize>,
}

impl Corpus {
    pub fn load(dir: &Path) -> anyhow::Result<Corpus> {
        anyhow::ensure!(
            dir.join("README.md").is_file(),
            "the search benchmark reads the shared data sets from {} (set BENCH_DATA_DIR), but \
             that directory is missing or incomplete",
            dir.display()
        );
        let mut items = Vec::new();
        items.extend(kuake(dir)?);
        items.extend(nfcorpus(dir)?);
        items.extend(udemy(dir)?);
        items.extend(edx(dir)?);
        items.extend(coursera(dir)?);
        items.extend(csl(dir)?);
        let items = interleave(items);
        let (mut zh, mut en) = (Vec::new(), Vec::new());
        let mut pool_position = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let pool = if item.lang == Lang::Zh {
                &mut zh
            } else {
                &mut en
            };
            pool_position.push(pool.len());
            pool.push(i);
        }
        Ok(Corpus {
            dir: dir.to_path_buf(),
            items,
            zh,
            en,
            pool_position,
        })
    }

    pub fn count(&self, source: Source) -> usize {
        self.items.iter().filter(|i| i.source == source).count()
    }

    pub fn pool_sizes(&self) -> (usize, usize) {
        (self.zh.len(), self.en.len())
    }

    pub fn base_bytes(&self) -> usize {
        self.items
            .iter()
            .map(|i| i.title.len() + i.body.len())
            .sum()
    }

    /// The base record and, from round 1 on, the donor of document `k`.
    fn parts(&self, k: usize) -> (&Item, Option<&Item>) {
        let n = self.items.len();
        let (b, round) = (k % n, k / n);
        let base = &self.items[b];
        if round == 0 {
            return (base, None);
        }
        let pool = if base.lang == Lang::Zh {
            &self.zh
        } else {
            &self.en
        };
        let donor = pool[(self.pool_position[b] + DONOR_STRIDE * round) % pool.len()];
        (base, Some(&self.items[donor]))
    }

    pub fn lang(&self, k: usize) -> Lang {
        self.items[k % self.items.len()].lang
    }

    pub fn doc(&self, k: usize) -> Doc {
        let (base, donor) = self.parts(k);
        let (mut title, mut description, mut tags) =
            (base.title.clone(), base.body.clone(), base.tags.clone());
        let mut subjects = vec![base.subject];
        if let Some(d) = donor {
            title.push(' ');
            title.push_str(&d.title);
            if !d.body.is_empty() {
                if !description.is_empty() {
                    description.push(' ');
                }
                description.push_str(&d.body);
            }
            for tag in &d.tags {
                if tags.len() < MAX_TAGS && !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
            if !subjects.contains(&d.subject) {
                subjects.push(d.subject);
            }
        }
        Doc {
            title: cut(&title, MAX_TITLE_CHARS),
            description: cut(&description, MAX_DESCRIPTION_CHARS),
            tags,
            subjects,
            audience: AUDIENCES[mix(k as u64, 1) as usize % AUDIENCES.len()],
            level: LEVELS[mix(k as u64, 2) as usize % LEVELS.len()],
            language: if base.lang == Lang::Zh { "zh" } else { "en" },
            institution: mix(k as u64, 3) as usize % INSTITUTIONS.len(),
        }
    }
}

/// Spreads each source's records evenly over the list, keeping their order: record `i` of a
/// source with `c` records sorts at `(i + 0.5) / c`.
fn interleave(items: Vec<Item>) -> Vec<Item> {
    let mut totals: Vec<(Source, usize)> = Vec::new();
    for item in &items {
        match totals.iter_mut().find(|(s, _)| *s == item.source) {
            Some((_, n)) => *n += 1,
            None => totals.push((item.source, 1)),
        }
    }
    let mut seen: Vec<(Source, usize)> = totals.iter().map(|(s, _)| (*s, 0)).collect();
    let mut keyed: Vec<(f64, Item)> = items
        .into_iter()
        .map(|item| {
            let total = totals
                .iter()
                .find(|(s, _)| *s == item.source)
                .map_or(1, |t| t.1);
            let at = seen
                .iter_mut()
                .find(|(s, _)| *s == item.source)
                .expect("every source was counted");
            let key = (at.1 as f64 + 0.5) / total as f64;
            at.1 += 1;
            (key, item)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// A cheap deterministic hash of (k, salt), for spreading attributes over documents.
pub fn mix(k: u64, salt: u64) -> u64 {
    let mut z = k
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => text[..at].trim_end().to_owned(),
        None => text.to_owned(),
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned())
}

fn tag_list<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for value in values {
        let tag = cut(value.trim(), MAX_TAG_CHARS);
        if !tag.is_empty() && tags.len() < MAX_TAGS && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

/// KUAKE-QTR: the distinct titles, in file order (a title only: no body).
fn kuake(dir: &Path) -> anyhow::Result<Vec<Item>> {
    #[derive(serde::Deserialize)]
    struct Pair {
        title: String,
    }
    let pairs: Vec<Pair> = serde_json::from_str(&read(&dir.join("kuake-qtr/train.json"))?)?;
    let mut seen = HashSet::new();
    Ok(pairs
        .into_iter()
        .filter(|p| !p.title.trim().is_empty() && seen.insert(p.title.clone()))
        .map(|p| Item {
            source: Source::Kuake,
            lang: Lang::Zh,
            title: p.title.trim().to_owned(),
            body: String::new(),
            tags: Vec::new(),
            subject: "health",
        })
        .collect())
}

/// `NFCorpus` dev docs: `ID<TAB>title pubmed ncbi abstract abstract…` (already lower-cased).
fn nfcorpus(dir: &Path) -> anyhow::Result<Vec<Item>> {
    let text = read(&dir.join("nfcorpus/dev.docs"))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(_, text)| {
            let (title, body) = text
                .split_once(" pubmed ncbi abstract ")
                .unwrap_or((text, ""));
            Item {
                source: Source::NfCorpus,
                lang: Lang::En,
                title: cut(title.trim(), MAX_TITLE_CHARS),
                body: body.trim().to_owned(),
                tags: Vec::new(),
                subject: "health",
            }
        })
        .collect())
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

fn course_subject(subject: &str) -> &'static str {
    let s = subject.to_lowercase();
    if s.contains("computer") || s.contains("data") || s.contains("web") || s.contains("design") {
        "digital_skills"
    } else if s.contains("health") || s.contains("medicine") || s.contains("food") {
        "health"
    } else if s.contains("music") || s.contains("art") || s.contains("history") {
        "humanities_arts"
    } else if s.contains("science") || s.contains("engineering") || s.contains("math") {
        "science_technology"
    } else {
        "vocational_skills"
    }
}

/// Udemy: line 1 is a title row, line 2 the header; title, subject as tag.
fn udemy(dir: &Path) -> anyhow::Result<Vec<Item>> {
    let records = parse_csv(&read(&dir.join("courses-en/udemy_courses.csv"))?);
    Ok(records
        .iter()
        .skip(2)
        .filter(|r| r.len() >= 12 && !r[1].trim().is_empty())
        .map(|r| Item {
            source: Source::Udemy,
            lang: Lang::En,
            title: cut(r[1].trim(), MAX_TITLE_CHARS),
            body: String::new(),
            tags: tag_list([r[11].as_str()]),
            subject: course_subject(&r[11]),
        })
        .collect())
}

/// edX: rows whose URL column is an edX course address (the rest are spilled syllabus lines);
/// title, summary + description, subject as tag.
fn edx(dir: &Path) -> anyhow::Result<Vec<Item>> {
    const URL_PREFIX: &str = "https://www.edx.org/course/";
    let records = parse_csv(&read(&dir.join("courses-en/edx_courses.csv"))?);
    let mut seen = HashSet::new();
    Ok(records
        .iter()
        .skip(1)
        .filter(|r| r.len() >= 16 && r[15].starts_with(URL_PREFIX) && seen.insert(r[15].clone()))
        .map(|r| {
            let summary = if r[1].trim() == "NA" { "" } else { r[1].trim() };
            Item {
                source: Source::Edx,
                lang: Lang::En,
                title: cut(r[0].trim(), MAX_TITLE_CHARS),
                body: format!("{summary} {}", r[13].trim()).trim().to_owned(),
                tags: tag_list([r[7].as_str()]),
                subject: course_subject(&r[7]),
            }
        })
        .collect())
}

/// Coursera: title, "Offered by <organisation>. <level> <certificate type>.", organisation tag.
fn coursera(dir: &Path) -> anyhow::Result<Vec<Item>> {
    let records = parse_csv(&read(&dir.join("courses-en/coursera.csv"))?);
    Ok(records
        .iter()
        .skip(1)
        .filter(|r| r.len() >= 6 && !r[1].trim().is_empty())
        .map(|r| Item {
            source: Source::Coursera,
            lang: Lang::En,
            title: cut(r[1].trim(), MAX_TITLE_CHARS),
            body: format!(
                "Offered by {}. {} {}.",
                r[2].trim(),
                r[5].trim(),
                r[3].trim().to_lowercase()
            ),
            tags: tag_list([r[2].as_str()]),
            subject: "vocational_skills",
        })
        .collect())
}

fn csl_subject(category: &str) -> &'static str {
    match category.trim() {
        "医学" => "health",
        "农学" | "管理学" | "经济学" => "vocational_skills",
        "历史学" | "文学" | "艺术学" | "哲学" | "法学" | "教育学" => {
            "humanities_arts"
        }
        _ => "science_technology",
    }
}

/// CSL: `kg/{dev,test}.tsv` (abstract + " " + title, keywords joined by `_`), whose papers are
/// those of `cls_ctg/{dev,test}.tsv` line by line (title, category); then `cls_ctg/train.tsv`
/// titles with their category as tag. No quoting: quotes are literal.
fn csl(dir: &Path) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    for split in ["dev", "test"] {
        let papers = read(&dir.join(format!("csl/kg/{split}.tsv")))?;
        let titles = read(&dir.join(format!("csl/cls_ctg/{split}.tsv")))?;
        for (paper, titled) in papers.lines().zip(titles.lines()) {
            let p: Vec<&str> = paper.split('\t').collect();
            let t: Vec<&str> = titled.split('\t').collect();
            if p.len() != 3 || t.len() != 3 {
                continue;
            }
            let title = t[1].trim();
            let abstract_text = p[1]
                .trim_end()
                .strip_suffix(title)
                .unwrap_or_else(|| p[1].rsplit_once(' ').map_or(p[1], |(a, _)| a))
                .trim();
            let mut tags = tag_list(p[2].split('_'));
            tags.extend(tag_list([t[2]]));
            items.push(Item {
                source: Source::Csl,
                lang: Lang::Zh,
                title: cut(title, MAX_TITLE_CHARS),
                body: abstract_text.to_owned(),
                tags,
                subject: csl_subject(t[2]),
            });
        }
    }
    let titles = read(&dir.join("csl/cls_ctg/train.tsv"))?;
    for line in titles.lines() {
        let t: Vec<&str> = line.split('\t').collect();
        if t.len() != 3 || t[1].trim().is_empty() {
            continue;
        }
        items.push(Item {
            source: Source::Csl,
            lang: Lang::Zh,
            title: cut(t[1].trim(), MAX_TITLE_CHARS),
            body: String::new(),
            tags: tag_list([t[2]]),
            subject: csl_subject(t[2]),
        });
    }
    Ok(items)
}
