//! Turning a course (and its extracted file text) into index documents.

use serde::Serialize;
use tantivy::TantivyDocument;
use tantivy::schema::Facet;

use super::analysis::pinyin_forms;
use super::schema::{COURSE, Fields, SEGMENT};
use crate::catalog::model::Course;
use crate::catalog::store::StoredSegment;

/// Bound on extracted text copied into one course document's `body`.
const MAX_BODY_CHARS: usize = 200_000;

/// What a hit shows, stored with the course document.
#[derive(Serialize, serde::Deserialize, Debug, Clone)]
pub struct Summary {
    pub title: String,
    pub institution_slug: String,
    pub institution_name: String,
    pub region: String,
    pub subjects: Vec<String>,
    pub origin: String,
}

fn facet(value: &str) -> Facet {
    Facet::from_path(value.split('/').filter(|s| !s.is_empty()))
}

/// The course document and one document per positioned segment (cue or page).
pub fn course_documents(
    fields: &Fields,
    course: &Course,
    segments: &[StoredSegment],
) -> Vec<TantivyDocument> {
    let course_id = course.id.to_string();
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.doc_kind, COURSE);
    doc.add_text(fields.course_id, &course_id);
    doc.add_text(fields.title, &course.title);
    for tag in &course.tags {
        doc.add_text(fields.tags, tag);
    }
    doc.add_text(fields.description, &course.description);
    let mut body = String::new();
    for segment in segments {
        if body.len() >= MAX_BODY_CHARS {
            break;
        }
        body.push_str(&segment.text);
        body.push('\n');
    }
    if !body.is_empty() {
        doc.add_text(fields.body, &body);
    }
    let pinyin_source = format!("{} {}", course.title, course.tags.join(" "));
    let (spelled, initials) = pinyin_forms(&pinyin_source);
    doc.add_text(fields.pinyin, &spelled);
    doc.add_text(fields.initials, &initials);
    for subject in &course.subjects {
        doc.add_facet(fields.subject, facet(subject.as_str()));
    }
    for audience in &course.audience {
        doc.add_facet(fields.audience, facet(audience.as_str()));
    }
    let mut kinds: Vec<&str> = course.files.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        doc.add_facet(fields.kind, facet(kind));
    }
    if !course.region.is_empty() {
        doc.add_facet(fields.region, facet(&course.region));
    }
    doc.add_text(fields.institution, &course.institution.slug);
    for language in &course.languages {
        doc.add_text(fields.language, language.to_lowercase());
    }
    doc.add_text(fields.origin, &course.origin);
    doc.add_i64(fields.created_at, course.created_at_ms);
    let summary = Summary {
        title: course.title.clone(),
        institution_slug: course.institution.slug.clone(),
        institution_name: course.institution.name.clone(),
        region: course.region.clone(),
        subjects: course
            .subjects
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        origin: course.origin.clone(),
    };
    doc.add_text(
        fields.summary,
        serde_json::to_string(&summary).expect("a summary always serializes"),
    );

    let mut docs = vec![doc];
    for segment in segments {
        if segment.at_ms.is_none() && segment.page.is_none() {
            continue;
        }
        let mut seg = TantivyDocument::default();
        seg.add_text(fields.doc_kind, SEGMENT);
        seg.add_text(fields.course_id, &course_id);
        seg.add_text(fields.file_id, segment.file_id.to_string());
        if let Some(at_ms) = segment.at_ms {
            seg.add_u64(fields.at_ms, at_ms);
        }
        if let Some(page) = segment.page {
            seg.add_u64(fields.page, u64::from(page));
        }
        seg.add_text(fields.segment_text, &segment.text);
        docs.push(seg);
    }
    docs
}
