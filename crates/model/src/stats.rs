//! Statistics (DOMAIN §5's metrics), pure: what one case or order adds to
//! the counts of its unit and item on each day (its [`Facts`]), and the
//! rates read from summed counts ([`Row`]).
//!
//! Facts are a function of the record's events, the calendar and the
//! thresholds only, never of the time they are computed at, so every node
//! holding the same events counts the same. A case's clock is read as at
//! its last event. Supervision cards are counted on the day their level is
//! reached, once per case, rule and level: in [`Facts::days`] once the
//! situation has ended after it; while it lasts, in [`Facts::pending`] with
//! the instant it counts from, which a reader counts once its `now` has
//! passed that instant.

use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::cards::{case_crossings, Thresholds};
use crate::case::{CaseClock, CaseHeader, CaseView};
use crate::order::{Card, Order, Rule};
use crate::time::{Ts, DAY};

/// The counters of a statistics row, by index.
pub mod ix {
    /// Applications received (收件), on the day received.
    pub const RECEIVED: usize = 0;
    /// Accepted (受理), on the day the clock started.
    pub const ACCEPTED: usize = 1;
    /// Not accepted or withdrawn before a conclusion, on that day.
    pub const CLOSED: usize = 2;
    /// Concluded (办结), on the day concluded.
    pub const CONCLUDED: usize = 3;
    /// Concluded with a refusal (不予许可).
    pub const REFUSED: usize = 4;
    /// Concluded within the committed limit.
    pub const ON_TIME: usize = 5;
    /// Concluded at least one unit of the committed limit early (提前办结).
    pub const EARLY: usize = 6;
    /// Concluded with a committed limit (承诺件), the divisor of averages.
    pub const TIMED: usize = 7;
    /// Σ committed limits of those, in metered seconds.
    pub const COMMITTED_SECS: usize = 8;
    /// Σ time used by those, in the same seconds.
    pub const USED_SECS: usize = 9;
    /// Σ statutory limits of those whose statutory limit is metered alike.
    pub const STATUTORY_SECS: usize = 10;
    /// Σ time used by the cases in [`STATUTORY_SECS`].
    pub const USED_STATUTORY_SECS: usize = 11;
    /// Fees charged, in fen, on the day concluded.
    pub const FEES_FEN: usize = 12;
    /// Rated by the applicant.
    pub const RATED: usize = 13;
    /// Rated 4 or 5 (满意).
    pub const SATISFIED: usize = 14;
    /// Open cases past their committed due time, counted on the day they
    /// fell due while they stay open.
    pub const OVERDUE: usize = 15;
    /// Open cases (a gauge, not dated).
    pub const OPEN: usize = 16;
    /// Supervision orders issued, on the day issued.
    pub const ORDERS: usize = 17;
    /// Orders whose reply came late or is still missing past its due day.
    pub const ORDERS_LATE: usize = 18;
    /// Orders closed, on the day closed.
    pub const ORDERS_CLOSED: usize = 19;
    /// The first card counter: `CARDS + rule × 3 + level` (see
    /// [`super::card_counter`]).
    pub const CARDS: usize = 20;
    /// Orders whose card the unit appealed (申诉), on the day appealed.
    pub const APPEALS: usize = CARDS + 3 * 7;
    /// The first counter of cards revoked on appeal, laid out as
    /// [`CARDS`] (see [`super::revoked_counter`]), on the day the order
    /// naming the card was issued.
    pub const REVOKED: usize = APPEALS + 1;
}

/// How many counters a row has.
pub const COUNTERS: usize = ix::REVOKED + 3 * 7;

/// The counter of cards of one rule at one level.
pub fn card_counter(rule: Rule, card: Card) -> usize {
    let r = Rule::ALL.iter().position(|x| *x == rule).unwrap_or(0);
    let c = Card::ALL.iter().position(|x| *x == card).unwrap_or(0);
    ix::CARDS + r * 3 + c
}

/// The counter of cards of one rule at one level revoked on appeal.
pub fn revoked_counter(rule: Rule, card: Card) -> usize {
    card_counter(rule, card) - ix::CARDS + ix::REVOKED
}

/// A day, numbered from 1970-01-01 in China Standard Time.
pub fn day_of(t: Ts) -> u32 {
    let local = t.0.saturating_add(8 * 3600).div_euclid(DAY);
    u32::try_from(local.max(0)).unwrap_or(u32::MAX)
}

/// The first instant of a numbered day.
pub fn day_start(day: u32) -> Ts {
    Ts(i64::from(day) * DAY - 8 * 3600)
}

