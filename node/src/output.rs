//! Human-readable tables by default, JSON with `--json`.

/// `println!` for command output: when the reader has gone away (`hallsync
/// … | head`), stop quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::output::stdout_failed(e)
        }
    }};
}
pub(crate) use say;

use std::path::Path;

use anyhow::Result;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use hallsync_hall::{CalendarImport, CaseRow, ImportReport, ItemChange, NodeConfig, OrderRow};
use hallsync_model::calendar::OfficeHours;
use hallsync_model::case::StartBasis;
use hallsync_model::catalogue::{Item, ItemView};
use hallsync_model::clock::LimitUnit;
use hallsync_model::order::OrderAction;
use hallsync_model::schema::CalendarYear;
use hallsync_model::time::{DAY, HOUR};
use hallsync_model::{Case, DocId, NodeId, Ts};
use hallsync_net::status::NodeStatus;
use hallsync_pki::topology::{NodeEntry, Topology};
use serde::Serialize;
use serde_json::json;

pub struct Out {
    json: bool,
}

fn table(heads: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(heads.iter().copied());
    t
}

fn opt(t: Option<Ts>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_string())
}

/// A due time; one falling at midnight is shown as 24:00 of the day before,
/// the way deadlines are written ("by 24:00 on the 20th working day").
fn due(t: Option<Ts>) -> String {
    match t {
        Some(t) if t.second_of_day() == 0 => format!("{} 24:00", Ts(t.0 - 1).date()),
        other => opt(other),
    }
}

/// Metered seconds in a limit's unit, e.g. `3.5wd`.
fn amount(secs: i64, unit: LimitUnit) -> String {
    let (per, suffix) = match unit {
        LimitUnit::NaturalDays => (DAY, "d"),
        LimitUnit::WorkingDays => (DAY, "wd"),
        LimitUnit::NaturalHours => (HOUR, "h"),
        LimitUnit::WorkingHours => (HOUR, "wh"),
    };
    format!("{:.1}{suffix}", secs as f64 / per as f64)
}

fn order_table(rows: &[OrderRow]) -> Table {
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
            r.view.state.to_string(),
            due(Some(h.reply_due)),
            if r.view.reply_late { "LATE" } else { "" }.to_string(),
        ]);
    }
    t
}

fn flags(row: &CaseRow) -> String {
    let c = &row.clock;
    let mut f = Vec::new();
    if c.over_statutory {
        f.push("OVER STATUTORY");
    } else if c.over_committed {
        f.push("OVERDUE");
    }
    if c.paused_now {
        f.push("paused");
    }
    if matches!(c.accepted, Some((_, StartBasis::DeemedOnReceipt))) {
        f.push("deemed accepted");
    }
    if c.disclosure_late {
        f.push("not published");
    }
    if !row.view.conflicts.is_empty() {
        f.push("CONFLICT");
    }
    f.join(", ")
}

