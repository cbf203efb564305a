//! `hallsync stats`: the statistics of a unit for a period, from the
//! tallies the node keeps with every case (see `crates/hall/src/stats.rs`).

use anyhow::Result;
use clap::{Args, ValueEnum};
use hallsync_api::ops::stats::{Evaluation, GetEvaluation, GetStats, StatsRow, StatsTable};
use hallsync_model::RegionCode;

use crate::cli::Ctx;
use crate::output::{say, table};
use crate::parse;

/// How the table is broken down.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum By {
    /// One row per unit one level down, and the unit's own cases.
    Unit,
    /// One row per item.
    Item,
    /// One row per day.
    Day,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// First day, YYYY-MM-DD (default: the first of this month).
    #[arg(long, value_parser = parse::date)]
    from: Option<String>,
    /// Last day, YYYY-MM-DD (default and at most: today).
    #[arg(long, value_parser = parse::date)]
    to: Option<String>,
    /// The unit: a region in this node's subtree (default: this node's).
    #[arg(long, value_parser = parse::region, value_name = "REGION")]
    unit: Option<RegionCode>,
    /// Break the figures down by unit, item or day (default: the unit's
    /// total only).
    #[arg(long)]
    by: Option<By>,
}

pub fn run(args: StatsArgs, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    let op = GetStats {
        unit: args.unit,
        from: args.from,
        to: args.to,
        by: args.by.map(|b| {
            match b {
                By::Unit => "unit",
                By::Item => "item",
                By::Day => "day",
            }
            .to_string()
        }),
    };
    ctx.out.show(&target.call(op, ctx.now)?, print)
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn cells(r: &StatsRow) -> Vec<String> {
    let n = |v: i64| v.to_string();
    vec![
        r.key.clone(),
        n(r.received),
        n(r.accepted),
        n(r.concluded),
        rate(r.rates.on_time),
        n(r.early),
        rate(r.rates.speed_up_committed),
        r.rates
            .average_days
            .map_or_else(|| "-".into(), |d| format!("{d:.2}")),
        n(r.open),
        n(r.overdue),
        format!(
            "{}/{}/{}",
            r.cards_total.notice, r.cards_total.yellow, r.cards_total.red
        ),
        format!(
            "{}/{}",
            r.appeals,
            r.revoked.notice + r.revoked.yellow + r.revoked.red
        ),
        format!("{}/{}/{}", r.orders, r.orders_late, r.orders_closed),
        format!("{:.2}", r.fees_fen as f64 / 100.0),
    ]
}

fn print(s: &StatsTable) {
    say!(
        "statistics of {} from {} to {} (as of {})",
        s.unit,
        s.from,
        s.to,
        s.now
    );
    let mut t = table(&[
        "unit/item/day",
        "received",
        "accepted",
        "concluded",
        "on time",
        "early",
        "speed-up",
        "avg days",
        "open",
        "overdue",
        "cards n/y/r",
        "appeals/revoked",
        "orders/late/closed",
        "fees (yuan)",
    ]);
    for r in &s.rows {
        t.add_row(cells(r));
    }
    let mut total = cells(&s.total);
    total[0] = format!("total {}", s.total.key);
    t.add_row(total);
    say!("{t}");
    say!(
        "conclusion rate {}, speed-up against statutory limits {}, satisfaction {}; cards counted once per case, rule and level on the day raised (revoked ones too, shown apart)",
        rate(s.total.rates.conclusion),
        rate(s.total.rates.speed_up_statutory),
        rate(s.total.rates.satisfaction)
    );
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The month, YYYY-MM (default: last month).
    #[arg(long, value_name = "YYYY-MM")]
    month: Option<String>,
    /// The unit whose units are ranked (default: this node's).
    #[arg(long, value_parser = parse::region, value_name = "REGION")]
    unit: Option<RegionCode>,
}

pub fn evaluate(args: EvaluateArgs, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    let op = GetEvaluation {
        unit: args.unit,
        month: args.month,
    };
    ctx.out.show(&target.call(op, ctx.now)?, print_evaluation)
}

fn print_evaluation(e: &Evaluation) {
    say!(
        "performance evaluation of the units of {} for {} (as of {})",
        e.unit,
        e.month,
        e.now
    );
    let mut heads = vec!["rank", "unit", "score"];
    let parts: Vec<String> = e
        .rows
        .first()
        .map(|r| {
            r.score
                .parts
                .iter()
                .map(|p| format!("{} /{}", p.name, p.weight))
                .collect()
        })
        .unwrap_or_default();
    heads.extend(parts.iter().map(String::as_str));
    heads.push("accepted");
    let mut t = table(&heads);
    for r in &e.rows {
        let mut row = vec![
            r.rank.map_or_else(|| "-".into(), |n| n.to_string()),
            r.key.clone(),
            format!("{:.1}", r.score.total),
        ];
        row.extend(r.score.parts.iter().map(|p| match p.measure {
            Some(m) => format!("{:.1} ({:.0}%)", p.points, m * 100.0),
            None => format!("{:.1} (no data)", p.points),
        }));
        row.push(r.stats.accepted.to_string());
        t.add_row(row);
    }
    say!("{t}");
    say!("a part with nothing to measure (no cases concluded, no ratings, no orders) earns its full points; a unit that did nothing that month (no case, card or order) is listed last, unranked (-)");
}
