//! Reading the spreadsheets legal offices publish: CSV (UTF-8, or GB18030 as
//! Excel on a Chinese Windows PC writes it) and .xlsx (the first sheet).
//! The first non-empty row holds the column headings.
//!
//! A spreadsheet is untrusted input, so every read is bounded before it
//! allocates: the file's size; for .xlsx, what its zip container unpacks to
//! ([`container`]); then the table as it streams in, cell by cell: rows,
//! columns, each cell's length, and cells and text in all. A file past a
//! bound is refused whole, naming the place and the limit, and nothing of it
//! is stored. The bounds are generous for real catalogues (a city lists about
//! 5,500 items, a few MB of text) and keep a hostile file's cost to a few
//! hundred MB at the very worst.

mod container;
mod csv;
mod xlsx;

use std::fmt;
use std::path::Path;

use hallsync_model::catalogue::{missing_columns, FieldError, ItemContent};

use crate::HallError;

pub use self::container::{MAX_LOADED_PART_BYTES, MAX_UNPACKED_BYTES, MAX_ZIP_ENTRIES};
pub use self::csv::read_csv;

/// Largest spreadsheet file accepted.
pub const MAX_TABLE_BYTES: u64 = 64 << 20;
/// Most rows of items accepted (a city lists about 5,500 items).
pub const MAX_ROWS: usize = 100_000;
/// Most columns accepted: a catalogue has 20 to 40, and 256 (column IV) was
/// Excel's own limit until 2007.
pub const MAX_COLUMNS: usize = 256;
/// Longest cell accepted, in characters: the longest string a record holds
/// (`crates/model/SCHEMA.md`).
pub const MAX_CELL_CHARS: usize = hallsync_model::schema::MAX_STR;
/// Most cells kept, empty ones between filled ones included: 100,000 rows of
/// 40 columns (a city's catalogue has about 200,000). Each costs 24 bytes
/// before its text.
pub const MAX_CELLS: usize = 4_000_000;
/// Most text kept, in bytes of UTF-8. A shared string referenced by every
/// cell could otherwise multiply a small workbook many thousand times.
pub const MAX_TEXT_BYTES: usize = 64 << 20;

/// A spreadsheet: headings and rows, each with its 1-based line number.
/// Rows end at their last non-empty cell; a missing cell reads as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column headings.
    pub heads: Vec<String>,
    /// Rows with their line numbers.
    pub rows: Vec<(usize, Vec<String>)>,
}

/// Where in a spreadsheet: a CSV line or a sheet row, and maybe a column.
#[derive(Debug, Clone, Copy)]
struct At {
    /// "line" (CSV) or "row" (sheet).
    unit: &'static str,
    line: usize,
    /// 0-based.
    col: Option<usize>,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.unit, self.line)?;
        if let Some(col) = self.col {
            write!(f, ", column {}", column_name(col))?;
        }
        Ok(())
    }
}

/// A spreadsheet column's letters: 0 is A, 25 Z, 26 AA.
fn column_name(col: usize) -> String {
    let mut n = col + 1;
    let mut letters = Vec::new();
    while n > 0 {
        n -= 1;
        letters.push(char::from(b'A' + (n % 26) as u8));
        n /= 26;
    }
    letters.iter().rev().collect()
}

/// Why a table is refused whole.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}: more than {MAX_ROWS} rows of items; split the file")]
    Rows(At),
    #[error(
        "{0}: a sheet may have at most {MAX_COLUMNS} columns (A to {last}); delete the columns past it",
        last = column_name(MAX_COLUMNS - 1)
    )]
    Columns(At),
    #[error("{0}: a cell longer than {MAX_CELL_CHARS} characters, the most a field holds")]
    CellLength(At),
    #[error("{0}: more than {MAX_CELLS} cells; split the file")]
    Cells(At),
    #[error("{0}: more than {mib} MiB of text; split the file", mib = MAX_TEXT_BYTES >> 20)]
    Text(At),
    #[error("the file is neither UTF-8 nor GB18030 text")]
    NotText,
    #[error("{0}")]
    Csv(#[from] ::csv::Error),
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error("not a readable .xlsx workbook ({0})")]
    Xlsx(#[from] calamine::XlsxError),
    #[error("{0}")]
    Empty(&'static str),
}

/// Builds a table row by row, refusing it as soon as a bound is crossed.
#[derive(Debug)]
struct Bounded {
    unit: &'static str,
    heads: Option<Vec<String>>,
    rows: Vec<(usize, Vec<String>)>,
    cells: usize,
    text: usize,
}

impl Bounded {
    fn new(unit: &'static str) -> Self {
        Bounded {
            unit,
            heads: None,
            rows: Vec::new(),
            cells: 0,
            text: 0,
        }
    }

    fn at(&self, line: usize, col: Option<usize>) -> At {
        At {
            unit: self.unit,
            line,
            col,
        }
    }

    /// Checks a non-empty cell before it is copied: its column and length.
    fn check_cell(&self, line: usize, col: usize, text: &str) -> Result<(), ReadError> {
        if col >= MAX_COLUMNS {
            return Err(ReadError::Columns(self.at(line, Some(col))));
        }
        // A char is at most 4 bytes, so only a long text needs counting.
        if text.len() > MAX_CELL_CHARS && text.chars().count() > MAX_CELL_CHARS {
            return Err(ReadError::CellLength(self.at(line, Some(col))));
        }
        Ok(())
    }

    /// Before the row at `line` is read: refuses it if the table is full.
    fn start_row(&self, line: usize) -> Result<(), ReadError> {
        if self.heads.is_some() && self.rows.len() >= MAX_ROWS {
            return Err(ReadError::Rows(self.at(line, None)));
        }
        Ok(())
    }

    /// Keeps a non-empty row (the first is the headings), its cells checked.
    fn push(&mut self, line: usize, cells: Vec<String>) -> Result<(), ReadError> {
        self.start_row(line)?;
        self.cells += cells.len();
        if self.cells > MAX_CELLS {
            return Err(ReadError::Cells(self.at(line, None)));
        }
        self.text += cells.iter().map(String::len).sum::<usize>();
        if self.text > MAX_TEXT_BYTES {
            return Err(ReadError::Text(self.at(line, None)));
        }
        match self.heads {
            None => self.heads = Some(cells),
            Some(_) => self.rows.push((line, cells)),
        }
        Ok(())
    }

    fn finish(self) -> Option<Table> {
        Some(Table {
            heads: self.heads?,
            rows: self.rows,
        })
    }
}

fn bad(path: &Path, why: impl fmt::Display) -> HallError {
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
    match ext.as_str() {
        "csv" | "txt" => {
            let bytes = std::fs::read(path).map_err(|source| HallError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            read_csv(&bytes).map_err(|e| bad(path, e))
        }
        "xlsx" | "xlsm" => xlsx::read_xlsx(path).map_err(|e| bad(path, e)),
        // calamine reads these whole, with nothing to bound them by.
        "xls" | "xlsb" | "ods" => Err(bad(
            path,
            format!(".{ext} files are not read; save the sheet as .xlsx or .csv"),
        )),
        _ => Err(bad(path, "use a .csv or .xlsx file")),
    }
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

#[cfg(test)]
mod tests {
    use super::column_name;

    #[test]
    fn columns_are_named_as_a_spreadsheet_names_them() {
        let names: Vec<String> = [0, 25, 26, 255, 256, 16383]
            .into_iter()
            .map(column_name)
            .collect();
        assert_eq!(names, ["A", "Z", "AA", "IV", "IW", "XFD"]);
    }
}
