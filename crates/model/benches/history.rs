//! What the append-only check costs beside what merging a received
//! document already does. A case shaped like the store benchmark's (its
//! header, eight events, one change each) is saved; per document,
//! side by side in one run: loading the saved bytes and reading the record
//! (what every whole document from a peer or a file goes through), and
//! walking its history for the append-only rules. Prints a table.
//!
//! `cargo bench -p hallsync-model --bench history`; `BENCH_HISTORY_DOCS`
//! (default 20000) documents per measure.

use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ScalarValue, ROOT};
use hallsync_model::history::check_append_only;
use hallsync_model::schema::CASE_SCHEMA;

fn case(i: usize) -> Vec<u8> {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(vec![0x5a; 16]));
    doc.put(ROOT, "schema", CASE_SCHEMA).unwrap();
    doc.put(ROOT, "id", format!("case:140212101:B-{i}"))
        .unwrap();
    doc.put(ROOT, "number", format!("B-{i}")).unwrap();
    doc.put(ROOT, "region", "140212101").unwrap();
    doc.put(ROOT, "hall", "tw-101").unwrap();
    doc.put(ROOT, "channel", "window").unwrap();
    let item = doc.put_object(ROOT, "item", ObjType::Map).unwrap();
    for (k, v) in [
        ("impl_code", "11140212MB1234567K500001"),
        ("name", "个体工商户设立登记"),
        ("agency", "县市场监督管理局"),
    ] {
        doc.put(&item, k, v).unwrap();
    }
    let ap = doc.put_object(ROOT, "applicant", ObjType::Map).unwrap();
    doc.put(&ap, "name", format!("申请人{i}")).unwrap();
    doc.put(&ap, "id_number", "140212199001011237").unwrap();
    let events = doc.put_object(ROOT, "events", ObjType::Map).unwrap();
    let kinds = [
        "received",
        "accepted",
        "step_started",
        "step_finished",
        "step_started",
        "step_finished",
        "fee_charged",
        "concluded",
    ];
    for (n, kind) in kinds.iter().enumerate() {
        let e = doc
            .put_object(&events, format!("tw-101.5a5a5a5a.{}", n + 1), ObjType::Map)
            .unwrap();
        doc.put(&e, "kind", *kind).unwrap();
        doc.put(
            &e,
            "at",
            ScalarValue::Timestamp(1_764_000_000_000 + n as i64 * 3_600_000),
        )
        .unwrap();
        doc.put(&e, "by", "窗口一").unwrap();
        doc.put(&e, "node", "tw-101").unwrap();
        doc.put(&e, "opinion", "材料齐全，符合条件").unwrap();
        doc.commit();
    }
    doc.save()
}

fn main() {
    let n: usize = std::env::var("BENCH_HISTORY_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let saved: Vec<Vec<u8>> = (0..64).map(case).collect();
    let (changes, ops) = {
        let mut doc = AutoCommit::load(&saved[0]).unwrap();
        let changes = doc.get_changes(&[]);
        (
            changes.len(),
            changes.iter().map(|c| c.len()).sum::<usize>(),
        )
    };
    let mut load_read = 0.0;
    let mut check = 0.0;
    // Alternating rounds, so both measures see the same machine.
    for round in 0..4 {
        let per = n / 4;
        let t = Instant::now();
        for i in 0..per {
            let doc = AutoCommit::load(&saved[(i + round) % saved.len()]).unwrap();
            std::hint::black_box(hallsync_model::schema::read_record(&doc, None).ok());
        }
        load_read += t.elapsed().as_secs_f64();
        let mut docs: Vec<AutoCommit> = (0..per)
            .map(|i| AutoCommit::load(&saved[(i + round) % saved.len()]).unwrap())
            .collect();
        let t = Instant::now();
        for doc in &mut docs {
            check_append_only(doc).unwrap();
        }
        check += t.elapsed().as_secs_f64();
    }
    let us = |s: f64| s / n as f64 * 1e6;
    println!();
    println!("append-only check beside loading and reading a received case ({n} documents, {changes} changes and {ops} operations each)");
    println!("| measure | per document | |");
    println!("|---|---|---|");
    println!(
        "| load the saved bytes and read the record | {:.1} µs | |",
        us(load_read)
    );
    println!(
        "| the append-only check of that case (written once: its operations counted against what shows) | {:.1} µs | {:.0}% of the above |",
        us(check),
        100.0 * check / load_read
    );
}
