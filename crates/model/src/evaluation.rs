//! Performance evaluation (绩效考评, DOMAIN §5): a score out of 100 for a
//! unit's period, from its summed statistics, with the breakdown behind it.
//! Pure: the same counts give the same score at every level.

use serde::{Deserialize, Serialize};

use crate::order::Card;
use crate::stats::{ix, Row};

/// The points each part of the score is worth; they add up to the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// Concluded within the committed limit ÷ concluded with one.
    pub on_time: u32,
    /// The speed-up rate against committed limits (提速率).
    pub speed_up: u32,
    /// Satisfied ÷ rated.
    pub satisfaction: u32,
    /// Free of cards: less one share per yellow card and two per red card
    /// per case accepted (or concluded, if more) in the period.
    pub cards: u32,
    /// Orders answered by their reply date.
    pub orders: u32,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            on_time: 40,
            speed_up: 20,
            satisfaction: 15,
            cards: 15,
            orders: 10,
        }
    }
}

/// One part of a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Its name: `on_time`, `speed_up`, `satisfaction`, `cards`, `orders`.
    pub name: String,
    /// The measure, 0 to 1 (`None`: nothing to measure; full points).
    pub measure: Option<f64>,
    /// The points it is worth.
    pub weight: u32,
    /// The points earned.
    pub points: f64,
}

/// A unit's score and its breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Points earned, out of the weights' sum.
    pub total: f64,
    /// Out of.
    pub out_of: u32,
    /// The parts, in the order of [`Weights`]' fields.
    pub parts: Vec<Part>,
}

/// The score of a unit's counts.
pub fn score(r: &Row, w: &Weights) -> Score {
    // Cards are charged against the cases the unit worked on in the
    // period; a unit that raised cards with no case accepted or concluded
    // in it earns nothing for this part. Cards revoked on appeal are not
    // charged.
    let worked = r.get(ix::ACCEPTED).max(r.get(ix::CONCLUDED));
    let charged = r.standing_at(Card::Yellow) + 2 * r.standing_at(Card::Red);
    let cards =
        (worked > 0 || charged > 0).then(|| (1.0 - charged as f64 / worked.max(1) as f64).max(0.0));
    let orders = r.get(ix::ORDERS);
    let answered = (orders > 0).then(|| {
        let late = r.get(ix::ORDERS_LATE).min(orders);
        1.0 - late as f64 / orders as f64
    });
    let parts: Vec<Part> = [
        ("on_time", r.on_time_rate(), w.on_time),
        (
            "speed_up",
            r.speed_up_committed().map(|v| v.clamp(0.0, 1.0)),
            w.speed_up,
        ),
        ("satisfaction", r.satisfaction_rate(), w.satisfaction),
        ("cards", cards, w.cards),
        ("orders", answered, w.orders),
    ]
    .into_iter()
    .map(|(name, measure, weight)| Part {
        name: name.into(),
        measure,
        weight,
        points: f64::from(weight) * measure.unwrap_or(1.0),
    })
    .collect();
    Score {
        total: parts.iter().map(|p| p.points).sum(),
        out_of: parts.iter().map(|p| p.weight).sum(),
        parts,
    }
}

/// Whether a unit did anything to evaluate in the period: received,
/// accepted, concluded or closed a case, raised a card or was sent an
/// order. A unit that did nothing scores full points on every part, and is
/// not ranked for it.
pub fn active(r: &Row) -> bool {
    [
        ix::RECEIVED,
        ix::ACCEPTED,
        ix::CONCLUDED,
        ix::CLOSED,
        ix::ORDERS,
    ]
    .iter()
    .any(|c| r.get(*c) != 0)
        || Card::ALL.iter().any(|c| r.cards_at(*c) != 0)
}

