//! What can go wrong in the repository itself. A client's mistake is never an `OaiError`: it is
//! a protocol error inside a 200 reply (`request::ProtocolError`), as OAI-PMH prescribes.

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum OaiError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// A 500 whose cause is logged, never sent.
impl From<OaiError> for ApiError {
    fn from(error: OaiError) -> Self {
        ApiError::internal(error)
    }
}
