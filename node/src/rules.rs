//! `hallsync rules`: the supervision rules (card thresholds and evaluation
//! weights) a hub publishes for its subtree; a county may only tighten its
//! city's.

use anyhow::{anyhow, Result};
use clap::Subcommand;
use hallsync_api::ops::rules::{PublishRules, RulesOut, RulesView, SetRules, ShowRules};
use hallsync_model::evaluation::Weights;

use crate::cli::Ctx;
use crate::output::{say, table};

#[derive(Debug, Subcommand)]
pub enum RulesCmd {
    /// The thresholds in force here, the rules published at and above this
    /// node, and this hub's draft.
    Show,
    /// Change this hub's draft (checked, then kept until published):
    /// NAME=VALUE pairs, e.g. `delivery=2d time_limit_notice=3wd`.
    Set {
        /// Thresholds: time_limit_notice, special_notice, special_red_over,
        /// online_notice, online_yellow, online_red, decision_silence,
        /// delivery, step_limit, forward_limit (3wd, 2d, 24h …);
        /// disclosure_red_times (a number).
        /// Orders this hub issues by itself: auto_order.RULE=notice, yellow,
        /// red or off (e.g. auto_order.case_time_limit=red), and
        /// auto_order_reply (the time to reply, 3wd by default).
        #[arg(value_name = "NAME=VALUE")]
        thresholds: Vec<String>,
        /// The evaluation's weights, adding up to 100:
        /// on_time=40,speed_up=20,satisfaction=15,cards=15,orders=10.
        #[arg(long, value_name = "NAME=N,…")]
        weights: Option<String>,
        /// Who changes them.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
    /// Publish the draft to every hall below this hub.
    Publish {
        /// Who publishes them.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
    },
}

fn pair(s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| anyhow!("{s:?}: write NAME=VALUE, e.g. delivery=2d"))
}

fn weights(s: &str) -> Result<Weights> {
    let mut w = Weights {
        on_time: 0,
        speed_up: 0,
        satisfaction: 0,
        cards: 0,
        orders: 0,
    };
    let mut seen: Vec<String> = Vec::new();
    for part in s.split(',') {
        let (name, n) = pair(part)?;
        if seen.contains(&name) {
            return Err(anyhow!(
                "--weights: {name} is given more than once; give each weight once"
            ));
        }
        seen.push(name.clone());
        let n: u32 = n
            .parse()
            .map_err(|_| anyhow!("--weights: {n:?} is not a whole number"))?;
        let slot = match name.as_str() {
            "on_time" => &mut w.on_time,
            "speed_up" => &mut w.speed_up,
            "satisfaction" => &mut w.satisfaction,
            "cards" => &mut w.cards,
            "orders" => &mut w.orders,
            other => {
                return Err(anyhow!(
                    "--weights: no weight {other:?}; they are on_time, speed_up, satisfaction, cards, orders"
                ))
            }
        };
        *slot = n;
    }
    Ok(w)
}

pub fn run(cmd: RulesCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    match cmd {
        RulesCmd::Show => ctx
            .out
            .show(&target.call(ShowRules {}, ctx.now)?, print_view),
        RulesCmd::Set {
            thresholds,
            weights: w,
            by,
        } => {
            let pairs: Vec<(String, String)> =
                thresholds.iter().map(|s| pair(s)).collect::<Result<_>>()?;
            for (i, (name, _)) in pairs.iter().enumerate() {
                if pairs[..i].iter().any(|(n, _)| n == name) {
                    return Err(anyhow!(
                        "{name} is given more than once; give each setting once"
                    ));
                }
            }
            let op = SetRules {
                thresholds: pairs.into_iter().collect(),
                weights: w.as_deref().map(weights).transpose()?,
                by,
            };
            ctx.out.show(&target.call(op, ctx.now)?, |r| {
                print_rules("draft (not yet published: `hallsync rules publish`)", r)
            })
        }
        RulesCmd::Publish { by } => ctx
            .out
            .show(&target.call(PublishRules { by }, ctx.now)?, |r| {
                print_rules("published", r)
            }),
    }
}

fn print_rules(what: &str, r: &RulesOut) {
    say!(
        "{what}: rules of {}, version {}, {} by {}",
        r.region,
        r.version,
        r.published_at,
        r.published_by
    );
    let mut t = table(&["threshold", "value"]);
    for (k, v) in &r.thresholds {
        t.add_row(vec![k.clone(), v.clone()]);
    }
    say!("{t}");
    say!("{}", auto_line(&r.auto_orders));
    let w = &r.weights;
    say!(
        "evaluation weights: on_time {}, speed_up {}, satisfaction {}, cards {}, orders {}",
        w.on_time,
        w.speed_up,
        w.satisfaction,
        w.cards,
        w.orders
    );
}

fn auto_line(auto: &std::collections::BTreeMap<String, String>) -> String {
    let levels: Vec<String> = auto
        .iter()
        .filter(|(k, _)| k.starts_with("auto_order."))
        .map(|(k, v)| format!("{}={v}", k.trim_start_matches("auto_order.")))
        .collect();
    if levels.is_empty() {
        return "automatic orders: none (set auto_order.RULE=LEVEL to have this hub issue them)"
            .into();
    }
    format!(
        "automatic orders: {} (reply within {})",
        levels.join(", "),
        auto.get("auto_order_reply").map_or("3wd", String::as_str)
    )
}

fn print_view(v: &RulesView) {
    let mut heads = vec!["threshold".to_string(), format!("in force at {}", v.region)];
    heads.extend(
        v.published
            .iter()
            .map(|r| format!("{} v{}", r.region, r.version)),
    );
    if v.draft.is_some() {
        heads.push("draft".into());
    }
    let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
    let mut t = table(&heads);
    for (name, value) in &v.in_force {
        let mut row = vec![name.clone(), value.clone()];
        for r in v.published.iter().chain(v.draft.iter()) {
            row.push(r.thresholds.get(name).cloned().unwrap_or_default());
        }
        t.add_row(row);
    }
    say!("{t}");
    if v.published.is_empty() {
        say!("no rules published at or above this node: DOMAIN §5's defaults hold");
    }
    if let Some(own) = v.published.iter().find(|r| r.region == v.region) {
        say!("{}", auto_line(&own.auto_orders));
    }
    if let Some(d) = &v.draft {
        say!("draft: {}", auto_line(&d.auto_orders));
    }
    let w = &v.weights;
    say!(
        "evaluation weights in force: on_time {}, speed_up {}, satisfaction {}, cards {}, orders {}",
        w.on_time,
        w.speed_up,
        w.satisfaction,
        w.cards,
        w.orders
    );
}
