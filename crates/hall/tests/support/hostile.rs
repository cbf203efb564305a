//! Hostile workbooks as issue 13 found them, each with words its refusal
//! must contain. The zip container is written by hand, so a part's declared
//! size can lie, and big parts are made of a deflate chunk flushed to a byte
//! boundary and repeated: a 200 MB part costs a few hundred KB to write.
//! Included with `#[path]`.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::DeflateEncoder;
use flate2::Compression;

/// A hostile workbook on disk.
pub struct Hostile {
    /// What it is, for assertion messages.
    pub what: &'static str,
    /// The .xlsx file.
    pub file: PathBuf,
    /// Words the refusal must contain.
    pub refusal: &'static [&'static str],
}

/// The headings of a catalogue sheet, shared strings 0 to 6.
const HEADS: [&str; 7] = [
    "事项名称",
    "基本编码",
    "实施编码",
    "权力类别",
    "实施主体",
    "法定时限",
    "承诺时限",
];

/// One zip entry: deflated bytes, CRC and true size, and the size its
/// headers declare.
struct Part {
    name: String,
    deflated: Vec<u8>,
    crc: u32,
    declared: u64,
}

/// Deflates each `(bytes, times)` piece on its own, flushed to a byte
/// boundary, so that its back-references stay inside it and its bytes can
/// be repeated `times` over; an empty final block ends the stream.
fn part(name: &str, pieces: &[(&[u8], usize)]) -> Part {
    let mut deflated = Vec::new();
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0;
    for &(bytes, times) in pieces {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.flush().unwrap();
        let block = std::mem::take(encoder.get_mut());
        let mut one = crc32fast::Hasher::new();
        one.update(bytes);
        for _ in 0..times {
            deflated.extend_from_slice(&block);
            crc.combine(&one);
            size += bytes.len() as u64;
        }
    }
    let end = DeflateEncoder::new(Vec::new(), Compression::best())
        .finish()
        .unwrap();
    deflated.extend_from_slice(&end);
    Part {
        name: name.to_string(),
        deflated,
        crc: crc.finalize(),
        declared: size,
    }
}

fn small(name: &str, text: &str) -> Part {
    part(name, &[(text.as_bytes(), 1)])
}

