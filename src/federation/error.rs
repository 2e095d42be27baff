use crate::error::{ApiError, ErrorCode, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("only a site administrator may manage peers")]
    NotAdmin,
    #[error("no such peer")]
    PeerNotFound,
    #[error("{0}")]
    InvalidPeer(String),
    #[error("{0} is this server")]
    PeerIsSelf(String),
    #[error("{0} is a peer already")]
    PeerExists(String),
    #[error("{0}")]
    KeyConflict(String),
    #[error("{0}")]
    PeerUnreachable(String),
    #[error("the sync with the peer failed: {0}")]
    SyncFailed(String),
    #[error("since = {since} is beyond this feed's last entry ({latest}); start again from 0")]
    UnknownSince { since: i64, latest: i64 },
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    Internal(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
}

impl From<FederationError> for ApiError {
    fn from(error: FederationError) -> Self {
        let detail = error.to_string();
        match error {
            FederationError::NotAdmin => ApiError::forbidden(detail),
            FederationError::PeerNotFound => {
                ApiError::new(ErrorCode::NotFound, "peer-not-found", detail)
            }
            FederationError::InvalidPeer(_) | FederationError::PeerIsSelf(_) => {
                ApiError::validation(vec![FieldError::new("url", detail)])
            }
            FederationError::PeerExists(_) => {
                ApiError::new(ErrorCode::Conflict, "peer-exists", detail)
            }
            FederationError::KeyConflict(_) => {
                ApiError::new(ErrorCode::Conflict, "key-conflict", detail)
            }
            FederationError::PeerUnreachable(_) => {
                ApiError::new(ErrorCode::BadGateway, "peer-unreachable", detail)
            }
            FederationError::SyncFailed(_) => {
                ApiError::new(ErrorCode::BadGateway, "peer-sync-failed", detail)
            }
            FederationError::UnknownSince { .. } => {
                ApiError::new(ErrorCode::BadRequest, "unknown-since", detail)
            }
            FederationError::BadQuery(_) => ApiError::bad_request(detail),
            FederationError::Catalog(error) => error.into(),
            FederationError::Db(error) => ApiError::internal(error),
            FederationError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
