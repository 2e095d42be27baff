//! The PostgreSQL baseline: full-text search with a GIN index over the same documents.
//!
//! PostgreSQL has no Chinese parser, so every text is segmented first with Shuyuan's own
//! `zh_en` analyzer (jieba, lower-case, English stemmer) and the terms joined by spaces; the
//! `tsvector` is built from that with the `simple` configuration (title weighted A, tags B,
//! description D) in a generated column. A query is segmented the same way and asked as
//! `plainto_tsquery('simple', …)` (every term must match: PostgreSQL's semantics, where
//! Shuyuan ranks documents with any term), ranked by `ts_rank`, `LIMIT 20`. Loading uses
//! `COPY`, then the GIN index is built and the table analysed; none of that is measured.

use std::time::Instant;

use shuyuan::search::analysis;
use sqlx::Executor;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::common::ScratchDatabase;
use crate::corpus::{Corpus, INSTITUTIONS};
use crate::queries::{Filter, Query};

const COPY_CHUNK: usize = 10_000;

pub struct Postgres {
    database: ScratchDatabase,
    pub pool: PgPool,
}

#[derive(Debug, Clone, Default)]
pub struct PgLoad {
    pub seconds: f64,
    pub gin_seconds: f64,
    pub table_bytes: i64,
    pub gin_bytes: i64,
}

fn escape_copy(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn segment(analyzer: &mut tantivy::tokenizer::TextAnalyzer, text: &str) -> String {
    analysis::terms(analyzer, text).join(" ")
}

impl Postgres {
    /// Creates a fresh database named after this process on the server of `admin_url`.
    pub async fn create(admin_url: &str, connections: u32) -> anyhow::Result<Postgres> {
        let database = ScratchDatabase::create(
            admin_url,
            &format!("shuyuan_search_bench_{}", std::process::id()),
        )
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .min_connections(0)
            .connect(&database.url)
            .await?;
        Ok(Postgres { database, pool })
    }

    pub async fn setting(&self, name: &str) -> String {
        sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e: sqlx::Error| format!("? ({e})"))
    }

    pub async fn server_version(&self) -> String {
        sqlx::query_scalar("SHOW server_version")
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e: sqlx::Error| format!("? ({e})"))
    }

    /// (Re)creates the `docs` table with the first `n` documents and its GIN index.
    pub async fn load(&self, corpus: &Corpus, n: usize) -> anyhow::Result<PgLoad> {
        let started = Instant::now();
        self.pool.execute("DROP TABLE IF EXISTS docs").await?;
        self.pool
            .execute(
                "CREATE TABLE docs (
                    id          BIGINT PRIMARY KEY,
                    title       TEXT NOT NULL,
                    subjects    TEXT[] NOT NULL,
                    audience    TEXT NOT NULL,
                    language    TEXT NOT NULL,
                    institution TEXT NOT NULL,
                    region      TEXT NOT NULL,
                    title_seg   TEXT NOT NULL,
                    tags_seg    TEXT NOT NULL,
                    body_seg    TEXT NOT NULL,
                    tsv tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('simple', title_seg), 'A') ||
                        setweight(to_tsvector('simple', tags_seg), 'B') ||
                        setweight(to_tsvector('simple', body_seg), 'D')) STORED
                )",
            )
            .await?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut conn = self.pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw(
                "COPY docs (id, title, subjects, audience, language, institution, region, \
                 title_seg, tags_seg, body_seg) FROM STDIN",
            )
            .await?;
        let mut start = 0;
        while start < n {
            let end = (start + COPY_CHUNK).min(n);
            // Segmenting is the slow part: one thread per core, each a share of the chunk.
            let parts: Vec<String> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            let mut analyzer = analysis::zh_en_analyzer();
                            let mut out = String::new();
                            for k in (start + t..end).step_by(threads) {
                                let doc = corpus.doc(k);
                                let (slug, _, region) = INSTITUTIONS[doc.institution];
                                out.push_str(&k.to_string());
                                out.push('\t');
                                escape_copy(&doc.title, &mut out);
                                out.push_str(&format!(
                                    "\t{{{}}}\t{}\t{}\t{}\t{}\t",
                                    doc.subjects.join(","),
                                    doc.audience,
                                    doc.language,
                                    slug,
                                    region
                                ));
                                escape_copy(&segment(&mut analyzer, &doc.title), &mut out);
                                out.push('\t');
                                escape_copy(&segment(&mut analyzer, &doc.tags.join(" ")), &mut out);
                                out.push('\t');
                                escape_copy(&segment(&mut analyzer, &doc.description), &mut out);
                                out.push('\n');
                            }
                            out
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a segmenting thread panicked"))
                    .collect()
            });
            for part in parts {
                copy.send(part.into_bytes()).await?;
            }
            start = end;
        }
        copy.finish().await?;
        drop(conn);
        let gin_started = Instant::now();
        let mut conn = self.pool.acquire().await?;
        (&mut *conn)
            .execute("SET maintenance_work_mem = '1GB'")
            .await?;
        (&mut *conn)
            .execute("CREATE INDEX docs_tsv ON docs USING gin (tsv)")
            .await?;
        (&mut *conn).execute("VACUUM ANALYZE docs").await?;
        drop(conn);
        let gin_seconds = gin_started.elapsed().as_secs_f64();
        let table_bytes: i64 = sqlx::query_scalar("SELECT pg_table_size('docs')")
            .fetch_one(&self.pool)
            .await?;
        let gin_bytes: i64 = sqlx::query_scalar("SELECT pg_relation_size('docs_tsv')")
            .fetch_one(&self.pool)
            .await?;
        Ok(PgLoad {
            seconds: started.elapsed().as_secs_f64(),
            gin_seconds,
            table_bytes,
            gin_bytes,
        })
    }

    /// One search of the mix: the top 20 rows by `ts_rank`. Returns the rows it got.
    pub async fn search(&self, query: &Query) -> anyhow::Result<usize> {
        const BASE: &str = "SELECT id, title, ts_rank(tsv, q) AS rank \
            FROM docs, plainto_tsquery('simple', $1) q WHERE tsv @@ q";
        let rows = match &query.filter {
            None => {
                sqlx::query(
                    "SELECT id, title, ts_rank(tsv, q) AS rank \
                     FROM docs, plainto_tsquery('simple', $1) q WHERE tsv @@ q \
                     ORDER BY rank DESC LIMIT 20",
                )
                .bind(&query.segmented)
                .fetch_all(&self.pool)
                .await?
            }
            Some((filter, value)) => {
                let condition = match filter {
                    Filter::Subject => "subjects @> ARRAY[$2::text]",
                    Filter::Audience => "audience = $2",
                    Filter::Region => "(region = $2 OR region LIKE $2 || '/%')",
                    Filter::Language => "language = $2",
                    Filter::Institution => "institution = $2",
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{BASE} AND {condition} ORDER BY rank DESC LIMIT 20"
                )))
                .bind(&query.segmented)
                .bind(value)
                .fetch_all(&self.pool)
                .await?
            }
        };
        Ok(rows.len())
    }

    pub async fn drop_table(&self) -> anyhow::Result<()> {
        self.pool.execute("DROP TABLE IF EXISTS docs").await?;
        Ok(())
    }

    /// Closes the pool and drops the database.
    pub async fn destroy(self) -> anyhow::Result<()> {
        self.pool.close().await;
        self.database.drop_now().await
    }
}
