//! `hallsync order`: supervision orders (督办), issued by a hub to a hall
//! below it, replied to by that hall, closed by the hub.

use anyhow::Result;
use clap::Subcommand;
use comfy_table::Table;
use hallsync_api::ops::orders::{
    AppealOrder, CloseOrder, DecideAppeal, IssueAutoOrders, IssueOrder, ListOrders, OrderList,
    ReplyOrder, ShowOrder,
};
use hallsync_hall::OrderRow;
use hallsync_model::order::{AppealView, Card, OrderAction, OrderView, Resolution, Rule, Verdict};
use hallsync_model::{RegionCode, TimeLimit};

use crate::cli::Ctx;
use crate::output::{due, opt, say, table};
use crate::parse;

#[derive(Debug, Subcommand)]
pub enum OrderCmd {
    /// Issue an order to a hall below this one about one of its cases
    /// (held here once that hall has synced).
    Issue {
        /// Region code of the supervised hall.
        #[arg(long, value_parser = parse::region)]
        unit: RegionCode,
        /// The case: its number at that hall, or its document id.
        #[arg(long)]
        case: String,
        /// The rule broken: case_time_limit, special_procedure,
        /// pre_acceptance, certificate_delivery, complaint_reply,
        /// disclosure or anomaly.
        #[arg(long, value_parser = parse::rule)]
        rule: Rule,
        /// Warning level: notice, yellow or red.
        #[arg(long, value_parser = parse::card, default_value = "notice")]
        card: Card,
        /// What the hall is to put right.
        #[arg(long)]
        reason: String,
        /// The department within the hall, if the order names one.
        #[arg(long, default_value = "")]
        department: String,
        /// How long the hall has to reply, e.g. 3wd or 24h.
        #[arg(long, value_parser = parse::limit, default_value = "3wd")]
        reply_within: TimeLimit,
        /// Who issues it.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Reply to an order addressed to this hall.
    Reply {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
        /// What was done.
        #[arg(long)]
        text: String,
        /// Who replies.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Close an order this hall issued, with its result.
    Close {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
        /// The result: rectified, not_rectified or withdrawn.
        #[arg(long, value_parser = parse::resolution)]
        result: Resolution,
        /// Remarks.
        #[arg(long)]
        text: String,
        /// Who closes it.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Appeal the card an order addressed to this hall names (申诉): it
    /// was raised in error. Once per order; the issuing hub decides.
    Appeal {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
        /// Why the card was raised in error.
        #[arg(long)]
        text: String,
        /// Who appeals.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Decide the appeal of an order this hall issued: the card stands
    /// (upheld) or is revoked, which closes the order as withdrawn and
    /// counts the card apart in the statistics.
    Decide {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
        /// upheld or revoked.
        #[arg(long, value_parser = parse::verdict)]
        verdict: Verdict,
        /// The reasons.
        #[arg(long)]
        text: String,
        /// Who decides.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Issue now the orders this hub's published rules call for
    /// (`hallsync rules set auto_order.RULE=LEVEL`); a running node does
    /// so every minute by itself.
    Auto,
    /// Show an order with its replies.
    Show {
        /// The order: its key (e.g. cn-212.1) or document id.
        order: String,
    },
    /// List the orders held here (issued here, addressed to this hall or,
    /// at a hub, to the halls below), soonest reply due first.
    List {
        /// Only orders not yet closed.
        #[arg(long)]
        open: bool,
        /// Only orders whose reply came late or is missing past its due time.
        #[arg(long)]
        late: bool,
        /// Show at most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
}

pub fn run(cmd: OrderCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    let out = ctx.out;
    match cmd {
        OrderCmd::Issue {
            unit,
            case,
            rule,
            card,
            reason,
            department,
            reply_within,
            by,
        } => {
            let op = IssueOrder {
                unit,
                case,
                rule,
                card,
                reason,
                department,
                reply_within,
                by,
            };
            out.show(&target.call(op, ctx.now)?, print_row)
        }
        OrderCmd::Reply { order, text, by } => out.show(
            &target.call(ReplyOrder { order, text, by }, ctx.now)?,
            print_row,
        ),
        OrderCmd::Close {
            order,
            result,
            text,
            by,
        } => {
            let op = CloseOrder {
                order,
                result,
                text,
                by,
            };
            out.show(&target.call(op, ctx.now)?, print_row)
        }
        OrderCmd::Appeal { order, text, by } => out.show(
            &target.call(AppealOrder { order, text, by }, ctx.now)?,
            print_row,
        ),
        OrderCmd::Decide {
            order,
            verdict,
            text,
            by,
        } => {
            let op = DecideAppeal {
                order,
                verdict,
                text,
                by,
            };
            out.show(&target.call(op, ctx.now)?, print_row)
        }
        OrderCmd::Auto => out.show(
            &target.call(IssueAutoOrders {}, ctx.now)?,
            |rows: &Vec<OrderRow>| {
                if rows.is_empty() {
                    say!("no order to issue: every card the rules call for has one (see `hallsync rules show`)");
                } else {
                    say!("{}", order_table(rows));
                    say!("{} order(s) issued", rows.len());
                }
            },
        ),
        OrderCmd::Show { order } => {
            out.show(&target.call(ShowOrder { order }, ctx.now)?, print_order)
        }
        OrderCmd::List { open, late, limit } => {
            let op = ListOrders {
                open,
                late,
                offset: 0,
                limit,
            };
            out.show(&target.call(op, ctx.now)?, |l: &OrderList| {
                say!("{}", order_table(&l.page.items));
                say!("{} order(s) as of {}", l.page.total, l.now);
            })
        }
    }
}

/// Orders as a table.
pub fn order_table(rows: &[OrderRow]) -> Table {
    let mut t = table(&[
        "order",
        "unit",
        "case",
        "rule",
        "card",
        "state",
        "reply due",
        "flags",
    ]);
    for r in rows {
        let h = &r.order.header;
        t.add_row(vec![
            r.id.key().to_string(),
            h.unit.to_string(),
            h.case.key().to_string(),
            h.rule.to_string(),
            h.card.to_string(),
            state(&r.view),
            due(Some(h.reply_due)),
            if r.view.reply_late { "LATE" } else { "" }.to_string(),
        ]);
    }
    t
}

fn print_row(row: &OrderRow) {
    let h = &row.order.header;
    say!(
        "{}: {} {} order to {} about {}: {}, reply due {}{}",
        row.id.key(),
        h.card,
        h.rule,
        h.unit,
        h.case,
        state(&row.view),
        due(Some(h.reply_due)),
        if row.view.reply_late { " [LATE]" } else { "" }
    );
}

/// The state, with how a closed order was closed (`closed: withdrawn` when
/// its card was revoked on appeal).
fn state(v: &OrderView) -> String {
    match v.closed {
        Some((resolution, _)) => format!("{}: {resolution}", v.state),
        None => v.state.to_string(),
    }
}

fn appeal(v: &OrderView) -> String {
    match v.appeal {
        None => "-".into(),
        Some(AppealView {
            filed,
            verdict: None,
        }) => format!("filed at {filed}, awaiting the issuer's decision"),
        Some(AppealView {
            filed,
            verdict: Some((verdict, at)),
        }) => format!("filed at {filed}, {verdict} at {at}"),
    }
}

fn print_order(row: &OrderRow) {
    let h = &row.order.header;
    let mut t = table(&["field", "value"]);
    let closed = row
        .view
        .closed
        .map_or_else(|| "-".into(), |(r, at)| format!("{r} at {at}"));
    let rows: Vec<(&str, String)> = vec![
        ("id", row.id.to_string()),
        ("supervised unit", format!("{} {}", h.unit, h.department)),
        ("case", h.case.to_string()),
        ("rule", h.rule.to_string()),
        ("card", h.card.to_string()),
        ("reason", h.reason.clone()),
        (
            "issued",
            format!(
                "{} by {} ({}, {})",
                h.issued_at, h.issued_by, h.issuer_node, h.issuer
            ),
        ),
        ("reply due", due(Some(h.reply_due))),
        ("state", row.view.state.to_string()),
        ("first reply", opt(row.view.first_reply)),
        ("closed", closed),
        ("appeal", appeal(&row.view)),
        ("reply late", row.view.reply_late.to_string()),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    say!("{t}");
    if row.order.events.is_empty() {
        return;
    }
    let mut e = table(&["when", "event", "by", "node", "text"]);
    for ev in row.order.sorted() {
        let text = match &ev.action {
            OrderAction::Close { resolution, text } => format!("{resolution}: {text}"),
            OrderAction::Decide { verdict, text } => format!("{verdict}: {text}"),
            other => other.text().to_string(),
        };
        e.add_row(vec![
            ev.at.to_string(),
            ev.action.name().into(),
            ev.by.clone(),
            ev.node.to_string(),
            text,
        ]);
    }
    say!("{e}");
}
