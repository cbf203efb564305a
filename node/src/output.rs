//! What every command's output shares: tables for people, the typed answer
//! as JSON with `--json` (the same JSON the API gives), and the way times,
//! due times and amounts read.

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

use anyhow::Result;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use hallsync_model::clock::LimitUnit;
use hallsync_model::time::{DAY, HOUR};
use hallsync_model::Ts;
use serde::Serialize;

/// How a command prints.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    json: bool,
}

/// A table with these headings.
pub fn table(heads: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(heads.iter().copied());
    t
}

/// A time, or `-`.
/// The line under a page of a list: how many `what` there are as of `now`,
/// and which of them are shown when not all are.
pub fn page_line<T>(what: &str, page: &hallsync_api::Page<T>, now: Ts) -> String {
    let shown = if page.total > page.items.len() {
        format!(
            ", {} shown from {} (--limit, --offset)",
            page.items.len(),
            page.offset + 1
        )
    } else {
        String::new()
    };
    format!("{} {what} as of {now}{shown}", page.total)
}

pub fn opt(t: Option<Ts>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_string())
}

/// A due time; one falling at midnight is shown as 24:00 of the day before,
/// the way deadlines are written ("by 24:00 on the 20th working day").
pub fn due(t: Option<Ts>) -> String {
    match t {
        Some(t) if t.second_of_day() == 0 => format!("{} 24:00", Ts(t.0 - 1).date()),
        other => opt(other),
    }
}

/// Metered seconds in a limit's unit, e.g. `3.5wd`.
pub fn amount(secs: i64, unit: LimitUnit) -> String {
    let (per, suffix) = match unit {
        LimitUnit::NaturalDays => (DAY, "d"),
        LimitUnit::WorkingDays => (DAY, "wd"),
        LimitUnit::NaturalHours => (HOUR, "h"),
        LimitUnit::WorkingHours => (HOUR, "wh"),
    };
    format!("{:.1}{suffix}", secs as f64 / per as f64)
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

    /// Prints `v` as JSON when asked for JSON; otherwise runs `human`.
    pub fn show<T: Serialize>(&self, v: &T, human: impl FnOnce(&T)) -> Result<()> {
        if self.json {
            say!("{}", serde_json::to_string_pretty(v)?);
        } else {
            human(v);
        }
        Ok(())
    }
}

/// How far a clock was off its parent's: `clock 10 min behind`.
pub fn clock_off(ahead_secs: i64) -> String {
    format!(
        "clock {} min {}",
        ahead_secs.abs() / 60,
        if ahead_secs > 0 { "ahead" } else { "behind" }
    )
}
