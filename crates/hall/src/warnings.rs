//! The supervision cards of the cases a hall holds: derived at the time
//! asked (`hallsync_model::cards`), never stored, so every level holding
//! the same events lists the same cards.

use std::cmp::Reverse;
use std::collections::HashMap;

use hallsync_model::cards::{self, CaseCard, Thresholds};
use hallsync_model::order::{Card, Rule};
use hallsync_model::rules;
use hallsync_model::{CaseHeader, DocId, NodeId, RegionCode, Ts};
use serde::{Deserialize, Serialize};

use crate::{CaseFilter, CaseRow, Hall, HallError};

/// Which cards to list.
#[derive(Debug, Clone, Default)]
pub struct WarningFilter {
    /// Only cards at this level.
    pub card: Option<Card>,
    /// Only cards of this rule.
    pub rule: Option<Rule>,
    /// Only cases of the halls in this region's subtree.
    pub unit: Option<RegionCode>,
    /// Also the cards that no longer stand (the case concluded, the
    /// certificate delivered, the card revoked on appeal …).
    pub ended: bool,
}

/// One card of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningRow {
    /// The case's document id.
    pub case: DocId,
    /// Its number.
    pub number: String,
    /// The region of the hall that accepted it.
    pub unit: RegionCode,
    /// That hall's node.
    pub hall: NodeId,
    /// The item's name.
    pub item: String,
    /// Revoked on appeal by the hub that ordered it put right (listed only
    /// with the ended cards).
    pub revoked: bool,
    /// The card.
    #[serde(flatten)]
    pub card: CaseCard,
    /// The hall's clock was off its parent's (by this many seconds ahead;
    /// negative: behind) when it recorded one of the times the card is
    /// reckoned from: the card may be wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_off: Option<i64>,
    /// The order this hall has issued about this card, if any (a card is
    /// ordered once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<DocId>,
}

/// A page of cards and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningPage {
    /// Cards matching, in all.
    pub total: usize,
    /// This page's cards.
    pub rows: Vec<WarningRow>,
}

/// A card found for a list: the case's place among those holding one.
struct Found {
    case: usize,
    revoked: bool,
    card: CaseCard,
    clock_off: Option<i64>,
}

impl Hall {
    /// The cards a listed case holds at `now`.
    pub fn case_cards(&self, row: &CaseRow, now: Ts) -> Result<Vec<CaseCard>, HallError> {
        let cal = self.calendar()?;
        Ok(cards::case_cards(
            &row.header,
            &row.view,
            &row.clock,
            &cal,
            &self.thresholds_for(&row.header.region)?,
            now,
        ))
    }

    /// The cards `filter` names at `now`, red first, then by when they
    /// were raised; rows `offset..offset + limit` of them.
    pub fn warnings(
        &self,
        filter: &WarningFilter,
        now: Ts,
        offset: usize,
        limit: usize,
    ) -> Result<WarningPage, HallError> {
        let cal = self.calendar()?;
        let held = self.rules_held()?;
        // The cards revoked on appeal, by case.
        let mut revoked: HashMap<DocId, Vec<(Rule, Card)>> = HashMap::new();
        // The orders this hall issued, by the card they name.
        let mut ordered: HashMap<(DocId, Rule, Card), DocId> = HashMap::new();
        for o in self.orders(now)? {
            let h = o.order.header;
            if o.view.card_revoked() {
                revoked
                    .entry(h.case.clone())
                    .or_default()
                    .push((h.rule, h.card));
            }
            if h.issuer == self.node.region {
                ordered.insert((h.case, h.rule, h.card), o.id);
            }
        }
        let clocks_off = self.clocks_off()?;
        let mut in_force: Vec<(RegionCode, Thresholds)> = Vec::new();
        let cases = CaseFilter {
            include_closed: true,
            unit: filter.unit.clone(),
            ..CaseFilter::default()
        };
        // The cases with a card listed, and each card with its case's place
        // there: rows are made only for the page asked for.
        let mut held_by: Vec<(DocId, CaseHeader)> = Vec::new();
        let mut found: Vec<Found> = Vec::new();
        // Unless ended cards are asked for too, only the cases indexed as
        // able to hold a standing card by `now` are read.
        self.each_listed_case(&cases, now, !filter.ended, |row| {
            let region = &row.header.region;
            let thresholds = match in_force.iter().find(|(r, _)| r == region) {
                Some((_, t)) => t.clone(),
                None => {
                    let t = rules::in_force(held.iter().filter(|r| r.region.contains(region)));
                    in_force.push((region.clone(), t.clone()));
                    t
                }
            };
            let clock_off = clocks_off.get(&row.header.hall).and_then(|e| {
                let instants = row.view.instants();
                instants
                    .into_iter()
                    .find_map(|t| e.clock_off_at(t))
                    .map(|p| p.ahead_secs)
            });
            let case_revoked = revoked.get(&row.id).map_or(&[][..], Vec::as_slice);
            let before = found.len();
            for card in
                cards::case_cards(&row.header, &row.view, &row.clock, &cal, &thresholds, now)
            {
                let was_revoked = case_revoked.contains(&(card.rule, card.card));
                let wanted = filter.card.is_none_or(|c| c == card.card)
                    && filter.rule.is_none_or(|r| r == card.rule)
                    && (filter.ended || (card.until.is_none() && !was_revoked));
                if wanted {
                    found.push(Found {
                        case: held_by.len(),
                        revoked: was_revoked,
                        card,
                        clock_off,
                    });
                }
            }
            if found.len() > before {
                held_by.push((row.id, row.header));
            }
        })?;
        let rank = |c: Card| Card::ALL.iter().position(|x| *x == c);
        let order = |f: &Found| {
            (
                Reverse(rank(f.card.card)),
                f.card.since,
                &held_by[f.case].0,
                f.card.rule.as_str(),
            )
        };
        found.sort_by(|a, b| order(a).cmp(&order(b)));
        let total = found.len();
        let rows = found
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|f| {
                let (id, header) = &held_by[f.case];
                WarningRow {
                    case: id.clone(),
                    number: header.number.clone(),
                    unit: header.region.clone(),
                    hall: header.hall.clone(),
                    item: header.item.name.clone(),
                    revoked: f.revoked,
                    order: ordered
                        .get(&(id.clone(), f.card.rule, f.card.card))
                        .cloned(),
                    card: f.card,
                    clock_off: f.clock_off,
                }
            })
            .collect();
        Ok(WarningPage { total, rows })
    }
}
