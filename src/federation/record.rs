//! The federation wire format (SPEC §9): course records, feed entries and pages, and the
//! canonical bytes a record's signature covers.
//!
//! A signature covers the RFC 8785 canonical JSON of `{op, course, origin, origin_version}`.
//! A receiver verifies over the `course` JSON exactly as received (a `serde_json::Value`),
//! never over a re-serialised struct, so fields this version does not know still count, and
//! a record relayed onward is passed on byte-for-byte meaningfully unchanged.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::catalog::model::{
    Audience, Course, CourseFields, Level, Subject, parse_credits, parse_description,
    parse_languages, parse_license, parse_list, parse_tags, parse_title,
};
use crate::catalog::remote::{RemoteChange, RemoteCourse, RemoteFile};
use crate::db;
use crate::institutions::model::{RegionPath, Slug};
use crate::media::content::{FileKind, parse_file_name};

/// Versions and sizes stay within the integers JSON (and RFC 8785) carries exactly.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;
/// A record dated further ahead of this server's clock is "from the future" and refused.
const CLOCK_SKEW_MS: i64 = 24 * 60 * 60 * 1000;
const MAX_FILES: usize = 1000;

/// A course as published: the full record, files included.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CourseRecord {
    pub id: Uuid,
    pub institution: InstitutionRecord,
    pub title: String,
    pub description: String,
    pub subjects: Vec<String>,
    pub audience: Vec<String>,
    pub level: String,
    pub languages: Vec<String>,
    pub license: String,
    pub tags: Vec<String>,
    pub credits: f64,
    pub region: String,
    pub created_at: String,
    pub updated_at: String,
    pub files: Vec<FileRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstitutionRecord {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileRecord {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub kind: String,
    pub size: u64,
    pub sha256: String,
}

/// What a delete record must carry at least.
#[derive(Debug, Deserialize)]
struct DeletedRecord {
    id: Uuid,
}

impl CourseRecord {
    pub fn of(course: &Course) -> Self {
        CourseRecord {
            id: course.id,
            institution: InstitutionRecord {
                slug: course.institution.slug.clone(),
                name: course.institution.name.clone(),
            },
            title: course.title.clone(),
            description: course.description.clone(),
            subjects: course
                .subjects
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            audience: course
                .audience
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            level: course.level.as_str().to_owned(),
            languages: course.languages.clone(),
            license: course.license.clone(),
            tags: course.tags.clone(),
            credits: course.credits,
            region: course.region.clone(),
            created_at: db::rfc3339(course.created_at_ms),
            updated_at: db::rfc3339(course.updated_at_ms),
            files: course
                .files
                .iter()
                .map(|f| FileRecord {
                    id: f.id,
                    name: f.name.clone(),
                    content_type: f.content_type.clone(),
                    kind: f.kind.as_str().to_owned(),
                    size: f.size,
                    sha256: f.sha256_hex.clone(),
                })
                .collect(),
        }
    }
}

/// The operation an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Upsert,
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Delete => "delete",
        }
    }

    /// Reads a stored op (the tables allow only these two).
    pub fn parse(text: &str) -> Op {
        if text == "delete" {
            Op::Delete
        } else {
            Op::Upsert
        }
    }
}

/// One entry of a feed page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: i64,
    pub op: Op,
    pub course: Value,
    pub origin: String,
    pub origin_key: String,
    pub origin_version: i64,
    pub signature: String,
}

/// One entry of a feed page as this server serves it: the record is the stored JSON text.
#[derive(Debug, Serialize)]
pub struct FeedEntry {
    pub seq: i64,
    pub op: Op,
    pub course: Box<serde_json::value::RawValue>,
    pub origin: String,
    pub origin_key: String,
    pub origin_version: i64,
    pub signature: String,
}

/// `GET /federation/v1/changes`. Entries are kept as raw JSON on receipt, so one malformed
/// entry is rejected alone while the rest of the page applies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<E = Entry> {
    pub origin: String,
    pub entries: Vec<E>,
    pub next: i64,
}

