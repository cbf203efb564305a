//! `hallsync report weekly|monthly`: the weekly progress report (工作进度
//! 报告, seed 000 annex 3) and the monthly statistics of this node's unit,
//! as an .xlsx workbook (a sheet per level, a chart) or CSV, from the same
//! statistics `hallsync stats` prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use chrono::Datelike;
use clap::Subcommand;
use hallsync_api::ops::items::ListItems;
use hallsync_api::ops::node::Status;
use hallsync_api::ops::stats::{month_days, GetStats, StatsRow, StatsTable};
use hallsync_api::MAX_PAGE;
use hallsync_model::time::parse_date;
use hallsync_model::{RegionCode, Ts};
use rust_xlsxwriter::{Chart, ChartType, Format, Workbook, Worksheet};

use crate::cli::{clock, Ctx};
use crate::output::say;
use crate::parse;
use crate::target::Target;

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// The weekly progress report (工作进度报告): each unit below this one
    /// for one week, Monday to Sunday.
    Weekly {
        /// Any day of the week (default: the last whole week).
        #[arg(long, value_parser = parse::date, value_name = "YYYY-MM-DD")]
        week: Option<String>,
        /// The unit (default: this node's).
        #[arg(long, value_parser = parse::region, value_name = "REGION")]
        unit: Option<RegionCode>,
        /// Where to write it: FILE.xlsx or FILE.csv.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// The monthly statistics: the unit and every level below it, and its
    /// items.
    Monthly {
        /// The month, YYYY-MM (default: last month).
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<String>,
        /// The unit (default: this node's).
        #[arg(long, value_parser = parse::region, value_name = "REGION")]
        unit: Option<RegionCode>,
        /// Where to write it: FILE.xlsx or FILE.csv.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
}

/// One sheet: a title, and its table.
struct Sheet {
    name: String,
    title: String,
    key: &'static str,
    table: StatsTable,
}

/// The columns of every table: heading, and the cell of a row.
type Column = (&'static str, fn(&StatsRow) -> Cell);

enum Cell {
    Int(i64),
    Rate(Option<f64>),
    Num(Option<f64>),
}

const COLUMNS: &[Column] = &[
    ("收件", |r| Cell::Int(r.received)),
    ("受理", |r| Cell::Int(r.accepted)),
    ("不予受理/撤回", |r| Cell::Int(r.closed)),
    ("办结", |r| Cell::Int(r.concluded)),
    ("其中不予许可", |r| Cell::Int(r.refused)),
    ("办结率", |r| Cell::Rate(r.rates.conclusion)),
    ("承诺件办结", |r| Cell::Int(r.committed_cases)),
    ("按时办结", |r| Cell::Int(r.on_time)),
    ("按时办结率", |r| Cell::Rate(r.rates.on_time)),
    ("提前办结", |r| Cell::Int(r.early)),
    ("提速率(承诺)", |r| {
        Cell::Rate(r.rates.speed_up_committed)
    }),
    ("提速率(法定)", |r| {
        Cell::Rate(r.rates.speed_up_statutory)
    }),
    ("平均办结天数", |r| Cell::Num(r.rates.average_days)),
    ("在办", |r| Cell::Int(r.open)),
    ("超期", |r| Cell::Int(r.overdue)),
    ("预警", |r| Cell::Int(r.cards_total.notice)),
    ("黄牌", |r| Cell::Int(r.cards_total.yellow)),
    ("红牌", |r| Cell::Int(r.cards_total.red)),
    ("申诉", |r| Cell::Int(r.appeals)),
    ("撤销亮牌", |r| {
        Cell::Int(r.revoked.notice + r.revoked.yellow + r.revoked.red)
    }),
    ("督办", |r| Cell::Int(r.orders)),
    ("逾期反馈", |r| Cell::Int(r.orders_late)),
    ("督办办结", |r| Cell::Int(r.orders_closed)),
    ("收费(元)", |r| {
        Cell::Num(Some(r.fees_fen as f64 / 100.0))
    }),
    ("满意率", |r| Cell::Rate(r.rates.satisfaction)),
];

pub fn run(cmd: ReportCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    let today = ctx.now.unwrap_or_else(clock).date();
    let (kind, unit, from, to, output, force) = match cmd {
        ReportCmd::Weekly {
            week,
            unit,
            output,
            force,
        } => {
            let day = match week {
                Some(d) => parse_date(&d).map_err(|e| anyhow!("--week: {e}"))?,
                None => today - chrono::Days::new(7),
            };
            let monday = day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday()));
            (
                "weekly",
                unit,
                monday,
                monday + chrono::Days::new(6),
                output,
                force,
            )
        }
        ReportCmd::Monthly {
            month,
            unit,
            output,
            force,
        } => {
            let month = month.unwrap_or_else(|| {
                let last = today.with_day(1).unwrap_or(today) - chrono::Days::new(1);
                format!("{}-{:02}", last.year(), last.month())
            });
            let (first, last) = month_days(&month).map_err(|e| anyhow!("--{}", e.message))?;
            ("monthly", unit, first, last, output, force)
        }
    };
    if from > today {
        bail!("the {kind} report's period ({from} to {to}) has not begun (today is {today}): nothing is counted for it yet");
    }
    if to > today {
        say!("note: the period ends after today ({today}); days after today count nothing yet");
    }
    let format = FileKind::of(&output)?;
    if !force && output.exists() {
        bail!(
            "{} already exists: choose another file, or pass --force to replace it",
            output.display()
        );
    }
    let sheets = gather(&target, ctx.now, kind, unit, from, to)?;
    let names = unit_names(&target, ctx.now);
    match format {
        FileKind::Xlsx => write_xlsx(&output, kind, &sheets, &names)?,
        FileKind::Csv => write_csv(&output, &sheets, &names)?,
    }
    say!(
        "wrote {} ({} sheet(s), {} to {})",
        output.display(),
        sheets.len(),
        from,
        to
    );
    Ok(())
}

