//! Catalog domain types: the controlled vocabularies and what a course is.

use uuid::Uuid;

use crate::media::content::FileKind;

use crate::vocabulary::string_enum;

string_enum! {
    /// Subjects from the national guidance on community education.
    Subject {
        CivicLiteracy => "civic_literacy",
        Integrity => "integrity",
        HumanitiesArts => "humanities_arts",
        ScienceTechnology => "science_technology",
        VocationalSkills => "vocational_skills",
        EarlyChildhood => "early_childhood",
        Fitness => "fitness",
        Health => "health",
        LifeLeisure => "life_leisure",
        DigitalSkills => "digital_skills",
        CommunityService => "community_service",
    }
}

string_enum! {
    /// Who a course is for; `families` means learning across generations.
    Audience {
        Children => "children",
        Youth => "youth",
        Adults => "adults",
        Seniors => "seniors",
        Families => "families",
    }
}

string_enum! {
    Level {
        Beginner => "beginner",
        Intermediate => "intermediate",
        Advanced => "advanced",
    }
}

/// Parses every entry of a vocabulary list; the error names each bad value.
pub fn parse_list<T>(
    values: &[String],
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String>
where
    T: PartialEq,
{
    let mut parsed = Vec::with_capacity(values.len());
    let mut bad = Vec::new();
    for value in values {
        match parse(value) {
            Ok(item) if !parsed.contains(&item) => parsed.push(item),
            Ok(_) => {}
            Err(message) => bad.push(message),
        }
    }
    if bad.is_empty() {
        Ok(parsed)
    } else {
        Err(bad.join("; "))
    }
}

pub fn parse_title(raw: &str) -> Result<String, String> {
    let title = raw.trim();
    if title.is_empty() {
        return Err("is required".into());
    }
    if title.chars().count() > 300 {
        return Err("is longer than 300 characters".into());
    }
    if title.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(title.to_owned())
}

pub fn parse_description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > 20_000 {
        return Err("is longer than 20000 characters".into());
    }
    // Line breaks and tabs are text here; NUL is not, and PostgreSQL's text cannot store it.
    if raw.contains('\0') {
        return Err("contains a NUL character".into());
    }
    Ok(raw.trim().to_owned())
}

/// Language tags such as `zh`, `en`, `zh-Hans`: letters, digits and `-`, at most 35 long.
pub fn parse_languages(values: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for value in values {
        let tag = value.trim();
        let valid = !tag.is_empty()
            && tag.len() <= 35
            && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && tag.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if !valid {
            return Err(format!(
                "{tag:?} is not a language tag such as \"zh\" or \"en\""
            ));
        }
        if !out.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

/// SPDX-like: `CC-BY-4.0`, `CC-BY-NC-SA-4.0`, `MIT`, `LicenseRef-own-terms`.
pub fn parse_license(raw: &str) -> Result<String, String> {
    let license = raw.trim();
    let valid = !license.is_empty()
        && license.len() <= 64
        && license
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+'));
    if valid {
        Ok(license.to_owned())
    } else {
        Err("must be an SPDX-style identifier such as \"CC-BY-4.0\"".into())
    }
}

pub fn parse_tags(values: &[String]) -> Result<Vec<String>, String> {
    if values.len() > 50 {
        return Err("at most 50 tags".into());
    }
    let mut out: Vec<String> = Vec::new();
    for value in values {
        let tag = value.trim();
        if tag.is_empty() || tag.chars().count() > 50 || tag.chars().any(char::is_control) {
            return Err(format!(
                "{tag:?} must be 1 to 50 characters without control characters"
            ));
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

pub fn parse_credits(value: f64) -> Result<f64, String> {
    if value.is_finite() && (0.0..=1000.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be a number from 0 to 1000".into())
    }
}

/// The institution a course belongs to, as shown with it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstitutionRef {
    pub id: Option<Uuid>,
    pub slug: String,
    pub name: String,
}

/// A course as stored, with its files.
#[derive(Debug, Clone, PartialEq)]
pub struct Course {
    pub id: Uuid,
    pub origin: String,
    pub institution: InstitutionRef,
    pub title: String,
    pub description: String,
    pub subjects: Vec<Subject>,
    pub audience: Vec<Audience>,
    pub level: Level,
    pub languages: Vec<String>,
    pub license: String,
    pub tags: Vec<String>,
    pub credits: f64,
    pub region: String,
    pub version: i64,
    pub withdrawn: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub files: Vec<CourseFile>,
}

/// The editable part of a course, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CourseFields {
    pub title: String,
    pub description: String,
    pub subjects: Vec<Subject>,
    pub audience: Vec<Audience>,
    pub level: Level,
    pub languages: Vec<String>,
    pub license: String,
    pub tags: Vec<String>,
    pub credits: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CourseFile {
    pub id: Uuid,
    pub course_id: Uuid,
    pub name: String,
    pub content_type: String,
    pub kind: FileKind,
    pub size: u64,
    pub sha256_hex: String,
    pub object_key: String,
    pub created_at_ms: i64,
    /// Whether the bytes are in this server's object store. A federated file is not until it
    /// is mirrored; until then it is fetched from (or redirected to) its origin.
    pub stored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_lists_name_every_bad_value_and_drop_duplicates() {
        let ok = parse_list(
            &["health".into(), "fitness".into(), "health".into()],
            Subject::parse,
        )
        .unwrap();
        assert_eq!(ok, [Subject::Health, Subject::Fitness]);
        let err = parse_list(
            &["cooking".into(), "health".into(), "gardening".into()],
            Subject::parse,
        )
        .unwrap_err();
        assert!(
            err.contains("cooking") && err.contains("gardening"),
            "{err}"
        );
        assert_eq!(Subject::ALL.len(), 11);
        assert_eq!(Audience::ALL.len(), 5);
    }

    #[test]
    fn field_rules() {
        assert!(parse_title("  ").is_err());
        assert_eq!(parse_title(" 太极拳入门 ").unwrap(), "太极拳入门");
        assert!(parse_languages(&["zh".into(), "en-GB".into()]).is_ok());
        assert!(parse_languages(&["中文".into()]).is_err());
        assert!(parse_license("CC-BY-4.0").is_ok());
        assert!(parse_license("free for all").is_err());
        assert!(parse_credits(1.5).is_ok());
        assert!(parse_credits(f64::NAN).is_err());
        assert!(parse_credits(-1.0).is_err());
    }
}
