use crate::error::{ApiError, ErrorCode, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum InstitutionsError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("an institution with this slug already exists")]
    SlugTaken,
    #[error("no institution with this slug")]
    NotFound,
    #[error("no account with this e-mail; the person must register first")]
    UserNotFound,
    #[error("only site administrators may register institutions")]
    AdminOnly,
    #[error("only the institution's managers or a site administrator may do this")]
    ManagerOnly,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

impl InstitutionsError {
    pub fn code(&self) -> ErrorCode {
        match self {
            InstitutionsError::Invalid(_) | InstitutionsError::UserNotFound => {
                ErrorCode::Unprocessable
            }
            InstitutionsError::SlugTaken => ErrorCode::Conflict,
            InstitutionsError::NotFound => ErrorCode::NotFound,
            InstitutionsError::AdminOnly | InstitutionsError::ManagerOnly => ErrorCode::Forbidden,
            InstitutionsError::Db(_) => ErrorCode::Internal,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            InstitutionsError::Invalid(_) => "validation",
            InstitutionsError::SlugTaken => "slug-taken",
            InstitutionsError::NotFound => "institution-not-found",
            InstitutionsError::UserNotFound => "user-not-found",
            InstitutionsError::AdminOnly | InstitutionsError::ManagerOnly => "forbidden",
            InstitutionsError::Db(_) => "internal",
        }
    }
}

impl From<InstitutionsError> for ApiError {
    fn from(error: InstitutionsError) -> Self {
        match error {
            InstitutionsError::Invalid(fields) => ApiError::validation(fields),
            InstitutionsError::UserNotFound => {
                ApiError::validation(vec![FieldError::new("email", error.to_string())])
            }
            other => ApiError::new(other.code(), other.kind(), other.to_string()),
        }
    }
}
