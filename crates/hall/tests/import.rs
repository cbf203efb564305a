//! Spreadsheet imports are bounded (issue 13): each hostile workbook is
//! refused with one line naming the file, the place and the limit, and
//! nothing of it is stored; normal sheets import as before.

#[path = "support/hostile.rs"]
mod hostile;

use std::path::Path;

use hallsync_hall::import::{items_from_table, read_csv, read_table, Table, MAX_ROWS};
use hallsync_hall::{Hall, HallError, ImportReport};
use hallsync_model::{Level, NodeId, RegionCode, Ts};
use hallsync_store::StoreOptions;

use hostile::Hostile;

const CSV: &str = "事项名称,基本编码,实施编码,权力类别,实施主体,法定时限,承诺时限\n\
                   宅基地审批,0101,A1,行政许可,样例镇人民政府,20个工作日,10个工作日\n\
                   坏行,0102,A2,行政摊派,样例镇人民政府,20个工作日,10个工作日\n";

fn township(dir: &Path) -> Hall {
    Hall::init(
        dir,
        NodeId::parse("tw-101").unwrap(),
        "样例镇便民服务中心",
        RegionCode::parse("140212101").unwrap(),
        Level::Township,
        StoreOptions::default(),
    )
    .unwrap()
}

/// What `hallsync item import` does with a file.
fn import(hall: &Hall, file: &Path) -> Result<ImportReport, HallError> {
    let rows = items_from_table(&read_table(file)?)?;
    hall.import_items(
        rows,
        "王芳",
        None,
        Ts::parse("2026-01-05").unwrap(),
        |_, _| {},
    )
}

/// Imports `file`, which must be refused with one line that names it and
/// contains each of `words`, storing nothing.
fn assert_refused(file: &Path, words: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let hall = township(dir.path());
    let err = import(&hall, file).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: ", file.display())),
        "names the file once, first: {err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
    for w in words {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
    assert!(hall.items().unwrap().is_empty(), "{err}");
    err
}

fn refused(case: Hostile) {
    let err = assert_refused(&case.file, case.refusal);
    println!("{}: {err}", case.what);
}

#[test]
fn a_2_kb_workbook_whose_dimension_spans_the_whole_sheet_is_refused_at_its_cell_past_column_iv() {
    let dir = tempfile::tempdir().unwrap();
    refused(hostile::whole_sheet_dimension(dir.path()));
}

#[test]
fn a_workbook_with_one_200_mb_cell_is_refused_on_what_it_declares_before_anything_is_unpacked() {
    let dir = tempfile::tempdir().unwrap();
    refused(hostile::huge_cell(dir.path()));
}

#[test]
fn a_million_row_sheet_is_refused_as_soon_as_row_100_002_appears() {
    let dir = tempfile::tempdir().unwrap();
    refused(hostile::million_rows(dir.path()));
}

#[test]
fn a_zip_bomb_whose_declared_size_lies_is_refused_one_byte_past_the_lie() {
    let dir = tempfile::tempdir().unwrap();
    refused(hostile::lying_size(dir.path()));
}

#[test]
fn a_row_of_300_cells_is_refused_at_its_257th_column() {
    let dir = tempfile::tempdir().unwrap();
    refused(hostile::too_many_columns(dir.path()));
}

#[test]
fn workbooks_with_too_many_parts_bloated_styles_or_a_false_string_count_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused(hostile::too_many_parts(dir.path()));
    refused(hostile::bloated_styles(dir.path()));
    refused(hostile::lying_string_count(dir.path()));
}

#[test]
fn a_dimension_claiming_the_whole_sheet_is_not_believed_and_the_table_under_it_imports() {
    let dir = tempfile::tempdir().unwrap();
    let file = hostile::small_table_claiming_the_whole_sheet(dir.path());
    let table = read_table(&file).unwrap();
    assert_eq!(table.heads.len(), 7);
    assert_eq!(table.rows.len(), 1);
    assert_eq!(table.rows[0].0, 2);
    assert_eq!(table.rows[0].1[1], "101", "a whole number reads without .0");
    let hall = township(dir.path());
    assert_eq!(import(&hall, &file).unwrap().created, 1);
}

/// `csv` saved as a workbook, cell by cell, starting at `first_col`.
fn xlsx(dir: &Path, csv: &str, first_col: u16) -> std::path::PathBuf {
    let path = dir.join("catalogue.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, line) in csv.lines().enumerate() {
        for (c, cell) in line.split(',').enumerate() {
            sheet
                .write_string(r as u32, first_col + c as u16, cell)
                .unwrap();
        }
    }
    book.save(&path).unwrap();
    path
}

#[test]
fn an_xlsx_sheet_reads_as_the_same_table_as_its_csv_and_imports_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let from_csv = read_csv(CSV.as_bytes()).unwrap();
    let from_xlsx = read_table(&xlsx(dir.path(), CSV, 0)).unwrap();
    assert_eq!(from_xlsx, from_csv);
    // A sheet that starts in column B reads the same items.
    let shifted = read_table(&xlsx(dir.path(), CSV, 1)).unwrap();
    let items = |t: &Table| {
        items_from_table(t)
            .unwrap()
            .into_iter()
            .map(|(line, item)| (line, item.map_err(|e| e.to_string())))
            .collect::<Vec<_>>()
    };
    assert_eq!(items(&shifted), items(&from_csv));
    let hall = township(dir.path());
    let report = import(&hall, &dir.path().join("catalogue.xlsx")).unwrap();
    assert_eq!((report.created, report.problems.len()), (1, 1));
}

#[test]
fn a_cell_longer_than_a_field_is_refused_with_its_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let long = CSV.replace("宅基地审批", &"批".repeat(4097));
    let csv = dir.path().join("long.csv");
    std::fs::write(&csv, &long).unwrap();
    assert_refused(&csv, &["line 2, column A", "4096 characters"]);
    assert_refused(&xlsx(dir.path(), &long, 0), &["row 2, column A", "4096"]);
    // 4,096 characters is a field's most, and fine.
    let fits = CSV.replace("宅基地审批", &"批".repeat(4096));
    assert!(read_csv(fits.as_bytes()).is_ok());
}

#[test]
fn a_csv_is_refused_at_the_first_bound_it_crosses() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.csv");

    let mut rows = String::from(CSV.lines().next().unwrap());
    rows.push('\n');
    rows.push_str(&"x,1,A,行政许可,y,1天,1天\n".repeat(MAX_ROWS + 5));
    std::fs::write(&file, &rows).unwrap();
    assert_refused(&file, &["line 100002", "100000 rows"]);

    let wide = format!("{CSV}{}x\n", "1,".repeat(300));
    std::fs::write(&file, wide).unwrap();
    assert_refused(&file, &["line 4, column IW", "256 columns"]);

    // Trailing empty cells, as Excel pads lines, cost nothing.
    let padded = CSV.replace('\n', &format!("{}\n", ",".repeat(1000)));
    let table = read_csv(padded.as_bytes()).unwrap();
    assert_eq!(table, read_csv(CSV.as_bytes()).unwrap());
}

#[test]
fn xls_and_ods_files_are_refused_with_the_formats_to_save_as() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["xls", "ods", "XLSB"] {
        let file = dir.path().join(format!("catalogue.{ext}"));
        std::fs::write(&file, b"not read").unwrap();
        assert_refused(
            &file,
            &[
                &format!(".{} files are not read", ext.to_lowercase()),
                "save the sheet as .xlsx or .csv",
            ],
        );
    }
}
