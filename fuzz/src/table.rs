//! Spreadsheets and the text files an administrator imports: the catalogue
//! CSV and .xlsx (`hallsync_hall::import`, through its public functions
//! only: `read_csv`, `read_table`, `items_from_table`), the holiday
//! calendar CSV and office hours (`hallsync_model::calendar`), and a row
//! read as an item (`ItemContent::from_row`, through `items_from_table`).
//!
//! Invariants: errors, never panics; what one file costs in memory is
//! bounded by a multiple of its size ([`csv_alloc_limit`]); rows keep
//! their line numbers in order; every item read from a row is valid; the
//! same text reads the same from UTF-8 and from GB18030; office hours that
//! parse print back to text that parses the same; a calendar that parses
//! has each date once and names of at most 40 characters.

use std::collections::BTreeSet;

use hallsync_hall::import::{items_from_table, read_csv, read_table, Table};
use hallsync_model::calendar::{parse_calendar_csv, parse_office_hours, OfficeHours};

/// What reading `len` bytes of CSV may hold allocated at once.
pub fn csv_alloc_limit(len: usize) -> u64 {
    64 * len as u64 + (1 << 20)
}

/// What reading an `len`-byte spreadsheet file may hold allocated at
/// once: a compressed sheet may expand ~1,000-fold, and its cells cost
/// some multiple of that.
pub fn xlsx_alloc_limit(len: usize) -> u64 {
    4096 * len as u64 + (64 << 20)
}

/// Runs one input as CSV text (catalogue and calendar) and office hours.
pub fn csv(data: &[u8]) {
    let limit = csv_alloc_limit(data.len());
    let table = crate::bounded("reading a CSV file", limit, || read_csv(data));
    if let Ok(table) = &table {
        check_table(table);
        // The same text, as Excel on a Chinese Windows PC saves it.
        if let Ok(text) = std::str::from_utf8(data) {
            let (gb, _, unmappable) = encoding_rs::GB18030.encode(text);
            let bom = text.starts_with('\u{feff}') || gb.starts_with(&[0xff, 0xfe]);
            if !unmappable && !bom && std::str::from_utf8(&gb).is_err() {
                assert_eq!(
                    read_csv(&gb).as_ref(),
                    Ok(table),
                    "the same text reads differently from GB18030"
                );
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    let days = crate::bounded("reading a calendar file", limit, || {
        parse_calendar_csv(&text)
    });
    if let Ok(days) = days {
        let mut dates = BTreeSet::new();
        for d in &days {
            assert!(dates.insert(d.date), "{} is listed twice", d.date);
            assert!(d.name.chars().count() <= 40);
        }
    }
    let hours = crate::bounded("reading office hours", limit, || parse_office_hours(&text));
    if let Ok(hours) = hours {
        let printed = OfficeHours(&hours).to_string();
        assert_eq!(
            parse_office_hours(&printed),
            Ok(hours),
            "office hours print as {printed:?}, which reads differently"
        );
    }
}

/// Runs one input as a `.xlsx` file.
pub fn xlsx(data: &[u8]) {
    let dir = crate::scratch();
    let path = dir.path().join("catalogue.xlsx");
    if let Err(e) = std::fs::write(&path, data) {
        panic!("writing {}: {e}", path.display());
    }
    let limit = xlsx_alloc_limit(data.len());
    if let Ok(table) = crate::bounded("reading a spreadsheet", limit, || read_table(&path)) {
        check_table(&table);
    }
}

fn check_table(table: &Table) {
    // Not strictly increasing: the csv crate ends a record at a lone CR
    // but counts lines by LF, so a file with CR line ends (Excel for Mac's
    // "CSV (Macintosh)") numbers rows alike (regressions/csv/cr-line-ends).
    assert!(
        table.rows.windows(2).all(|w| w[0].0 <= w[1].0),
        "rows out of line order"
    );
    if let Ok(items) = items_from_table(table) {
        assert_eq!(items.len(), table.rows.len());
        for (line, item) in items {
            if let Ok(item) = item {
                if let Err(e) = item.validate() {
                    panic!("line {line} was read as an item that is not valid: {e}");
                }
            }
        }
    }
}
