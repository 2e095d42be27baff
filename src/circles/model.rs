//! Circle domain types.

use uuid::Uuid;

use crate::vocabulary::string_enum;

string_enum! {
    /// Who may see and join a circle.
    Visibility {
        Public => "public",
        Private => "private",
    }
}

string_enum! {
    /// A member's standing: the owner appoints moderators; moderators delete and mute.
    CircleRole {
        Owner => "owner",
        Moderator => "moderator",
        Member => "member",
    }
}

impl CircleRole {
    pub fn moderates(self) -> bool {
        matches!(self, CircleRole::Owner | CircleRole::Moderator)
    }
}

/// The longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;

pub fn parse_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("is required".into());
    }
    if name.chars().count() > 80 {
        return Err("is longer than 80 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(name.to_owned())
}

pub fn parse_description(raw: &str) -> Result<String, String> {
    if raw.chars().count() > 2000 {
        return Err("is longer than 2000 characters".into());
    }
    // PostgreSQL's text cannot store NUL; refused alike on both databases.
    if raw.contains('\0') {
        return Err("contains a NUL character".into());
    }
    Ok(raw.trim().to_owned())
}

/// Why a message body was refused; each maps to an `error` frame code.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    Empty,
    TooLong,
    /// PostgreSQL's text cannot store NUL; refused alike on both databases.
    Nul,
}

/// A message body: not blank, at most 4,000 characters. Text is stored as sent (HTML
/// included); it is only ever shown as text.
pub fn parse_body(raw: &str) -> Result<String, BodyError> {
    if raw.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    if raw.chars().count() > MAX_BODY_CHARS {
        return Err(BodyError::TooLong);
    }
    if raw.contains('\0') {
        return Err(BodyError::Nul);
    }
    Ok(raw.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circle {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub visibility: Visibility,
    pub owner_id: Uuid,
    pub invite_code: String,
    pub last_seq: i64,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub id: Uuid,
    pub display_name: String,
}

/// A small card for a course a message links to, so the circle sees what is being shared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CourseCard {
    pub course_id: Uuid,
    pub title: String,
    pub institution: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub seq: i64,
    pub id: Uuid,
    pub author: Author,
    pub client_id: String,
    pub body: String,
    pub sent_at_ms: i64,
    pub deleted: bool,
    pub card: Option<CourseCard>,
}

/// Course ids in links such as `https://learn.example.org/#/courses/<id>` or
/// `/api/v1/courses/<id>`, in order, without repeats.
pub fn linked_course_ids(body: &str) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("courses/") {
        let after = &rest[at + "courses/".len()..];
        if let Some(candidate) = after.get(..36)
            && let Ok(id) = Uuid::parse_str(candidate)
            && !ids.contains(&id)
        {
            ids.push(id);
        }
        rest = after;
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn course_links_are_found() {
        let id = Uuid::now_v7();
        let body =
            format!("看这个 http://village.example/#/courses/{id} 和 /api/v1/courses/not-a-uuid");
        assert_eq!(linked_course_ids(&body), vec![id]);
        assert!(linked_course_ids("no links").is_empty());
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body("🙂🙂"), Ok("🙂🙂".to_owned()));
        assert_eq!(parse_body("<b>hi</b>"), Ok("<b>hi</b>".to_owned()));
        assert_eq!(parse_body("   "), Err(BodyError::Empty));
        assert_eq!(
            parse_body(&"字".repeat(4000)).map(|b| b.chars().count()),
            Ok(4000)
        );
        assert_eq!(parse_body(&"字".repeat(4001)), Err(BodyError::TooLong));
        assert_eq!(parse_body("a\u{0}b"), Err(BodyError::Nul));
        assert!(parse_description("a\u{0}b").is_err());
        assert_eq!(parse_description("line\n\tnext"), Ok("line\n\tnext".into()));
    }
}
