//! Supervision cards: `GET /api/v1/warnings`.

use hallsync_hall::{WarningFilter, WarningRow};
use hallsync_model::order::{Card, Rule};
use hallsync_model::{RegionCode, Ts};
use serde::{Deserialize, Serialize};

use super::{is_false, is_zero};
use crate::{check_limit, default_limit, ApiError, Caller, Op, Page, Service};

/// Lists the supervision cards of the cases this node holds, red first,
/// then by when they were raised: `GET /api/v1/warnings`. Standing cards
/// only, unless `ended`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListWarnings {
    /// Only cards at this level (`notice`, `yellow`, `red`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Card>,
    /// Only cards of this rule (`case_time_limit`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// Only cases of the halls in this region's subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<RegionCode>,
    /// Also cards that no longer stand.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ended: bool,
    /// Rows to skip.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: usize,
    /// Most rows.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

impl Default for ListWarnings {
    fn default() -> ListWarnings {
        ListWarnings {
            card: None,
            rule: None,
            unit: None,
            ended: false,
            offset: 0,
            limit: default_limit(),
        }
    }
}

/// A page of cards, as of a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningList {
    /// The time the cards are derived at.
    pub now: Ts,
    /// The cards.
    pub page: Page<WarningRow>,
}

impl Op for ListWarnings {
    type Out = WarningList;
    const PATH: &'static str = "/warnings";
    const WRITE: bool = false;
    fn role(&self) -> Option<hallsync_hall::operators::Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        check_limit(self.limit)?;
        let filter = WarningFilter {
            card: self.card,
            rule: self.rule,
            unit: self.unit,
            ended: self.ended,
        };
        let page = svc.hall().warnings(&filter, now, self.offset, self.limit)?;
        Ok(WarningList {
            now,
            page: Page {
                total: page.total,
                offset: self.offset,
                limit: self.limit,
                items: page.rows,
            },
        })
    }
}
