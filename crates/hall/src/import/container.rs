//! The zip container of an .xlsx workbook, checked before calamine reads any
//! of it. calamine takes the sizes a workbook declares on trust and holds
//! some parts whole, so a 2 KB file can ask it for gigabytes. Here every
//! part is first unpacked and counted, keeping nothing, so that what calamine
//! then unpacks is known to be bounded:
//!
//! - at most [`MAX_ZIP_ENTRIES`] parts, declaring at most
//!   [`MAX_UNPACKED_BYTES`] in all (checked on the directory alone);
//! - each part unpacks to no more than it declares: it is read through a
//!   reader that stops at the declared size and then asks for one byte more
//!   (a zip bomb declares little and unpacks to much);
//! - the parts calamine holds whole as it opens a workbook (relationships,
//!   workbook, styles, theme) are at most [`MAX_LOADED_PART_BYTES`] each: an
//!   element of theirs costs up to ~35 times its bytes (a 5-byte `<xf/>` is a
//!   170-byte style);
//! - the shared strings, also held whole, have at most
//!   [`MAX_SHARED_STRING_TAGS`] tags (each string costs 24 bytes besides its
//!   text) and declare no more strings than they have tags (calamine reserves
//!   room for the declared count).
//!
//! What remains is the XML reader buffering one event whole: one cell of
//! 100 MB costs a few times that before its length is refused. The first
//! sheet itself is streamed, never held.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use quick_xml::events::Event;
use zip::result::ZipError;
use zip::{ZipArchive, ZipReadOptions};

/// Most parts in a workbook: a catalogue workbook has about ten.
pub const MAX_ZIP_ENTRIES: usize = 1_000;
/// Most bytes a workbook's parts may declare and unpack to, in all: a city's
/// 5,500-row catalogue unpacks to a few MB, and a 100,000-row sheet of
/// catalogue columns still fits.
pub const MAX_UNPACKED_BYTES: u64 = 128 << 20;
/// Most bytes of each part calamine holds whole while opening a workbook,
/// besides the shared strings: a catalogue's are a few KB. A 5-byte `<xf/>`
/// costs a 170-byte style, so this keeps the styles under ~200 MB at worst;
/// a workbook bloated to Excel's limit of 64,000 cell styles (about 8 MB of
/// them) is refused and can be saved as .csv.
pub const MAX_LOADED_PART_BYTES: u64 = 4 << 20;
/// Most tags in the shared strings (about a million strings of four tags).
pub const MAX_SHARED_STRING_TAGS: u64 = 4_000_000;
/// How far into the shared strings their `<sst>` element must start.
const SST_HEAD_BYTES: usize = 4096;

/// Why a workbook's container is refused.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Not a zip archive calamine could read.
    #[error("not a readable .xlsx workbook ({0})")]
    Zip(#[from] ZipError),
    /// A part does not unpack.
    #[error("{part} cannot be unpacked ({source}); the file is damaged or hostile")]
    Unpack {
        /// The part.
        part: String,
        /// Why.
        source: io::Error,
    },
    /// Too many parts.
    #[error("the workbook has {0} parts, more than the {MAX_ZIP_ENTRIES} an .xlsx may have")]
    Entries(usize),
    /// The parts declare too much.
    #[error("the workbook unpacks to {} (its largest part, {part}, to {}), more than the {} read; save the sheet as .csv or split it", size(*total), size(*bytes), size(MAX_UNPACKED_BYTES))]
    Unpacked {
        /// The largest part.
        part: String,
        /// Its declared size.
        bytes: u64,
        /// What all parts declare.
        total: u64,
    },
    /// A part unpacks to more than it declares.
    #[error("{part} unpacks to more than the {declared} bytes it declares; the file is damaged or hostile")]
    Lies {
        /// The part.
        part: String,
        /// Its declared size.
        declared: u64,
    },
    /// A part that calamine holds whole is too large.
    #[error("{part} unpacks to {}, more than the {} read for it; save the sheet as .csv", size(*bytes), size(MAX_LOADED_PART_BYTES))]
    Loaded {
        /// The part.
        part: String,
        /// Its size.
        bytes: u64,
    },
    /// The shared strings have too many tags.
    #[error(
        "{part} has more than {MAX_SHARED_STRING_TAGS} tags; save the sheet as .csv or split it"
    )]
    SharedTags {
        /// The part.
        part: String,
    },
    /// The shared strings declare more strings than they can hold.
    #[error("{part} declares {count:?} strings but has only {tags} tags; the file is damaged or hostile")]
    UniqueCount {
        /// The part.
        part: String,
        /// The declared count, as written.
        count: String,
        /// Its tags.
        tags: u64,
    },
    /// The shared strings do not start as shared strings.
    #[error("{part} has no <sst> element in its first {SST_HEAD_BYTES} bytes; the file is damaged or hostile")]
    NoSst {
        /// The part.
        part: String,
    },
}

