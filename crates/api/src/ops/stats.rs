//! Statistics over the node's subtree: `GET /api/v1/stats`.

use chrono::Datelike;
use hallsync_hall::{Stats, StatsBy, StatsLine, StatsQuery};
use hallsync_model::evaluation::{self, rank, score, Score, Weights};
use hallsync_model::order::{Card, Rule};
use hallsync_model::stats::{ix, Row};
use hallsync_model::time::parse_date;
use hallsync_model::{RegionCode, Ts};
use serde::{Deserialize, Serialize};

use crate::{ApiError, Caller, Op, Service};

/// The statistics of a unit for a period: `GET /api/v1/stats`. By default
/// the node's own region, from the first of this month to today.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetStats {
    /// The unit (a region code in this node's subtree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<RegionCode>,
    /// First day, `YYYY-MM-DD` (China time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`; at most today is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Breakdown: `total` (default), `unit`, `item` or `day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Cards of one rule by level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardCounts {
    /// 预警.
    pub notice: i64,
    /// 黄牌.
    pub yellow: i64,
    /// 红牌.
    pub red: i64,
}

/// Rates read from the counts (absent when their divisor is zero).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Concluded ÷ accepted (办结率).
    pub conclusion: Option<f64>,
    /// Concluded on time ÷ concluded with a committed limit (按时办结率).
    pub on_time: Option<f64>,
    /// (Σ committed limit − Σ used) ÷ Σ committed limit (提速率).
    pub speed_up_committed: Option<f64>,
    /// (Σ statutory limit − Σ used) ÷ Σ statutory limit (法定提速率).
    pub speed_up_statutory: Option<f64>,
    /// Average days used per case concluded with a committed limit.
    pub average_days: Option<f64>,
    /// Satisfied ÷ rated (满意率).
    pub satisfaction: Option<f64>,
}

/// One row of statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    /// A region code, an item's implementation code or a date.
    pub key: String,
    /// Applications received (收件).
    pub received: i64,
    /// Accepted (受理).
    pub accepted: i64,
    /// Not accepted or withdrawn before a conclusion.
    pub closed: i64,
    /// Concluded (办结).
    pub concluded: i64,
    /// Of those, refused (不予许可).
    pub refused: i64,
    /// Concluded with a committed limit (承诺件).
    pub committed_cases: i64,
    /// Of those, within the limit (按时).
    pub on_time: i64,
    /// Of those, at least one unit of the limit early (提前办结).
    pub early: i64,
    /// Open now.
    pub open: i64,
    /// Open and past the committed due time now (超期).
    pub overdue: i64,
    /// Fees charged, in fen.
    pub fees_fen: i64,
    /// Rated by the applicant.
    pub rated: i64,
    /// Rated 4 or 5.
    pub satisfied: i64,
    /// Cards raised in the period, by rule (each case, rule and level once).
    pub cards: std::collections::BTreeMap<String, CardCounts>,
    /// Cards by level, every rule.
    pub cards_total: CardCounts,
    /// Supervision orders issued.
    pub orders: i64,
    /// Orders answered late, or past their reply date unanswered.
    pub orders_late: i64,
    /// Orders closed.
    pub orders_closed: i64,
    /// Orders whose card the unit appealed (申诉).
    pub appeals: i64,
    /// Cards revoked on appeal, by level; counted in `cards_total` too.
    pub revoked: CardCounts,
    /// The rates.
    pub rates: Rates,
}

