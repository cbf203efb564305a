//! Statistics benchmark: a city hub's statistics from its tallies as its
//! cases grow. Cases of 10 counties × 10 townships, received over a year
//! (concluded 1 to 20 days later, so those of the last weeks are partly
//! open; one in 200 left open and one in 50 never published: the backlog,
//! whose standing cards a query reads one by one), are written straight
//! into the city's store (each
//! a small document with the statistics facts of a case folded from real
//! events), then the statistics of the whole city, one county and one
//! township are timed (p50 and p95), first at `BENCH_STATS_FIRST` cases
//! and again at `BENCH_STATS_CASES`.
//!
//! `cargo bench -p hallsync-hall --bench stats` (or `scripts/bench-stats.sh`).
//! Environment: `BENCH_STATS_FIRST` (default 100000), `BENCH_STATS_CASES`
//! (default 1000000), `BENCH_STATS_RUNS` (default 50).

use std::time::Instant;

use automerge::transaction::Transactable;
use automerge::ROOT;
use hallsync_hall::{Hall, StatsBy, StatsQuery};
use hallsync_model::cards::Thresholds;
use hallsync_model::case::Outcome;
use hallsync_model::stats::case_facts;
use hallsync_model::{Case, DocId, DocKind, EventKind, Level, NodeId, RegionCode, Ts};
use hallsync_store::{lock, Pending, StoreOptions};

#[path = "common/hub.rs"]
mod hub;

use hub::{env, header, mix, Clerk};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The time the statistics are read at.
fn now() -> Ts {
    Ts::parse("2026-11-30 18:00").unwrap()
}

fn township(i: usize) -> String {
    let county = 1 + i % 10;
    let town = 1 + (i / 10) % 10;
    format!("1402{county:02}{town:03}")
}

fn case(i: usize) -> Case {
    let region = township(i);
    let item = mix(i, 3) % 40;
    let committed = 3 + (item % 8) as u32;
    let header = header(i, &region, item, committed, 20);
    let received = Ts::parse("2025-12-01 08:30")
        .unwrap()
        .plus((mix(i, 5) as i64 * 31_536) + (i as i64 % 3_600));
    let mut clerk = Clerk::of(&header.hall);
    let mut ev = |at: Ts, kind: EventKind| clerk.event(at, kind);
    let mut events = vec![
        ev(received, EventKind::Received),
        ev(received.plus(600), EventKind::Accepted),
    ];
    let fate = mix(i, 9);
    let days = |d: usize| received.plus(d as i64 * 86_400);
    let done = days(1 + mix(i, 11) % 20);
    // Concluded, most of them early; a case is still open if it would be
    // concluded after the time read at, and one in 200 is left open (the
    // backlog).
    if fate < 995 && done < now() {
        let outcome = if fate < 40 {
            Outcome::Refused
        } else {
            Outcome::Approved
        };
        events.push(ev(
            done,
            EventKind::Concluded {
                outcome,
                opinion: "意见".into(),
                certificate: String::new(),
            },
        ));
        // One in 50 never published: its disclosure cards stand.
        if !fate.is_multiple_of(50) {
            events.push(ev(done.plus(3_600), EventKind::Published));
        }
        if fate.is_multiple_of(4) {
            let score = 3 + (fate % 3) as u8;
            events.push(ev(done.plus(7_200), EventKind::Rated { score }));
        }
    }
    Case { header, events }
}

/// Writes cases `range` straight into the hall's store, a thousand a
/// commit.
fn fill(hall: &Hall, range: std::ops::Range<usize>) {
    let cal = hall.calendar().unwrap();
    let t = Thresholds::default();
    let store = hall.store();
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(1_000) {
        let mut docs = Vec::with_capacity(chunk.len());
        for &i in chunk {
            let c = case(i);
            let view = c.view();
            let clock = c.clock(&view, &cal, view.last_event_at.unwrap());
            let facts = case_facts(&c.header, &view, &clock, &cal, &t);
            let id = DocId::new(DocKind::Case, &c.header.region, &c.header.number).unwrap();
            docs.push((id, postcard::to_allocvec(&facts).unwrap()));
        }
        let handles: Vec<_> = docs.iter().map(|(id, _)| store.doc(id).unwrap()).collect();
        let mut guards: Vec<_> = handles.iter().map(|h| lock(h).unwrap()).collect();
        let mut pending: Vec<Pending<'_>> = Vec::with_capacity(docs.len());
        for ((id, facts), l) in docs.iter().zip(guards.iter_mut()) {
            l.doc.put(ROOT, "n", id.as_str()).unwrap();
            l.doc.commit();
            pending.push(Pending {
                id,
                loaded: l,
                index: None,
                facts: Some(facts.clone()),
            });
        }
        store.persist(&mut pending).unwrap();
        drop(pending);
        drop(guards);
        for (id, _) in &docs {
            store.evict(id);
        }
    }
}

