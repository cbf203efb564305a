//! The supervision rules: `GET /api/v1/rules`, `POST /api/v1/rules/set`,
//! `POST /api/v1/rules/publish`.

use std::collections::BTreeMap;

use hallsync_hall::operators::Role;
use hallsync_model::evaluation::Weights;
use hallsync_model::rules::{threshold_values, Rules};
use hallsync_model::{RegionCode, Ts};
use serde::{Deserialize, Serialize};

use crate::{ApiError, Caller, Op, Service};

/// The rules in force here, those published at and above this node, and
/// this hub's draft: `GET /api/v1/rules`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowRules {}

/// A set of rules as shown: thresholds by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesOut {
    /// The hub that published them.
    pub region: RegionCode,
    /// Their version.
    pub version: u32,
    /// When published (the draft: when last published, or now).
    pub published_at: Ts,
    /// By whom.
    pub published_by: String,
    /// The thresholds.
    pub thresholds: BTreeMap<String, String>,
    /// The evaluation's weights.
    pub weights: Weights,
    /// The orders the hub issues by itself: `auto_order.RULE` → the least
    /// level ordered, and `auto_order_reply`.
    pub auto_orders: BTreeMap<String, String>,
}

impl RulesOut {
    fn of(r: &Rules) -> RulesOut {
        RulesOut {
            region: r.region.clone(),
            version: r.version,
            published_at: r.published_at,
            published_by: r.published_by.clone(),
            thresholds: threshold_values(&r.thresholds)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            weights: r.weights.clone(),
            auto_orders: r.auto_orders.values().into_iter().collect(),
        }
    }
}

/// What `rules show` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesView {
    /// This node's region.
    pub region: RegionCode,
    /// The thresholds in force for this node's own cases.
    pub in_force: BTreeMap<String, String>,
    /// The weights in force for the units below it.
    pub weights: Weights,
    /// The rules published at and above this node, farthest first.
    pub published: Vec<RulesOut>,
    /// This hub's draft, if it has one.
    pub draft: Option<RulesOut>,
}

impl Op for ShowRules {
    type Out = RulesView;
    const PATH: &'static str = "/rules";
    const WRITE: bool = false;
    fn role(&self) -> Option<Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, _: Ts) -> Result<Self::Out, ApiError> {
        let hall = svc.hall();
        let region = hall.node().region.clone();
        Ok(RulesView {
            in_force: threshold_values(&hall.thresholds_for(&region)?)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            weights: hall.weights_for(&region)?,
            published: hall.rules_chain()?.iter().map(RulesOut::of).collect(),
            draft: hall.rules_draft()?.as_ref().map(RulesOut::of),
            region,
        })
    }
}

/// Changes this hub's draft rules: `POST /api/v1/rules/set`. Checked as a
/// whole, and against the rules above, before it is kept; published with
/// [`PublishRules`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRules {
    /// Thresholds by name: `time_limit_notice`, `special_notice`,
    /// `special_red_over`, `online_notice`, `online_yellow`, `online_red`,
    /// `decision_silence`, `delivery` (`3wd`, `2d`, `24h` …) and
    /// `disclosure_red_times` (a number).
    #[serde(default)]
    pub thresholds: BTreeMap<String, String>,
    /// The evaluation's weights (they add up to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// Who changes them.
    #[serde(default)]
    pub by: String,
}

impl Op for SetRules {
    type Out = RulesOut;
    const PATH: &'static str = "/rules/set";
    const WRITE: bool = true;
    const RECORDS: bool = false;
    fn role(&self) -> Option<Role> {
        Some(Role::Supervisor)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        let changes: Vec<(String, String)> = self.thresholds.into_iter().collect();
        let draft = svc
            .hall()
            .set_rules_draft(&changes, self.weights, &by, now)?;
        Ok(RulesOut::of(&draft))
    }
}

/// Publishes this hub's draft rules to its subtree:
/// `POST /api/v1/rules/publish`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRules {
    /// Who publishes them.
    #[serde(default)]
    pub by: String,
}

impl Op for PublishRules {
    type Out = RulesOut;
    const PATH: &'static str = "/rules/publish";
    const WRITE: bool = true;
    fn role(&self) -> Option<Role> {
        Some(Role::Supervisor)
    }
    fn run(self, svc: &Service, caller: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by = caller.handler(&self.by)?;
        Ok(RulesOut::of(&svc.hall().publish_rules(&by, now)?))
    }
}