/// The month (`year × 12 + month − 1`) a numbered day lies in.
pub fn month_of(day: u32) -> u32 {
    use chrono::Datelike;
    let d = day_start(day).date();
    u32::try_from(d.year()).unwrap_or(0) * 12 + d.month0()
}

/// What one record adds to its unit's and item's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The unit counted under (canonical region code).
    pub region: String,
    /// The item's implementation code (empty for orders).
    pub item: String,
    /// Counters that hold while the record is as it is (not dated).
    pub gauges: Vec<(u8, i64)>,
    /// Dated counters: (day, [(counter, amount)]), days ascending.
    pub days: Vec<(u32, Vec<(u8, i64)>)>,
    /// Counters of situations still going on (an open case's coming
    /// cards, an unanswered order's lateness): (the instant they count
    /// from, counter), each counted once a reader's `now` has passed it,
    /// on that instant's day. Never in `days`.
    pub pending: Vec<(i64, u8)>,
}

impl Facts {
    fn new(region: &str, item: &str) -> Facts {
        Facts {
            region: region.into(),
            item: item.into(),
            ..Facts::default()
        }
    }

    fn add(&mut self, at: Ts, counter: usize, amount: i64) {
        if amount == 0 {
            return;
        }
        let day = day_of(at);
        let c = counter as u8;
        let i = match self.days.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(i) => i,
            Err(i) => {
                self.days.insert(i, (day, Vec::new()));
                i
            }
        };
        let row = &mut self.days[i].1;
        match row.iter_mut().find(|(k, _)| *k == c) {
            Some((_, v)) => *v += amount,
            None => row.push((c, amount)),
        }
    }

    fn add_pending(&mut self, from: Ts, counter: usize) {
        self.pending.push((from.0, counter as u8));
    }

    /// The first instant a pending count counts from: for a case, the
    /// earliest a card of it can stand if it goes on as it is (one second
    /// past the first threshold of a situation still going on, passed or
    /// not). `None`: the case holds no standing card at any time before its
    /// next event.
    pub fn standing_from(&self) -> Option<Ts> {
        self.pending.iter().map(|(from, _)| Ts(*from)).min()
    }
}

/// The facts of a case; `clock` read at its last event.
pub fn case_facts(
    header: &CaseHeader,
    view: &CaseView,
    clock: &CaseClock,
    cal: &Calendar,
    t: &Thresholds,
) -> Facts {
    let mut f = Facts::new(header.region.as_str(), &header.item.impl_code);
    if let Some(at) = view.received_at {
        f.add(at, ix::RECEIVED, 1);
    }
    if let Some((at, _)) = clock.accepted {
        f.add(at, ix::ACCEPTED, 1);
    }
    if let (Some(at), None) = (view.closed_at, view.concluded_at) {
        f.add(at, ix::CLOSED, 1);
    }
    if view.state.is_open() {
        f.gauges.push((ix::OPEN as u8, 1));
    }
    if let Some(at) = view.concluded_at {
        concluded(&mut f, header, view, clock, at);
    }
    for c in case_crossings(header, view, clock, cal, t) {
        let from = c.at.plus(1);
        let counters = [
            Some(card_counter(c.rule, c.card)),
            (c.rule == Rule::CaseTimeLimit && c.card == Card::Yellow && c.pending)
                .then_some(ix::OVERDUE),
        ];
        for counter in counters.into_iter().flatten() {
            if c.pending {
                f.add_pending(from, counter);
            } else {
                f.add(from, counter, 1);
            }
        }
    }
    f
}

fn concluded(f: &mut Facts, header: &CaseHeader, view: &CaseView, clock: &CaseClock, at: Ts) {
    f.add(at, ix::CONCLUDED, 1);
    if view.outcome == Some(crate::case::Outcome::Refused) {
        f.add(at, ix::REFUSED, 1);
    }
    f.add(at, ix::FEES_FEN, view.fees_fen);
    if let Some(score) = view.rating {
        f.add(at, ix::RATED, 1);
        f.add(at, ix::SATISFIED, i64::from(score >= 4));
    }
    let committed = header.item.committed_limit;
    if committed.amount == 0 || clock.accepted.is_none() {
        return;
    }
    let budget = committed.budget();
    f.add(at, ix::TIMED, 1);
    f.add(at, ix::ON_TIME, i64::from(!clock.over_committed));
    let spare = committed.unit.seconds();
    f.add(at, ix::EARLY, i64::from(clock.used + spare <= budget));
    f.add(at, ix::COMMITTED_SECS, budget);
    f.add(at, ix::USED_SECS, clock.used);
    let statutory = header.item.statutory_limit;
    if statutory.amount > 0 && statutory.unit.meter() == committed.unit.meter() {
        f.add(at, ix::STATUTORY_SECS, statutory.budget());
        f.add(at, ix::USED_STATUTORY_SECS, clock.used);
    }
}

