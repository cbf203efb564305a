//! 联网: the node's links to its parent and children, how far behind each
//! direction is, the halls the registry knows, records set aside.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use hallsync_api::ops::node::Status;
use hallsync_model::time::DAY;
use hallsync_model::Ts;
use hallsync_net::status::{KnownNode, NodeStatus, PeerStatus, Role as PeerRole, SKEW_WARN_SECS};
use maud::{html, Markup};

use super::text::{self, Refusal};
use super::{page, refusal, session, status_of, Ctx};
use crate::App;

fn role(r: PeerRole) -> &'static str {
    match r {
        PeerRole::Parent => "上级",
        PeerRole::Ancestor => "上级（备用）",
        PeerRole::Child => "下级",
    }
}

fn level(l: &str) -> &str {
    match l {
        "city" => "市级",
        "county" => "县级",
        "township" => "乡镇级",
        other => other,
    }
}

/// When a link last caught up, and for how many whole days it has not.
fn last_seen(last: Option<i64>, started: i64, now: Ts) -> Markup {
    let since = last.unwrap_or(started);
    let days = (now.0 - since).max(0) / DAY;
    html! {
        @match last {
            Some(t) => { (Ts(t)) }
            None => { span.muted { "本次启动以来未同步" } }
        }
        @if days >= 1 {
            " " strong.over { (days) " 天未见" }
        }
    }
}

/// How far a peer's clock is off this node's: marked past five minutes.
fn clock(skew: Option<i64>) -> Markup {
    html! {
        @match skew {
            None => { span.muted { "—" } }
            Some(s) if s.abs() > SKEW_WARN_SECS => {
                strong.over { (if s > 0 { "快 " } else { "慢 " }) (s.abs() / 60) " 分钟" }
                " " span.muted { "请校准时钟" }
            }
            Some(s) if s.abs() >= 60 => { (if s > 0 { "快 " } else { "慢 " }) (s.abs() / 60) " 分钟" }
            Some(_) => { "正常" }
        }
    }
}

/// A known node's clock, as its entry says, and its last restore.
fn history(n: &KnownNode) -> Markup {
    html! {
        @match (n.clock_off, n.clock_off_periods) {
            (Some(ahead), _) => { span.clockoff { (text::clock_off(ahead)) } }
            (None, 0) => { "时钟正常" }
            (None, periods) => { "时钟正常" span.muted { "（曾偏差 " (periods) " 次）" } }
        }
        @if let Some((at, source, from)) = &n.last_restore {
            br;
            (Ts(*at)) " "
            (if source == "backup" { "自备份恢复" } else { "自上级恢复" })
            @if let Some(from) = from { span.muted { "（自 " span.code { (from) } " 补齐）" } }
        }
    }
}

fn peer_row(p: &PeerStatus, s: &NodeStatus, name: &str, now: Ts) -> Markup {
    html! {
        tr class=[(!p.connected).then_some("down")] {
            td { (name) " " span.code.muted { (p.id) } }
            td { (role(p.role)) }
            td.code { (p.region.as_deref().unwrap_or("—")) }
            td.code { (p.addr.as_deref().unwrap_or("—")) }
            td {
                @if p.connected { span.up { "已连接" } } @else { strong.over { "未连接" } }
                @if p.connected && p.in_sync { " · 已同步" } @else if p.connected { " · 同步中" }
            }
            td.nowrap { (last_seen(p.last_sync, s.started, now)) }
            td.num { (p.backlog_out) }
            td.num { (p.backlog_in) }
            td.nowrap { (clock(p.clock_skew_secs)) }
            td {
                @if let Some(e) = &p.last_error {
                    details { summary { "最近错误" } p.detail lang="en" { (e) } }
                }
            }
        }
    }
}

/// `GET /links`.
pub(crate) async fn show(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let ctx = match session(&app, &headers, &uri, None).await {
        Ok(ctx) => ctx,
        Err(resp) => return resp,
    };
    match ctx.run(Status {}).await {
        Ok(s) => render(&ctx, &s),
        Err(e) => page(
            &ctx,
            status_of(&e),
            "/links",
            "联网",
            refusal(&Refusal::of(&e, None)),
        ),
    }
}

fn render(ctx: &Ctx, s: &NodeStatus) -> Response {
    let now = ctx.now;
    let name_of = |id: &str| {
        s.registry
            .iter()
            .find(|n| n.id == id)
            .map_or(String::new(), |n| n.name.clone())
    };
    let here = ctx.node().id.as_str();
    // Halls below that the registry names but that have not linked since
    // the node started.
    let silent: Vec<_> = s
        .registry
        .iter()
        .filter(|n| n.parent.as_deref() == Some(here) && !s.peers.iter().any(|p| p.id == n.id))
        .collect();
    let body = html! {
        p.muted {
            "本节点 " span.code { (s.node) } " · 启动于 " (Ts(s.started))
            " · 变更序号 " (s.feed_head)
            @if let Some(n) = s.revocation_list { " · 吊销列表第 " (n) " 号" }
        }
        section aria-labelledby="peers-h" {
            h2 #peers-h { "联网链路" }
            table.list #peers {
                thead { tr { th { "节点" } th { "关系" } th { "区划" } th { "地址" } th { "链路" } th { "最近同步" } th { "待发出" } th { "待接收" } th { "对方时钟" } th { span.sr { "错误" } } } }
                tbody {
                    @if s.peers.is_empty() && silent.is_empty() { tr { td colspan="9" { "没有上级或下级链路。" } } }
                    @for p in &s.peers { (peer_row(p, s, &name_of(&p.id), now)) }
                    @for n in &silent {
                        tr.down {
                            td { (n.name) " " span.code.muted { (n.id) } }
                            td { "下级" }
                            td.code { (n.region) }
                            td.code { (n.addr.as_deref().unwrap_or("—")) }
                            td { strong.over { "未连接" } }
                            td.nowrap { (last_seen(None, s.started, now)) }
                            td.num { "—" } td.num { "—" } td {}
                        }
                    }
                }
            }
            p.muted { "待发出：本节点尚未被对方确认的变更数；待接收：对方报告的、本节点尚未收到的变更数。" }
        }
        section aria-labelledby="reg-h" {
            h2 #reg-h { "节点登记" }
            table.list #registry {
                thead { tr { th { "节点" } th { "名称" } th { "层级" } th { "区划" } th { "上级" } th { "地址" } th { "吊销列表" } th { "时钟与恢复" } } }
                tbody {
                    @for n in &s.registry {
                        tr {
                            td.code { (n.id) }
                            td { (n.name) }
                            td { (level(&n.level)) }
                            td.code { (n.region) }
                            td.code { (n.parent.as_deref().unwrap_or("—")) }
                            td.code { (n.addr.as_deref().unwrap_or("—")) }
                            td.num { (n.revocation_list.map_or("—".to_string(), |v| v.to_string())) }
                            td #{ "history-" (n.id) } { (history(n)) }
                        }
                    }
                }
            }
        }
        @if !s.set_aside.is_empty() {
            section aria-labelledby="aside-h" {
                h2 #aside-h { "同步中被拒收的记录" }
                table.list {
                    thead { tr { th { "时间" } th { "方向" } th { "对方" } th { "记录" } th { "原因" } } }
                    tbody {
                        @for a in &s.set_aside {
                            tr {
                                td.nowrap { (Ts(a.at)) }
                                td { @if a.direction == "refused" { "本节点拒收" } @else { "对方拒收" } }
                                td.code { (a.peer) }
                                td.code { (a.id) }
                                td lang="en" { (a.reason) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(ctx, StatusCode::OK, "/links", "联网状态", body)
}
