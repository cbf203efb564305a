//! `hallsync calendar`: holidays and make-up working days.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hallsync_api::ops::calendar::{ImportCalendar, ShowCalendar, MAX_CALENDAR_BYTES};
use hallsync_hall::CalendarImport;

use crate::cli::Ctx;
use crate::output::{say, table};

#[derive(Debug, Subcommand)]
pub enum CalendarCmd {
    /// Import holidays and make-up working days ('date,kind,name' lines).
    Import {
        /// The calendar file.
        file: PathBuf,
        /// Office hours for working-hour limits, e.g. 09:00-12:00,13:30-17:30.
        #[arg(long)]
        office_hours: Option<String>,
    },
    /// Show the calendar in force.
    Show {
        /// Only this year.
        #[arg(long)]
        year: Option<i32>,
    },
}

pub fn run(cmd: CalendarCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    match cmd {
        CalendarCmd::Import { file, office_hours } => {
            let meta = std::fs::metadata(&file).with_context(|| file.display().to_string())?;
            if meta.len() > MAX_CALENDAR_BYTES as u64 {
                bail!(
                    "{}: a calendar file is at most {} MiB",
                    file.display(),
                    MAX_CALENDAR_BYTES >> 20
                );
            }
            if file.is_dir() {
                bail!("{} is a directory; give the calendar file", file.display());
            }
            let text = std::fs::read_to_string(&file).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => {
                    anyhow::anyhow!("{} is not UTF-8 text", file.display())
                }
                _ => anyhow::Error::new(e).context(file.display().to_string()),
            })?;
            let op = ImportCalendar { text, office_hours };
            ctx.out
                .show(&target.call(op, ctx.now)?, |r: &CalendarImport| {
                    for (year, n) in &r.years {
                        say!("{year}: {n} dated entries stored");
                    }
                    say!("{} open case(s) re-indexed", r.cases_reindexed);
                })
        }
        CalendarCmd::Show { year } => {
            let years = target.call(ShowCalendar { year }, ctx.now)?;
            ctx.out.show(&years, |years| {
                if years.is_empty() {
                    say!("no calendar imported: working days count weekends only (import one with `hallsync calendar import`)");
                }
                for y in years {
                    say!("{}: office hours {}", y.id, y.office_hours);
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
            })
        }
    }
}
