//! The supervision rules (`hallsync_model::rules`): the records held, the
//! thresholds in force for a case, and a hub's draft and publication.

use std::sync::Arc;

use hallsync_model::cards::Thresholds;
use hallsync_model::evaluation::Weights;
use hallsync_model::ids::Level;
use hallsync_model::rules::{self, set_threshold, AutoOrders, Rules, RULES_KEY};
use hallsync_model::schema::{self, Record};
use hallsync_model::{DocKind, RegionCode, Ts};
use hallsync_store::lock;

use crate::{Hall, HallError};

/// The local record holding this hub's draft rules (never replicated).
const DRAFT_KEY: &[u8] = b"rules-draft";

impl Hall {
    /// Every rules record this node holds (its ancestors', its own and, at
    /// a hub, those of the hubs below), cached until one changes.
    pub fn rules_held(&self) -> Result<Arc<Vec<Rules>>, HallError> {
        if let Some(r) = self.rules.read().ok().and_then(|r| r.clone()) {
            return Ok(r);
        }
        let mut held = Vec::new();
        for id in self.store.ids(DocKind::Rules) {
            let id = id?;
            let h = self.store.doc(&id)?;
            let l = lock(&h)?;
            match schema::read_record(&l.doc, Some(&id)) {
                Ok((_, Record::Rules(r))) => held.push(r),
                Ok(_) => {}
                Err(e) => return Err(HallError::schema(&id, e)),
            }
        }
        held.sort_by_key(|r| r.region.as_str().len());
        let held = Arc::new(held);
        if let Ok(mut slot) = self.rules.write() {
            *slot = Some(held.clone());
        }
        Ok(held)
    }

    /// The thresholds in force for the cases of `region`: DOMAIN §5's,
    /// tightened by every rules record at or above it.
    pub fn thresholds_for(&self, region: &RegionCode) -> Result<Thresholds, HallError> {
        let held = self.rules_held()?;
        Ok(rules::in_force(
            held.iter().filter(|r| r.region.contains(region)),
        ))
    }

    /// The evaluation weights in force for the units below `region`.
    pub fn weights_for(&self, region: &RegionCode) -> Result<Weights, HallError> {
        let held = self.rules_held()?;
        Ok(rules::weights_in_force(
            held.iter().filter(|r| r.region.contains(region)),
        ))
    }

    /// The rules published at or above this node, nearest last.
    pub fn rules_chain(&self) -> Result<Vec<Rules>, HallError> {
        let here = &self.node.region;
        Ok(self
            .rules_held()?
            .iter()
            .filter(|r| r.region.contains(here))
            .cloned()
            .collect())
    }