/// `GET /.well-known/shuyuan`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct WellKnown {
    /// The server's id: its public URL.
    pub id: String,
    pub name: String,
    pub public_url: String,
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
    pub protocol: u32,
}

/// The bytes an entry's signature covers.
pub fn signed_bytes(op: Op, course: &Value, origin: &str, origin_version: i64) -> Vec<u8> {
    // Borrowed fields: every entry of every page goes through here, and a `json!` object would
    // copy the whole record first. RFC 8785 orders the keys, so field order does not matter.
    #[derive(Serialize)]
    struct Signed<'a> {
        op: Op,
        course: &'a Value,
        origin: &'a str,
        origin_version: i64,
    }
    let signed = Signed {
        op,
        course,
        origin,
        origin_version,
    };
    serde_jcs::to_vec(&signed).expect("a JSON value always has a canonical form")
}

/// Reads an entry's record into a change this catalog can apply, or says why it cannot.
pub fn interpret(entry: &Entry, now_ms: i64) -> Result<RemoteChange, String> {
    if !(1..=MAX_SAFE_INTEGER).contains(&entry.origin_version) {
        return Err(format!(
            "origin_version {} is out of range",
            entry.origin_version
        ));
    }
    match entry.op {
        Op::Delete => {
            let record: DeletedRecord = serde_json::from_value(entry.course.clone())
                .map_err(|e| format!("the deleted course's record: {e}"))?;
            Ok(RemoteChange::Withdraw {
                id: record.id,
                origin: entry.origin.clone(),
                origin_version: entry.origin_version,
            })
        }
        Op::Upsert => {
            let record: CourseRecord = serde_json::from_value(entry.course.clone())
                .map_err(|e| format!("the course record: {e}"))?;
            Ok(RemoteChange::Upsert(Box::new(remote_course(
                record,
                &entry.origin,
                entry.origin_version,
                now_ms,
            )?)))
        }
    }
}

fn timestamp(field: &str, text: &str, now_ms: i64) -> Result<i64, String> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{field}: {e}"))?;
    let ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{field} is out of range"))?;
    if ms > now_ms + CLOCK_SKEW_MS {
        return Err(format!("{field} {text} is in the future"));
    }
    Ok(ms)
}