/// Ends the process after standard output failed.
pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write the output: {e}");
    std::process::exit(1)
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    fn print_json<T: Serialize>(&self, v: &T) -> Result<()> {
        say!("{}", serde_json::to_string_pretty(v)?);
        Ok(())
    }

    pub fn repaired(&self, discarded: Option<&str>) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "discarded": discarded }));
        }
        match discarded {
            Some(what) => say!(
                "opened; the log was damaged ({what}), and the writes from there on were discarded"
            ),
            None => say!("the write-ahead log was whole: nothing was discarded"),
        }
        Ok(())
    }

    pub fn node(&self, node: &NodeConfig, dir: &Path) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "node": node, "data_dir": dir }));
        }
        say!(
            "initialised {} node {} ({}, region {}) in {}",
            node.level,
            node.id,
            node.name,
            node.region,
            dir.display()
        );
        Ok(())
    }

    pub fn item_change(&self, id: &DocId, change: ItemChange) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "id": id, "change": change }));
        }
        let what = match change {
            ItemChange::Created => {
                "created as a draft; it needs legal review (`hallsync item review`)"
            }
            ItemChange::Revised => "revised: a new version, back to draft for legal review",
            ItemChange::Unchanged => "unchanged",
        };
        say!("{id}: {what}");
        Ok(())
    }

    pub fn import_report(&self, file: &Path, r: &ImportReport) -> Result<()> {
        if self.json {
            return self.print_json(r);
        }
        say!(
            "{}: {} created, {} revised, {} unchanged, {} published, {} refused",
            file.display(),
            r.created,
            r.revised,
            r.unchanged,
            r.published,
            r.problems.len()
        );
        for p in &r.problems {
            eprintln!("  line {}: {}", p.line, p.reason);
        }
        Ok(())
    }

    pub fn items(&self, items: &[(DocId, Item)]) -> Result<()> {
        if self.json {
            let v: Vec<_> = items
                .iter()
                .map(|(id, i)| json!({ "id": id, "version": i.version, "status": i.view().status, "content": i.content }))
                .collect();
            return self.print_json(&v);
        }
        let mut t = table(&[
            "code",
            "name",
            "category",
            "agency",
            "statutory",
            "committed",
            "ver",
            "status",
        ]);
        for (_, i) in items {
            let c = &i.content;
            t.add_row(vec![
                c.impl_code.clone(),
                c.name.clone(),
                c.category.name().to_string(),
                c.agency.clone(),
                c.statutory_limit.to_string(),
                c.committed_limit.to_string(),
                i.version.to_string(),
                i.view().status.to_string(),
            ]);
        }
        say!("{t}");
        say!("{} item(s)", items.len());
        Ok(())
    }

    pub fn item(&self, id: &DocId, item: &Item) -> Result<()> {
        let view = item.view();
        if self.json {
            return self.print_json(&json!({ "id": id, "version": item.version, "view": view, "content": item.content, "history": item.history }));
        }
        let c = &item.content;
        let mut t = table(&["field", "value"]);
        let rows: Vec<(&str, String)> = vec![
            ("id", id.to_string()),
            ("name 事项名称", c.name.clone()),
            ("basic code 基本编码", c.basic_code.clone()),
            ("category 权力类别", c.category.to_string()),
            ("agency 实施主体", format!("{} {}", c.agency, c.agency_code)),
            ("office 承办机构", c.office.clone()),
            ("co-departments 联办机构", c.co_departments.join("、")),
            ("legal basis 设定依据", c.legal_basis.clone()),
            ("exercise level 行使层级", c.exercise_level.to_string()),
            ("statutory limit 法定时限", c.statutory_limit.to_string()),
            ("committed limit 承诺时限", c.committed_limit.to_string()),
            ("case type 办件类型", c.case_type.as_str().to_string()),
            ("conditions 受理条件", c.conditions.clone()),
            (
                "materials 申请材料",
                c.materials
                    .iter()
                    .map(|m| {
                        format!(
                            "{} ({}{})",
                            m.name,
                            m.form.as_str(),
                            if m.mandatory { ", mandatory" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ("steps 办理流程", c.steps.join(" → ")),
            (
                "fees 收费",
                c.fees
                    .iter()
                    .map(|f| format!("{} {} ({})", f.name, f.standard, f.basis))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            (
                "phones 咨询/投诉",
                format!("{} / {}", c.consult_phone, c.complaint_phone),
            ),
            ("disclosure 公开方式", c.disclosure.as_str().to_string()),
            ("version", item.version.to_string()),
            (
                "status",
                match view.status.gb_status() {
                    Some(gb) => format!("{} (GB/T 39046: {gb})", view.status),
                    None => format!("{} (not yet in force)", view.status),
                },
            ),
        ];
        for (k, v) in rows {
            t.add_row(vec![k.to_string(), v]);
        }
        say!("{t}");
        let mut h = table(&["when", "action", "version", "by", "reason", "node"]);
        for r in item.ordered_history() {
            h.add_row(vec![
                r.at.to_string(),
                r.action.as_str().into(),
                r.version.to_string(),
                r.by.clone(),
                r.reason.clone(),
                r.node.to_string(),
            ]);
        }
        say!("{h}");
        for c in &view.conflicts {
            say!("conflict: {c}");
        }
        Ok(())
    }

    pub fn item_status(&self, code: &str, view: &ItemView) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "code": code, "view": view }));
        }
        say!("{code}: now {}", view.status);
        Ok(())
    }

    pub fn case_row(&self, row: &CaseRow) -> Result<()> {
        if self.json {
            return self.print_json(row);
        }
        say!(
            "{}: {} ({}), committed due {}, statutory due {}{}",
            row.header.number,
            row.view.state,
            row.view.state.label(),
            due(row.clock.committed_due),
            due(row.clock.statutory_due),
            match flags(row) {
                f if f.is_empty() => String::new(),
                f => format!(" [{f}]"),
            }
        );
        Ok(())
    }

    pub fn case(&self, case: &Case, row: &CaseRow, orders: &[OrderRow]) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "case": case, "row": row, "orders": orders }));
        }
        let h = &row.header;
        let c = &row.clock;
        let mut t = table(&["field", "value"]);
        let rows: Vec<(&str, String)> = vec![
            ("id", row.id.to_string()),
            ("number", h.number.clone()),
            (
                "item",
                format!("{} {} (v{})", h.item.impl_code, h.item.name, h.item.version),
            ),
            ("category", h.item.category.to_string()),
            ("department", h.item.agency.clone()),
            (
                "applicant",
                format!(
                    "{} ({} {})",
                    h.applicant.name, h.applicant.id_type, h.applicant.id_number
                ),
            ),
            ("channel", h.channel.clone()),
            ("hall", format!("{} ({})", h.hall, h.region)),
            (
                "state",
                format!("{} {}", row.view.state, row.view.state.label()),
            ),
            ("received", opt(row.view.received_at)),
            (
                "accepted",
                match c.accepted {
                    Some((t, basis)) => format!("{t} ({basis:?})"),
                    None => "-".into(),
                },
            ),
            (
                "limits",
                format!(
                    "committed {}, statutory {}",
                    h.item.committed_limit, h.item.statutory_limit
                ),
            ),
            ("committed due", due(c.committed_due)),
            ("statutory due", due(c.statutory_due)),
            ("time used", amount(c.used, c.unit)),
            ("paused", amount(c.paused, c.unit)),
            ("concluded", opt(row.view.concluded_at)),
            ("disclosure due", opt(c.disclosure_due)),
            ("published", opt(row.view.published_at)),
            ("flags", flags(row)),
        ];
        for (k, v) in rows {
            t.add_row(vec![k.to_string(), v]);
        }
        say!("{t}");
        let mut e = table(&["when", "event", "by", "node", "details"]);
        for ev in case.ordered_events() {
            let details = serde_json::to_value(&ev.kind)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .map(|m| {
                    m.into_iter()
                        .filter(|(k, _)| k != "kind")
                        .map(|(k, v)| {
                            format!(
                                "{k}: {}",
                                v.as_str().map_or_else(|| v.to_string(), str::to_string)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            e.add_row(vec![
                ev.at.to_string(),
                ev.kind.name().into(),
                ev.by.clone(),
                ev.node.to_string(),
                details,
            ]);
        }
        say!("{e}");
        for c in &row.view.conflicts {
            say!("conflict: event {} ({}): {}", c.event, c.kind, c.reason);
        }
        if !orders.is_empty() {
            say!("supervision orders about this case:");
            say!("{}", order_table(orders));
        }
        Ok(())
    }

    pub fn case_rows(&self, rows: &[CaseRow], limit: usize, now: Ts) -> Result<()> {
        let shown = &rows[..rows.len().min(limit)];
        if self.json {
            return self.print_json(&shown);
        }
        let mut t = table(&[
            "case",
            "item",
            "applicant",
            "state",
            "accepted",
            "committed due",
            "statutory due",
            "used",
            "flags",
        ]);
        for r in shown {
            t.add_row(vec![
                r.header.number.clone(),
                r.header.item.name.clone(),
                r.header.applicant.masked_name(),
                format!("{} {}", r.view.state.code(), r.view.state.label()),
                opt(r.clock.accepted.map(|a| a.0)),
                due(r.clock.committed_due),
                due(r.clock.statutory_due),
                amount(r.clock.used, r.clock.unit),
                flags(r),
            ]);
        }
        say!("{t}");
        say!(
            "{} case(s) as of {now}{}",
            rows.len(),
            if rows.len() > shown.len() {
                format!(", first {} shown (--limit)", shown.len())
            } else {
                String::new()
            }
        );
        Ok(())
    }

    pub fn order_row(&self, row: &OrderRow) -> Result<()> {
        if self.json {
            return self.print_json(row);
        }
        let h = &row.order.header;
        say!(
            "{}: {} {} order to {} about {}: {}, reply due {}{}",
            row.id.key(),
            h.card,
            h.rule,
            h.unit,
            h.case,
            row.view.state,
            due(Some(h.reply_due)),
            if row.view.reply_late { " [LATE]" } else { "" }
        );
        Ok(())
    }

    pub fn order(&self, row: &OrderRow) -> Result<()> {
        if self.json {
            return self.print_json(row);
        }
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
            ("reply late", row.view.reply_late.to_string()),
        ];
        for (k, v) in rows {
            t.add_row(vec![k.to_string(), v]);
        }
        say!("{t}");
        if row.order.events.is_empty() {
            return Ok(());
        }
        let mut e = table(&["when", "event", "by", "node", "text"]);
        let mut events: Vec<_> = row.order.events.iter().collect();
        events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        for ev in events {
            let text = match &ev.action {
                OrderAction::Reply { text } => text.clone(),
                OrderAction::Close { resolution, text } => format!("{resolution}: {text}"),
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
        Ok(())
    }

    pub fn order_rows(&self, rows: &[OrderRow], now: Ts) -> Result<()> {
        if self.json {
            return self.print_json(&rows);
        }
        say!("{}", order_table(rows));
        say!("{} order(s) as of {now}", rows.len());
        Ok(())
    }

    pub fn calendar_import(&self, r: &CalendarImport) -> Result<()> {
        if self.json {
            return self.print_json(r);
        }
        for (year, n) in &r.years {
            say!("{year}: {n} dated entries stored");
        }
        say!("{} open case(s) re-indexed", r.cases_reindexed);
        Ok(())
    }

    pub fn calendar(&self, years: &[(DocId, CalendarYear)], only: Option<i32>) -> Result<()> {
        let years: Vec<_> = years
            .iter()
            .filter(|(_, y)| only.is_none_or(|o| y.year == o))
            .collect();
        if self.json {
            let v: Vec<_> = years
                .iter()
                .map(|(id, y)| json!({ "id": id, "region": y.region, "year": y.year, "office_hours": OfficeHours(&y.office_hours).to_string(), "days": y.days }))
                .collect();
            return self.print_json(&v);
        }
        if years.is_empty() {
            say!("no calendar imported: working days count weekends only (import one with `hallsync calendar import`)");
        }
        for (id, y) in years {
            say!("{id}: office hours {}", OfficeHours(&y.office_hours));
            let mut t = table(&["date", "weekday", "kind", "name"]);
            for d in &y.days {
                t.add_row(vec![
                    d.date.to_string(),
                    d.date.format("%a").to_string(),
                    d.kind.as_str().into(),
                    d.name.clone(),
                ]);
            }
            say!("{t}");
        }
        Ok(())
    }

    pub fn imported(&self, id: &DocId) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "imported": id }));
        }
        say!("imported {id}");
        Ok(())
    }

    /// A one-off confirmation: text for people, JSON for scripts.
    pub fn message(&self, text: &str, json: &serde_json::Value) -> Result<()> {
        if self.json {
            return self.print_json(json);
        }
        say!("{text}");
        Ok(())
    }

    pub fn nodes(&self, topo: &Topology) -> Result<()> {
        if self.json {
            return self.print_json(topo);
        }
        let mut t = table(&[
            "id", "level", "region", "name", "parent", "address", "expires", "state",
        ]);
        for n in &topo.nodes {
            t.add_row(vec![
                n.id.to_string(),
                n.level.to_string(),
                n.region.to_string(),
                n.name.clone(),
                n.parent.as_ref().map_or("—".into(), |p| p.to_string()),
                n.addr.clone().unwrap_or_else(|| "(dials out only)".into()),
                n.expires.clone(),
                n.revoked
                    .as_ref()
                    .map_or("active".into(), |r| format!("revoked {r}")),
            ]);
        }
        say!("{t}");
        say!(
            "{} nodes in federation {}",
            topo.nodes.len(),
            topo.federation
        );
        Ok(())
    }

    pub fn node_entry(&self, n: &NodeEntry, children: &[&NodeId]) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "node": n, "children": children }));
        }
        let mut t = table(&["field", "value"]);
        let children = children
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        for (k, v) in [
            ("id", n.id.to_string()),
            ("name", n.name.clone()),
            ("level", n.level.to_string()),
            ("region", n.region.to_string()),
            (
                "parent",
                n.parent.as_ref().map_or("—".into(), |p| p.to_string()),
            ),
            (
                "children",
                if children.is_empty() {
                    "—".into()
                } else {
                    children
                },
            ),
            (
                "address",
                n.addr.clone().unwrap_or_else(|| "(dials out only)".into()),
            ),
            ("certificate", n.serial.clone()),
            ("issued", n.issued.clone()),
            ("expires", n.expires.clone()),
            ("revoked", n.revoked.clone().unwrap_or_else(|| "no".into())),
        ] {
            t.add_row(vec![k.to_string(), v]);
        }
        say!("{t}");
        Ok(())
    }

    pub fn status(&self, st: &NodeStatus, running: bool) -> Result<()> {
        if self.json {
            return self.print_json(&json!({ "running": running, "status": st }));
        }
        let at = |t: Option<i64>| t.map_or("never".to_string(), |t| Ts(t).to_string());
        if running {
            say!(
                "node {} running (pid {}) since {}{}; feed at {}",
                st.node,
                st.pid,
                Ts(st.started),
                st.listen
                    .as_ref()
                    .map(|l| format!(", listening on {l}"))
                    .unwrap_or_default(),
                st.feed_head
            );
        } else {
            say!(
                "node {} is NOT running (last seen {}); the links below are as it left them",
                st.node,
                Ts(st.updated)
            );
        }
        let mut t = table(&[
            "peer",
            "role",
            "region",
            "link",
            "last sync",
            "backlog out",
            "backlog in",
            "docs sent",
            "docs recv",
            "wire tx/rx",
            "last error",
        ]);
        for p in &st.peers {
            t.add_row(vec![
                p.id.clone(),
                format!("{:?}", p.role).to_lowercase(),
                p.region.clone().unwrap_or_default(),
                if p.connected && running {
                    format!("up since {}", at(p.since))
                } else {
                    "down".into()
                },
                at(p.last_sync),
                p.backlog_out.to_string(),
                p.backlog_in.to_string(),
                p.sent_docs.to_string(),
                p.received_docs.to_string(),
                format!("{} / {} KB", p.wire_tx / 1024, p.wire_rx / 1024),
                p.last_error.clone().unwrap_or_default(),
            ]);
        }
        say!("{t}");
        if st.peers.is_empty() {
            say!("no peers yet: no parent configured and no child has connected");
        }
        if !st.set_aside.is_empty() {
            say!("records set aside in replication (the links carry on without them):");
            let mut t = table(&["record", "way", "peer", "since", "why"]);
            for a in &st.set_aside {
                t.add_row(vec![
                    a.id.clone(),
                    if a.direction == "refused" {
                        format!("refused from {}", a.peer)
                    } else {
                        format!("refused by {}", a.peer)
                    },
                    a.peer.clone(),
                    Ts(a.at).to_string(),
                    a.reason.clone(),
                ]);
            }
            say!("{t}");
            say!("a record refused by a peer is sent again once it is corrected here (or the case withdrawn); one refused from a peer is replaced when the peer sends a corrected version");
        }
        if let Some(n) = st.revocation_list {
            say!("revocation list in force: number {n}");
        }
        if !st.registry.is_empty() {
            let mut r = table(&[
                "node",
                "name",
                "level",
                "region",
                "parent",
                "address",
                "revocation list",
            ]);
            for k in &st.registry {
                r.add_row(vec![
                    k.id.clone(),
                    k.name.clone(),
                    k.level.clone(),
                    k.region.clone(),
                    k.parent.clone().unwrap_or_else(|| "—".into()),
                    k.addr.clone().unwrap_or_else(|| "(dials out only)".into()),
                    k.revocation_list.map_or("—".into(), |n| n.to_string()),
                ]);
            }
            say!("registry (nodes this one knows):\n{r}");
        }
        Ok(())
    }
}
