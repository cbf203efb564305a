//! 统计: the statistics of a unit for a period, with a chart, and a click
//! through from a unit to the units below it, to its items, and from an
//! item to its cases.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hallsync_api::ops::stats::{Evaluation, GetEvaluation, GetStats, StatsRow, StatsTable};
use hallsync_model::RegionCode;
use maud::{html, Markup};
use serde::Deserialize;

use super::text::Refusal;
use super::{page, refusal, session, status_of, url, Ctx};
use crate::App;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Ask {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    by: String,
}

/// The breakdowns offered, with their Chinese names.
const BY: &[(&str, &str)] = &[
    ("unit", "按单位"),
    ("item", "按事项"),
    ("day", "按日"),
    ("total", "仅合计"),
];

impl Ask {
    fn clean(s: &str, n: usize) -> String {
        s.trim().chars().take(n).collect()
    }

    fn op(&self, hub: bool) -> GetStats {
        let by = match self.by.trim() {
            "" if hub => "unit".to_string(),
            "" => "item".to_string(),
            other => Self::clean(other, 10),
        };
        let opt = |s: &str| Some(Self::clean(s, 20)).filter(|s| !s.is_empty());
        GetStats {
            unit: RegionCode::parse(self.unit.trim()).ok(),
            from: opt(&self.from),
            to: opt(&self.to),
            by: Some(by),
        }
    }
}

/// `GET /stats`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(ask): Query<Ask>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let op = ask.op(ctx.is_hub());
    let bad_unit = !ask.unit.trim().is_empty() && op.unit.is_none();
    let asked_by = op.by.clone().unwrap_or_default();
    // A unit that does not read is refused, not replaced by this hall's.
    let result = if bad_unit {
        None
    } else {
        Some(ctx.run(op).await)
    };
    let names = unit_names(&ctx).await;
    let (status, shown) = match &result {
        None => bad_unit_refusal(),
        Some(Ok(t)) => (StatusCode::OK, table(t, &names)),
        Some(Err(e)) => (
            status_of(e),
            asked_refusal(e, "统计期间不对：起始日期不能晚于今天，也不能晚于截止日期；截止日期早于本月 1 日时，请同时填写起始日期。"),
        ),
    };
    let body = html! {
        (filters(&ask, &asked_by, result.as_ref().and_then(|r| r.as_ref().ok())))
        (shown)
    };
    page(&ctx, status, "/stats", "统计分析", body)
}

/// The refusal of what was asked (`bad_request`: a period or month the
/// API could not take) in the page's own words, the API's reason under
/// them; any other refusal in the general words of its code.
fn asked_refusal(e: &hallsync_api::ApiError, zh: &str) -> Markup {
    let mut r = Refusal::of(e, None);
    if e.code == "bad_request" {
        r.zh = zh.to_string();
    }
    refusal(&r)
}

/// The refusal of a unit that is not a region code.
fn bad_unit_refusal() -> (StatusCode, Markup) {
    (
        StatusCode::BAD_REQUEST,
        html! { div.refusal role="alert" { p { "单位的行政区划代码不对：应为 4、6、9 或 12 位数字。" } } },
    )
}

/// Region code → the name of the hall there, from the registry.
async fn unit_names(ctx: &Ctx) -> BTreeMap<String, String> {
    super::cases::units(ctx).await.into_values().collect()
}

fn filters(ask: &Ask, by: &str, shown: Option<&StatsTable>) -> Markup {
    let unit = shown.map_or_else(|| ask.unit.trim().to_string(), |t| t.unit.to_string());
    let from = shown.map_or_else(|| ask.from.trim().to_string(), |t| t.from.clone());
    let to = shown.map_or_else(|| ask.to.trim().to_string(), |t| t.to.clone());
    html! {
        form.filters method="get" action="/stats" {
            label for="s-unit" { "单位（行政区划代码）" }
            input #s-unit type="text" name="unit" maxlength="12" inputmode="numeric" value=(unit);
            label for="s-from" { "起始日期" }
            input #s-from type="date" name="from" value=(from);
            label for="s-to" { "截止日期" }
            input #s-to type="date" name="to" value=(to);
            label for="s-by" { "分组" }
            select #s-by name="by" {
                @for (v, name) in BY {
                    option value=(v) selected[*v == by] { (name) }
                }
            }
            button type="submit" { "统计" }
        }
    }
}