/// A byte count for people: bytes, or MiB to a tenth.
fn size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes < MIB {
        return format!("{bytes} bytes");
    }
    let tenths = (u128::from(bytes) * 10 + u128::from(MIB / 2)) / u128::from(MIB);
    match tenths % 10 {
        0 => format!("{} MiB", tenths / 10),
        t => format!("{}.{t} MiB", tenths / 10),
    }
}

/// A part's name as calamine looks it up: `/` for `\`, lower case.
fn normal(name: &str) -> String {
    name.replace('\\', "/").to_ascii_lowercase()
}

/// What calamine does with a part, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Held whole while the workbook opens.
    Loaded,
    /// The shared strings, held whole.
    SharedStrings,
    /// Streamed (the first sheet) or not read.
    Other,
}

/// The parts calamine reads as it opens a workbook, found as calamine finds
/// them: the package relationships name the workbook part, and the rest lie
/// beside it.
#[derive(Debug)]
struct Roles {
    loaded: Vec<String>,
    shared_strings: String,
}

impl Roles {
    /// From the target of the package's officeDocument relationship, if any.
    fn new(main: Option<&str>) -> Roles {
        let main = main.unwrap_or("xl/workbook.xml");
        let (dir, name) = match main.rfind('/') {
            Some(i) => main.split_at(i + 1),
            None => ("", main),
        };
        let dir = dir.strip_prefix('/').unwrap_or(dir);
        let name = if name.is_empty() {
            "workbook.xml"
        } else {
            name
        };
        Roles {
            loaded: [
                "_rels/.rels".to_string(),
                format!("{dir}{name}"),
                format!("{dir}_rels/{name}.rels"),
                format!("{dir}styles.xml"),
                format!("{dir}theme/theme1.xml"),
            ]
            .iter()
            .map(|n| normal(n))
            .collect(),
            shared_strings: normal(&format!("{dir}sharedStrings.xml")),
        }
    }

    fn of(&self, name: &str) -> Role {
        let name = normal(name);
        if name == self.shared_strings {
            Role::SharedStrings
        } else if self.loaded.contains(&name) {
            Role::Loaded
        } else {
            Role::Other
        }
    }
}

/// Counts what passes through it: bytes and `<`s, and keeps the first
/// [`SST_HEAD_BYTES`].
#[derive(Debug, Default)]
struct Tally {
    tags: u64,
    head: Vec<u8>,
}

impl Write for Tally {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tags += buf.iter().filter(|&&b| b == b'<').count() as u64;
        let room = SST_HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..room.min(buf.len())]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Unpacks entry `index` into `out`, refusing it if it unpacks to more than
/// it declares: it is read up to its declared size, then one byte more is
/// asked for. Its CRC is left to calamine's own reading, so that a failure
/// past the declared size can only mean that the part goes on past it.
fn unpack(
    zip: &mut ZipArchive<BufReader<File>>,
    index: usize,
    part: &str,
    declared: u64,
    out: &mut impl Write,
) -> Result<(), ContainerError> {
    let failed = |source| ContainerError::Unpack {
        part: part.to_string(),
        source,
    };
    let mut entry = zip.by_index_with_options(index, ZipReadOptions::new().ignore_crc32(true))?;
    io::copy(&mut (&mut entry).take(declared), out).map_err(failed)?;
    match entry.read(&mut [0u8; 1]) {
        Ok(0) => Ok(()),
        _ => Err(ContainerError::Lies {
            part: part.to_string(),
            declared,
        }),
    }
}

/// An XML reader set up as calamine sets up its own, so that both read a
/// part alike.
fn xml(bytes: &[u8]) -> quick_xml::Reader<&[u8]> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    reader
}