fn remote_course(
    record: CourseRecord,
    origin: &str,
    origin_version: i64,
    now_ms: i64,
) -> Result<RemoteCourse, String> {
    fn at<T>(field: &str, r: Result<T, String>) -> Result<T, String> {
        r.map_err(|e| format!("{field}: {e}"))
    }
    let fields = CourseFields {
        title: at("title", parse_title(&record.title))?,
        description: at("description", parse_description(&record.description))?,
        subjects: at("subjects", parse_list(&record.subjects, Subject::parse))?,
        audience: at("audience", parse_list(&record.audience, Audience::parse))?,
        level: at("level", Level::parse(&record.level))?,
        languages: at("languages", parse_languages(&record.languages))?,
        license: at("license", parse_license(&record.license))?,
        tags: at("tags", parse_tags(&record.tags))?,
        credits: at("credits", parse_credits(record.credits))?,
    };
    let slug = at("institution.slug", Slug::parse(&record.institution.slug))?;
    let name = record.institution.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("institution.name must be 1 to 200 characters".into());
    }
    let region = at("region", RegionPath::parse(&record.region))?;
    if record.files.len() > MAX_FILES {
        return Err(format!("more than {MAX_FILES} files"));
    }
    let mut files: Vec<RemoteFile> = Vec::with_capacity(record.files.len());
    for file in record.files {
        let name = at("files.name", parse_file_name(&file.name))?;
        let kind = FileKind::parse(&file.kind)
            .ok_or_else(|| format!("files.kind: unknown kind {:?}", file.kind))?;
        let content_type = file.content_type.trim();
        if content_type.is_empty()
            || content_type.len() > 200
            || content_type.chars().any(char::is_control)
        {
            return Err("files.content_type must be a media type".into());
        }
        let hex_ok = file.sha256.len() == 64
            && file
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err("files.sha256 must be 64 lowercase hex digits".into());
        }
        if file.size == 0 || file.size > MAX_SAFE_INTEGER as u64 {
            return Err("files.size is out of range".into());
        }
        if files.iter().any(|f| f.id == file.id || f.name == name) {
            return Err(format!("file {name:?} appears twice"));
        }
        files.push(RemoteFile {
            id: file.id,
            name,
            content_type: content_type.to_owned(),
            kind,
            size: file.size,
            sha256_hex: file.sha256,
        });
    }
    Ok(RemoteCourse {
        id: record.id,
        origin: origin.to_owned(),
        origin_version,
        institution_slug: slug.as_str().to_owned(),
        institution_name: name.to_owned(),
        region: region.as_str().to_owned(),
        fields,
        created_at_ms: timestamp("created_at", &record.created_at, now_ms)?,
        updated_at_ms: timestamp("updated_at", &record.updated_at, now_ms)?,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Value {
        serde_json::json!({
            "id": "0190f5a0-0000-7000-8000-000000000001",
            "institution": {"slug": "fayun", "name": "法云村教学点"},
            "title": "太极拳入门",
            "description": "",
            "subjects": ["fitness"],
            "audience": ["seniors"],
            "level": "beginner",
            "languages": ["zh"],
            "license": "CC-BY-4.0",
            "tags": [],
            "credits": 1.5,
            "region": "zhejiang/hangzhou/xihu/lingyin/fayun",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-02T00:00:00Z",
            "files": [{"id": "0190f5a0-0000-7000-8000-000000000002", "name": "1.mp4",
                       "content_type": "video/mp4", "kind": "video", "size": 10,
                       "sha256": "ab".repeat(32)}]
        })
    }

    fn entry(course: Value) -> Entry {
        Entry {
            seq: 1,
            op: Op::Upsert,
            course,
            origin: "http://village".into(),
            origin_key: String::new(),
            origin_version: 3,
            signature: String::new(),
        }
    }

    #[test]
    fn the_signed_bytes_are_canonical_whatever_the_key_order() {
        let a = serde_json::json!({"b": 1, "a": "x"});
        let b: Value = serde_json::from_str(r#"{"a":"x","b":1}"#).unwrap();
        assert_eq!(
            signed_bytes(Op::Upsert, &a, "http://o", 2),
            signed_bytes(Op::Upsert, &b, "http://o", 2)
        );
        let text = String::from_utf8(signed_bytes(Op::Delete, &a, "http://o", 2)).unwrap();
        assert_eq!(
            text,
            r#"{"course":{"a":"x","b":1},"op":"delete","origin":"http://o","origin_version":2}"#
        );
    }

    #[test]
    fn a_good_record_becomes_a_remote_course() {
        let now = db::now_ms();
        let RemoteChange::Upsert(course) = interpret(&entry(record()), now).unwrap() else {
            panic!("an upsert")
        };
        assert_eq!(course.fields.title, "太极拳入门");
        assert_eq!(course.origin_version, 3);
        assert_eq!(course.files[0].kind, FileKind::Video);
    }

    #[test]
    fn bad_records_say_why() {
        let now = db::now_ms();
        let cases = [
            ("subjects", serde_json::json!(["cooking"]), "subjects"),
            (
                "updated_at",
                serde_json::json!("2999-01-01T00:00:00Z"),
                "future",
            ),
            ("region", serde_json::json!("../etc"), "region"),
            ("title", serde_json::json!(7), "course record"),
            // PostgreSQL's text cannot hold NUL: such a record would fail its whole page.
            ("description", serde_json::json!("a\u{0}b"), "description"),
        ];
        for (field, value, expect) in cases {
            let mut course = record();
            course[field] = value;
            let error = interpret(&entry(course), now).unwrap_err();
            assert!(error.contains(expect), "{field}: {error}");
        }
        let mut course = record();
        course["files"][0]["sha256"] = serde_json::json!("../../x");
        assert!(
            interpret(&entry(course), now)
                .unwrap_err()
                .contains("sha256")
        );
        let mut far = entry(record());
        far.origin_version = i64::MAX;
        assert!(interpret(&far, now).unwrap_err().contains("origin_version"));
    }
}
