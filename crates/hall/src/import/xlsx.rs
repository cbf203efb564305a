//! .xlsx tables: the first sheet, once its container has passed
//! [`container::check`], streamed cell by cell, so that neither the
//! dimension the sheet declares nor its size drives an allocation.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{Data, DataRef, Reader, Xlsx, XlsxError};

use super::{container, Bounded, ReadError, Table};

pub(super) fn read_xlsx(path: &Path) -> Result<Table, ReadError> {
    container::check(path)?;
    let file = File::open(path).map_err(XlsxError::Io)?;
    let mut book = Xlsx::new(BufReader::new(file))?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or(ReadError::Empty("the workbook has no sheet"))?;
    let mut reader = match book.worksheet_cells_reader(&first) {
        Err(XlsxError::NotAWorksheet(_)) => {
            return Err(ReadError::Empty("the first sheet is not a worksheet"))
        }
        other => other?,
    };
    let mut table = Bounded::new("row");
    let mut line = 0;
    let mut cells: Vec<String> = Vec::new();
    while let Some(cell) = reader.next_cell()? {
        let Some(text) = cell_text(cell.get_value()) else {
            continue;
        };
        let (row, col) = cell.get_position();
        let (at, col) = (row as usize + 1, col as usize);
        table.check_cell(at, col, &text)?;
        if at != line {
            if !cells.is_empty() {
                table.push(line, std::mem::take(&mut cells))?;
            }
            table.start_row(at)?;
            line = at;
        }
        if cells.len() <= col {
            cells.resize(col + 1, String::new());
        }
        cells[col] = text.into_owned();
    }
    if !cells.is_empty() {
        table.push(line, cells)?;
    }
    table
        .finish()
        .ok_or(ReadError::Empty("the first sheet is empty"))
}

/// A cell as text, trimmed, borrowed where it is text already; `None` if
/// it is empty.
fn cell_text<'a>(d: &'a DataRef<'_>) -> Option<Cow<'a, str>> {
    let text = match d {
        DataRef::Empty => return None,
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            Cow::Borrowed(s.trim())
        }
        DataRef::SharedString(s) => Cow::Borrowed(s.trim()),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
            Cow::Owned(format!("{}", *f as i64))
        }
        DataRef::DateTime(dt) => Cow::Owned(
            dt.as_datetime()
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| dt.to_string()),
        ),
        other => Cow::Owned(Data::from(other.clone()).to_string().trim().to_string()),
    };
    (!text.is_empty()).then_some(text)
}
