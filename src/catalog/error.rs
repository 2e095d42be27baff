use crate::error::{ApiError, ErrorCode, FieldError};
use crate::media::upload::UploadError;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("no such course")]
    CourseNotFound,
    #[error("no such file")]
    FileNotFound,
    #[error("no institution with this slug")]
    InstitutionNotFound,
    #[error("only staff of the course's institution or a site administrator may change it")]
    NotStaff,
    #[error("{0}")]
    BadDigest(String),
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("object store: {0}")]
    Store(String),
}

impl CatalogError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CatalogError::Invalid(_) => ErrorCode::Unprocessable,
            CatalogError::CourseNotFound | CatalogError::FileNotFound => ErrorCode::NotFound,
            CatalogError::InstitutionNotFound => ErrorCode::Unprocessable,
            CatalogError::NotStaff => ErrorCode::Forbidden,
            CatalogError::BadDigest(_) => ErrorCode::BadRequest,
            CatalogError::Upload(error) => match error {
                UploadError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
                UploadError::DigestMismatch | UploadError::Interrupted(_) => ErrorCode::BadRequest,
                UploadError::Empty | UploadError::ContentMismatch { .. } => {
                    ErrorCode::Unprocessable
                }
                UploadError::Store(_) => ErrorCode::Internal,
            },
            CatalogError::Db(_) | CatalogError::Store(_) => ErrorCode::Internal,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            CatalogError::Invalid(_) => "validation",
            CatalogError::CourseNotFound => "course-not-found",
            CatalogError::FileNotFound => "file-not-found",
            CatalogError::InstitutionNotFound => "institution-not-found",
            CatalogError::NotStaff => "forbidden",
            CatalogError::BadDigest(_) => "bad-digest",
            CatalogError::Upload(error) => match error {
                UploadError::TooLarge { .. } => "payload-too-large",
                UploadError::Empty => "empty-file",
                UploadError::DigestMismatch => "digest-mismatch",
                UploadError::ContentMismatch { .. } => "content-mismatch",
                UploadError::Interrupted(_) => "upload-interrupted",
                UploadError::Store(_) => "internal",
            },
            CatalogError::Db(_) | CatalogError::Store(_) => "internal",
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Invalid(fields) => ApiError::validation(fields),
            CatalogError::InstitutionNotFound => {
                ApiError::validation(vec![FieldError::new("institution", error.to_string())])
            }
            other => ApiError::new(other.code(), other.kind(), other.to_string()),
        }
    }
}
