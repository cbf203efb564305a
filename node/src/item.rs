//! `hallsync item`: the power catalogue and its legal review.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use hallsync_api::ops::items::{
    AddItem, ImportItems, ImportOut, ItemChangeOut, ItemOut, ItemStatusOut, ItemSummary, ListItems,
    ReviewItem, ShowItem,
};
use hallsync_api::{Bytes, Page};
use hallsync_hall::import::MAX_TABLE_BYTES;
use hallsync_hall::ItemChange;
use hallsync_model::catalogue::ItemStatus;
use hallsync_model::ReviewAction;

use crate::cli::Ctx;
use crate::output::{say, table};

#[derive(Debug, Subcommand)]
pub enum ItemCmd {
    /// Add an item (or revise one) as a draft for legal review.
    Add(Box<ItemFields>),
    /// Import a catalogue spreadsheet (.csv or .xlsx) as published by a legal office.
    Import {
        /// The spreadsheet.
        file: PathBuf,
        /// Who is importing.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
        /// Record the items as approved and published by this person (the
        /// sheet is an already published list); otherwise they are drafts.
        #[arg(long)]
        publish_by: Option<String>,
    },
    /// List the items.
    List {
        /// Only items in this status (draft, approved, returned, published, suspended, revoked).
        #[arg(long)]
        status: Option<String>,
        /// Only items whose name or code contains this.
        #[arg(long)]
        find: Option<String>,
        /// Show at most this many.
        #[arg(long, default_value_t = 1_000)]
        limit: usize,
    },
    /// Show one item.
    Show {
        /// Implementation code.
        code: String,
    },
    /// Record a legal review decision.
    Review {
        /// Implementation code.
        code: String,
        /// The decision.
        #[arg(long, value_enum)]
        decision: Decision,
        /// The reviewer.
        #[arg(long, env = "HALLSYNC_OPERATOR")]
        by: String,
        /// Why (required to return).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Publish an approved item, or resume a suspended one.
    Publish(ReviewArgs),
    /// Suspend a published item.
    Suspend(ReviewArgs),
    /// Revoke an item for good.
    Revoke(ReviewArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Decision {
    /// Approve the draft.
    Approve,
    /// Return it to the agency.
    Return,
}

#[derive(Debug, ClapArgs)]
pub struct ReviewArgs {
    /// Implementation code.
    code: String,
    /// Who is acting.
    #[arg(long, env = "HALLSYNC_OPERATOR")]
    by: String,
    /// Why (required to suspend or revoke).
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, ClapArgs)]
pub struct ItemFields {
    /// 实施编码 (≤ 24 letters or digits).
    #[arg(long)]
    code: String,
    /// 基本编码 (≤ 10 letters or digits).
    #[arg(long)]
    basic_code: String,
    /// 事项名称.
    #[arg(long)]
    name: String,
    /// 权力类别: a name such as 行政许可 or a GB/T 39046 code such as 01.
    #[arg(long)]
    category: String,
    /// 实施主体.
    #[arg(long)]
    agency: String,
    /// 法定时限, e.g. 20wd or 20个工作日.
    #[arg(long)]
    statutory: String,
    /// 承诺时限, e.g. 10wd.
    #[arg(long)]
    committed: String,
    /// 实施主体编码 (18-character credit code).
    #[arg(long, default_value = "")]
    agency_code: String,
    /// 承办机构.
    #[arg(long, default_value = "")]
    office: String,
    /// 设定依据.
    #[arg(long, default_value = "")]
    legal_basis: String,
    /// 办件类型: 即办件, 承诺件, 上报件, 并联件.
    #[arg(long, default_value = "承诺件")]
    case_type: String,
    /// 行使层级 1-7 (5 township, 4 county).
    #[arg(long, default_value = "5")]
    exercise_level: String,
    /// 申请材料: 'name|原件|必需; …'.
    #[arg(long, default_value = "")]
    materials: String,
    /// 办理流程: '受理→审核→决定→办结'.
    #[arg(long, default_value = "")]
    steps: String,
    /// 收费: 'name|standard|basis; …' or 不收费.
    #[arg(long, default_value = "")]
    fees: String,
    /// 公开方式: 主动公开, 依申请公开, 不予公开.
    #[arg(long, default_value = "主动公开")]
    disclosure: String,
    /// 咨询电话.
    #[arg(long, default_value = "")]
    consult_phone: String,
    /// 监督投诉电话.
    #[arg(long, default_value = "")]
    complaint_phone: String,
    /// Who drafts it.
    #[arg(long, env = "HALLSYNC_OPERATOR")]
    by: String,
}

impl ItemFields {
    fn into_op(self) -> AddItem {
        let f = self;
        let fields = [
            ("impl_code", f.code),
            ("basic_code", f.basic_code),
            ("name", f.name),
            ("category", f.category),
            ("agency", f.agency),
            ("statutory_limit", f.statutory),
            ("committed_limit", f.committed),
            ("agency_code", f.agency_code),
            ("office", f.office),
            ("legal_basis", f.legal_basis),
            ("case_type", f.case_type),
            ("exercise_level", f.exercise_level),
            ("materials", f.materials),
            ("steps", f.steps),
            ("fees", f.fees),
            ("disclosure", f.disclosure),
            ("consult_phone", f.consult_phone),
            ("complaint_phone", f.complaint_phone),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        AddItem { fields, by: f.by }
    }
}

fn status(s: &str) -> Result<ItemStatus> {
    [
        ItemStatus::Draft,
        ItemStatus::Approved,
        ItemStatus::Returned,
        ItemStatus::Published,
        ItemStatus::Suspended,
        ItemStatus::Revoked,
    ]
    .into_iter()
    .find(|x| x.as_str() == s)
    .with_context(|| {
        format!(
            "{s:?} is not a status: use draft, approved, returned, published, suspended or revoked"
        )
    })
}

pub fn run(cmd: ItemCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    let out = ctx.out;
    match cmd {
        ItemCmd::Add(f) => out.show(&target.call(f.into_op(), ctx.now)?, print_change),
        ItemCmd::Import {
            file,
            by,
            publish_by,
        } => {
            let meta = std::fs::metadata(&file).with_context(|| file.display().to_string())?;
            if meta.len() > MAX_TABLE_BYTES {
                bail!(
                    "{}: larger than {} MiB",
                    file.display(),
                    MAX_TABLE_BYTES >> 20
                );
            }
            let content = std::fs::read(&file).with_context(|| file.display().to_string())?;
            let op = ImportItems {
                file_name: file.display().to_string(),
                content: Bytes(content),
                by,
                publish_by,
            };
            let done = target.call(op, ctx.now)?;
            out.show(&done, print_import)?;
            let r = &done.report;
            if r.created + r.revised + r.unchanged == 0 && !r.problems.is_empty() {
                bail!("no row of {} could be imported", file.display());
            }
            if !r.problems.is_empty() {
                bail!("{} row(s) were not imported; fix them and import the file again (good rows are already stored)", r.problems.len());
            }
            Ok(())
        }
        ItemCmd::List {
            status: s,
            find,
            limit,
        } => {
            let op = ListItems {
                status: s.as_deref().map(status).transpose()?,
                q: find,
                offset: 0,
                limit,
            };
            out.show(&target.call(op, ctx.now)?, print_items)
        }
        ItemCmd::Show { code } => out.show(&target.call(ShowItem { code }, ctx.now)?, print_item),
        ItemCmd::Review {
            code,
            decision,
            by,
            reason,
        } => {
            let action = match decision {
                Decision::Approve => ReviewAction::Approved,
                Decision::Return => ReviewAction::Returned,
            };
            review(ctx, &target, code, action, by, reason)
        }
        ItemCmd::Publish(a) => review(
            ctx,
            &target,
            a.code,
            ReviewAction::Published,
            a.by,
            a.reason,
        ),
        ItemCmd::Suspend(a) => review(
            ctx,
            &target,
            a.code,
            ReviewAction::Suspended,
            a.by,
            a.reason,
        ),
        ItemCmd::Revoke(a) => review(ctx, &target, a.code, ReviewAction::Revoked, a.by, a.reason),
    }
}

fn review(
    ctx: &Ctx,
    target: &crate::target::Target,
    code: String,
    action: ReviewAction,
    by: String,
    reason: String,
) -> Result<()> {
    let op = ReviewItem {
        code,
        action,
        reason,
        by,
    };
    ctx.out
        .show(&target.call(op, ctx.now)?, |s: &ItemStatusOut| {
            say!("{}: now {}", s.code, s.view.status);
        })
}

fn print_change(c: &ItemChangeOut) {
    let what = match c.change {
        ItemChange::Created => "created as a draft; it needs legal review (`hallsync item review`)",
        ItemChange::Revised => "revised: a new version, back to draft for legal review",
        ItemChange::Unchanged => "unchanged",
    };
    say!("{}: {what}", c.id);
}

fn print_import(done: &ImportOut) {
    let r = &done.report;
    say!(
        "{}: {} created, {} revised, {} unchanged, {} published, {} refused",
        done.file_name,
        r.created,
        r.revised,
        r.unchanged,
        r.published,
        r.problems.len()
    );
    for p in &r.problems {
        eprintln!("  line {}: {}", p.line, p.reason);
    }
}

fn print_items(page: &Page<ItemSummary>) {
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
    for i in &page.items {
        let c = &i.content;
        t.add_row(vec![
            c.impl_code.clone(),
            c.name.clone(),
            c.category.name().to_string(),
            c.agency.clone(),
            c.statutory_limit.to_string(),
            c.committed_limit.to_string(),
            i.version.to_string(),
            i.status.to_string(),
        ]);
    }
    say!("{t}");
    if page.total > page.items.len() {
        say!(
            "{} item(s), first {} shown (--limit)",
            page.total,
            page.items.len()
        );
    } else {
        say!("{} item(s)", page.total);
    }
}

fn print_item(item: &ItemOut) {
    let c = &item.content;
    let mut t = table(&["field", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("id", item.id.to_string()),
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
            match item.view.status.gb_status() {
                Some(gb) => format!("{} (GB/T 39046: {gb})", item.view.status),
                None => format!("{} (not yet in force)", item.view.status),
            },
        ),
    ];
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    say!("{t}");
    let mut h = table(&["when", "action", "version", "by", "reason", "node"]);
    for r in &item.history {
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
    for c in &item.view.conflicts {
        say!("conflict: {c}");
    }
}
