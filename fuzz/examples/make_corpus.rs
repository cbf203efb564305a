//! Makes the fuzz corpora from real data:
//! `cargo run -p hallsync-fuzz --example make_corpus` (rewrites
//! `fuzz/corpus/`; the regressions are left alone).
//!
//! A township imports the sample city's catalogue and calendar, takes
//! cases and works on them; its county issues a supervision order; the two
//! replicate with the protocol sessions wired back to back. Kept: the
//! frames they exchanged (`frame`); the documents both hold and the change
//! sets sent (`doc`); the township's log segments while it ran (`wal_segment`,
//! and the same records in the format before record headers); sled's
//! blocks and the values in them, the log's mark and a trained dictionary
//! (`block`, `stored`); the sample CSVs, in UTF-8 and GB18030, and
//! spreadsheets made from them (`csv`, `xlsx`). The structure-aware
//! harnesses (`wal_recover`, and `block`'s tree mode) get seeded random
//! recipes.

#[path = "../../crates/hall/tests/support/levels.rs"]
mod levels;
#[path = "../../crates/hall/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hallsync_fuzz::mutate::Rng;
use hallsync_hall::import::{items_from_table, read_csv, read_table};
use hallsync_hall::{Hall, HallReplica, NewOrder};
use hallsync_model::order::{Card, Rule};
use hallsync_model::{DocKind, Level, NodeId, RegionCode, TimeLimit, Ts};
use hallsync_store::fuzzing::{decode_block, parse_segment, sled_contents, LogOp, Piece};
use hallsync_store::StoreOptions;
use hallsync_sync::{msg, Config, Endpoint, Msg, Payload, Session};

fn t(s: &str) -> Ts {
    Ts::parse(s).unwrap()
}

struct Corpus {
    root: PathBuf,
    counts: BTreeMap<String, usize>,
}

impl Corpus {
    fn add(&mut self, harness: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(harness);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
        *self.counts.entry(harness.to_string()).or_default() += 1;
    }
}

fn endpoint(h: &Hall) -> Endpoint {
    Endpoint {
        id: h.node().id.clone(),
        region: h.node().region.clone(),
    }
}

/// Replicates until quiet; returns every frame sent, encoded.
fn sync(town: &Hall, county: &Hall, now: Ts) -> Vec<Vec<u8>> {
    let z = Duration::ZERO;
    let mut rt = HallReplica { hall: town, now };
    let mut rc = HallReplica { hall: county, now };
    let cfg = Config::default();
    let mut up = Session::new(endpoint(town), endpoint(county), cfg.clone(), &mut rt, z).unwrap();
    let mut down = Session::new(endpoint(county), endpoint(town), cfg, &mut rc, z).unwrap();
    let mut frames = Vec::new();
    loop {
        let mut quiet = true;
        while let Some(m) = up.poll_transmit() {
            quiet = false;
            let f = msg::encode(&m).unwrap();
            down.handle(&mut rc, msg::decode(&f).unwrap(), z).unwrap();
            frames.push(f);
        }
        while let Some(m) = down.poll_transmit() {
            quiet = false;
            let f = msg::encode(&m).unwrap();
            up.handle(&mut rt, msg::decode(&f).unwrap(), z).unwrap();
            frames.push(f);
        }
        up.poll(&mut rt, z).unwrap();
        down.poll(&mut rc, z).unwrap();
        if quiet {
            return frames;
        }
    }
}

/// Copies of the log segments in `dir` (searched below it).
fn segments(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            segments(&p, out);
        } else if name.starts_with("wal-") {
            out.push((name, std::fs::read(&p).unwrap()));
        }
    }
}

/// A segment without the zeros after its last record (a spare's clean
/// end), but for one sector.
fn trimmed(bytes: &[u8]) -> Vec<u8> {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    bytes[..(end + 512).min(bytes.len())].to_vec()
}

fn legacy(records: &[Vec<LogOp>]) -> Vec<u8> {
    let mut out = Vec::new();
    for ops in records {
        let r = hallsync_store::fuzzing::encode_record(ops, 1).unwrap();
        let body = &r[hallsync_store::fuzzing::RECORD_HEADER..];
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

fn xlsx(rows: &[Vec<String>], path: &Path) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            // Numbers as numbers, as a legal office's sheet holds them.
            match cell.parse::<f64>() {
                Ok(n) if !cell.starts_with('0') => sheet.write_number(r as u32, c as u16, n),
                _ => sheet.write_string(r as u32, c as u16, cell),
            }
            .unwrap();
        }
    }
    book.save(path).unwrap();
}

