//! CSV tables: UTF-8 (a byte-order mark allowed) or GB18030, read record by
//! record and refused at the first bound crossed.

use std::borrow::Cow;

use super::{Bounded, ReadError, Table};

/// Parses CSV bytes.
pub fn read_csv(bytes: &[u8]) -> Result<Table, String> {
    read(bytes).map_err(|e| e.to_string())
}

fn read(bytes: &[u8]) -> Result<Table, ReadError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => Cow::Borrowed(t.trim_start_matches('\u{feff}')),
        Err(_) => {
            let (t, _, had_errors) = encoding_rs::GB18030.decode(bytes);
            if had_errors {
                return Err(ReadError::NotText);
            }
            t
        }
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut table = Bounded::new("line");
    let mut record = ::csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let line = record.position().map_or(0, |p| p.line() as usize);
        // Cells up to the last non-empty one: Excel pads every line to the
        // widest, and trailing empty cells read as missing ones.
        let width = (0..record.len())
            .rev()
            .find(|&i| !record[i].trim().is_empty())
            .map_or(0, |last| last + 1);
        if width == 0 || record[0].trim().starts_with('#') {
            continue;
        }
        table.start_row(line)?;
        let mut cells = Vec::with_capacity(width);
        for (col, cell) in record.iter().take(width).enumerate() {
            let cell = cell.trim();
            if !cell.is_empty() {
                table.check_cell(line, col, cell)?;
            }
            cells.push(cell.to_string());
        }
        table.push(line, cells)?;
    }
    table.finish().ok_or(ReadError::Empty("the file is empty"))
}
