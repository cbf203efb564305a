//! Supervision cards benchmark: the standing cards of a county hub that
//! holds `BENCH_CARDS_OPEN` open cases of its 10 townships (40 items each,
//! committed limits of 5 to 20 working days, received over the last two
//! weeks; one in ten waiting for the acceptance decision, one in twenty
//! paused for supplements, one in five in a handling step, one in fifty
//! unpublished), listed as the console's desk and `hallsync warning list`
//! do. The cases are written straight into the county's store as documents
//! and filed by the hall at its next open, as an upgrade files them (that
//! time is printed too). Timed, p50 and p95: the first page of every
//! standing card, one township's red cards, and, side by side, the first
//! page with the ended cards too (every case read).
//!
//! `cargo bench -p hallsync-hall --bench cards` (or `scripts/bench-cards.sh`).
//! Environment: `BENCH_CARDS_OPEN` (default 100000), `BENCH_CARDS_RUNS`
//! (default 20).

use std::time::Instant;

use hallsync_hall::{Hall, WarningFilter};
use hallsync_model::order::Card;
use hallsync_model::schema::write_new_case;
use hallsync_model::{Case, DocId, DocKind, EventKind, Level, NodeId, RegionCode, Ts};
use hallsync_store::{lock, Pending, StoreOptions};

#[path = "common/hub.rs"]
mod hub;

use hub::{env, header, mix, Clerk};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The time the cards are listed at (a Monday).
fn now() -> Ts {
    Ts::parse("2026-11-30 10:00").unwrap()
}

fn township(i: usize) -> String {
    format!("140203{:03}", 1 + i % 10)
}

fn case(i: usize) -> Case {
    let region = township(i);
    let item = mix(i, 3) % 40;
    let committed = 5 + (item % 16) as u32;
    let header = header(i, &region, item, committed, 30);
    // Received over the two weeks before `now`.
    let received = now().plus(-(mix(i, 5) as i64 * 1_209) - 600);
    let mut clerk = Clerk::of(&header.hall);
    let mut ev = |at: Ts, kind: EventKind| clerk.event(at, kind);
    let mut events = vec![ev(received, EventKind::Received)];
    let fate = mix(i, 9);
    if fate >= 100 {
        let accepted = received.plus(300);
        events.push(ev(accepted, EventKind::Accepted));
        if !fate.is_multiple_of(50) {
            events.push(ev(accepted.plus(3_600), EventKind::Published));
        }
        let later = accepted.plus(7_200).min(now().plus(-60));
        if fate < 150 {
            events.push(ev(
                later,
                EventKind::SupplementRequested {
                    materials: "户口簿".into(),
                },
            ));
        } else if fate < 350 {
            events.push(ev(
                later,
                EventKind::StepStarted {
                    step: "审核".into(),
                },
            ));
        }
    }
    events.retain(|e| e.at < now());
    Case { header, events }
}

/// Writes cases `0..n` into the hall's store as documents, a thousand a
/// commit, without their derived data.
fn fill(hall: &Hall, n: usize) {
    let store = hall.store();
    let ids: Vec<usize> = (0..n).collect();
    for chunk in ids.chunks(1_000) {
        let cases: Vec<(DocId, Case)> = chunk
            .iter()
            .map(|&i| {
                let c = case(i);
                let id = DocId::new(DocKind::Case, &c.header.region, &c.header.number).unwrap();
                (id, c)
            })
            .collect();
        let handles: Vec<_> = cases.iter().map(|(id, _)| store.doc(id).unwrap()).collect();
        let mut guards: Vec<_> = handles.iter().map(|h| lock(h).unwrap()).collect();
        let mut pending: Vec<Pending<'_>> = Vec::with_capacity(cases.len());
        for ((id, c), l) in cases.iter().zip(guards.iter_mut()) {
            write_new_case(&mut l.doc, id, c).unwrap();
            l.doc.commit();
            pending.push(Pending {
                id,
                loaded: l,
                index: None,
                facts: None,
            });
        }
        store.persist(&mut pending).unwrap();
        drop(pending);
        drop(guards);
        for (id, _) in &cases {
            store.evict(id);
        }
    }
}

/// p50 and p95 of `runs` calls of `f`, in ms, and its last answer.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut last = None;
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            last = Some(std::hint::black_box(f()));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |p: usize| ms[(ms.len() * p / 100).min(ms.len() - 1)];
    (at(50), at(95), last.unwrap())
}

fn main() {
    let open = env("BENCH_CARDS_OPEN", 100_000);
    let runs = env("BENCH_CARDS_RUNS", 20).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let hall = Hall::init(
        tmp.path(),
        NodeId::parse("county-0203").unwrap(),
        "样例县政务服务中心",
        RegionCode::parse("140203").unwrap(),
        Level::County,
        StoreOptions::default(),
    )
    .unwrap();
    let t = Instant::now();
    fill(&hall, open);
    let fill_secs = t.elapsed().as_secs_f64();
    // As an upgrade leaves a store: its derived data of no version.
    hall.store().rederive(Vec::new(), Some(0)).unwrap();
    drop(hall);
    let t = Instant::now();
    let hall = Hall::open(tmp.path(), StoreOptions::default()).unwrap();
    let filing_secs = t.elapsed().as_secs_f64();
    let now = now();
    let page = |filter: &WarningFilter| hall.warnings(filter, now, 0, 50).unwrap();
    let standing = WarningFilter::default();
    let red_in_town = WarningFilter {
        card: Some(Card::Red),
        unit: Some(RegionCode::parse("140203004").unwrap()),
        ..WarningFilter::default()
    };
    let with_ended = WarningFilter {
        ended: true,
        ..WarningFilter::default()
    };
    let (s50, s95, all) = timed(runs, || page(&standing));
    let (r50, r95, red) = timed(runs, || page(&red_in_town));
    let (e50, e95, ended) = timed(runs, || page(&with_ended));
    println!();
    println!(
        "hallsync cards benchmark: a county hub with {open} open cases of 10 townships; {runs} runs each"
    );
    println!(
        "written straight into the store in {fill_secs:.0} s; filed by the hall at its next open in {filing_secs:.1} s"
    );
    println!("| listing (first page of 50)                         | cards  | p50 ms  | p95 ms  | target  |");
    println!("|----------------------------------------------------|--------|---------|---------|---------|");
    for (what, cards, p50, p95, target) in [
        (
            "standing cards of the county",
            all.total,
            s50,
            s95,
            "<= 200",
        ),
        ("red cards of one township", red.total, r50, r95, ""),
        (
            "every card, ended too (every case read)",
            ended.total,
            e50,
            e95,
            "",
        ),
    ] {
        println!("| {what:<50} | {cards:>6} | {p50:>7.1} | {p95:>7.1} | {target:<7} |");
    }
    println!(
        "standing ÷ every case read, p50: {:.2}",
        s50 / e50.max(f64::MIN_POSITIVE)
    );
}