/// (what, p50 ms, p95 ms) of each query.
fn measure(hall: &Hall, runs: usize) -> Vec<(String, f64, f64)> {
    let now = now();
    let q = |unit: &str, from: &str, by| StatsQuery {
        unit: RegionCode::parse(unit).unwrap(),
        from: Ts::parse(from).unwrap(),
        to: now,
        by,
    };
    let queries = [
        ("city, November", q("1402", "2026-11-01", StatsBy::Total)),
        ("city, a year", q("1402", "2025-12-01", StatsBy::Total)),
        (
            "city, a year by county",
            q("1402", "2025-12-01", StatsBy::Unit),
        ),
        (
            "city, a year by item",
            q("1402", "2025-12-01", StatsBy::Item),
        ),
        ("county, a year", q("140203", "2025-12-01", StatsBy::Total)),
        (
            "county, a year by township",
            q("140203", "2025-12-01", StatsBy::Unit),
        ),
        (
            "township, a year",
            q("140203004", "2025-12-01", StatsBy::Total),
        ),
        (
            "township, November by day",
            q("140203004", "2026-11-01", StatsBy::Day),
        ),
    ];
    queries
        .into_iter()
        .map(|(what, query)| {
            let mut ms: Vec<f64> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(hall.stats(&query, now).unwrap());
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            let at = |p: usize| ms[(ms.len() * p / 100).min(ms.len() - 1)];
            (what.to_string(), at(50), at(95))
        })
        .collect()
}

fn main() {
    let first = env("BENCH_STATS_FIRST", 100_000);
    let cases = env("BENCH_STATS_CASES", 1_000_000).max(first);
    let runs = env("BENCH_STATS_RUNS", 50).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let hall = Hall::init(
        tmp.path(),
        NodeId::parse("city-02").unwrap(),
        "样例市政务服务中心",
        RegionCode::parse("1402").unwrap(),
        Level::City,
        StoreOptions::default(),
    )
    .unwrap();
    let t = Instant::now();
    fill(&hall, 0..first);
    let fill_first = t.elapsed().as_secs_f64();
    let small = measure(&hall, runs);
    let t = Instant::now();
    fill(&hall, first..cases);
    let fill_rest = t.elapsed().as_secs_f64();
    let large = measure(&hall, runs);
    let tallies = hall.store().tallies(&[], None).count();
    // A reopen loads every tally row into memory for the commits to add
    // to (`hallsync_store`'s `tally::Rows`).
    drop(hall);
    let t = Instant::now();
    let hall = Hall::open(tmp.path(), StoreOptions::default()).unwrap();
    let reopen_ms = t.elapsed().as_secs_f64() * 1000.0;
    drop(hall);
    println!();
    println!(
        "hallsync statistics benchmark: a city hub, 10 counties × 10 townships × 40 items, cases over a year; {runs} runs each"
    );
    println!(
        "written straight into the store: {first} cases in {fill_first:.0} s, then {} more in {fill_rest:.0} s; {tallies} tallies, reopened in {reopen_ms:.0} ms",
        cases - first
    );
    println!("| query                        | {first:>9} cases p50 / p95 ms | {cases:>9} cases p50 / p95 ms | target p95 |");
    println!("|------------------------------|-------------------------------|-------------------------------|------------|");
    for ((what, a50, a95), (_, b50, b95)) in small.iter().zip(&large) {
        let target = if what.starts_with("city") {
            "<= 50 ms"
        } else if what.starts_with("county") {
            "<= 10 ms"
        } else {
            ""
        };
        println!(
            "| {what:<28} | {a50:>14.2} / {a95:>12.2} | {b50:>14.2} / {b95:>12.2} | {target:<10} |"
        );
    }
}
