//! Errors as the API reports them: an HTTP status, a stable code a program
//! can act on, and a message a person can.

use hallsync_hall::HallError;
use hallsync_model::case::CaseError;
use hallsync_model::order::OrderError;
use hallsync_store::StoreError;
use serde::{Deserialize, Serialize};

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable code: `bad_request`, `invalid`, `not_found`, `not_allowed`,
    /// `exists`, `unauthorized`, `forbidden`, `csrf`, `too_large`,
    /// `too_many_attempts`, `unavailable`, `damaged`, `internal`,
    /// `out_of_scope`, `not_running`, and `id_number` (an identity number
    /// whose check digit or form is wrong).
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// A request that does not parse or breaks the API's own rules.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// A field with a value the record does not allow.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid", message)
    }

    /// No such record.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "not_found", message)
    }

    /// The caller's roles do not allow it.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "forbidden", message)
    }
}

impl From<HallError> for ApiError {
    fn from(e: HallError) -> ApiError {
        let message = e.to_string();
        let (status, code) = match &e {
            HallError::UnknownItem(_)
            | HallError::UnknownCase(_)
            | HallError::UnknownDoc(_)
            | HallError::UnknownOrder(_) => (404, "not_found"),
            HallError::CaseExists(_) => (409, "exists"),
            HallError::ItemNotPublished { .. }
            | HallError::Workflow(_)
            | HallError::NotOrderable(_) => (409, "not_allowed"),
            HallError::Case(CaseError::Invalid { .. })
            | HallError::Order(OrderError::Invalid { .. })
            | HallError::Id(_)
            | HallError::BadInput(_)
            | HallError::Field(_)
            | HallError::Invalid { .. } => (400, "invalid"),
            HallError::Case(_) | HallError::Order(_) => (409, "not_allowed"),
            HallError::OutOfScope { .. } => (403, "out_of_scope"),
            HallError::Store(StoreError::Durability(_) | StoreError::Io { .. }) => {
                (503, "unavailable")
            }
            HallError::Store(StoreError::TooLarge { .. }) => (413, "too_large"),
            HallError::Schema { .. } | HallError::Store(_) => (500, "damaged"),
            _ => (500, "internal"),
        };
        ApiError::new(status, code, message)
    }
}