    /// This hub's draft: as last set, else what it published, else the
    /// thresholds in force here.
    pub fn rules_draft(&self) -> Result<Option<Rules>, HallError> {
        let Some((_, bytes)) = self.store.local(DRAFT_KEY)?.into_iter().next() else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| HallError::BadInput(format!("the stored draft rules cannot be read: {e}")))
    }

    fn hub_only(&self, what: &str) -> Result<(), HallError> {
        if self.node.level == Level::Township {
            return Err(HallError::BadInput(format!(
                "{what}: supervision rules are published by a city or a county hub; this hall follows theirs"
            )));
        }
        Ok(())
    }

    /// Changes this hub's draft: thresholds by name (`delivery` → `2d`),
    /// the automatic orders (`auto_order.case_time_limit` → `red`,
    /// `auto_order_reply` → `3wd`) and, if given, the evaluation weights. The draft is checked as a
    /// whole (and against the rules above) before it is kept.
    pub fn set_rules_draft(
        &self,
        thresholds: &[(String, String)],
        weights: Option<Weights>,
        by: &str,
        now: Ts,
    ) -> Result<Rules, HallError> {
        self.hub_only("rules set")?;
        let mut draft = match self.rules_draft()? {
            Some(d) => d,
            None => self.published_or_in_force(by, now)?,
        };
        for (name, value) in thresholds {
            if !draft
                .auto_orders
                .set(name, value)
                .map_err(HallError::BadInput)?
            {
                set_threshold(&mut draft.thresholds, name, value).map_err(HallError::BadInput)?;
            }
        }
        if let Some(w) = weights {
            draft.weights = w;
        }
        let typed: Vec<&str> = thresholds.iter().map(|(n, _)| n.as_str()).collect();
        self.check_rules(&draft, &typed)?;
        let bytes = serde_json::to_vec(&draft)
            .map_err(|e| HallError::BadInput(format!("could not keep the draft: {e}")))?;
        self.store.put_local(&[(DRAFT_KEY, Some(&bytes))])?;
        Ok(draft)
    }

    fn published_or_in_force(&self, by: &str, now: Ts) -> Result<Rules, HallError> {
        let here = &self.node.region;
        let held = self.rules_held()?;
        if let Some(own) = held.iter().find(|r| r.region == *here) {
            return Ok(own.clone());
        }
        Ok(Rules {
            region: here.clone(),
            version: 0,
            published_at: now,
            published_by: by.to_string(),
            thresholds: self.thresholds_for(here)?,
            weights: self.weights_for(here)?,
            auto_orders: AutoOrders::default(),
        })
    }

    /// Checks rules this hub would publish: possible on their own, and
    /// looser than no rules above, naming every threshold that is. `typed`:
    /// the settings just typed; a threshold not among them that loosens the
    /// rules above (published there since this hub's draft was made) is
    /// said to be so.
    fn check_rules(&self, r: &Rules, typed: &[&str]) -> Result<(), HallError> {
        r.validate()
            .map_err(|e| HallError::BadInput(format!("the rules were not changed: {e}")))?;
        let mut found = Vec::new();
        for above in self.rules_held()?.iter() {
            if above.region.is_ancestor_of(&r.region) {
                for e in r.loosened(above) {
                    if typed.is_empty() || typed.contains(&e.path.as_str()) {
                        found.push(e.to_string());
                    } else {
                        found.push(format!(
                            "{e} (not typed now: this hub's rules held it before {} tightened it; set it again in the same `rules set`)",
                            above.region
                        ));
                    }
                }
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        Err(HallError::BadInput(format!(
            "the rules were not changed: {}",
            found.join("; ")
        )))
    }

    /// Publishes this hub's draft (or, with no draft, the rules in force
    /// here, so the hub's own record exists): checked, written as the next
    /// version, replicated to the halls below; the statistics of the cases
    /// they cover are re-derived.
    pub fn publish_rules(&self, by: &str, now: Ts) -> Result<Rules, HallError> {
        self.hub_only("rules publish")?;
        let mut r = match self.rules_draft()? {
            Some(d) => d,
            None => self.published_or_in_force(by, now)?,
        };
        r.published_at = now;
        r.published_by = by.to_string();
        // Checked before the document is locked: reading the rules held
        // locks every rules document, this one among them.
        self.check_rules(&r, &[])?;
        let id = self.doc_id(DocKind::Rules, RULES_KEY)?;
        let h = self.store.doc(&id)?;
        let mut l = lock(&h)?;
        let current = match schema::read_record(&l.doc, Some(&id)) {
            Ok((_, Record::Rules(c))) if l.exists() => Some(c),
            _ => None,
        };
        if let Some(c) = current.as_ref().filter(|c| {
            (&c.thresholds, &c.weights, &c.auto_orders)
                == (&r.thresholds, &r.weights, &r.auto_orders)
        }) {
            return Err(HallError::BadInput(format!(
                "nothing to publish: version {} (published {} by {}) holds these rules already; change them with `rules set` first",
                c.version, c.published_at, c.published_by
            )));
        }
        r.version = current.map_or(0, |c| c.version) + 1;
        if !l.exists() {
            l.doc = self.new_doc();
        }
        if let Err(e) = schema::write_rules(&mut l.doc, &id, &r) {
            l.doc.rollback();
            drop(l);
            self.store.evict(&id);
            return Err(HallError::BadInput(e.to_string()));
        }
        l.doc.commit();
        l.record = Some(Record::Rules(r.clone()));
        self.persist(&mut [hallsync_store::Pending {
            id: &id,
            loaded: &mut l,
            index: None,
            facts: None,
        }])?;
        drop(l);
        self.store.put_local(&[(DRAFT_KEY, None)])?;
        self.standards_changed(now)?;
        Ok(r)
    }

    /// Refuses a rules record from outside that loosens rules held above
    /// it.
    pub(crate) fn check_received_rules(&self, r: &Rules) -> Result<(), String> {
        let held = self.rules_held().map_err(|e| e.to_string())?;
        for above in held.iter().filter(|a| a.region.is_ancestor_of(&r.region)) {
            let loosened: Vec<String> = r.loosened(above).iter().map(|e| e.to_string()).collect();
            if !loosened.is_empty() {
                return Err(format!(
                    "the rules of {} are refused: {}",
                    r.region,
                    loosened.join("; ")
                ));
            }
        }
        Ok(())
    }
}