fn pct(r: Option<f64>) -> String {
    r.map_or_else(|| "—".into(), |r| format!("{:.1}%", r * 100.0))
}

/// Where a row's key leads: a unit to its own breakdown (by unit, or by
/// item at the lowest level), an item to its cases.
fn drill(t: &StatsTable, key: &str) -> Option<String> {
    let period = [("from", t.from.as_str()), ("to", t.to.as_str())];
    match t.by.as_str() {
        "unit" if key != t.unit.as_str() => {
            let by = if key.len() >= 9 { "item" } else { "unit" };
            let mut q = vec![("unit", key), ("by", by)];
            q.extend(period);
            Some(url("/stats", &q))
        }
        "unit" => {
            let mut q = vec![("unit", key), ("by", "item")];
            q.extend(period);
            Some(url("/stats", &q))
        }
        "item" => Some(url(
            "/cases",
            &[("item", key), ("unit", t.unit.as_str()), ("all", "1")],
        )),
        _ => None,
    }
}

fn label(t: &StatsTable, key: &str, names: &BTreeMap<String, String>) -> Markup {
    let name = names.get(key);
    html! {
        @if t.by == "unit" {
            @if key == t.unit.as_str() { "本级" } @else if let Some(n) = name { (n) } @else { (key) }
            " " span.muted.code { (key) }
        } @else {
            span.code { (key) }
        }
    }
}

fn cells(r: &StatsRow) -> Markup {
    html! {
        td.num { (r.received) }
        td.num { (r.accepted) }
        td.num { (r.concluded) }
        td.num { (pct(r.rates.on_time)) }
        td.num { (r.early) }
        td.num { (pct(r.rates.speed_up_committed)) }
        td.num { (r.rates.average_days.map_or_else(|| "—".into(), |d| format!("{d:.2}"))) }
        td.num { (r.open) }
        td.num.late[r.overdue > 0] { (r.overdue) }
        td.num { (r.cards_total.notice) " / " (r.cards_total.yellow) " / " (r.cards_total.red) }
        td.num { (r.appeals) " / " (r.revoked.notice + r.revoked.yellow + r.revoked.red) }
        td.num { (r.orders) " / " (r.orders_late) " / " (r.orders_closed) }
        td.num { (format!("{:.2}", r.fees_fen as f64 / 100.0)) }
    }
}

fn table(t: &StatsTable, names: &BTreeMap<String, String>) -> Markup {
    let head = match t.by.as_str() {
        "unit" => "单位",
        "item" => "事项编码",
        "day" => "日期",
        _ => "单位",
    };
    let unit_name = names
        .get(t.unit.as_str())
        .cloned()
        .unwrap_or_else(|| t.unit.to_string());
    html! {
        p #stats-scope {
            (unit_name) " " span.muted.code { (t.unit.as_str()) } "，"
            (t.from) " 至 " (t.to) "（截至 " (t.now.to_string()) "）"
        }
        @if !t.rows.is_empty() { (chart(t, names)) }
        table.list #stats {
            thead {
                tr {
                    th scope="col" { (head) }
                    th scope="col" { "收件" }
                    th scope="col" { "受理" }
                    th scope="col" { "办结" }
                    th scope="col" { "按时办结率" }
                    th scope="col" { "提前办结" }
                    th scope="col" { "提速率" }
                    th scope="col" { "平均办结天数" }
                    th scope="col" { "在办" }
                    th scope="col" { "超期" }
                    th scope="col" { "预警/黄牌/红牌" }
                    th scope="col" { "申诉/撤销亮牌" }
                    th scope="col" { "督办/逾期反馈/办结" }
                    th scope="col" { "收费（元）" }
                }
            }
            tbody {
                @for r in &t.rows {
                    tr {
                        th scope="row" {
                            @if let Some(href) = drill(t, &r.key) {
                                a href=(href) { (label(t, &r.key, names)) }
                            } @else {
                                (label(t, &r.key, names))
                            }
                        }
                        (cells(r))
                    }
                }
            }
            tfoot {
                tr {
                    th scope="row" { "合计" }
                    (cells(&t.total))
                }
            }
        }
        @if t.by == "unit" && !t.rows.is_empty() {
            p { a #to-evaluation href=(url("/evaluation", &[("unit", t.unit.as_str())])) { "绩效考评排名（上月）" } }
        }
        p.muted {
            "办结率 " (pct(t.total.rates.conclusion))
            "，法定时限提速率 " (pct(t.total.rates.speed_up_statutory))
            "，满意率 " (pct(t.total.rates.satisfaction))
            "。预警、黄牌、红牌按办件、规则和等级各计一次，计入亮牌当日（申诉后撤销的亮牌另计，记入督办发出当日，不计入绩效扣分）；“在办”“超期”为当前数。"
        }
    }
}

