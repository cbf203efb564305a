//! Reading the spreadsheets legal offices publish: CSV (UTF-8, or GB18030 as
//! Excel on a Chinese Windows PC writes it) and .xlsx (the first sheet).
//! The first non-empty row holds the column headings.

use std::path::Path;

use calamine::{open_workbook_auto, Data, Reader};
use hallsync_model::catalogue::{missing_columns, FieldError, ItemContent};

use crate::HallError;

/// Largest spreadsheet accepted.
pub const MAX_TABLE_BYTES: u64 = 64 << 20;
/// Most rows accepted (a city lists about 5,500 items).
pub const MAX_ROWS: usize = 100_000;

/// A spreadsheet: headings and rows, each with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column headings.
    pub heads: Vec<String>,
    /// Rows with their line numbers.
    pub rows: Vec<(usize, Vec<String>)>,
}

fn bad(path: &Path, why: impl std::fmt::Display) -> HallError {
    HallError::BadInput(format!("{}: {why}", path.display()))
}

/// Reads a `.csv` or `.xlsx` file.
pub fn read_table(path: &Path) -> Result<Table, HallError> {
    let meta = std::fs::metadata(path).map_err(|source| HallError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() > MAX_TABLE_BYTES {
        return Err(bad(
            path,
            format!("larger than {} MiB", MAX_TABLE_BYTES >> 20),
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let table = match ext.as_str() {
        "csv" | "txt" => {
            let bytes = std::fs::read(path).map_err(|source| HallError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            read_csv(&bytes).map_err(|e| bad(path, e))?
        }
        "xlsx" | "xlsm" | "xls" | "ods" => read_sheet(path)?,
        _ => return Err(bad(path, "use a .csv or .xlsx file")),
    };
    if table.rows.len() > MAX_ROWS {
        return Err(bad(path, format!("more than {MAX_ROWS} rows")));
    }
    Ok(table)
}

/// Parses CSV bytes.
pub fn read_csv(bytes: &[u8]) -> Result<Table, String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim_start_matches('\u{feff}').to_string(),
        Err(_) => {
            let (t, _, had_errors) = encoding_rs::GB18030.decode(bytes);
            if had_errors {
                return Err("the file is neither UTF-8 nor GB18030 text".into());
            }
            t.into_owned()
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut heads: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_string()).collect();
        if cells.iter().all(String::is_empty) || cells[0].starts_with('#') {
            continue;
        }
        if heads.is_none() {
            heads = Some(cells);
        } else {
            rows.push((line, cells));
        }
    }
    Ok(Table {
        heads: heads.ok_or("the file is empty")?,
        rows,
    })
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::DateTime(dt) => dt
            .as_datetime()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| dt.to_string()),
        other => other.to_string().trim().to_string(),
    }
}

fn read_sheet(path: &Path) -> Result<Table, HallError> {
    let mut book = open_workbook_auto(path)
        .map_err(|e| bad(path, format!("not a readable spreadsheet: {e}")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| bad(path, "the workbook has no sheet"))?
        .map_err(|e| bad(path, e))?;
    let first_row = range.start().map_or(0, |(r, _)| r as usize);
    let mut heads: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if heads.is_none() {
            heads = Some(cells);
        } else {
            rows.push((first_row + i + 1, cells));
        }
    }
    Ok(Table {
        heads: heads.ok_or_else(|| bad(path, "the first sheet is empty"))?,
        rows,
    })
}

/// A spreadsheet row read as an item: its line number and the item, or
/// what is wrong with it.
pub type ItemRow = (usize, Result<ItemContent, FieldError>);

/// Turns a table into item rows, refusing a table that lacks a required
/// column altogether.
pub fn items_from_table(table: &Table) -> Result<Vec<ItemRow>, HallError> {
    let missing = missing_columns(table.heads.iter().map(String::as_str));
    if !missing.is_empty() {
        return Err(HallError::BadInput(format!(
            "the sheet lacks the columns {} (headings such as 事项名称, 基本编码, 实施编码, 权力类别, 实施主体, 法定时限, 承诺时限)",
            missing.join(", ")
        )));
    }
    Ok(table
        .rows
        .iter()
        .map(|(line, cells)| {
            let pairs = table
                .heads
                .iter()
                .map(String::as_str)
                .zip(cells.iter().map(String::as_str));
            (*line, ItemContent::from_row(pairs))
        })
        .collect())
}