/// The facts of a supervision order, counted under its unit.
pub fn order_facts(order: &Order) -> Facts {
    let h = &order.header;
    let mut f = Facts::new(h.unit.as_str(), "");
    f.add(h.issued_at, ix::ORDERS, 1);
    // Read as at the issue: `now` only decides a missing reply's lateness,
    // which stays pending here.
    let v = order.view(h.issued_at);
    if let Some((_, at)) = v.closed {
        f.add(at, ix::ORDERS_CLOSED, 1);
    }
    if let Some(a) = v.appeal {
        f.add(a.filed, ix::APPEALS, 1);
    }
    if v.card_revoked() {
        f.add(h.issued_at, revoked_counter(h.rule, h.card), 1);
    }
    let answered = [
        v.first_reply,
        v.appeal.map(|a| a.filed),
        v.closed.map(|c| c.1),
    ]
    .into_iter()
    .flatten()
    .min();
    let late_from = h.reply_due.plus(1);
    match answered {
        Some(at) if at > h.reply_due => f.add(late_from, ix::ORDERS_LATE, 1),
        Some(_) => {}
        None => f.add_pending(late_from, ix::ORDERS_LATE),
    }
    f
}

/// Summed counters, and the rates read from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row(pub Vec<i64>);

impl Row {
    /// A counter (zero when absent).
    pub fn get(&self, counter: usize) -> i64 {
        self.0.get(counter).copied().unwrap_or(0)
    }

    /// Adds `sign` × `counts`.
    pub fn add(&mut self, counts: &[i64], sign: i64) {
        if self.0.len() < counts.len() {
            self.0.resize(counts.len(), 0);
        }
        for (r, c) in self.0.iter_mut().zip(counts) {
            *r += c * sign;
        }
    }