/// Received and concluded per row as bars (server-side SVG: nothing is
/// loaded from elsewhere, and it prints as drawn).
fn chart(t: &StatsTable, names: &BTreeMap<String, String>) -> Markup {
    const W: f64 = 1300.0;
    const H: f64 = 170.0;
    const BASE: f64 = 140.0;
    let rows: Vec<&StatsRow> = t.rows.iter().take(40).collect();
    let top = rows
        .iter()
        .map(|r| r.received.max(r.concluded))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (W - 60.0) / rows.len() as f64;
    let bar = (slot * 0.35).min(28.0);
    let short = |key: &str| -> String {
        let name = match t.by.as_str() {
            "unit" if key == t.unit.as_str() => "本级".to_string(),
            "unit" => names.get(key).cloned().unwrap_or_else(|| key.to_string()),
            "day" => key.get(5..).unwrap_or(key).to_string(),
            _ => key
                .chars()
                .rev()
                .take(6)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect(),
        };
        name.chars().take(8).collect()
    };
    html! {
        figure.chart {
            svg #stats-chart viewBox=(format!("0 0 {W} {H}")) role="img"
                aria-label="收件与办结件数" {
                line x1="50" y1=(BASE) x2=(W) y2=(BASE) stroke="#d5dbe3" {}
                text x="4" y="14" font-size="11" fill="#5f6b7a" { (top as i64) }
                text x="4" y=(BASE) font-size="11" fill="#5f6b7a" { "0" }
                @for (i, r) in rows.iter().enumerate() {
                    @let x = 60.0 + i as f64 * slot;
                    @let hr = r.received as f64 / top * (BASE - 10.0);
                    @let hc = r.concluded as f64 / top * (BASE - 10.0);
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", BASE - hr)) width=(format!("{bar:.1}"))
                        height=(format!("{hr:.1}")) fill="#1d4e89" {
                        title { (r.key) " 收件 " (r.received) }
                    }
                    rect x=(format!("{:.1}", x + bar)) y=(format!("{:.1}", BASE - hc)) width=(format!("{bar:.1}"))
                        height=(format!("{hc:.1}")) fill="#1e7b34" {
                        title { (r.key) " 办结 " (r.concluded) }
                    }
                    text x=(format!("{x:.1}")) y=(BASE + 16.0) font-size="11" fill="#1f2933" { (short(&r.key)) }
                }
            }
            figcaption {
                span.swatch.received {} "收件 "
                span.swatch.concluded {} "办结"
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AskMonth {
    #[serde(default)]
    unit: String,
    #[serde(default)]
    month: String,
}

/// The Chinese names of a score's parts.
fn part_name(name: &str) -> &'static str {
    match name {
        "on_time" => "按时办结",
        "speed_up" => "提速",
        "satisfaction" => "满意度",
        "cards" => "无亮牌",
        "orders" => "督办按时反馈",
        _ => "其他",
    }
}

/// `GET /evaluation`: the units one level down, scored for a month.
pub(crate) async fn evaluation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    Query(ask): Query<AskMonth>,
) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    let month = Some(Ask::clean(&ask.month, 7)).filter(|m| !m.is_empty());
    let unit = RegionCode::parse(ask.unit.trim()).ok();
    let bad_unit = !ask.unit.trim().is_empty() && unit.is_none();
    let result = if bad_unit {
        None
    } else {
        Some(ctx.run(GetEvaluation { unit, month }).await)
    };
    let names = unit_names(&ctx).await;
    let (status, shown) = match &result {
        None => bad_unit_refusal(),
        Some(Ok(e)) => (StatusCode::OK, ranking(e, &names)),
        Some(Err(e)) => (
            status_of(e),
            asked_refusal(
                e,
                "考评月份不对：请按 YYYY-MM 填写本月或以前的月份（如 2026-11）。",
            ),
        ),
    };
    let (unit, month) = match &result {
        Some(Ok(e)) => (e.unit.to_string(), e.month.clone()),
        _ => (Ask::clean(&ask.unit, 12), Ask::clean(&ask.month, 7)),
    };
    let body = html! {
        form.filters method="get" action="/evaluation" {
            label for="e-unit" { "单位（行政区划代码）" }
            input #e-unit type="text" name="unit" maxlength="12" inputmode="numeric" value=(unit);
            label for="e-month" { "月份" }
            input #e-month type="month" name="month" value=(month);
            button type="submit" { "考评" }
        }
        (shown)
    };
    page(&ctx, status, "/stats", "绩效考评", body)
}

fn ranking(e: &Evaluation, names: &BTreeMap<String, String>) -> Markup {
    let parts: Vec<(String, u32)> = e
        .rows
        .first()
        .map(|r| {
            r.score
                .parts
                .iter()
                .map(|p| (p.name.clone(), p.weight))
                .collect()
        })
        .unwrap_or_default();
    html! {
        p #evaluation-scope {
            (names.get(e.unit.as_str()).cloned().unwrap_or_else(|| e.unit.to_string()))
            " " span.muted.code { (e.unit.as_str()) } "，" (e.month) " 月度考评（截至 " (e.now.to_string()) "）"
        }
        @if e.rows.is_empty() {
            p.muted { "该月没有可考评的单位。" }
        } @else {
            table.list #ranking {
                thead {
                    tr {
                        th scope="col" { "名次" }
                        th scope="col" { "单位" }
                        th scope="col" { "得分" }
                        @for (name, weight) in &parts {
                            th scope="col" { (part_name(name)) "（" (weight) "分）" }
                        }
                        th scope="col" { "受理" }
                    }
                }
                tbody {
                    @for r in &e.rows {
                        tr {
                            td.num { @if let Some(n) = r.rank { (n) } @else { span.muted title="本月无办件、亮牌或督办，不参与排名" { "—" } } }
                            th scope="row" {
                                @if r.key == e.unit.as_str() { "本级" } @else if let Some(n) = names.get(&r.key) { (n) } @else { (r.key) }
                                " " span.muted.code { (r.key) }
                            }
                            td.num { strong { (format!("{:.1}", r.score.total)) } }
                            @for p in &r.score.parts {
                                td.num title=(p.measure.map_or_else(|| "无数据，计满分".to_string(), |m| format!("{:.1}%", m * 100.0))) {
                                    (format!("{:.1}", p.points))
                                    @if p.measure.is_none() { span.muted { "*" } }
                                }
                            }
                            td.num { (r.stats.accepted) }
                        }
                    }
                }
            }
            p.muted { "* 该项当月无数据（无承诺件办结、无评价或无督办），计满分；当月无办件、亮牌和督办的单位不参与排名（名次“—”）。各项得分 = 分值 × 比率；无亮牌项每张黄牌按一件、红牌按两件扣减。" }
        }
    }
}
