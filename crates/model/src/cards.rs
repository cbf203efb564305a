//! Supervision cards (预警 notice, 黄牌 yellow, 红牌 red), derived, never
//! stored: a pure function of a case's derived view and clock, the
//! calendar, the thresholds in force and `now` (DOMAIN §5). Every node
//! holding the same events shows the same cards, whatever order the events
//! arrived in.
//!
//! A card stands from the instant its threshold is passed (one second
//! after it, as with due times: at the due time itself a case is not yet
//! late) until the situation ends: the case concluded, the procedure
//! ended, the certificate delivered, the decision published. An ended card
//! is still listed with its `until`, for statistics; a case has at most one
//! card per rule, at the highest level it reached.

use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::case::{CaseClock, CaseHeader, CaseView, Outcome, ACCEPT_OR_ASK_WORKING_DAYS};
use crate::catalogue::{CaseType, Disclosure};
use crate::clock::{self, LimitUnit, TimeLimit};
use crate::order::{Card, Rule};
use crate::time::{Ts, HOUR};

/// Whether a case's events can raise cards of `rule`. Complaints and
/// consultations are not recorded as cases, so `complaint_reply` raises
/// none: an order for it is only ever typed by a person.
pub fn derives(rule: Rule) -> bool {
    rule != Rule::ComplaintReply
}

/// The thresholds of the time rules; the defaults are DOMAIN §5's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Case time limit: a notice this long before the committed due time.
    pub time_limit_notice: TimeLimit,
    /// Special procedure: a notice this long before its approved end …
    pub special_notice: TimeLimit,
    /// … and a red card once it runs over its approved end by more than this.
    pub special_red_over: TimeLimit,
    /// An online application with no acceptance decision this long after
    /// it was received: notice, yellow and red.
    pub online_decision: [TimeLimit; 3],
    /// Any other application: a yellow card once this passes with no
    /// decision (it then counts as accepted on receipt, art. 32).
    pub decision_silence: TimeLimit,
    /// Certificate delivery: a yellow card when a certificate is not
    /// delivered this long after the conclusion that issued it.
    pub delivery: TimeLimit,
    /// Disclosure: a red card when a decision is still unpublished at this
    /// many times its limit (12 h after acceptance, 24 h after a
    /// conclusion).
    pub disclosure_red_times: u32,
    /// Anomaly: a yellow card when one handling step (审核, 决定 …) is
    /// still going on this long after it began.
    #[serde(default = "default_step_limit")]
    pub step_limit: TimeLimit,
    /// Anomaly: a yellow card when a case a higher level decides (上报件)
    /// is not forwarded this long after it was accepted.
    #[serde(default = "default_forward_limit")]
    pub forward_limit: TimeLimit,
}

/// The default of [`Thresholds::step_limit`]: five working days.
pub fn default_step_limit() -> TimeLimit {
    TimeLimit::new(5, LimitUnit::WorkingDays)
}

/// The default of [`Thresholds::forward_limit`]: one working day.
pub fn default_forward_limit() -> TimeLimit {
    TimeLimit::new(1, LimitUnit::WorkingDays)
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        let days = |n| TimeLimit::new(n, LimitUnit::NaturalDays);
        Thresholds {
            time_limit_notice: TimeLimit::new(2, LimitUnit::WorkingDays),
            special_notice: days(2),
            special_red_over: days(1),
            online_decision: [days(2), days(3), days(5)],
            decision_silence: TimeLimit::new(ACCEPT_OR_ASK_WORKING_DAYS, LimitUnit::WorkingDays),
            delivery: days(3),
            disclosure_red_times: 2,
            step_limit: default_step_limit(),
            forward_limit: default_forward_limit(),
        }
    }
}

/// A card a case holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseCard {
    /// The rule.
    pub rule: Rule,
    /// The highest level reached.
    pub card: Card,
    /// When that level was reached.
    pub since: Ts,
    /// When the situation ended (the card stands no longer); `None` while
    /// it stands.
    pub until: Option<Ts>,
    /// What clears it.
    pub clears: String,
}

/// The cards of one case at `now` (see the module's text), ordered by rule.
pub fn case_cards(
    header: &CaseHeader,
    view: &CaseView,
    clock: &CaseClock,
    cal: &Calendar,
    t: &Thresholds,
    now: Ts,
) -> Vec<CaseCard> {
    let mut out: Vec<CaseCard> = Vec::new();
    for ladder in ladders(header, view, clock, cal, t) {
        let Some((card, since)) = reached(&ladder.levels, ladder.stop.unwrap_or(now)) else {
            continue;
        };
        let found = CaseCard {
            rule: ladder.rule,
            card,
            since,
            until: ladder.stop,
            clears: ladder.clears.into(),
        };
        // Of several ladders of one rule (special procedures), the worst.
        match out.iter_mut().find(|c| c.rule == found.rule) {
            Some(c)
                if (c.card as u8, std::cmp::Reverse(c.since))
                    < (card as u8, std::cmp::Reverse(since)) =>
            {
                *c = found
            }
            Some(_) => {}
            None => out.push(found),
        }
    }
    out.sort_by_key(|c| Rule::ALL.iter().position(|r| *r == c.rule));
    out
}