/// The file formats a report is written in.
enum FileKind {
    Xlsx,
    Csv,
}

impl FileKind {
    fn of(path: &Path) -> Result<FileKind> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("xlsx") => Ok(FileKind::Xlsx),
            Some("csv") => Ok(FileKind::Csv),
            _ => bail!(
                "{}: name the report FILE.xlsx (a workbook) or FILE.csv",
                path.display()
            ),
        }
    }
}

fn stats(
    target: &Target,
    now: Option<Ts>,
    unit: Option<&RegionCode>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    by: &str,
) -> Result<StatsTable> {
    let op = GetStats {
        unit: unit.cloned(),
        from: Some(from.to_string()),
        to: Some(to.to_string()),
        by: Some(by.into()),
    };
    target.call(op, now)
}

/// The sheets of a report: the unit by the units one level down; for a
/// monthly report also each level further down and the unit's items.
fn gather(
    target: &Target,
    now: Option<Ts>,
    kind: &str,
    unit: Option<RegionCode>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<Sheet>> {
    let top = stats(target, now, unit.as_ref(), from, to, "unit")?;
    let unit = top.unit.clone();
    let period = format!("{from} 至 {to}");
    let mut sheets = vec![Sheet {
        name: "本级".into(),
        title: format!(
            "{} {unit}（{period}）",
            if kind == "weekly" {
                "行政权力公开透明运行工作进度报告"
            } else {
                "月度统计"
            }
        ),
        key: "单位",
        table: top,
    }];
    if kind == "monthly" {
        // Each level below, its units' rows side by side.
        let mut level: Vec<String> = sheets[0]
            .table
            .rows
            .iter()
            .map(|r| r.key.clone())
            .filter(|k| *k != unit.as_str())
            .collect();
        let mut depth = 1;
        while !level.is_empty() && depth < 4 {
            let mut rows = Vec::new();
            let mut next = Vec::new();
            for child in &level {
                let region = RegionCode::parse(child).context("a unit in the statistics")?;
                let t = stats(target, now, Some(&region), from, to, "unit")?;
                let mut own = t.total.clone();
                own.key = child.clone();
                rows.push(own);
                next.extend(t.rows.iter().map(|r| r.key.clone()).filter(|k| k != child));
            }
            let mut table = sheets[0].table.clone();
            table.rows = rows;
            sheets.push(Sheet {
                name: format!("下{depth}级"),
                title: format!("{unit} 下{depth}级单位（{period}）"),
                key: "单位",
                table,
            });
            level = next;
            depth += 1;
        }
        sheets.push(Sheet {
            name: "按事项".into(),
            title: format!("{unit} 按事项（{period}）"),
            key: "事项编码",
            table: stats(target, now, Some(&unit), from, to, "item")?,
        });
    }
    Ok(sheets)
}

/// Region code → hall name, from the registry, and an item's
/// implementation code → its name, from the items held (empty where
/// unreadable: a report is still worth having with codes alone).
fn unit_names(target: &Target, now: Option<Ts>) -> BTreeMap<String, String> {
    let mut names: BTreeMap<String, String> = target
        .call(Status {}, now)
        .map(|s| s.registry.into_iter().map(|n| (n.region, n.name)).collect())
        .unwrap_or_default();
    let mut offset = 0;
    loop {
        let op = ListItems {
            status: None,
            q: None,
            offset,
            limit: MAX_PAGE,
        };
        let Ok(page) = target.call(op, now) else {
            break;
        };
        for i in &page.items {
            names.insert(i.content.impl_code.clone(), i.content.name.clone());
        }
        offset += page.items.len();
        if page.items.is_empty() || offset >= page.total {
            break;
        }
    }
    names
}

fn write_xlsx(
    path: &Path,
    kind: &str,
    sheets: &[Sheet],
    names: &BTreeMap<String, String>,
) -> Result<()> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let pct = Format::new().set_num_format("0.0%");
    let num = Format::new().set_num_format("0.00");
    for (i, s) in sheets.iter().enumerate() {
        let ws = book.add_worksheet();
        ws.set_name(&s.name)?;
        fill_sheet(ws, s, names, &bold, &pct, &num)?;
        if i == 0 && !s.table.rows.is_empty() {
            let n = s.table.rows.len() as u32;
            let mut chart = Chart::new(ChartType::Column);
            for (col, name) in [(2u16, "收件"), (5, "办结")] {
                chart
                    .add_series()
                    .set_name(name)
                    .set_categories((s.name.as_str(), 3, 1, 2 + n, 1))
                    .set_values((s.name.as_str(), 3, col, 2 + n, col));
            }
            chart.title().set_name(if kind == "weekly" {
                "本周收件与办结"
            } else {
                "本月收件与办结"
            });
            ws.insert_chart(5 + n, 1, &chart)?;
        }
    }
    write_whole(path, &book.save_to_buffer()?)
}