/// A zip archive of `parts` (no zip64: every size fits 32 bits).
fn zip(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for p in parts {
        let offset = out.len() as u32;
        let common = |h: &mut Vec<u8>| {
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&8u16.to_le_bytes()); // deflated
            h.extend_from_slice(&0u16.to_le_bytes()); // time
            h.extend_from_slice(&0x21u16.to_le_bytes()); // 1980-01-01
            h.extend_from_slice(&p.crc.to_le_bytes());
            h.extend_from_slice(&(p.deflated.len() as u32).to_le_bytes());
            h.extend_from_slice(&(p.declared as u32).to_le_bytes());
            h.extend_from_slice(&(p.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra field
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(p.name.as_bytes());
        out.extend_from_slice(&p.deflated);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        common(&mut central);
        central.extend_from_slice(&[0; 6]); // comment, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(p.name.as_bytes());
    }
    let start = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disks
    out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
    out.extend_from_slice(&(parts.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment
    out
}

/// Shared strings: the headings, then `rest`.
fn shared_strings(rest: &str) -> String {
    let heads: String = HEADS
        .iter()
        .map(|h| format!("<si><t>{h}</t></si>"))
        .collect();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">{heads}{rest}</sst>")
}

/// The start of a worksheet up to its heading row.
fn sheet_head(dimension: &str) -> String {
    let heads: String = (0..HEADS.len())
        .map(|i| format!("<c t=\"s\"><v>{i}</v></c>"))
        .collect();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><dimension ref=\"{dimension}\"/><sheetData><row r=\"1\">{heads}</row>")
}

const SHEET_TAIL: &str = "</sheetData></worksheet>";

/// Writes a one-sheet workbook made of `sheet`, `strings` and `more` parts
/// to `dir/name`.
fn workbook(dir: &Path, name: &str, strings: Part, sheet: Part, more: Vec<Part>) -> PathBuf {
    let types = small(
        "[Content_Types].xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/><Override PartName=\"/xl/worksheets/sheet1.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/><Override PartName=\"/xl/sharedStrings.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml\"/></Types>",
    );
    let rels = small(
        "_rels/.rels",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>",
    );
    let book = small(
        "xl/workbook.xml",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets><sheet name=\"事项清单\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>",
    );
    let book_rels = small(
        "xl/_rels/workbook.xml.rels",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\"><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>",
    );
    let file = dir.join(name);
    let mut parts = vec![types, rels, book, book_rels, strings, sheet];
    parts.extend(more);
    std::fs::write(&file, zip(&parts)).unwrap();
    file
}

/// A 2 KB workbook whose `<dimension>` spans the whole sheet, A1:XFD1048576,
/// with a number in its last cell.
pub fn whole_sheet_dimension(dir: &Path) -> Hostile {
    let sheet = format!(
        "{}<row r=\"1048576\"><c r=\"XFD1048576\"><v>1</v></c></row>{SHEET_TAIL}",
        sheet_head("A1:XFD1048576")
    );
    Hostile {
        what: "a dimension spanning A1:XFD1048576",
        file: workbook(
            dir,
            "dimension.xlsx",
            small("xl/sharedStrings.xml", &shared_strings("")),
            small("xl/worksheets/sheet1.xml", &sheet),
            Vec::new(),
        ),
        refusal: &["row 1048576, column XFD", "256 columns"],
    }
}

/// One cell of 200 MB (one character repeated) in the shared strings.
pub fn huge_cell(dir: &Path) -> Hostile {
    let strings = shared_strings("<si><t>\u{1}</t></si>");
    let (before, after) = strings.split_once('\u{1}').unwrap();
    let chunk = "办".repeat(1 << 18);
    let sst = part(
        "xl/sharedStrings.xml",
        &[
            (before.as_bytes(), 1),
            (chunk.as_bytes(), (200 << 20) / chunk.len()),
            (after.as_bytes(), 1),
        ],
    );
    let row = (0..HEADS.len())
        .map(|_| "<c t=\"s\"><v>7</v></c>")
        .collect::<String>();
    let sheet = format!("{}<row>{row}</row>{SHEET_TAIL}", sheet_head("A1:G2"));
    Hostile {
        what: "one 200 MB cell",
        file: workbook(
            dir,
            "huge-cell.xlsx",
            sst,
            small("xl/worksheets/sheet1.xml", &sheet),
            Vec::new(),
        ),
        refusal: &["xl/sharedStrings.xml", "128 MiB"],
    }
}

/// A million rows of seven numbers under the headings.
pub fn million_rows(dir: &Path) -> Hostile {
    let row = format!("<row>{}</row>", "<c><v>1</v></c>".repeat(HEADS.len()));
    let chunk = row.repeat(1000);
    let head = sheet_head("A1:G1000001");
    let sheet = part(
        "xl/worksheets/sheet1.xml",
        &[
            (head.as_bytes(), 1),
            (chunk.as_bytes(), 1000),
            (SHEET_TAIL.as_bytes(), 1),
        ],
    );
    Hostile {
        what: "a million rows",
        file: workbook(
            dir,
            "million-rows.xlsx",
            small("xl/sharedStrings.xml", &shared_strings("")),
            sheet,
            Vec::new(),
        ),
        refusal: &["row 100002", "100000 rows"],
    }
}

/// Shared strings that declare 1 KiB and unpack to 256 MiB (a zip bomb).
pub fn lying_size(dir: &Path) -> Hostile {
    let strings = shared_strings("\u{1}");
    let (before, after) = strings.split_once('\u{1}').unwrap();
    let chunk = "<si><t>办</t></si>".repeat(1 << 14);
    let mut sst = part(
        "xl/sharedStrings.xml",
        &[
            (before.as_bytes(), 1),
            (chunk.as_bytes(), (256 << 20) / chunk.len()),
            (after.as_bytes(), 1),
        ],
    );
    sst.declared = 1024;
    let sheet = format!("{}{SHEET_TAIL}", sheet_head("A1:G1"));
    Hostile {
        what: "a zip bomb whose declared size lies",
        file: workbook(
            dir,
            "lying-size.xlsx",
            sst,
            small("xl/worksheets/sheet1.xml", &sheet),
            Vec::new(),
        ),
        refusal: &[
            "xl/sharedStrings.xml",
            "more than the 1024 bytes it declares",
        ],
    }
}

/// A row of 300 cells under the headings.
pub fn too_many_columns(dir: &Path) -> Hostile {
    let sheet = format!(
        "{}<row>{}</row>{SHEET_TAIL}",
        sheet_head("A1:KN2"),
        "<c><v>1</v></c>".repeat(300)
    );
    Hostile {
        what: "a row of 300 cells",
        file: workbook(
            dir,
            "columns.xlsx",
            small("xl/sharedStrings.xml", &shared_strings("")),
            small("xl/worksheets/sheet1.xml", &sheet),
            Vec::new(),
        ),
        refusal: &["row 2, column IW", "256 columns"],
    }
}

/// A small table under a `<dimension>` that claims the whole sheet: not
/// hostile, since the dimension is never believed.
pub fn small_table_claiming_the_whole_sheet(dir: &Path) -> PathBuf {
    let row = "<row><c t=\"inlineStr\"><is><t>宅基地审批</t></is></c><c><v>101</v></c><c t=\"inlineStr\"><is><t>A1</t></is></c><c t=\"inlineStr\"><is><t>行政许可</t></is></c><c t=\"inlineStr\"><is><t>样例镇人民政府</t></is></c><c t=\"inlineStr\"><is><t>20个工作日</t></is></c><c t=\"inlineStr\"><is><t>10个工作日</t></is></c></row>";
    let sheet = format!("{}{row}{SHEET_TAIL}", sheet_head("A1:XFD1048576"));
    workbook(
        dir,
        "claims-whole-sheet.xlsx",
        small("xl/sharedStrings.xml", &shared_strings("")),
        small("xl/worksheets/sheet1.xml", &sheet),
        Vec::new(),
    )
}

/// 1,001 parts (a workbook has about ten).
pub fn too_many_parts(dir: &Path) -> Hostile {
    let sheet = format!("{}{SHEET_TAIL}", sheet_head("A1:G1"));
    let more = (0..995)
        .map(|i| small(&format!("customXml/item{i}.xml"), "<a/>"))
        .collect();
    Hostile {
        what: "1,001 parts",
        file: workbook(
            dir,
            "parts.xlsx",
            small("xl/sharedStrings.xml", &shared_strings("")),
            small("xl/worksheets/sheet1.xml", &sheet),
            more,
        ),
        refusal: &["1001 parts", "1000"],
    }
}

/// 8 MB of empty cell styles, 1.6 million of them.
pub fn bloated_styles(dir: &Path) -> Hostile {
    let head = "<?xml version=\"1.0\"?><styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><cellXfs>";
    let chunk = "<xf/>".repeat(1 << 12);
    let styles = part(
        "xl/styles.xml",
        &[
            (head.as_bytes(), 1),
            (chunk.as_bytes(), (8 << 20) / chunk.len()),
            (b"</cellXfs></styleSheet>", 1),
        ],
    );
    let sheet = format!("{}{SHEET_TAIL}", sheet_head("A1:G1"));
    Hostile {
        what: "1.6 million cell styles",
        file: workbook(
            dir,
            "styles.xlsx",
            small("xl/sharedStrings.xml", &shared_strings("")),
            small("xl/worksheets/sheet1.xml", &sheet),
            vec![styles],
        ),
        refusal: &["xl/styles.xml", "8 MiB", "4 MiB"],
    }
}

/// Shared strings that declare four billion strings and hold seven.
pub fn lying_string_count(dir: &Path) -> Hostile {
    let sst = shared_strings("").replace("<sst ", "<sst uniqueCount=\"4000000000\" ");
    let sheet = format!("{}{SHEET_TAIL}", sheet_head("A1:G1"));
    Hostile {
        what: "a string count of four billion",
        file: workbook(
            dir,
            "string-count.xlsx",
            small("xl/sharedStrings.xml", &sst),
            small("xl/worksheets/sheet1.xml", &sheet),
            Vec::new(),
        ),
        refusal: &["xl/sharedStrings.xml", "\"4000000000\" strings"],
    }
}
