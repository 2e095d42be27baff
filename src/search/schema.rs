//! The index schema. One index holds two kinds of documents:
//!
//! - a **course** document per live course: its text fields (title, tags, description, and
//!   `body` = the text extracted from its files), pinyin fields, filter fields and a stored
//!   JSON `summary` for rendering hits without a database round trip;
//! - a **segment** document per subtitle cue or PDF page, pointing back to its course and file,
//!   so a hit can say where inside the media it matched.

use tantivy::schema::{
    FAST, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions,
};

use super::analysis::{PINYIN, ZH_EN};

pub const COURSE: &str = "course";
pub const SEGMENT: &str = "segment";

#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// `course` or `segment`.
    pub doc_kind: Field,
    pub course_id: Field,
    pub title: Field,
    pub tags: Field,
    pub description: Field,
    pub body: Field,
    pub pinyin: Field,
    pub initials: Field,
    pub subject: Field,
    pub audience: Field,
    pub kind: Field,
    pub region: Field,
    pub institution: Field,
    pub language: Field,
    pub origin: Field,
    pub created_at: Field,
    pub summary: Field,
    pub file_id: Field,
    pub at_ms: Field,
    pub page: Field,
    pub segment_text: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |stored: bool| {
        let options = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ZH_EN)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored {
            options.set_stored()
        } else {
            options
        }
    };
    let pinyin = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(PINYIN)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        doc_kind: builder.add_text_field("doc_kind", STRING),
        course_id: builder.add_text_field("course_id", STRING | STORED),
        title: builder.add_text_field("title", text(true)),
        tags: builder.add_text_field("tags", text(false)),
        description: builder.add_text_field("description", text(true)),
        body: builder.add_text_field("body", text(true)),
        pinyin: builder.add_text_field("pinyin", pinyin.clone()),
        initials: builder.add_text_field("initials", pinyin),
        subject: builder.add_facet_field("subject", FacetOptions::default()),
        audience: builder.add_facet_field("audience", FacetOptions::default()),
        kind: builder.add_facet_field("kind", FacetOptions::default()),
        region: builder.add_facet_field("region", FacetOptions::default()),
        institution: builder.add_text_field("institution", STRING),
        language: builder.add_text_field("language", STRING),
        origin: builder.add_text_field("origin", STRING),
        created_at: builder.add_i64_field("created_at", INDEXED | FAST | STORED),
        summary: builder.add_text_field("summary", STORED),
        file_id: builder.add_text_field("file_id", STRING | STORED),
        at_ms: builder.add_u64_field("at_ms", STORED),
        page: builder.add_u64_field("page", STORED),
        segment_text: builder.add_text_field("segment_text", text(true)),
    };
    (builder.build(), fields)
}
