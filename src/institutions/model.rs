//! Institution domain types: slugs, kinds, region paths and member roles.

use uuid::Uuid;

/// A URL-safe handle such as `xihu-community-college`: 2 to 63 characters of `a-z`, `0-9` and
/// `-`, starting and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Slug, String> {
        let len = raw.chars().count();
        if !(2..=63).contains(&len) {
            return Err("must be 2 to 63 characters long".into());
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err("may contain only lower-case letters a-z, digits and '-'".into());
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err("must start and end with a letter or digit".into());
        }
        Ok(Slug(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

use crate::vocabulary::string_enum;

string_enum! {
    /// What sort of organisation an institution is (SPEC §3).
    InstitutionKind {
        CountyCollege => "county_college",
        CommunitySchool => "community_school",
        TeachingPoint => "teaching_point",
        School => "school",
        University => "university",
        VocationalCollege => "vocational_college",
        OpenUniversity => "open_university",
        TrainingOrg => "training_org",
        Library => "library",
        Museum => "museum",
        ScienceMuseum => "science_museum",
        CulturalCenter => "cultural_center",
        SportsVenue => "sports_venue",
        Enterprise => "enterprise",
        Other => "other",
    }
}

string_enum! {
    /// A person's role in an institution: staff publish courseware, managers also add staff.
    MemberRole {
        Staff => "staff",
        Manager => "manager",
    }
}

/// A region path, province/city/county/town/village, one to five levels, e.g.
/// `zhejiang/hangzhou/xihu`. Segments are stable identifiers (lower-case pinyin or ASCII), so
/// `zhejiang` can select everything beneath it by prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionPath(String);

impl RegionPath {
    pub const MAX_LEVELS: usize = 5;
    pub const MAX_SEGMENT_CHARS: usize = 40;

    pub fn parse(raw: &str) -> Result<RegionPath, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required, e.g. \"zhejiang/hangzhou/xihu\"".into());
        }
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.len() > Self::MAX_LEVELS {
            return Err(format!(
                "has {} levels; at most {} are allowed (province/city/county/town/village)",
                segments.len(),
                Self::MAX_LEVELS
            ));
        }
        for (index, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                return Err(format!("level {} is empty", index + 1));
            }
            if segment.len() > Self::MAX_SEGMENT_CHARS {
                return Err(format!(
                    "level {} is longer than {} characters",
                    index + 1,
                    Self::MAX_SEGMENT_CHARS
                ));
            }
            if !segment
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            {
                return Err(format!(
                    "level {} ({segment:?}) may contain only lower-case letters a-z, digits, '-' and '_'",
                    index + 1
                ));
            }
        }
        Ok(RegionPath(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An institution as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Institution {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub kind: InstitutionKind,
    pub region: String,
    pub created_at_ms: i64,
}

/// A member of an institution, with the person's public details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: MemberRole,
}

/// The name an institution goes by: 1 to 200 characters.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is required".into());
    }
    if trimmed.chars().count() > 200 {
        return Err("is longer than 200 characters".into());
    }
    if trimmed.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(Slug::parse("xihu-college").is_ok());
        for bad in [
            "",
            "a",
            "Xihu",
            "xi hu",
            "-xihu",
            "xihu-",
            "西湖",
            &"a".repeat(64),
        ] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn region_paths_have_one_to_five_non_empty_levels() {
        assert!(RegionPath::parse("zhejiang").is_ok());
        assert!(RegionPath::parse("zhejiang/hangzhou/xihu/lingyin/fayun").is_ok());
        let too_deep = RegionPath::parse("a/b/c/d/e/f").unwrap_err();
        assert!(too_deep.contains("at most 5"), "{too_deep}");
        let empty = RegionPath::parse("zhejiang//xihu").unwrap_err();
        assert!(empty.contains("level 2 is empty"), "{empty}");
        assert!(RegionPath::parse("zhejiang/").is_err());
        assert!(RegionPath::parse("").is_err());
        assert!(RegionPath::parse("Zhejiang").is_err());
    }

    #[test]
    fn kinds_round_trip_and_unknown_kinds_list_the_choices() {
        for kind in InstitutionKind::ALL {
            assert_eq!(kind.as_str().parse::<InstitutionKind>().unwrap(), *kind);
        }
        let error = "castle".parse::<InstitutionKind>().unwrap_err();
        assert!(error.contains("county_college"), "{error}");
        assert_eq!(InstitutionKind::ALL.len(), 15);
    }
}
