//! A test collection: documents, queries and their graded judgements.

use std::collections::HashMap;
use std::path::Path;

/// One document, indexed as one course.
pub struct Doc {
    pub title: String,
    pub description: String,
}

pub struct Query {
    pub text: String,
    /// Document number → grade (0 = judged not relevant).
    pub judged: HashMap<usize, u32>,
}

pub struct Collection {
    pub docs: Vec<Doc>,
    /// The course language (`zh` or `en`), as a course of this collection would declare it.
    pub language: &'static str,
    /// How the files were read, for the report.
    pub notes: String,
}

/// A set of queries over one collection, evaluated as one row.
pub struct QuerySet {
    pub name: String,
    pub queries: Vec<Query>,
}

pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}
