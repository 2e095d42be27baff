//! `NFCorpus` dev: `dev.docs` as documents, a query file (`dev.titles.queries`,
//! `dev.vid-titles.queries`) as queries, `dev.2-1-0.qrel` (grades 2 and 1, the paper's version)
//! as judgements.
//!
//! A document's text is its `PubMed` title, a marker, then the abstract. The title becomes the
//! course title and the abstract its description, as a course would have them. The marker is
//! `pubmed ncbi abstract` in most documents but only `abstract` in others; a document with
//! neither inside its text (its abstract starts with `summary`, say) has no title that can be
//! told apart, so its whole text is the description and its title stays empty. The counts of
//! each case are printed.

use std::collections::HashMap;
use std::path::Path;

use crate::collection::{Collection, Doc, Query, QuerySet, read};

const MARKERS: [&str; 2] = [" pubmed ncbi abstract ", " abstract "];

pub struct NfCorpus {
    pub collection: Collection,
    /// Query id → document number → grade.
    qrels: HashMap<String, HashMap<usize, u32>>,
}

pub fn load(dir: &Path) -> anyhow::Result<NfCorpus> {
    let dir = dir.join("nfcorpus");
    let mut docs = Vec::new();
    let mut numbers = HashMap::new();
    let mut split_at = [0; MARKERS.len()];
    for line in read(&dir.join("dev.docs"))?.lines() {
        let Some((id, text)) = line.split_once('\t') else {
            anyhow::ensure!(line.trim().is_empty(), "dev.docs: no tab in {line:?}");
            continue;
        };
        let text = text.trim();
        let split = MARKERS
            .iter()
            .enumerate()
            .find_map(|(m, marker)| text.split_once(marker).map(|parts| (m, parts)));
        let doc = match split {
            Some((m, (title, abstract_text))) => {
                split_at[m] += 1;
                Doc {
                    title: title.trim().to_owned(),
                    description: abstract_text.trim().to_owned(),
                }
            }
            None => Doc {
                title: String::new(),
                description: text.to_owned(),
            },
        };
        anyhow::ensure!(
            numbers.insert(id.to_owned(), docs.len()).is_none(),
            "dev.docs: {id} appears twice"
        );
        docs.push(doc);
    }
    let mut qrels: HashMap<String, HashMap<usize, u32>> = HashMap::new();
    let mut judgements = 0;
    for line in read(&dir.join("dev.2-1-0.qrel"))?.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let [query, _, doc, grade] = fields[..] else {
            anyhow::ensure!(line.trim().is_empty(), "dev.2-1-0.qrel: bad line {line:?}");
            continue;
        };
        let doc = *numbers
            .get(doc)
            .ok_or_else(|| anyhow::anyhow!("dev.2-1-0.qrel: {doc} is not in dev.docs"))?;
        let grade: u32 = grade
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("dev.2-1-0.qrel: grade {grade:?}: {e}"))?;
        qrels
            .entry(query.to_owned())
            .or_default()
            .insert(doc, grade);
        judgements += 1;
    }
    let unsplit = docs.len() - split_at.iter().sum::<usize>();
    let notes = format!(
        "{} documents: title and abstract split at \"pubmed ncbi abstract\" in {}, at \"abstract\" in {}, \
         {unsplit} without either (whole text as the description); {judgements} judgements (2-1-0) for {} queries",
        docs.len(),
        split_at[0],
        split_at[1],
        qrels.len()
    );
    Ok(NfCorpus {
        collection: Collection {
            docs,
            language: "en",
            notes,
        },
        qrels,
    })
}

impl NfCorpus {
    /// The queries of `dev.<name>.queries` with their judgements (none for a query without
    /// qrels: it is then skipped like one without a relevant document).
    pub fn queries(&self, dir: &Path, name: &str) -> anyhow::Result<QuerySet> {
        let file = format!("dev.{name}.queries");
        let mut queries = Vec::new();
        for line in read(&dir.join("nfcorpus").join(&file))?.lines() {
            let Some((id, text)) = line.split_once('\t') else {
                anyhow::ensure!(line.trim().is_empty(), "{file}: no tab in {line:?}");
                continue;
            };
            queries.push(Query {
                text: text.trim().to_owned(),
                judged: self.qrels.get(id).cloned().unwrap_or_default(),
            });
        }
        Ok(QuerySet {
            name: format!("NFCorpus dev {name}"),
            queries,
        })
    }
}