impl StatsRow {
    /// The row of a statistics line.
    pub fn of(line: &StatsLine) -> StatsRow {
        let r: &Row = &line.counts;
        let cards = Rule::ALL
            .iter()
            .filter_map(|rule| {
                let c = CardCounts {
                    notice: r.cards(*rule, Card::Notice),
                    yellow: r.cards(*rule, Card::Yellow),
                    red: r.cards(*rule, Card::Red),
                };
                (c != CardCounts::default()).then(|| (rule.as_str().to_string(), c))
            })
            .collect();
        StatsRow {
            key: line.key.clone(),
            received: r.get(ix::RECEIVED),
            accepted: r.get(ix::ACCEPTED),
            closed: r.get(ix::CLOSED),
            concluded: r.get(ix::CONCLUDED),
            refused: r.get(ix::REFUSED),
            committed_cases: r.get(ix::TIMED),
            on_time: r.get(ix::ON_TIME),
            early: r.get(ix::EARLY),
            open: line.open,
            overdue: line.overdue,
            fees_fen: r.get(ix::FEES_FEN),
            rated: r.get(ix::RATED),
            satisfied: r.get(ix::SATISFIED),
            cards,
            cards_total: CardCounts {
                notice: r.cards_at(Card::Notice),
                yellow: r.cards_at(Card::Yellow),
                red: r.cards_at(Card::Red),
            },
            orders: r.get(ix::ORDERS),
            orders_late: r.get(ix::ORDERS_LATE),
            orders_closed: r.get(ix::ORDERS_CLOSED),
            appeals: r.get(ix::APPEALS),
            revoked: CardCounts {
                notice: r.revoked_at(Card::Notice),
                yellow: r.revoked_at(Card::Yellow),
                red: r.revoked_at(Card::Red),
            },
            rates: Rates {
                conclusion: r.conclusion_rate(),
                on_time: r.on_time_rate(),
                speed_up_committed: r.speed_up_committed(),
                speed_up_statutory: r.speed_up_statutory(),
                average_days: r.average_days(),
                satisfaction: r.satisfaction_rate(),
            },
        }
    }
}

/// A statistics table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsTable {
    /// The unit.
    pub unit: RegionCode,
    /// First day counted (`YYYY-MM-DD`).
    pub from: String,
    /// Last day counted.
    pub to: String,
    /// The breakdown.
    pub by: String,
    /// The time the figures are as of.
    pub now: Ts,
    /// The whole unit.
    pub total: StatsRow,
    /// The breakdown's rows.
    pub rows: Vec<StatsRow>,
}

fn day(field: &str, s: &str) -> Result<Ts, ApiError> {
    parse_date(s)
        .map(Ts::start_of)
        .map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
}

/// The breakdown named `s`.
pub fn parse_by(s: &str) -> Result<StatsBy, ApiError> {
    Ok(match s {
        "total" => StatsBy::Total,
        "unit" => StatsBy::Unit,
        "item" => StatsBy::Item,
        "day" => StatsBy::Day,
        other => {
            return Err(ApiError::bad_request(format!(
                "by: {other:?} is not a breakdown; use total, unit, item or day"
            )))
        }
    })
}

impl Op for GetStats {
    type Out = StatsTable;
    const PATH: &'static str = "/stats";
    const WRITE: bool = false;
    fn role(&self) -> Option<hallsync_hall::operators::Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let by_name = self.by.unwrap_or_else(|| "total".into());
        let by = parse_by(&by_name)?;
        let today = now.date();
        let first_of_month = today - chrono::Days::new(u64::from(today.day0()));
        let from = match &self.from {
            Some(s) => day("from", s)?,
            None => Ts::start_of(first_of_month),
        };
        if from.date() > today {
            return Err(ApiError::bad_request(format!(
                "from: {} is after today ({today}): nothing has been counted for it yet",
                from.date()
            )));
        }
        let to = match &self.to {
            Some(s) => day("to", s)?,
            None => Ts::start_of(today),
        };
        if self.from.is_none() && to.date() < first_of_month {
            return Err(ApiError::bad_request(format!(
                "to: {} is before the 1st of this month, where the period begins unless from is given; give from too",
                to.date()
            )));
        }
        let q = StatsQuery {
            unit: self
                .unit
                .unwrap_or_else(|| svc.hall().node().region.clone()),
            from,
            to,
            by,
        };
        let s: Stats = svc.hall().stats(&q, now)?;
        Ok(StatsTable {
            unit: s.unit,
            from: s.from.date().to_string(),
            to: s.to.date().to_string(),
            by: by_name,
            now,
            total: StatsRow::of(&s.total),
            rows: s.rows.iter().map(StatsRow::of).collect(),
        })
    }
}

