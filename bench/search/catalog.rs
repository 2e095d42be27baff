//! Setup, not measured: the corpus as rows of the real SQLite database (migrated by the server's
//! own `open_database`), institutions, `courses` and one `upsert` `catalog_log` entry per course,
//! all inserted in bulk with SQL in one transaction, as if every course had been published.

use std::time::Instant;

use shuyuan::Config;
use shuyuan::catalog::model::{Audience, Course, InstitutionRef, Level, Subject};
use uuid::Uuid;

use crate::corpus::{Corpus, Doc, INSTITUTIONS};

/// The `origin` of every bench course.
pub const ORIGIN: &str = "https://bench.shuyuan.invalid";
pub const LICENSE: &str = "CC-BY-4.0";
/// `created_at` of document 0; document `k` is `k` ms newer, so "newest" has a strict order.
const BASE_MS: i64 = 1_735_689_600_000;
const ROWS_PER_INSERT: usize = 256;
const BOUND_PER_ROW: usize = 15;

/// Time-ordered like the UUIDv7 ids the server mints, so the `courses` primary key grows in
/// log order as it does in production.
pub fn course_id(k: usize) -> Uuid {
    let ms = BASE_MS as u128 + k as u128;
    Uuid::from_u128((ms << 80) | (0x7 << 76) | (0x2 << 62) | k as u128)
}

pub fn institution_id(i: usize) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128)
}

pub fn created_at(k: usize) -> i64 {
    BASE_MS + k as i64
}

fn json(items: &[&str]) -> String {
    serde_json::to_string(items).expect("strings serialize")
}

/// The course the database will hold for document `k`, built in memory (for raw tantivy).
pub fn course(k: usize, doc: &Doc) -> Course {
    let (slug, name, region) = INSTITUTIONS[doc.institution];
    Course {
        id: course_id(k),
        origin: ORIGIN.to_owned(),
        institution: InstitutionRef {
            id: Some(institution_id(doc.institution)),
            slug: slug.to_owned(),
            name: name.to_owned(),
        },
        title: doc.title.clone(),
        description: doc.description.clone(),
        subjects: doc
            .subjects
            .iter()
            .map(|s| Subject::parse(s).expect("bench subjects are in the vocabulary"))
            .collect(),
        audience: vec![Audience::parse(doc.audience).expect("bench audiences are valid")],
        level: Level::parse(doc.level).expect("bench levels are valid"),
        languages: vec![doc.language.to_owned()],
        license: LICENSE.to_owned(),
        tags: doc.tags.clone(),
        credits: 1.0,
        region: region.to_owned(),
        version: 1,
        withdrawn: false,
        created_at_ms: created_at(k),
        updated_at_ms: created_at(k),
        files: Vec::new(),
    }
}

/// Inserts `n` courses and their log entries; returns the seconds it took.
pub async fn populate(config: &Config, corpus: &Corpus, n: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let db = shuyuan::startup::open_database(config).await?;
    let mut tx = db.pool().begin().await?;
    for (i, (slug, name, region)) in INSTITUTIONS.iter().enumerate() {
        sqlx::query(
            "INSERT INTO institutions (id, slug, name, kind, region, created_at) \
             VALUES ($1, $2, $3, 'community_school', $4, $5)",
        )
        .bind(institution_id(i).to_string())
        .bind(*slug)
        .bind(*name)
        .bind(*region)
        .bind(BASE_MS)
        .execute(&mut *tx)
        .await?;
    }
    let mut start = 0;
    while start < n {
        let end = (start + ROWS_PER_INSERT).min(n);
        // 13 bound values, the literal version 1, then created_at and updated_at.
        let rows: Vec<String> = (0..end - start)
            .map(|r| {
                let p = |i: usize| format!("${}", r * BOUND_PER_ROW + i + 1);
                let first: Vec<String> = (0..13).map(p).collect();
                format!("({}, 1, {}, {})", first.join(", "), p(13), p(14))
            })
            .collect();
        let sql = format!(
            "INSERT INTO courses (id, origin, institution_id, title, description, subjects, \
             audience, level, languages, license, tags, credits, region, version, created_at, \
             updated_at) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for k in start..end {
            let doc = corpus.doc(k);
            let (_, _, region) = INSTITUTIONS[doc.institution];
            let tags: Vec<&str> = doc.tags.iter().map(String::as_str).collect();
            query = query
                .bind(course_id(k).to_string())
                .bind(ORIGIN)
                .bind(institution_id(doc.institution).to_string())
                .bind(doc.title)
                .bind(doc.description)
                .bind(json(&doc.subjects))
                .bind(json(&[doc.audience]))
                .bind(doc.level)
                .bind(json(&[doc.language]))
                .bind(LICENSE)
                .bind(json(&tags))
                .bind(1.0_f64)
                .bind(region)
                .bind(created_at(k))
                .bind(created_at(k));
        }
        query.execute(&mut *tx).await?;
        start = end;
    }
    sqlx::query(
        "INSERT INTO catalog_log (course_id, op, origin, origin_version, created_at) \
         SELECT id, 'upsert', origin, version, created_at FROM courses ORDER BY created_at",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    db.close().await;
    Ok(started.elapsed().as_secs_f64())
}
