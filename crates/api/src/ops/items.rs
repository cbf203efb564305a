//! The power catalogue: list, show, draft, import, review.

use std::collections::BTreeMap;

use hallsync_hall::import::{items_from_table, read_table};
use hallsync_hall::operators::Role;
use hallsync_hall::{ImportReport, ItemChange};
use hallsync_model::catalogue::{ItemContent, ItemStatus, ItemView, ReviewRecord};
use hallsync_model::{DocId, ReviewAction, Ts};
use serde::{Deserialize, Serialize};

use super::is_zero;
use crate::{default_limit, ApiError, Bytes, Caller, Op, Page, Service};

/// Lists catalogue items: `GET /api/v1/items`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListItems {
    /// Only items in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// Only items whose name or implementation code contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Rows to skip.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: usize,
    /// Most rows.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

/// An item as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSummary {
    /// Document id.
    pub id: DocId,
    /// Content version.
    pub version: u32,
    /// Where it stands in its review.
    pub status: ItemStatus,
    /// Its fields.
    pub content: ItemContent,
}

impl Op for ListItems {
    type Out = Page<ItemSummary>;
    const PATH: &'static str = "/items";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        let q = self.q.as_deref().map(str::trim).unwrap_or_default();
        let rows = svc
            .hall()
            .items()?
            .into_iter()
            .map(|(id, item)| ItemSummary {
                status: item.view().status,
                id,
                version: item.version,
                content: item.content,
            })
            .filter(|i| self.status.is_none_or(|s| i.status == s))
            .filter(|i| {
                q.is_empty() || i.content.name.contains(q) || i.content.impl_code.contains(q)
            })
            .collect();
        Page::of(rows, self.offset, self.limit)
    }
}

/// Shows one item: `GET /api/v1/item`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowItem {
    /// Implementation code.
    pub code: String,
}

/// An item with its review history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemOut {
    /// Document id.
    pub id: DocId,
    /// Content version.
    pub version: u32,
    /// Where it stands in its review.
    pub view: ItemView,
    /// Its fields.
    pub content: ItemContent,
    /// The review records, oldest first.
    pub history: Vec<ReviewRecord>,
}

impl Op for ShowItem {
    type Out = ItemOut;
    const PATH: &'static str = "/item";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        let (id, item) = svc.hall().item(&self.code)?;
        Ok(ItemOut {
            id,
            version: item.version,
            view: item.view(),
            history: item.ordered_history().into_iter().cloned().collect(),
            content: item.content,
        })
    }
}

/// Drafts an item, or revises one: `POST /api/v1/items`. The fields are
/// named as in a catalogue spreadsheet (English names or the Chinese
/// headings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    /// Field name → text.
    pub fields: BTreeMap<String, String>,
    /// Who drafts it (the local administrator names them; an operator is
    /// recorded as themselves).
    #[serde(default)]
    pub by: String,
}

/// What became of an item written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemChangeOut {
    /// Document id.
    pub id: DocId,
    /// Created, revised or unchanged.
    pub change: ItemChange,
}

impl Op for AddItem {
    type Out = ItemChangeOut;
    const PATH: &'static str = "/items";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Reviewer)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        let content =
            ItemContent::from_row(self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| ApiError::invalid(e.to_string()))?;
        let (id, change) = svc.hall().add_item(&content, &by, now)?;
        Ok(ItemChangeOut { id, change })
    }
}

/// Imports a catalogue spreadsheet (.csv or .xlsx): `POST
/// /api/v1/items/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportItems {
    /// The file's name as the caller knows it (its extension says how to
    /// read it).
    pub file_name: String,
    /// The file.
    pub content: Bytes,
    /// Who imports it.
    #[serde(default)]
    pub by: String,
    /// Record the items as approved and published by this person (the
    /// sheet is an already published list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_by: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOut {
    /// The file's name.
    pub file_name: String,
    /// Rows stored and rows refused.
    pub report: ImportReport,
}

impl Op for ImportItems {
    type Out = ImportOut;
    const PATH: &'static str = "/items/import";
    const WRITE: bool = true;
    // The spreadsheet limit (64 MiB), as base64.
    const MAX_BODY: usize = (hallsync_hall::import::MAX_TABLE_BYTES as usize) / 3 * 4 + (64 << 10);
    fn role(&self) -> Option<Role> {
        Some(Role::Reviewer)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        let publish_by = self
            .publish_by
            .as_deref()
            .map(|p| caller.handler(p))
            .transpose()?;
        // The readers go by the name's extension; messages name the file as
        // the caller named it.
        let name = std::path::Path::new(&self.file_name)
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::invalid("the file needs a name ending .csv or .xlsx"))?
            .to_string();
        // The spreadsheet readers check a file before they open it.
        let unavailable = |e: std::io::Error| {
            ApiError::new(
                503,
                "unavailable",
                format!("could not keep the upload: {e}"),
            )
        };
        let dir = tempfile::tempdir().map_err(unavailable)?;
        let path = dir.path().join(&name);
        std::fs::write(&path, &self.content.0).map_err(unavailable)?;
        let as_given = |e: hallsync_hall::HallError| {
            let mut e = ApiError::from(e);
            e.message = e
                .message
                .replace(&path.display().to_string(), &self.file_name);
            e
        };
        let rows = read_table(&path)
            .and_then(|table| items_from_table(&table))
            .map_err(as_given)?;
        let report = svc
            .hall()
            .import_items(rows, &by, publish_by.as_deref(), now, |_, _| {})?;
        Ok(ImportOut {
            file_name: self.file_name,
            report,
        })
    }
}

/// Records a review decision or a publication step: `POST
/// /api/v1/items/review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewItem {
    /// Implementation code.
    pub code: String,
    /// approved, returned, published, suspended or revoked.
    pub action: ReviewAction,
    /// Why (required to return, suspend or revoke).
    #[serde(default)]
    pub reason: String,
    /// Who acts.
    #[serde(default)]
    pub by: String,
}

/// Where an item stands after a review step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemStatusOut {
    /// Implementation code.
    pub code: String,
    /// Its state now.
    pub view: ItemView,
}

impl Op for ReviewItem {
    type Out = ItemStatusOut;
    const PATH: &'static str = "/items/review";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Reviewer)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        if self.action == ReviewAction::Drafted {
            return Err(ApiError::invalid(
                "a draft is made by writing the item (POST /api/v1/items)",
            ));
        }
        let by = caller.handler(&self.by)?;
        let view = svc
            .hall()
            .review_item(&self.code, self.action, &by, &self.reason, now)?;
        Ok(ItemStatusOut {
            code: self.code,
            view,
        })
    }
}