/// The performance evaluation (绩效考评) of the units one level below a
/// unit for a month: `GET /api/v1/evaluation`. By default the node's own
/// region and last month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetEvaluation {
    /// The unit whose units are ranked (default: this node's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<RegionCode>,
    /// The month, `YYYY-MM` (default: last month).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
}

/// One unit's place in an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// 1 for the best; equal scores share a rank. None: the unit did
    /// nothing to evaluate that month (no case, card or order), listed
    /// last and not ranked.
    pub rank: Option<usize>,
    /// The unit (region code).
    pub key: String,
    /// Its score and the breakdown behind it.
    pub score: Score,
    /// The statistics it was scored on.
    pub stats: StatsRow,
}

/// An evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The unit whose units are ranked.
    pub unit: RegionCode,
    /// The month (`YYYY-MM`).
    pub month: String,
    /// The weights in force.
    pub weights: Weights,
    /// The time the figures are as of.
    pub now: Ts,
    /// The units, best first.
    pub rows: Vec<Ranked>,
}

/// The first and last day of a month typed `YYYY-MM`.
pub fn month_days(month: &str) -> Result<(chrono::NaiveDate, chrono::NaiveDate), ApiError> {
    let m = month.trim();
    let bad = || ApiError::bad_request(format!("month: {month:?} is not a month; use YYYY-MM"));
    let shaped = m.len() == 7
        && m.bytes().enumerate().all(|(i, b)| {
            if i == 4 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(bad());
    }
    let first = parse_date(&format!("{m}-01")).map_err(|_| bad())?;
    let last = (first + chrono::Months::new(1)) - chrono::Days::new(1);
    Ok((first, last))
}

impl Op for GetEvaluation {
    type Out = Evaluation;
    const PATH: &'static str = "/evaluation";
    const WRITE: bool = false;
    fn role(&self) -> Option<hallsync_hall::operators::Role> {
        None
    }
    fn run(self, svc: &Service, _: &Caller, now: Ts) -> Result<Self::Out, ApiError> {
        let today = now.date();
        let month = match self.month {
            Some(m) => m.trim().to_string(),
            None => {
                let this = today - chrono::Days::new(u64::from(today.day0()));
                let last = this - chrono::Days::new(1);
                format!("{}-{:02}", last.year(), last.month())
            }
        };
        let (first, last) = month_days(&month)?;
        if first > today {
            return Err(ApiError::bad_request(format!(
                "month: {month} has not begun (today is {today}); evaluate this month or one before it"
            )));
        }
        let q = StatsQuery {
            unit: self
                .unit
                .unwrap_or_else(|| svc.hall().node().region.clone()),
            from: Ts::start_of(first),
            to: Ts::start_of(last),
            by: StatsBy::Unit,
        };
        let s = svc.hall().stats(&q, now)?;
        let weights = svc.hall().weights_for(&q.unit)?;
        // The units below are ranked; the hub's own cases are not a unit,
        // and a unit that did nothing that month is listed after the
        // others, unranked.
        let (active, idle): (Vec<&StatsLine>, Vec<&StatsLine>) = s
            .rows
            .iter()
            .filter(|l| l.key != s.unit.as_str())
            .partition(|l| evaluation::active(&l.counts));
        let scored: Vec<(String, Score, &StatsLine)> = active
            .into_iter()
            .map(|l| (l.key.clone(), score(&l.counts, &weights), l))
            .collect();
        let keyed: Vec<(&str, f64)> = scored
            .iter()
            .map(|(k, s, _)| (k.as_str(), s.total))
            .collect();
        let mut rows: Vec<Ranked> = rank(&keyed)
            .into_iter()
            .map(|(rank, i)| Ranked {
                rank: Some(rank),
                key: scored[i].0.clone(),
                score: scored[i].1.clone(),
                stats: StatsRow::of(scored[i].2),
            })
            .collect();
        rows.extend(idle.into_iter().map(|l| Ranked {
            rank: None,
            key: l.key.clone(),
            score: score(&l.counts, &weights),
            stats: StatsRow::of(l),
        }));
        Ok(Evaluation {
            unit: s.unit,
            month,
            weights,
            now,
            rows,
        })
    }
}
