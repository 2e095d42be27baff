//! Shuyuan's search engine over one collection: an index generation made by
//! `search::create_generation` (the production schema and analyzers), one course per document
//! through `documents::course_documents`, and queries ranked by `query::search`, the function
//! behind `GET /api/v1/search`. No database and no HTTP: neither changes the ranking.

use std::path::Path;
use std::time::Instant;

use shuyuan::catalog::model::{Audience, Course, InstitutionRef, Level, Subject};
use shuyuan::search::analysis::{self, ZH_EN};
use shuyuan::search::documents::course_documents;
use shuyuan::search::query::{self, Filters, SearchRequest, Sort};
use shuyuan::search::{OpenIndex, create_generation};
use tantivy::{IndexWriter, TantivyDocument};
use uuid::Uuid;

use crate::collection::{Collection, Doc};

/// The indexer's writer budget (`indexer::WRITER_MEMORY_BYTES`); one thread, as it runs.
const WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;
const ORIGIN: &str = "https://relevance.shuyuan.invalid";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analysis {
    /// `zh_en` as production registers it: jieba, English stemming.
    Shuyuan,
    /// `zh_en` replaced by `analysis::bigram_analyzer` for this index, in indexing and queries.
    Bigram,
}

pub struct Engine {
    open: OpenIndex,
    pub build_seconds: f64,
    _dir: tempfile::TempDir,
}

/// What one search returned.
pub struct Ranked {
    /// Document numbers, best first.
    pub docs: Vec<usize>,
    /// Courses matching the query, beyond the page.
    pub total: usize,
}

impl Engine {
    pub fn build(
        collection: &Collection,
        analysis: Analysis,
        tmp: &Path,
    ) -> anyhow::Result<Engine> {
        let dir = tempfile::Builder::new()
            .prefix("shuyuan-relevance-")
            .tempdir_in(tmp)?;
        let started = Instant::now();
        let open = create_generation(dir.path(), "gen-relevance")?;
        if analysis == Analysis::Bigram {
            // The tokenizer manager is the index's: registering before the writer exists makes
            // both the indexing and `query::search` (which asks the index for its analyzer) use
            // the baseline, with everything else in the engine unchanged.
            open.index
                .tokenizers()
                .register(ZH_EN, analysis::bigram_analyzer());
        }
        let mut writer: IndexWriter<TantivyDocument> =
            open.index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
        for k in index_order(collection.docs.len()) {
            let doc = &collection.docs[k];
            for document in
                course_documents(&open.fields, &course(k, doc, collection.language), &[])
            {
                writer.add_document(document)?;
            }
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        open.reload()?;
        let build_seconds = started.elapsed().as_secs_f64();
        let searchable = open.reader.searcher().num_docs();
        anyhow::ensure!(
            searchable == collection.docs.len() as u64,
            "{searchable} courses searchable, want {}",
            collection.docs.len()
        );
        Ok(Engine {
            open,
            build_seconds,
            _dir: dir,
        })
    }

    /// The first `depth` courses `query::search` returns for `text`, as a resident's search
    /// with no filter, sorted by relevance.
    pub fn search(&self, text: &str, depth: usize) -> anyhow::Result<Ranked> {
        let request = SearchRequest {
            text: text.to_owned(),
            filters: Filters::default(),
            sort: Sort::Relevance,
            offset: 0,
            limit: depth,
        };
        let results = query::search(&self.open, &request)
            .map_err(|e| anyhow::anyhow!("searching {text:?}: {e}"))?;
        let docs = results
            .hits
            .iter()
            .map(|hit| Ok(Uuid::parse_str(&hit.course_id)?.as_u128() as usize))
            .collect::<anyhow::Result<_>>()?;
        Ok(Ranked {
            docs,
            total: results.total,
        })
    }

    /// The terms this engine's `zh_en` analyzer keeps of `text`.
    pub fn terms(&self, text: &str) -> anyhow::Result<Vec<String>> {
        let mut analyzer = self
            .open
            .index
            .tokenizer_for_field(self.open.fields.title)?;
        Ok(analysis::terms(&mut analyzer, text))
    }
}

/// Document numbers in a fixed pseudo-random order. Courses of equal score come out in index
/// order, and the files list judged documents grouped by query (KUAKE-QTR numbers its titles
/// in that order), so indexing them in file order would let ties favour a query's own titles.
fn index_order(docs: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..docs).collect();
    order.sort_by_key(|&k| scramble(k as u64));
    order
}

/// `SplitMix64`'s finaliser: a fixed bijection that scatters consecutive numbers.
fn scramble(k: u64) -> u64 {
    let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Document `k` as a published course: its title and description, everything else the same for
/// every course (the query has no filter, so only the text decides the order). The id encodes
/// `k`, so a hit maps back to its document.
fn course(k: usize, doc: &Doc, language: &str) -> Course {
    Course {
        id: Uuid::from_u128(k as u128),
        origin: ORIGIN.to_owned(),
        institution: InstitutionRef {
            id: None,
            slug: "relevance".to_owned(),
            name: "Relevance".to_owned(),
        },
        title: doc.title.clone(),
        description: doc.description.clone(),
        subjects: vec![Subject::Health],
        audience: vec![Audience::Adults],
        level: Level::Beginner,
        languages: vec![language.to_owned()],
        license: "CC-BY-4.0".to_owned(),
        tags: Vec::new(),
        credits: 1.0,
        region: String::new(),
        version: 1,
        withdrawn: false,
        created_at_ms: k as i64,
        updated_at_ms: k as i64,
        files: Vec::new(),
    }
}
