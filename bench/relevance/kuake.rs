//! KUAKE-QTR (train split): every distinct title is a document, every distinct query a query,
//! and its judged titles with their labels (0–3) its judgements.
//!
//! The file is read as it is. Its quirk: 538 titles and 108 queries are wrapped in CSV quoting
//! (`"…"`, inner quotes doubled). The wrapping is removed from the text indexed or searched,
//! because a `"` in a query would make the rest a phrase query; documents and queries are still
//! told apart by their strings as they are in the file, so the counts match the data README
//! (23,880 titles, 6,897 queries).

use std::collections::HashMap;
use std::path::Path;

use crate::collection::{Collection, Doc, Query, QuerySet, read};

#[derive(serde::Deserialize)]
struct Pair {
    query: String,
    title: String,
    label: String,
}

pub fn load(dir: &Path) -> anyhow::Result<(Collection, QuerySet)> {
    let pairs: Vec<Pair> = serde_json::from_str(&read(&dir.join("kuake-qtr/train.json"))?)?;
    let mut doc_numbers: HashMap<&str, usize> = HashMap::new();
    let mut query_numbers: HashMap<&str, usize> = HashMap::new();
    let mut docs = Vec::new();
    let mut queries: Vec<Query> = Vec::new();
    let mut unquoted = 0;
    for pair in &pairs {
        let grade: u32 = match pair.label.as_str() {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            "3" => 3,
            other => anyhow::bail!("KUAKE-QTR: label {other:?} is not 0 to 3"),
        };
        let doc = *doc_numbers.entry(&pair.title).or_insert_with(|| {
            let title = unquote(&pair.title);
            unquoted += usize::from(title != pair.title.trim());
            docs.push(Doc {
                title,
                description: String::new(),
            });
            docs.len() - 1
        });
        let query = *query_numbers.entry(&pair.query).or_insert_with(|| {
            queries.push(Query {
                text: unquote(&pair.query),
                judged: HashMap::new(),
            });
            queries.len() - 1
        });
        anyhow::ensure!(
            queries[query].judged.insert(doc, grade).is_none(),
            "KUAKE-QTR: the pair ({:?}, {:?}) is judged twice",
            pair.query,
            pair.title
        );
    }
    let notes = format!(
        "{} judged pairs; {} distinct titles as documents ({unquoted} unwrapped from CSV quoting), {} distinct queries",
        pairs.len(),
        docs.len(),
        queries.len()
    );
    Ok((
        Collection {
            docs,
            language: "zh",
            notes,
        },
        QuerySet {
            name: "KUAKE-QTR train".to_owned(),
            queries,
        },
    ))
}

/// The text inside CSV quoting (`"a""b"` → `a"b`), trimmed; other text just trimmed.
fn unquote(raw: &str) -> String {
    let text = raw.trim();
    match text
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\"\"", "\"").trim().to_owned(),
        None => text.to_owned(),
    }
}