    /// Whether every counter is zero.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|c| *c == 0)
    }

    fn ratio(&self, num: i64, den: i64) -> Option<f64> {
        (den > 0).then(|| num as f64 / den as f64)
    }

    /// Concluded ÷ accepted (办结率).
    pub fn conclusion_rate(&self) -> Option<f64> {
        self.ratio(self.get(ix::CONCLUDED), self.get(ix::ACCEPTED))
    }

    /// On time ÷ concluded with a committed limit (按时办结率).
    pub fn on_time_rate(&self) -> Option<f64> {
        self.ratio(self.get(ix::ON_TIME), self.get(ix::TIMED))
    }

    /// (Σ committed limit − Σ used) ÷ Σ committed limit (提速率, 承诺).
    pub fn speed_up_committed(&self) -> Option<f64> {
        let limit = self.get(ix::COMMITTED_SECS);
        self.ratio(limit - self.get(ix::USED_SECS), limit)
    }

    /// (Σ statutory limit − Σ used) ÷ Σ statutory limit (提速率, 法定).
    pub fn speed_up_statutory(&self) -> Option<f64> {
        let limit = self.get(ix::STATUTORY_SECS);
        self.ratio(limit - self.get(ix::USED_STATUTORY_SECS), limit)
    }

    /// Average days used per case concluded with a committed limit
    /// (平均办结天数: metered days, or hours ÷ 24 for hour limits).
    pub fn average_days(&self) -> Option<f64> {
        self.ratio(self.get(ix::USED_SECS), self.get(ix::TIMED) * DAY)
    }

    /// Satisfied ÷ rated (满意率).
    pub fn satisfaction_rate(&self) -> Option<f64> {
        self.ratio(self.get(ix::SATISFIED), self.get(ix::RATED))
    }

    /// Cards of one rule and level.
    pub fn cards(&self, rule: Rule, card: Card) -> i64 {
        self.get(card_counter(rule, card))
    }

    /// Cards of one level, every rule.
    pub fn cards_at(&self, card: Card) -> i64 {
        Rule::ALL.iter().map(|r| self.cards(*r, card)).sum()
    }

    /// Cards of one level, every rule, revoked on appeal.
    pub fn revoked_at(&self, card: Card) -> i64 {
        Rule::ALL
            .iter()
            .map(|r| self.get(revoked_counter(*r, card)))
            .sum()
    }

    /// Cards of one level that stand: raised and not revoked, rule by
    /// rule, so that a revocation forgives only a card of its own rule and
    /// level.
    pub fn standing_at(&self, card: Card) -> i64 {
        Rule::ALL
            .iter()
            .map(|r| (self.cards(*r, card) - self.get(revoked_counter(*r, card))).max(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::tests::{ev, header};
    use crate::case::{Case, EventKind, Outcome};
    use crate::clock::{LimitUnit, TimeLimit};

    fn t(s: &str) -> Ts {
        Ts::parse(s).unwrap()
    }

    fn facts(events: Vec<crate::case::CaseEvent>) -> Facts {
        let case = Case {
            header: header(
                TimeLimit::new(20, LimitUnit::WorkingDays),
                TimeLimit::new(5, LimitUnit::WorkingDays),
            ),
            events,
        };
        let view = case.view();
        let cal = Calendar::default();
        let clock = case.clock(&view, &cal, view.last_event_at.unwrap_or(Ts(0)));
        case_facts(&case.header, &view, &clock, &cal, &Thresholds::default())
    }

    fn on(f: &Facts, day: &str, counter: usize) -> i64 {
        let d = day_of(t(day));
        f.days
            .iter()
            .filter(|(x, _)| *x == d)
            .flat_map(|(_, r)| r)
            .filter(|(c, _)| usize::from(*c) == counter)
            .map(|(_, v)| v)
            .sum()
    }

    #[test]
    fn days_are_china_days_and_months_follow_them() {
        let d = day_of(t("2026-03-01 00:00:00"));
        assert_eq!(day_of(t("2026-02-28 23:59:59")), d - 1);
        assert_eq!(day_start(d), t("2026-03-01"));
        assert_eq!(month_of(d), 2026 * 12 + 2);
        assert_eq!(month_of(d - 1), 2026 * 12 + 1);
    }

    #[test]
    fn a_case_concluded_early_counts_on_its_days() {
        let f = facts(vec![
            ev("a.1", "2026-03-02 09:00", EventKind::Received),
            ev("a.2", "2026-03-02 09:30", EventKind::Accepted),
            ev(
                "a.3",
                "2026-03-04 10:00",
                EventKind::Concluded {
                    outcome: Outcome::Approved,
                    opinion: "同意".into(),
                    certificate: String::new(),
                },
            ),
        ]);
        assert_eq!(on(&f, "2026-03-02", ix::RECEIVED), 1);
        assert_eq!(on(&f, "2026-03-02", ix::ACCEPTED), 1);
        assert_eq!(on(&f, "2026-03-04", ix::CONCLUDED), 1);
        assert_eq!(on(&f, "2026-03-04", ix::ON_TIME), 1);
        assert_eq!(on(&f, "2026-03-04", ix::EARLY), 1);
        assert_eq!(on(&f, "2026-03-04", ix::COMMITTED_SECS), 5 * DAY);
        // Only the publication, still missing, is ahead.
        let disclosure = [Card::Yellow, Card::Red].map(|c| card_counter(Rule::Disclosure, c) as u8);
        let ahead: Vec<u8> = f.pending.iter().map(|(_, c)| *c).collect();
        assert_eq!(ahead, disclosure);
        assert!(f.gauges.is_empty());
    }

    #[test]
    fn an_open_case_counts_its_coming_cards_as_pending_on_their_days() {
        let f = facts(vec![
            ev("a.1", "2026-03-02 09:00", EventKind::Received),
            ev("a.2", "2026-03-02 09:30", EventKind::Accepted),
        ]);
        assert_eq!(f.gauges, vec![(ix::OPEN as u8, 1)]);
        // Five working days from Monday 2 March: due Monday 9 March, end of day.
        let yellow = card_counter(Rule::CaseTimeLimit, Card::Yellow);
        let pending_on = |day: &str, counter: usize| {
            f.pending
                .iter()
                .any(|(at, c)| usize::from(*c) == counter && day_of(Ts(*at)) == day_of(t(day)))
        };
        assert!(pending_on("2026-03-10", yellow));
        assert!(pending_on("2026-03-10", ix::OVERDUE));
        assert!(pending_on(
            "2026-03-06",
            card_counter(Rule::CaseTimeLimit, Card::Notice)
        ));
        assert_eq!(on(&f, "2026-03-10", yellow), 0, "not counted until reached");
    }

    #[test]
    fn rates_come_from_the_sums() {
        let mut r = Row::default();
        let mut counts = vec![0; COUNTERS];
        counts[ix::TIMED] = 4;
        counts[ix::ON_TIME] = 3;
        counts[ix::COMMITTED_SECS] = 20 * DAY;
        counts[ix::USED_SECS] = 5 * DAY;
        r.add(&counts, 1);
        assert_eq!(r.on_time_rate(), Some(0.75));
        assert_eq!(r.speed_up_committed(), Some(0.75));
        assert_eq!(r.average_days(), Some(1.25));
        assert_eq!(r.satisfaction_rate(), None);
    }
}
