//! `hallsync warning`: the supervision cards (预警, 黄牌, 红牌) the cases
//! this node holds carry, derived from their events at the time asked.

use anyhow::Result;
use clap::Subcommand;
use hallsync_api::ops::warnings::{ListWarnings, WarningList};
use hallsync_model::cards::CaseCard;
use hallsync_model::order::{Card, Rule};
use hallsync_model::RegionCode;

use crate::cli::Ctx;
use comfy_table::Table;

use crate::output::{clock_off, opt, page_line, say, table};
use crate::parse;

#[derive(Debug, Subcommand)]
pub enum WarningCmd {
    /// List the cards, red first, then by when they were raised. Standing
    /// cards only, unless --ended.
    List {
        /// Only cards at this level: notice, yellow or red.
        #[arg(long, value_parser = parse::card)]
        card: Option<Card>,
        /// Only cards of this rule: case_time_limit, special_procedure,
        /// pre_acceptance, certificate_delivery, disclosure, anomaly (a
        /// step over the step limit, a fee outside the catalogue or above
        /// its standard).
        #[arg(long, value_parser = parse::rule)]
        rule: Option<Rule>,
        /// Only cases of the halls in this region's subtree (at a hub).
        #[arg(long, value_parser = parse::region, value_name = "REGION")]
        unit: Option<RegionCode>,
        /// Also the cards that no longer stand (the case concluded, the
        /// certificate delivered, the decision published, the card revoked
        /// on appeal).
        #[arg(long)]
        ended: bool,
        /// Show at most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Skip this many first.
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
}

pub fn run(cmd: WarningCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    match cmd {
        WarningCmd::List {
            card,
            rule,
            unit,
            ended,
            limit,
            offset,
        } => {
            let op = ListWarnings {
                card,
                rule,
                unit,
                ended,
                offset,
                limit,
            };
            ctx.out.show(&target.call(op, ctx.now)?, print_list)
        }
    }
}

/// The columns every list of cards shows, after its own.
pub fn card_cells(c: &CaseCard) -> Vec<String> {
    vec![
        c.rule.to_string(),
        c.card.to_string(),
        c.since.to_string(),
        opt(c.until),
        c.clears.clone(),
    ]
}

/// Cards of one case, as `case show` prints them.
pub fn card_table(cards: &[CaseCard]) -> Table {
    let mut t = table(&["rule", "card", "since", "until", "what clears it"]);
    for c in cards {
        t.add_row(card_cells(c));
    }
    t
}

fn print_list(list: &WarningList) {
    let mut t = table(&[
        "case",
        "unit",
        "item",
        "rule",
        "card",
        "since",
        "until",
        "what clears it",
    ]);
    for w in &list.page.items {
        let mut row = vec![w.number.clone(), w.unit.to_string(), w.item.clone()];
        row.extend(card_cells(&w.card));
        if w.revoked {
            row[4].push_str(" (revoked)");
        }
        if let Some(ahead) = w.clock_off {
            row[4].push_str(&format!(" [{}: may be wrong]", clock_off(ahead)));
        }
        t.add_row(row);
    }
    say!("{t}");
    say!("{}", page_line("card(s)", &list.page, list.now));
}