/// Ranks scored units, best first (ties by key); returns (rank, index).
/// Equal scores share a rank.
pub fn rank<K: Ord>(scored: &[(K, f64)]) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..scored.len()).collect();
    order.sort_by(|&a, &b| {
        scored[b]
            .1
            .total_cmp(&scored[a].1)
            .then_with(|| scored[a].0.cmp(&scored[b].0))
    });
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(order.len());
    for (pos, &i) in order.iter().enumerate() {
        let rank = match out.last() {
            Some(&(r, prev)) if (scored[prev].1 - scored[i].1).abs() < 1e-9 => r,
            _ => pos + 1,
        };
        out.push((rank, i));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::Rule;
    use crate::stats::{card_counter, revoked_counter, COUNTERS};
    use crate::time::DAY;

    fn row(set: &[(usize, i64)]) -> Row {
        let mut c = vec![0; COUNTERS];
        for (i, v) in set {
            c[*i] = *v;
        }
        Row(c)
    }

    #[test]
    fn a_unit_with_nothing_to_measure_scores_full_marks_and_parts_add_up() {
        let s = score(&Row::default(), &Weights::default());
        assert_eq!(s.out_of, 100);
        assert!((s.total - 100.0).abs() < 1e-9);
        assert!(s.parts.iter().all(|p| p.measure.is_none()));
    }

    #[test]
    fn late_cases_cards_and_late_replies_cost_their_share() {
        let r = row(&[
            (ix::ACCEPTED, 10),
            (ix::TIMED, 10),
            (ix::ON_TIME, 8),
            (ix::COMMITTED_SECS, 100 * DAY),
            (ix::USED_SECS, 50 * DAY),
            (ix::RATED, 4),
            (ix::SATISFIED, 3),
            (card_counter(Rule::CaseTimeLimit, Card::Yellow), 2),
            (card_counter(Rule::CaseTimeLimit, Card::Red), 1),
            (ix::ORDERS, 2),
            (ix::ORDERS_LATE, 1),
        ]);
        let s = score(&r, &Weights::default());
        let points: Vec<f64> = s.parts.iter().map(|p| p.points).collect();
        let expected = [32.0, 10.0, 11.25, 9.0, 5.0];
        for (p, e) in points.iter().zip(expected) {
            assert!((p - e).abs() < 1e-9, "{points:?}");
        }
        assert!((s.total - 67.25).abs() < 1e-9);
    }

    #[test]
    fn cards_cost_even_in_a_month_with_no_case_accepted() {
        let r = row(&[(card_counter(Rule::CaseTimeLimit, Card::Red), 1)]);
        let s = score(&r, &Weights::default());
        assert_eq!(s.parts[3].measure, Some(0.0));
        assert!((s.total - 85.0).abs() < 1e-9);
        let mut revoked = r.clone();
        revoked.add(
            &row(&[(revoked_counter(Rule::CaseTimeLimit, Card::Red), 1)]).0,
            1,
        );
        assert!((score(&revoked, &Weights::default()).total - 100.0).abs() < 1e-9);
        // A revocation of another rule's card, or of one more card than
        // was raised, forgives nothing else.
        let mut elsewhere = r.clone();
        elsewhere.add(
            &row(&[
                (revoked_counter(Rule::Disclosure, Card::Red), 1),
                (revoked_counter(Rule::CaseTimeLimit, Card::Yellow), 1),
            ])
            .0,
            1,
        );
        assert_eq!(
            score(&elsewhere, &Weights::default()).parts[3].measure,
            Some(0.0)
        );
        let mut twice = revoked.clone();
        twice.add(
            &row(&[
                (revoked_counter(Rule::CaseTimeLimit, Card::Red), 1),
                (card_counter(Rule::Disclosure, Card::Red), 1),
            ])
            .0,
            1,
        );
        assert_eq!(twice.standing_at(Card::Red), 1);
    }

    #[test]
    fn a_unit_that_did_nothing_is_not_active() {
        assert!(!active(&Row::default()));
        assert!(active(&row(&[(ix::RECEIVED, 1)])));
        assert!(active(&row(&[(
            card_counter(Rule::Disclosure, Card::Notice),
            1
        )])));
        assert!(!active(&row(&[(ix::OPEN, 3)])));
    }

    #[test]
    fn ranks_are_shared_by_equal_scores() {
        let scored = [("b", 90.0), ("a", 95.0), ("c", 90.0), ("d", 80.0)];
        let ranked: Vec<(usize, &str)> = rank(&scored)
            .into_iter()
            .map(|(r, i)| (r, scored[i].0))
            .collect();
        assert_eq!(ranked, vec![(1, "a"), (2, "b"), (2, "c"), (4, "d")]);
    }
}