/// Writes `bytes` to `path` whole: into a file beside it, then renamed
/// over it, so a report cut short never leaves half a file under the name
/// asked for.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
    let mut part = name.to_os_string();
    part.push(".part");
    let part = path.with_file_name(part);
    std::fs::write(&part, bytes)
        .and_then(|()| std::fs::rename(&part, path))
        .inspect_err(|_| {
            // Nothing to keep of a file that could not be finished.
            let _ = std::fs::remove_file(&part);
        })
        .with_context(|| format!("could not write {}", path.display()))
}

fn fill_sheet(
    ws: &mut Worksheet,
    s: &Sheet,
    names: &BTreeMap<String, String>,
    bold: &Format,
    pct: &Format,
    num: &Format,
) -> Result<()> {
    ws.write_string_with_format(0, 0, &s.title, bold)?;
    ws.write_string(1, 0, format!("截至 {}", s.table.now))?;
    ws.write_string_with_format(2, 0, s.key, bold)?;
    ws.write_string_with_format(2, 1, "名称", bold)?;
    for (c, (head, _)) in COLUMNS.iter().enumerate() {
        ws.write_string_with_format(2, c as u16 + 2, *head, bold)?;
    }
    let rows = s.table.rows.iter().chain(std::iter::once(&s.table.total));
    for (i, r) in rows.enumerate() {
        let row = 3 + i as u32;
        let total = i == s.table.rows.len();
        ws.write_string(row, 0, if total { "合计" } else { r.key.as_str() })?;
        ws.write_string(row, 1, names.get(&r.key).map_or("", String::as_str))?;
        for (c, (_, cell)) in COLUMNS.iter().enumerate() {
            let col = c as u16 + 2;
            match cell(r) {
                Cell::Int(v) => ws.write_number(row, col, v as f64).map(drop)?,
                Cell::Rate(Some(v)) => ws.write_number_with_format(row, col, v, pct).map(drop)?,
                Cell::Num(Some(v)) => ws.write_number_with_format(row, col, v, num).map(drop)?,
                Cell::Rate(None) | Cell::Num(None) => ws.write_string(row, col, "—").map(drop)?,
            }
        }
    }
    ws.set_column_width(0, 24)?;
    ws.set_column_width(1, 20)?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be a formula to a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn write_csv(path: &Path, sheets: &[Sheet], names: &BTreeMap<String, String>) -> Result<()> {
    let mut out = String::from("\u{feff}");
    let mut head = vec!["表".to_string(), "键".into(), "名称".into()];
    head.extend(COLUMNS.iter().map(|(h, _)| h.to_string()));
    out.push_str(&head.join(","));
    out.push('\n');
    for s in sheets {
        let rows = s.table.rows.iter().chain(std::iter::once(&s.table.total));
        for (i, r) in rows.enumerate() {
            let total = i == s.table.rows.len();
            let mut line = vec![
                csv_field(&s.name),
                csv_field(if total { "合计" } else { &r.key }),
                csv_field(names.get(&r.key).map_or("", String::as_str)),
            ];
            line.extend(COLUMNS.iter().map(|(_, cell)| match cell(r) {
                Cell::Int(v) => v.to_string(),
                Cell::Rate(Some(v)) | Cell::Num(Some(v)) => format!("{v:.4}"),
                Cell::Rate(None) | Cell::Num(None) => String::new(),
            }));
            out.push_str(&line.join(","));
            out.push('\n');
        }
    }
    write_whole(path, out.as_bytes())
}