/// A level a case passes, now or (while the situation lasts) later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    /// The rule.
    pub rule: Rule,
    /// The level.
    pub card: Card,
    /// The instant its threshold is passed (the card stands one second
    /// after it).
    pub at: Ts,
    /// The situation has not ended: the card may still be cleared before
    /// `at` (the case concluded, the procedure ended …).
    pub pending: bool,
}

/// Every level of every rule a case passes, once per rule and level (the
/// earliest, when several special procedures pass it), whatever `now` is:
/// those passed before the situation ended, and those it will pass if it
/// goes on as it is (`pending`). While a case's clock is paused its due
/// times are only lower bounds, so its time-limit levels not yet passed at
/// its last event are left out until the pause ends.
pub fn case_crossings(
    header: &CaseHeader,
    view: &CaseView,
    clock: &CaseClock,
    cal: &Calendar,
    t: &Thresholds,
) -> Vec<Crossing> {
    let last = view.last_event_at.unwrap_or(Ts(0));
    let mut out: Vec<Crossing> = Vec::new();
    for ladder in ladders(header, view, clock, cal, t) {
        let speculative = ladder.rule == Rule::CaseTimeLimit && clock.paused_now;
        for (card, threshold) in &ladder.levels {
            let Some(at) = *threshold else { continue };
            let passed = match ladder.stop {
                Some(stop) => stop > at,
                None => !speculative || last > at,
            };
            if !passed {
                continue;
            }
            let c = Crossing {
                rule: ladder.rule,
                card: *card,
                at,
                pending: ladder.stop.is_none(),
            };
            match out
                .iter_mut()
                .find(|o| o.rule == c.rule && o.card == c.card)
            {
                Some(o) if c.at < o.at => *o = c,
                Some(_) => {}
                None => out.push(c),
            }
        }
    }
    out
}

/// One rule's levels for one situation, and when the situation ended.
struct Ladder {
    rule: Rule,
    /// (level, threshold) from the lowest level up.
    levels: Vec<(Card, Option<Ts>)>,
    /// When the situation ended (`None`: it goes on).
    stop: Option<Ts>,
    clears: &'static str,
}

fn ladders(
    header: &CaseHeader,
    view: &CaseView,
    clock: &CaseClock,
    cal: &Calendar,
    t: &Thresholds,
) -> Vec<Ladder> {
    let mut out: Vec<Ladder> = time_limit(view, clock, cal, t).into_iter().collect();
    out.extend(special(view, cal, t));
    out.extend(decision(header, view, cal, t));
    out.extend(delivery(view, cal, t));
    out.extend(disclosure(header, view, clock, t));
    out.extend(steps(view, cal, t));
    out.extend(fees(header, view));
    out.extend(forwarding(header, view, cal, t));
    out.extend(filing(header, view, t));
    out
}

/// The highest of `levels` (card, threshold) passed by `at`.
fn reached(levels: &[(Card, Option<Ts>)], at: Ts) -> Option<(Card, Ts)> {
    levels
        .iter()
        .rev()
        .find_map(|(card, threshold)| threshold.filter(|&t| at > t).map(|t| (*card, t)))
}

fn after(cal: &Calendar, from: Ts, limit: TimeLimit) -> Option<Ts> {
    clock::advance(cal, limit.unit.meter(), from, limit.budget())
}

/// Notice before the committed due time, yellow past it, red past the
/// statutory due time; until the conclusion. A case withdrawn or not
/// accepted has none.
fn time_limit(
    view: &CaseView,
    clock: &CaseClock,
    cal: &Calendar,
    t: &Thresholds,
) -> Option<Ladder> {
    if view.closed_at.is_some() {
        return None;
    }
    let committed = clock.committed_due?;
    let notice = clock::retreat(
        cal,
        t.time_limit_notice.unit.meter(),
        committed,
        t.time_limit_notice.budget(),
    );
    Some(Ladder {
        rule: Rule::CaseTimeLimit,
        levels: vec![
            (Card::Notice, notice),
            (Card::Yellow, Some(committed)),
            (Card::Red, clock.statutory_due),
        ],
        stop: view.concluded_at,
        clears: "conclude the case (办结)",
    })
}

