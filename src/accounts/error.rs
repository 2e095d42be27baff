use std::time::Duration;

use crate::error::{ApiError, ErrorCode, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    /// Deliberately the same for an unknown e-mail and a wrong password.
    #[error("e-mail or password is wrong")]
    InvalidCredentials,
    #[error("too many sign-in attempts; try again later")]
    RateLimited { retry_after: Duration },
    #[error("sign in first: no valid session or token was presented")]
    Unauthenticated,
    #[error("no such session")]
    SessionNotFound,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl AccountsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            AccountsError::Invalid(_) => ErrorCode::Unprocessable,
            AccountsError::EmailTaken => ErrorCode::Conflict,
            AccountsError::InvalidCredentials | AccountsError::Unauthenticated => {
                ErrorCode::Unauthenticated
            }
            AccountsError::RateLimited { .. } => ErrorCode::TooManyRequests,
            AccountsError::SessionNotFound => ErrorCode::NotFound,
            AccountsError::Db(_) | AccountsError::Internal(_) => ErrorCode::Internal,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            AccountsError::Invalid(_) => "validation",
            AccountsError::EmailTaken => "email-taken",
            AccountsError::InvalidCredentials => "invalid-credentials",
            AccountsError::RateLimited { .. } => "rate-limited",
            AccountsError::Unauthenticated => "unauthenticated",
            AccountsError::SessionNotFound => "session-not-found",
            AccountsError::Db(_) | AccountsError::Internal(_) => "internal",
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(error: AccountsError) -> Self {
        match error {
            AccountsError::Invalid(fields) => ApiError::validation(fields),
            AccountsError::RateLimited { retry_after } => {
                ApiError::too_many_requests(error.to_string(), retry_after)
            }
            other => ApiError::new(other.code(), other.kind(), other.to_string()),
        }
    }
}
