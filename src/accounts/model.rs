//! Account domain types. Each newtype's `parse` is the only way to build it, so a value that
//! exists has been checked.

use uuid::Uuid;

/// An e-mail address, trimmed and lower-cased so one mailbox is one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() {
            return Err("is required".into());
        }
        if normalized.len() > 254 {
            return Err("is longer than 254 characters".into());
        }
        if !email_address::EmailAddress::is_valid(&normalized) || !normalized.contains('@') {
            return Err("is not a valid e-mail address".into());
        }
        Ok(Email(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name shown to other residents: 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<DisplayName, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(format!("is longer than {} characters", Self::MAX_CHARS));
        }
        if trimmed.chars().any(char::is_control) {
            return Err("contains control characters".into());
        }
        Ok(DisplayName(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that passed the strength check. Existing passwords are never parsed: a
/// sign-in compares whatever was typed.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    /// argon2 accepts more, but nobody types this much and hashing cost grows with length.
    pub const MAX_BYTES: usize = 1024;

    /// Checks length and guessability (zxcvbn, score 3 of 4 or better), counting the user's own
    /// e-mail and name as known words. The error says why, in words a person can act on.
    pub fn parse(raw: &str, user_inputs: &[&str]) -> Result<NewPassword, String> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(format!(
                "is too short: use at least {} characters",
                Self::MIN_CHARS
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(format!("is longer than {} bytes", Self::MAX_BYTES));
        }
        let entropy = zxcvbn::zxcvbn(raw, user_inputs);
        if (entropy.score() as u8) < 3 {
            let mut reasons = vec!["is too easy to guess".to_owned()];
            if let Some(feedback) = entropy.feedback() {
                if let Some(warning) = feedback.warning() {
                    reasons.push(warning.to_string());
                }
                reasons.extend(feedback.suggestions().iter().map(|s| s.to_string()));
            }
            return Err(reasons.join(". "));
        }
        Ok(NewPassword(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A registered person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub created_at_ms: i64,
}

/// One sign-in on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub user_agent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized_to_lower_case() {
        let email = Email::parse("  Li.Hua@Example.ORG ").unwrap();
        assert_eq!(email.as_str(), "li.hua@example.org");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in ["", "no-at-sign", "a@", "@b.org", "a b@c.org"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_name_accepts_chinese_and_rejects_empty_or_control() {
        assert_eq!(DisplayName::parse(" 王奶奶 ").unwrap().as_str(), "王奶奶");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\u{0007}b").is_err());
        assert!(DisplayName::parse(&"字".repeat(65)).is_err());
    }

    #[test]
    fn weak_passwords_are_rejected_with_a_reason() {
        let short = NewPassword::parse("abc", &[]).err().unwrap();
        assert!(short.contains("at least 8"), "{short}");
        let common = NewPassword::parse("password123", &[]).err().unwrap();
        assert!(common.contains("too easy to guess"), "{common}");
        let own_email = NewPassword::parse("lihua@example.org", &["lihua@example.org"])
            .err()
            .unwrap();
        assert!(own_email.contains("too easy to guess"), "{own_email}");
    }

    #[test]
    fn strong_passphrase_is_accepted() {
        assert!(NewPassword::parse("calligraphy brush at dawn 1987", &[]).is_ok());
    }
}