/// Notice before a special procedure's approved end, yellow past it, red
/// once over by more than the threshold; until it ends. One ladder per
/// procedure.
fn special<'a>(
    view: &'a CaseView,
    cal: &'a Calendar,
    t: &'a Thresholds,
) -> impl Iterator<Item = Ladder> + 'a {
    view.specials.iter().filter_map(move |s| {
        let end = s.until?;
        let notice = t.special_notice;
        let before = clock::retreat(cal, notice.unit.meter(), end, notice.budget());
        let over = after(cal, end, t.special_red_over);
        Some(Ladder {
            rule: Rule::SpecialProcedure,
            levels: vec![
                (Card::Notice, before),
                (Card::Yellow, Some(end)),
                (Card::Red, over),
            ],
            stop: s.end.or(view.concluded_at).or(view.closed_at),
            clears: "end the special procedure (特别程序结束)",
        })
    })
}

/// An application with no acceptance decision (accepted, not accepted, or
/// a supplement asked for): online at the three online thresholds, any
/// other channel yellow at the silence threshold.
fn decision(
    header: &CaseHeader,
    view: &CaseView,
    cal: &Calendar,
    t: &Thresholds,
) -> Option<Ladder> {
    let received = view.received_at?;
    let decided = [
        view.accepted_at,
        view.pre_supplement_requested_at,
        view.closed_at,
    ]
    .into_iter()
    .flatten()
    .min();
    let levels: Vec<(Card, Option<Ts>)> = if header.channel == "online" {
        [Card::Notice, Card::Yellow, Card::Red]
            .into_iter()
            .zip(t.online_decision)
            .map(|(c, l)| (c, after(cal, received, l)))
            .collect()
    } else {
        vec![(Card::Yellow, after(cal, received, t.decision_silence))]
    };
    Some(Ladder {
        rule: Rule::PreAcceptance,
        levels,
        stop: decided,
        clears: "accept it, not accept it, or ask for the missing materials at once (受理、不予受理或一次性告知补正)",
    })
}

/// Yellow when a certificate a conclusion issued is not delivered within
/// the threshold; until it is.
fn delivery(view: &CaseView, cal: &Calendar, t: &Thresholds) -> Option<Ladder> {
    if !view.certificate_issued || view.outcome == Some(Outcome::Refused) {
        return None;
    }
    let due = after(cal, view.concluded_at?, t.delivery);
    Some(Ladder {
        rule: Rule::CertificateDelivery,
        levels: vec![(Card::Yellow, due)],
        stop: view.delivered_at,
        clears: "deliver the certificate (证照送达)",
    })
}

/// Yellow when the decision is published late or not yet at its due
/// time, red when still unpublished at the threshold's multiple of the
/// limit; until published.
fn disclosure(
    header: &CaseHeader,
    view: &CaseView,
    clock: &CaseClock,
    t: &Thresholds,
) -> Option<Ladder> {
    if header.item.disclosure != Disclosure::Public {
        return None;
    }
    let due = clock.disclosure_due?;
    let limit = if header.item.category.discloses_decision() {
        24 * HOUR
    } else {
        12 * HOUR
    };
    let red = due.plus(limit * i64::from(t.disclosure_red_times.saturating_sub(1)));
    Some(Ladder {
        rule: Rule::Disclosure,
        levels: vec![(Card::Yellow, Some(due)), (Card::Red, Some(red))],
        stop: view.published_at,
        clears: "publish the case (办件公开)",
    })
}

/// Anomaly: yellow when a handling step goes on past the step limit after
/// it began; until it ends (or the case does). One ladder per step.
fn steps<'a>(
    view: &'a CaseView,
    cal: &'a Calendar,
    t: &'a Thresholds,
) -> impl Iterator<Item = Ladder> + 'a {
    view.steps.iter().map(move |s| Ladder {
        rule: Rule::Anomaly,
        levels: vec![(Card::Yellow, after(cal, s.started, t.step_limit))],
        stop: s.finished.or(view.concluded_at).or(view.closed_at),
        clears: "finish the handling step (环节办结)",
    })
}

/// Anomaly: red from the instant a fee the catalogue does not list is
/// charged, yellow for a listed fee above its fixed standard; standing
/// until the case ends. Cases received before the catalogue's fees were
/// copied into them are not checked.
fn fees<'a>(header: &'a CaseHeader, view: &'a CaseView) -> impl Iterator<Item = Ladder> + 'a {
    let listed = header.item.fees.as_deref();
    view.charges.iter().filter_map(move |c| {
        let listed = listed?;
        let card = match listed.iter().find(|f| f.name.trim() == c.name.trim()) {
            None => Card::Red,
            Some(f) if f.max_fen.is_some_and(|m| c.amount_fen > m) => Card::Yellow,
            Some(_) => return None,
        };
        let ended = view.concluded_at.or(view.closed_at);
        Some(Ladder {
            rule: Rule::Anomaly,
            levels: vec![(card, Some(c.at.plus(-1)))],
            stop: ended.map(|e| e.max(c.at)),
            clears: if card == Card::Red {
                "a fee the catalogue does not list (目录外收费): refund it and conclude the case"
            } else {
                "a fee above the catalogue's standard (超标准收费): refund the excess and conclude the case"
            },
        })
    })
}

