use crate::error::{ApiError, ErrorCode, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum CirclesError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("no such circle")]
    NotFound,
    #[error("this circle is private: members only")]
    MembersOnly,
    #[error("the invite code is missing or wrong")]
    BadInvite,
    #[error("only the circle's owner or moderators may do this")]
    ModeratorsOnly,
    #[error("the owner cannot leave their own circle")]
    OwnerCannotLeave,
    #[error("no such message")]
    MessageNotFound,
    #[error("not a member of this circle")]
    MemberNotFound,
    #[error("only the owner may do this")]
    OwnerOnly,
    #[error("{0}")]
    BadQuery(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl CirclesError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CirclesError::Invalid(_) => ErrorCode::Unprocessable,
            CirclesError::NotFound
            | CirclesError::MessageNotFound
            | CirclesError::MemberNotFound => ErrorCode::NotFound,
            CirclesError::OwnerOnly => ErrorCode::Forbidden,
            CirclesError::MembersOnly | CirclesError::BadInvite | CirclesError::ModeratorsOnly => {
                ErrorCode::Forbidden
            }
            CirclesError::OwnerCannotLeave => ErrorCode::Conflict,
            CirclesError::BadQuery(_) => ErrorCode::BadRequest,
            CirclesError::Db(_) => ErrorCode::Internal,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CirclesError::Invalid(_) => "validation",
            CirclesError::NotFound => "circle-not-found",
            CirclesError::MessageNotFound => "message-not-found",
            CirclesError::MemberNotFound => "member-not-found",
            CirclesError::OwnerOnly => "forbidden",
            CirclesError::MembersOnly => "members-only",
            CirclesError::BadInvite => "bad-invite",
            CirclesError::ModeratorsOnly => "forbidden",
            CirclesError::OwnerCannotLeave => "owner-cannot-leave",
            CirclesError::BadQuery(_) => "bad-query",
            CirclesError::Db(_) => "internal",
        }
    }
}

impl From<CirclesError> for ApiError {
    fn from(error: CirclesError) -> Self {
        match error {
            CirclesError::Invalid(fields) => ApiError::validation(fields),
            other => ApiError::new(other.code(), other.kind(), other.to_string()),
        }
    }
}