/// The target of the officeDocument relationship in the package
/// relationships, read as calamine reads it: within the first
/// `<Relationships>`, the last one wins.
fn main_part(rels: &[u8]) -> Option<String> {
    let mut reader = xml(rels);
    let mut buf = Vec::new();
    let mut inside = false;
    let mut main = None;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "Relationships" => inside = true,
            Ok(Event::End(e)) if inside && e.local_name().as_ref() == "Relationships" => {
                return main
            }
            Ok(Event::Start(e)) if inside && e.local_name().as_ref() == "Relationship" => {
                let attr = |key: &str| {
                    e.try_get_attribute(key)
                        .ok()
                        .flatten()
                        .map(|a| a.value.into_owned())
                };
                if attr("Type").is_some_and(|t| t.ends_with("/relationships/officeDocument")) {
                    if let Some(target) = attr("Target") {
                        main = quick_xml::escape::unescape(&target)
                            .ok()
                            .map(|t| t.into_owned());
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => return main,
            Ok(_) => {}
        }
        buf.clear();
    }
}

/// The `uniqueCount` of the first `<sst>` element in `head`: `None` if there
/// is no such element, `Some(None)` if it has no count.
fn unique_count(head: &[u8]) -> Option<Option<String>> {
    let mut reader = xml(head);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "sst" => {
                return Some(
                    e.try_get_attribute("uniqueCount")
                        .ok()
                        .flatten()
                        .map(|a| a.value.into_owned()),
                );
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
        buf.clear();
    }
}

/// Checks the workbook at `path` (see the module documentation).
pub fn check(path: &Path) -> Result<(), ContainerError> {
    let file = File::open(path).map_err(ZipError::Io)?;
    let mut zip = ZipArchive::new(BufReader::new(file))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(ContainerError::Entries(zip.len()));
    }

    let mut parts = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let entry = zip.by_index_data(i)?;
        parts.push((entry.name()?.into_owned(), entry.size()));
    }
    let total = parts
        .iter()
        .map(|(_, bytes)| *bytes)
        .fold(0, u64::saturating_add);
    if total > MAX_UNPACKED_BYTES {
        let (part, bytes) = parts
            .iter()
            .max_by_key(|(_, bytes)| *bytes)
            .cloned()
            .unwrap_or_default();
        return Err(ContainerError::Unpacked { part, bytes, total });
    }

    // The package relationships say where the parts calamine holds lie.
    let mut main = None;
    for (i, (part, bytes)) in parts.iter().enumerate() {
        if normal(part) == "_rels/.rels" {
            check_loaded(part, *bytes)?;
            let mut rels = Vec::new();
            unpack(&mut zip, i, part, *bytes, &mut rels)?;
            main = main_part(&rels);
        }
    }
    let roles = Roles::new(main.as_deref());

    for (i, (part, bytes)) in parts.iter().enumerate() {
        let role = roles.of(part);
        if role == Role::Loaded {
            check_loaded(part, *bytes)?;
        }
        let mut tally = Tally::default();
        unpack(&mut zip, i, part, *bytes, &mut tally)?;
        if role == Role::SharedStrings {
            check_shared_strings(part, &tally)?;
        }
    }
    Ok(())
}

fn check_loaded(part: &str, bytes: u64) -> Result<(), ContainerError> {
    if bytes > MAX_LOADED_PART_BYTES {
        return Err(ContainerError::Loaded {
            part: part.to_string(),
            bytes,
        });
    }
    Ok(())
}

fn check_shared_strings(part: &str, tally: &Tally) -> Result<(), ContainerError> {
    let part = part.to_string();
    if tally.tags > MAX_SHARED_STRING_TAGS {
        return Err(ContainerError::SharedTags { part });
    }
    match unique_count(&tally.head) {
        None => Err(ContainerError::NoSst { part }),
        Some(Some(count)) if count.parse::<u64>().map_or(true, |n| n > tally.tags) => {
            Err(ContainerError::UniqueCount {
                part,
                count,
                tags: tally.tags,
            })
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(1024), "1024 bytes");
        assert_eq!(size(128 << 20), "128 MiB");
        assert_eq!(size(209_191_239), "199.5 MiB");
        assert_eq!(size((8 << 20) + 100), "8 MiB");
    }

    #[test]
    fn the_parts_calamine_holds_are_found_where_the_package_says() {
        let rels = br#"<?xml version="1.0"?><Relationships xmlns="x"><Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/Book/main.xml"/></Relationships>"#;
        let main = main_part(rels);
        assert_eq!(main.as_deref(), Some("/Book/main.xml"));
        let roles = Roles::new(main.as_deref());
        assert_eq!(roles.of("book/MAIN.xml"), Role::Loaded);
        assert_eq!(roles.of("Book\\_rels\\main.xml.rels"), Role::Loaded);
        assert_eq!(roles.of("Book/styles.xml"), Role::Loaded);
        assert_eq!(roles.of("Book/sharedStrings.xml"), Role::SharedStrings);
        assert_eq!(roles.of("xl/workbook.xml"), Role::Other);
        assert_eq!(roles.of("Book/worksheets/sheet1.xml"), Role::Other);
        // As calamine: a relationship outside <Relationships> does not
        // count, and a mismatched end tag does not stop the reading.
        let decoy = r#"<Relationship Type="/relationships/officeDocument" Target="decoy.xml"/>"#;
        let text = std::str::from_utf8(rels)
            .unwrap()
            .split_once("?>")
            .unwrap()
            .1;
        let around = format!("<a></b>{decoy}{text}{decoy}");
        assert_eq!(
            main_part(around.as_bytes()).as_deref(),
            Some("/Book/main.xml")
        );
    }

    #[test]
    fn the_declared_string_count_is_read_from_the_sst_element() {
        let head = br#"<?xml version="1.0"?><!-- x --><x:sst xmlns:x="m" count="9" uniqueCount="7"><x:si>"#;
        assert_eq!(unique_count(head), Some(Some("7".into())));
        assert_eq!(unique_count(b"<sst>"), Some(None));
        assert_eq!(unique_count(b"<worksheet>"), None);
    }
}