/// Anomaly: yellow when a case a higher level decides (上报件) is not
/// forwarded to it within the forward limit after its acceptance; until it
/// is (or the case ends).
fn forwarding(
    header: &CaseHeader,
    view: &CaseView,
    cal: &Calendar,
    t: &Thresholds,
) -> Option<Ladder> {
    if header.item.case_type != CaseType::ForwardedUp {
        return None;
    }
    Some(Ladder {
        rule: Rule::Anomaly,
        levels: vec![(Card::Yellow, after(cal, view.accepted_at?, t.forward_limit))],
        stop: view.forwarded_at.or(view.concluded_at).or(view.closed_at),
        clears: "forward the case to the level that decides it (上报)",
    })
}

/// Anomaly: a case of an item that is not published (confidential, or
/// disclosed on request) must be filed with the supervision office by the
/// time it would otherwise have been published (12 h after acceptance,
/// 24 h after a decision that is disclosed): yellow past it, red at the
/// disclosure rule's multiple of the limit; until it is filed.
fn filing(header: &CaseHeader, view: &CaseView, t: &Thresholds) -> Option<Ladder> {
    if header.item.disclosure == Disclosure::Public {
        return None;
    }
    let (from, limit) = if header.item.category.discloses_decision() {
        (view.concluded_at?, 24 * HOUR)
    } else {
        (view.accepted_at?, 12 * HOUR)
    };
    let due = from.plus(limit);
    let red = due.plus(limit * i64::from(t.disclosure_red_times.saturating_sub(1)));
    Some(Ladder {
        rule: Rule::Anomaly,
        levels: vec![(Card::Yellow, Some(due)), (Card::Red, Some(red))],
        stop: view.filed_at,
        clears: "file the case with the supervision office (不公开事项备案)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_calendar_csv;
    use crate::case::tests::{ev, header};
    use crate::case::{Case, EventKind, Procedure};
    use crate::stats::case_facts;

    fn t(s: &str) -> Ts {
        Ts::parse(s).unwrap()
    }

    fn wd(n: u32) -> TimeLimit {
        TimeLimit::new(n, LimitUnit::WorkingDays)
    }

    /// National Day 2026: holidays 1–8 Oct, make-up working days Sat 26
    /// Sep and Sat 10 Oct.
    fn cal() -> Calendar {
        let mut c = Calendar::default();
        let mut text = String::from("2026-09-26,workday,调休\n2026-10-10,workday,调休\n");
        for d in 1..=8 {
            text.push_str(&format!("2026-10-{d:02},holiday,国庆节\n"));
        }
        c.add_year(2026, parse_calendar_csv(&text).unwrap());
        c
    }

    fn case(channel: &str, events: Vec<crate::case::CaseEvent>) -> Case {
        let mut h = header(wd(10), wd(5));
        h.channel = channel.into();
        Case { header: h, events }
    }

    fn cards_at(c: &Case, now: Ts) -> Vec<(Rule, Card, Option<Ts>)> {
        let cal = cal();
        let view = c.view();
        let clock = c.clock(&view, &cal, now);
        case_cards(&c.header, &view, &clock, &cal, &Thresholds::default(), now)
            .into_iter()
            .map(|c| (c.rule, c.card, c.until))
            .collect()
    }

    fn rule(c: &Case, now: Ts, r: Rule) -> Option<Card> {
        cards_at(c, now)
            .into_iter()
            .find(|(x, _, _)| *x == r)
            .map(|(_, card, _)| card)
    }

    #[test]
    fn a_step_going_on_past_the_step_limit_is_an_anomaly_from_the_next_second() {
        // Begun Tue 29 Sep 10:00: five working days of time (Wed 30, Fri 9
        // Oct, Sat 10 (make-up), Mon 12, Tue 13, the holidays and Sunday
        // skipped) end at 10:00 on Tue 13 Oct.
        let step = |name: &str| EventKind::StepStarted { step: name.into() };
        let mut c = case(
            "window",
            vec![
                ev("a.1", "2026-09-28 10:00", EventKind::Received),
                ev("a.2", "2026-09-28 10:05", EventKind::Accepted),
                ev("a.3", "2026-09-29 10:00", step("审核")),
            ],
        );
        let r = Rule::Anomaly;
        assert_eq!(rule(&c, t("2026-10-13 10:00:00"), r), None);
        assert_eq!(rule(&c, t("2026-10-13 10:00:01"), r), Some(Card::Yellow));
        // Finished in time: none, ever; finished late: ended when it did.
        let finished = |at: &str| {
            ev(
                "a.4",
                at,
                EventKind::StepFinished {
                    step: "审核".into(),
                    pass: true,
                    opinion: "同意".into(),
                },
            )
        };
        c.events.push(finished("2026-10-13 09:00"));
        assert_eq!(rule(&c, t("2026-10-20 00:00"), r), None);
        c.events.pop();
        c.events.push(finished("2026-10-15 09:00"));
        let cards = cards_at(&c, t("2026-10-20 00:00"));
        assert!(
            cards.contains(&(r, Card::Yellow, Some(t("2026-10-15 09:00")))),
            "{cards:?}"
        );
    }

    #[test]
    fn a_case_a_higher_level_decides_not_forwarded_in_time_is_an_anomaly() {
        // Accepted Mon 28 Sep 10:05; one working day of time ends at 10:05
        // on Tue 29 Sep.
        let mut c = case(
            "window",
            vec![
                ev("a.1", "2026-09-28 10:00", EventKind::Received),
                ev("a.2", "2026-09-28 10:05", EventKind::Accepted),
            ],
        );
        let forwarded = |at: &str| {
            ev(
                "a.3",
                at,
                EventKind::Forwarded {
                    to: "县民政局".into(),
                },
            )
        };
        // Only for an item a higher level decides.
        let err = c
            .check(&forwarded("2026-09-28 11:00"), t("2026-09-28 11:00"))
            .unwrap_err();
        assert!(err.to_string().contains("上报件"), "{err}");
        c.header.item.case_type = CaseType::ForwardedUp;
        let r = Rule::Anomaly;
        assert_eq!(rule(&c, t("2026-09-29 10:05:00"), r), None);
        assert_eq!(rule(&c, t("2026-09-29 10:05:01"), r), Some(Card::Yellow));
        c.events.push(forwarded("2026-09-29 10:00"));
        assert_eq!(rule(&c, t("2026-10-20 00:00"), r), None);
        let err = c
            .check(&forwarded("2026-09-29 11:00"), t("2026-09-29 11:00"))
            .unwrap_err();
        assert!(err.to_string().contains("already"), "{err}");
        c.events.pop();
        c.events.push(forwarded("2026-09-29 10:10"));
        let cards = cards_at(&c, t("2026-10-20 00:00"));
        assert!(
            cards.contains(&(r, Card::Yellow, Some(t("2026-09-29 10:10")))),
            "{cards:?}"
        );
    }

    #[test]
    fn a_case_of_an_unpublished_item_not_filed_in_time_is_an_anomaly() {
        // Accepted 10:05: filed with supervision within 12 hours, red when
        // still not filed at twice that.
        let mut c = case(
            "window",
            vec![
                ev("a.1", "2026-11-16 10:00", EventKind::Received),
                ev("a.2", "2026-11-16 10:05", EventKind::Accepted),
            ],
        );
        let filed = |at: &str| {
            ev(
                "a.3",
                at,
                EventKind::Filed {
                    office: "县电子监察室".into(),
                },
            )
        };
        let err = c
            .check(&filed("2026-11-16 11:00"), t("2026-11-16 11:00"))
            .unwrap_err();
        assert!(err.to_string().contains("publication"), "{err}");
        c.header.item.disclosure = Disclosure::Confidential;
        let r = Rule::Anomaly;
        assert_eq!(rule(&c, t("2026-11-16 22:05:00"), r), None);
        assert_eq!(rule(&c, t("2026-11-16 22:05:01"), r), Some(Card::Yellow));
        assert_eq!(rule(&c, t("2026-11-17 10:05:00"), r), Some(Card::Yellow));
        assert_eq!(rule(&c, t("2026-11-17 10:05:01"), r), Some(Card::Red));
        // Never a disclosure card: it is not to be published.
        assert_eq!(rule(&c, t("2026-11-20 00:00"), Rule::Disclosure), None);
        c.events.push(filed("2026-11-16 20:00"));
        assert_eq!(rule(&c, t("2026-11-20 00:00"), r), None);
        c.events.pop();
        c.events.push(filed("2026-11-17 09:00"));
        let cards = cards_at(&c, t("2026-11-20 00:00"));
        assert!(
            cards.contains(&(r, Card::Yellow, Some(t("2026-11-17 09:00")))),
            "{cards:?}"
        );
    }

    #[test]
    fn a_fee_the_catalogue_does_not_list_or_above_its_standard_is_an_anomaly() {
        let fee = |id: &str, name: &str, fen: i64| {
            ev(
                id,
                "2026-09-29 10:00",
                EventKind::FeeCharged {
                    name: name.into(),
                    amount_fen: fen,
                },
            )
        };
        let open = |charged: Vec<crate::case::CaseEvent>| {
            let mut events = vec![
                ev("a.1", "2026-09-28 10:00", EventKind::Received),
                ev("a.2", "2026-09-28 10:05", EventKind::Accepted),
            ];
            events.extend(charged);
            case("window", events)
        };
        let (before, at) = (t("2026-09-29 09:59:59"), t("2026-09-29 10:00"));
        let r = Rule::Anomaly;
        // The header's item lists 工本费 at 10元 a case.
        assert_eq!(rule(&open(vec![fee("a.3", "工本费", 1000)]), at, r), None);
        let above = open(vec![fee("a.3", "工本费", 1500)]);
        assert_eq!(rule(&above, before, r), None);
        assert_eq!(rule(&above, at, r), Some(Card::Yellow));
        let outside = open(vec![fee("a.3", "工本费", 500), fee("a.4", "资料费", 200)]);
        assert_eq!(rule(&outside, at, r), Some(Card::Red));
        // A case received before fees were copied into cases: not checked.
        let mut old = outside.clone();
        old.header.item.fees = None;
        assert_eq!(rule(&old, at, r), None);
        // Counted once, on the day charged, and ended with the case.
        let mut done = outside.clone();
        done.events.push(ev(
            "a.5",
            "2026-09-30 10:00",
            EventKind::Concluded {
                outcome: Outcome::Approved,
                opinion: "准予".into(),
                certificate: String::new(),
            },
        ));
        let cal = cal();
        let view = done.view();
        let clock = done.clock(&view, &cal, t("2026-09-30 10:00"));
        let crossings = case_crossings(&done.header, &view, &clock, &cal, &Thresholds::default());
        let anomalies: Vec<&Crossing> = crossings.iter().filter(|c| c.rule == r).collect();
        assert_eq!(anomalies.len(), 1, "{crossings:?}");
        assert!(!anomalies[0].pending);
    }

    #[test]
    fn the_time_limit_cards_come_one_second_after_each_threshold_across_the_holiday() {
        // Accepted Mon 28 Sep: 5 working days are Tue 29, Wed 30, Fri 9
        // Oct, Sat 10 (make-up) and Mon 12, so the committed due time is
        // 24:00 on the 12th; the notice comes 2 working days before it, at
        // 24:00 on Fri 9 Oct (Sat 10 and Mon 12 count, Sun 11 does not).
        let c = case(
            "window",
            vec![
                ev("a.1", "2026-09-28 10:00", EventKind::Received),
                ev("a.2", "2026-09-28 10:05", EventKind::Accepted),
            ],
        );
        let clock = c.clock(&c.view(), &cal(), t("2026-09-29 00:00"));
        assert_eq!(clock.committed_due, Some(t("2026-10-13 00:00")));
        let notice = Some(Card::Notice);
        let r = Rule::CaseTimeLimit;
        assert_eq!(rule(&c, t("2026-10-10 00:00:00"), r), None);
        assert_eq!(rule(&c, t("2026-10-10 00:00:01"), r), notice);
        assert_eq!(rule(&c, t("2026-10-13 00:00:00"), r), notice);
        assert_eq!(rule(&c, t("2026-10-13 00:00:01"), r), Some(Card::Yellow));
        let statutory = clock.statutory_due.unwrap();
        assert_eq!(rule(&c, statutory, r), Some(Card::Yellow));
        assert_eq!(rule(&c, statutory.plus(1), r), Some(Card::Red));
    }

    #[test]
    fn a_pause_and_an_extension_move_the_cards_with_the_due_times() {
        let mut c = case(
            "window",
            vec![
                ev("a.1", "2026-11-16 09:00", EventKind::Received),
                ev("a.2", "2026-11-16 09:05", EventKind::Accepted),
                ev(
                    "a.3",
                    "2026-11-18 10:00",
                    EventKind::SupplementRequested {
                        materials: "户口簿".into(),
                    },
                ),
                ev("a.4", "2026-11-20 10:00", EventKind::SupplementCompleted),
            ],
        );
        let view = c.view();
        let clock = c.clock(&view, &cal(), t("2026-12-01 00:00"));
        let due = clock.committed_due.unwrap();
        // Two whole days paused (19 and 20 Nov): due on the 25th, not the 23rd.
        assert_eq!(due, t("2026-11-26 00:00"));
        let r = Rule::CaseTimeLimit;
        assert_eq!(rule(&c, due, r), Some(Card::Notice));
        assert_eq!(rule(&c, due.plus(1), r), Some(Card::Yellow));
        let statutory = clock.statutory_due.unwrap();
        // An extension in working days adds to both limits counted so.
        c.events.push(ev(
            "a.5",
            "2026-11-25 09:00",
            EventKind::Extended {
                amount: wd(10),
                reason: "需实地核查".into(),
            },
        ));
        let moved = c.clock(&c.view(), &cal(), t("2026-12-01 00:00"));
        let (due2, statutory2) = (moved.committed_due.unwrap(), moved.statutory_due.unwrap());
        assert!(due2 > due && statutory2 > statutory);
        assert_eq!(rule(&c, due.plus(1), r), None);
        assert_eq!(rule(&c, due2, r), Some(Card::Notice));
        assert_eq!(rule(&c, due2.plus(1), r), Some(Card::Yellow));
        assert_eq!(rule(&c, statutory2, r), Some(Card::Yellow));
        assert_eq!(rule(&c, statutory2.plus(1), r), Some(Card::Red));
        // Concluded: the card stays, with when it stopped standing.
        c.events.push(ev(
            "a.6",
            "2026-12-15 10:00",
            EventKind::Concluded {
                outcome: Outcome::Approved,
                opinion: "同意".into(),
                certificate: String::new(),
            },
        ));
        let ended: Vec<_> = cards_at(&c, t("2027-03-01 00:00"))
            .into_iter()
            .filter(|x| x.0 == r)
            .collect();
        assert_eq!(ended, [(r, Card::Yellow, Some(t("2026-12-15 10:00")))]);
    }

    #[test]
    fn an_undecided_application_online_and_at_the_window() {
        let online = case(
            "online",
            vec![ev("a.1", "2026-11-16 09:00", EventKind::Received)],
        );
        let r = Rule::PreAcceptance;
        assert_eq!(rule(&online, t("2026-11-18 09:00:00"), r), None);
        assert_eq!(
            rule(&online, t("2026-11-18 09:00:01"), r),
            Some(Card::Notice)
        );
        assert_eq!(
            rule(&online, t("2026-11-19 09:00:01"), r),
            Some(Card::Yellow)
        );
        assert_eq!(rule(&online, t("2026-11-21 09:00:01"), r), Some(Card::Red));
        // At the window only the silence of 5 working days counts: Mon 16
        // 09:00 + 5 working days is Mon 23 09:00.
        let window = case(
            "window",
            vec![ev("a.1", "2026-11-16 09:00", EventKind::Received)],
        );
        assert_eq!(rule(&window, t("2026-11-21 09:00:01"), r), None);
        assert_eq!(rule(&window, t("2026-11-23 09:00:00"), r), None);
        assert_eq!(
            rule(&window, t("2026-11-23 09:00:01"), r),
            Some(Card::Yellow)
        );
        // Decided in time: none; decided late: the card with its end.
        let mut decided = online.clone();
        decided
            .events
            .push(ev("a.2", "2026-11-19 10:00", EventKind::Accepted));
        let cards = cards_at(&decided, t("2026-12-01 00:00"));
        let pre: Vec<_> = cards.iter().filter(|c| c.0 == r).collect();
        assert_eq!(pre, [&(r, Card::Yellow, Some(t("2026-11-19 10:00")))]);
    }

    #[test]
    fn a_certificate_not_delivered_and_a_decision_not_published() {
        let mut c = case(
            "window",
            vec![
                ev("a.1", "2026-11-16 09:00", EventKind::Received),
                ev("a.2", "2026-11-16 09:05", EventKind::Accepted),
                ev("a.3", "2026-11-16 09:30", EventKind::Published),
                ev(
                    "a.4",
                    "2026-11-17 15:00",
                    EventKind::Concluded {
                        outcome: Outcome::Approved,
                        opinion: "同意".into(),
                        certificate: "批准书 001".into(),
                    },
                ),
            ],
        );
        let r = Rule::CertificateDelivery;
        assert_eq!(rule(&c, t("2026-11-20 15:00:00"), r), None);
        assert_eq!(rule(&c, t("2026-11-20 15:00:01"), r), Some(Card::Yellow));
        c.events.push(ev(
            "a.5",
            "2026-11-21 09:00",
            EventKind::CertificateDelivered {
                method: "邮寄".into(),
            },
        ));
        assert!(cards_at(&c, t("2026-12-01 00:00")).contains(&(
            r,
            Card::Yellow,
            Some(t("2026-11-21 09:00"))
        )));

        // Licensing is published within 12 h of acceptance; red when still
        // unpublished at twice that.
        let late = case(
            "window",
            vec![
                ev("a.1", "2026-11-16 09:00", EventKind::Received),
                ev("a.2", "2026-11-16 09:05", EventKind::Accepted),
            ],
        );
        let d = Rule::Disclosure;
        assert_eq!(rule(&late, t("2026-11-16 21:05:00"), d), None);
        assert_eq!(rule(&late, t("2026-11-16 21:05:01"), d), Some(Card::Yellow));
        assert_eq!(rule(&late, t("2026-11-17 09:05:00"), d), Some(Card::Yellow));
        assert_eq!(rule(&late, t("2026-11-17 09:05:01"), d), Some(Card::Red));
    }

    #[test]
    fn a_special_procedure_past_its_approved_end() {
        let mut c = case(
            "window",
            vec![
                ev("a.1", "2026-11-16 09:00", EventKind::Received),
                ev("a.2", "2026-11-16 09:05", EventKind::Accepted),
                ev(
                    "a.3",
                    "2026-11-17 09:00",
                    EventKind::SpecialStarted {
                        procedure: Procedure::Hearing,
                        reason: "听证".into(),
                        until: Some(t("2026-11-27 17:00")),
                    },
                ),
            ],
        );
        let r = Rule::SpecialProcedure;
        assert_eq!(rule(&c, t("2026-11-25 17:00:00"), r), None);
        assert_eq!(rule(&c, t("2026-11-25 17:00:01"), r), Some(Card::Notice));
        assert_eq!(rule(&c, t("2026-11-27 17:00:01"), r), Some(Card::Yellow));
        assert_eq!(rule(&c, t("2026-11-28 17:00:01"), r), Some(Card::Red));
        c.events.push(ev(
            "a.4",
            "2026-11-28 09:00",
            EventKind::SpecialEnded {
                result: "听证结束".into(),
            },
        ));
        let cards = cards_at(&c, t("2026-12-20 00:00"));
        assert!(
            cards.contains(&(r, Card::Yellow, Some(t("2026-11-28 09:00")))),
            "{cards:?}"
        );
    }

    #[test]
    fn no_card_stands_before_the_time_a_case_is_indexed_under() {
        let done = |events: Vec<crate::case::CaseEvent>| case("online", events);
        let received = ev("a.1", "2026-09-21 09:00", EventKind::Received);
        let accepted = ev("a.2", "2026-09-21 09:05", EventKind::Accepted);
        let concluded = |certificate: &str| {
            ev(
                "a.3",
                "2026-10-30 10:00",
                EventKind::Concluded {
                    outcome: Outcome::Approved,
                    opinion: "同意".into(),
                    certificate: certificate.into(),
                },
            )
        };
        let published = ev("a.4", "2026-10-30 11:00", EventKind::Published);
        let delivered = ev(
            "a.5",
            "2026-11-20 09:00",
            EventKind::CertificateDelivered {
                method: "自取".into(),
            },
        );
        let withdrawn = ev(
            "a.6",
            "2026-09-28 09:00",
            EventKind::Withdrawn {
                reason: "申请人撤回".into(),
            },
        );
        let cases = [
            done(vec![received.clone()]),
            done(vec![received.clone(), accepted.clone()]),
            done(vec![
                received.clone(),
                accepted.clone(),
                concluded("批准书"),
            ]),
            done(vec![
                received.clone(),
                accepted.clone(),
                concluded(""),
                published.clone(),
            ]),
            done(vec![
                received.clone(),
                accepted.clone(),
                concluded("批准书"),
                published.clone(),
                delivered,
            ]),
            done(vec![received.clone(), accepted.clone(), withdrawn.clone()]),
            done(vec![received, withdrawn]),
        ];
        let cal = cal();
        let standing_from = |c: &Case| {
            let view = c.view();
            let clock = c.clock(&view, &cal, view.last_event_at.unwrap());
            case_facts(&c.header, &view, &clock, &cal, &Thresholds::default()).standing_from()
        };
        for c in &cases {
            for now in ["2026-09-22 00:00", "2026-10-31 00:00", "2027-06-01 00:00"] {
                let now = t(now);
                let standing = cards_at(c, now).iter().any(|x| x.2.is_none());
                assert!(
                    !standing || standing_from(c).is_some_and(|s| s <= now),
                    "{:?} at {now}: a standing card on a case indexed as holding none yet",
                    c.events
                );
            }
        }
        // Concluded, published and delivered: never listed.
        assert_eq!(standing_from(&cases[4]), None);
        // Accepted and left: listed.
        assert!(standing_from(&cases[1]).is_some());
    }

    #[test]
    fn the_same_events_in_any_order_give_the_same_cards() {
        let events = vec![
            ev("a.1", "2026-11-16 09:00", EventKind::Received),
            ev("a.2", "2026-11-16 09:05", EventKind::Accepted),
            ev(
                "b.1",
                "2026-11-18 10:00",
                EventKind::SupplementRequested {
                    materials: "户口簿".into(),
                },
            ),
            ev("a.3", "2026-11-20 10:00", EventKind::SupplementCompleted),
        ];
        let forward = case("online", events.clone());
        let mut backward = events;
        backward.reverse();
        let backward = case("online", backward);
        for now in ["2026-11-25 00:00", "2026-12-20 00:00"] {
            assert_eq!(cards_at(&forward, t(now)), cards_at(&backward, t(now)));
        }
    }
}