fn main() {
    let root = hallsync_fuzz::root().join("corpus");
    let _ = std::fs::remove_dir_all(&root);
    let mut corpus = Corpus {
        root,
        counts: BTreeMap::new(),
    };
    let sample = hallsync_fuzz::root().join("../topology/sample-city");
    let (dt, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let small = StoreOptions {
        memtable_bytes: 16 << 10,
        dictionary_after: 40,
        ..StoreOptions::default()
    };
    let town = Hall::init(
        dt.path(),
        NodeId::parse("tw-101").unwrap(),
        "样例镇便民服务中心",
        RegionCode::parse("140212101").unwrap(),
        Level::Township,
        small,
    )
    .unwrap();
    let county = levels::county(dc.path());
    let now = t("2026-03-10 10:00");

    // The catalogue and calendar, imported as an administrator would.
    let table = read_table(&sample.join("catalogue-township-140212101.csv")).unwrap();
    let rows = items_from_table(&table).unwrap();
    town.import_items(rows, "起草人", Some("法制办 李明"), now, |_, _| {})
        .unwrap();
    let calendar = std::fs::read_to_string(sample.join("calendar-2026.csv")).unwrap();
    town.import_calendar(&calendar, None, now).unwrap();
    support::publish(&town, "T1", now);
    let mut segs = Vec::new();
    for i in 0..60 {
        town.accept_case(
            support::new_case("T1", Some(format!("T1-{i:03}")), now),
            now,
        )
        .unwrap();
        if i == 5 {
            // The log while it holds records (a checkpoint deletes them).
            segments(dt.path(), &mut segs);
        }
    }
    segments(dt.path(), &mut segs);
    let mut frames = sync(&town, &county, now);
    let later = now.plus(3_600);
    let case = levels::act_at_both_levels(&town, &county, "T1-007", later);
    let order = NewOrder {
        unit: RegionCode::parse("140212101").unwrap(),
        department: "民政办".into(),
        case,
        rule: Rule::CaseTimeLimit,
        card: Card::Notice,
        reason: "临近承诺时限，请加快办理".into(),
        by: "县电子监察室".into(),
        reply_within: TimeLimit::parse("3wd").unwrap(),
    };
    county.issue_order(order, later).unwrap();
    frames.extend(sync(&town, &county, later));
    segments(dt.path(), &mut segs);

    // frame: one of each kind of message, the smaller ones first.
    let mut by_kind: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for f in &frames {
        let m = msg::decode(f).unwrap();
        let kind = format!("{m:?}")
            .split([' ', '(', '{'])
            .next()
            .unwrap()
            .to_string();
        by_kind.entry(kind).or_default().push(f.clone());
        if let Msg::Data { docs, .. } = &m {
            for p in docs {
                if let Payload::Changes(c) = p {
                    corpus.add("doc", &format!("changes-{:08x}", crc32fast::hash(c)), c);
                }
            }
        }
    }
    for (kind, mut fs) in by_kind {
        fs.sort_by_key(Vec::len);
        fs.dedup();
        let n = fs.len();
        for (i, f) in fs.iter().enumerate() {
            if i < 2 || i + 2 >= n {
                corpus.add("frame", &format!("{}-{i}", kind.to_lowercase()), f);
            }
        }
    }
    // What honest peers rarely send.
    let bye = Msg::Bye {
        reason: "shutting down".into(),
    };
    let refused = Msg::Refused {
        docs: vec![hallsync_sync::msg::RefusedDoc {
            id: "case:140212101:T1-001".into(),
            heads: vec![[7; 32]],
            reason: "field number: is empty".into(),
        }],
    };
    corpus.add("frame", "bye", &msg::encode(&bye).unwrap());
    corpus.add("frame", "refused", &msg::encode(&refused).unwrap());

    // doc: every kind of record, as exported.
    for (hall, name) in [(&town, "town"), (&county, "county")] {
        for kind in [
            DocKind::Item,
            DocKind::Case,
            DocKind::Cal,
            DocKind::Node,
            DocKind::Order,
        ] {
            let ids: Vec<_> = hall.store().ids(kind).take(3).map(Result::unwrap).collect();
            for id in ids {
                let bytes = hall.export_doc(&id).unwrap();
                let file = format!("{name}-{}", id.as_str().replace([':', '/'], "_"));
                corpus.add("doc", &file, &bytes);
            }
        }
    }

    // wal_segment: the township's segments, and their records in the
    // format before record headers.
    segs.sort();
    segs.dedup_by(|a, b| a.0 == b.0);
    let mut records = Vec::new();
    for (name, bytes) in segs.iter().take(6) {
        let bytes = trimmed(bytes);
        for p in parse_segment(&bytes) {
            if let Piece::Record { ops, .. } = p {
                records.push(ops);
            }
        }
        corpus.add("wal_segment", name, &bytes);
    }
    corpus.add(
        "wal_segment",
        "legacy",
        &legacy(&records[..records.len().min(4)]),
    );

    // block and stored: sled's contents after a checkpoint.
    town.store().checkpoint().unwrap();
    let sled = sled_contents(town.store()).unwrap();
    let mut values: BTreeMap<u8, Vec<Vec<u8>>> = BTreeMap::new();
    let mut dict = None;
    for (k, v) in &sled {
        if k.first() == Some(&b'B') {
            let bound = &k[1..];
            if bound.len() < 256 && v.len() < 20_000 && corpus.counts.get("block") < Some(&12) {
                let seed = [&[0, bound.len() as u8][..], bound, v].concat();
                corpus.add("block", &format!("block-{:08x}", crc32fast::hash(k)), &seed);
            }
            for (key, value) in decode_block(bound, v).unwrap() {
                values.entry(key[0]).or_default().push(value);
            }
        } else if k.starts_with(b"mdict:") {
            dict = Some(v[1 + 4..].to_vec());
        } else if k == b"mwalmark" {
            corpus.add("stored", "mark", &[&[4][..], v].concat());
        }
    }
    for (prefix, mode) in [(b'd', 0u8), (b'h', 2), (b'c', 3)] {
        let mut vs = values.remove(&prefix).unwrap_or_default();
        vs.sort_by_key(Vec::len);
        for (i, v) in vs.iter().step_by((vs.len() / 5).max(1)).take(6).enumerate() {
            corpus.add(
                "stored",
                &format!("{}-{i}", prefix as char),
                &[&[mode][..], v].concat(),
            );
            if prefix == b'd' && v[1..5] != [0, 0, 0, 0] {
                if let Some(d) = &dict {
                    let len = (d.len() as u16).to_le_bytes();
                    let seed = [&[1][..], &len, d, v].concat();
                    corpus.add("stored", &format!("d-dict-{i}"), &seed);
                }
            }
        }
    }
    let mut rng = Rng::new(13);
    for i in 0..24 {
        let n = 16 + rng.below(400);
        let recipe: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        corpus.add("wal_recover", &format!("recipe-{i:02}"), &recipe);
        let tree = [&[1][..], &recipe].concat();
        corpus.add("block", &format!("tree-{i:02}"), &tree);
    }

    // csv and xlsx: the sample files, whole and cut to a few rows.
    for name in [
        "catalogue-township-140212101.csv",
        "catalogue-county-140212.csv",
        "calendar-2026.csv",
    ] {
        let bytes = std::fs::read(sample.join(name)).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        corpus.add("csv", name, &bytes);
        let head: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
        corpus.add("csv", &format!("head-{name}"), head.as_bytes());
        let (gb, _, _) = encoding_rs::GB18030.encode(&head);
        corpus.add("csv", &format!("gb18030-{name}"), &gb);
        if name.starts_with("catalogue") {
            let table = read_csv(&bytes).unwrap();
            let mut rows = vec![table.heads.clone()];
            rows.extend(table.rows.iter().take(3).map(|(_, r)| r.clone()));
            let file = dt.path().join("seed.xlsx");
            xlsx(&rows, &file);
            corpus.add(
                "xlsx",
                &name.replace(".csv", ".xlsx"),
                &std::fs::read(&file).unwrap(),
            );
        }
    }
    for (i, hours) in [
        "09:00-12:00,13:30-17:30",
        "08:30-12:00;14:00-18:00",
        "00:00-24:00",
    ]
    .iter()
    .enumerate()
    {
        corpus.add("csv", &format!("office-hours-{i}"), hours.as_bytes());
    }
    drop((town, county));
    for (h, n) in &corpus.counts {
        println!("{h}: {n} inputs");
    }
}
