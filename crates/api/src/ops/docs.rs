//! Raw Automerge documents: export, show, import.

use hallsync_hall::operators::Role;
use hallsync_model::{DocId, Ts};
use serde::{Deserialize, Serialize};

use crate::{ApiError, Bytes, Caller, Op, Service};

fn doc_id(id: &str) -> Result<DocId, ApiError> {
    DocId::parse(id).map_err(|e| ApiError::invalid(e.to_string()))
}

/// A document's Automerge bytes: `GET /api/v1/doc/export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDoc {
    /// Document id.
    pub id: String,
}

impl Op for ExportDoc {
    type Out = Bytes;
    const PATH: &'static str = "/doc/export";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        Ok(Bytes(svc.hall().export_doc(&doc_id(&self.id)?)?))
    }
}

/// A document as JSON: `GET /api/v1/doc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowDoc {
    /// Document id.
    pub id: String,
}

impl Op for ShowDoc {
    type Out = serde_json::Value;
    const PATH: &'static str = "/doc";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        Ok(svc.hall().show_doc(&doc_id(&self.id)?)?)
    }
}

/// Merges a document file exported by another node: `POST
/// /api/v1/doc/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportDoc {
    /// The file.
    pub content: Bytes,
}

/// The document a file was merged into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// Its id.
    pub imported: DocId,
}

impl Op for ImportDoc {
    type Out = Imported;
    const PATH: &'static str = "/doc/import";
    const WRITE: bool = true;
    const MAX_BODY: usize = hallsync_hall::MAX_DOC_BYTES / 3 * 4 + 4096;
    fn role(&self) -> Option<Role> {
        Some(Role::Admin)
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        if self.content.0.len() > hallsync_hall::MAX_DOC_BYTES {
            return Err(ApiError::invalid(format!(
                "a document file is at most {} bytes",
                hallsync_hall::MAX_DOC_BYTES
            )));
        }
        Ok(Imported {
            imported: svc.hall().import_doc(&self.content.0, now)?,
        })
    }
}
