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
use hallsync_model::case::{Applicant, ItemRef, Outcome};
use hallsync_model::catalogue::{CaseType, Disclosure};
use hallsync_model::stats::case_facts;
use hallsync_model::{
    Case, CaseEvent, CaseHeader, Category, DocId, DocKind, EventKind, Level, LimitUnit, LogId,
    NodeId, RegionCode, TimeLimit, Ts,
};
use hallsync_store::{lock, Pending, StoreOptions};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The time the statistics are read at.
fn now() -> Ts {
    Ts::parse("2026-11-30 18:00").unwrap()
}

/// A deterministic mix for case `i`.
fn mix(i: usize, salt: u32) -> usize {
    (i.wrapping_mul(2_654_435_761).rotate_left(salt) >> 7) % 1000
}

fn township(i: usize) -> String {
    let county = 1 + i % 10;
    let town = 1 + (i / 10) % 10;
    format!("1402{county:02}{town:03}")
}

fn case(i: usize) -> Case {
    let region = township(i);
    let node = NodeId::parse(&format!("tw-{region}")).unwrap();
    let item = mix(i, 3) % 40;
    let committed = 3 + (item % 8) as u32;
    let header = CaseHeader {
        number: format!("C{i:09}"),
        region: RegionCode::parse(&region).unwrap(),
        hall: node.clone(),
        item: ItemRef {
            impl_code: format!("11{region}MB{item:04}K5000"),
            name: format!("事项{item}"),
            version: 1,
            category: Category::Licensing,
            agency: "镇人民政府".into(),
            statutory_limit: TimeLimit::new(20, LimitUnit::WorkingDays),
            committed_limit: TimeLimit::new(committed, LimitUnit::WorkingDays),
            case_type: CaseType::Committed,
            disclosure: Disclosure::Public,
            fees: None,
        },
        applicant: Applicant {
            name: "张三".into(),
            id_type: "身份证".into(),
            id_number: "140212199001011237".into(),
        },
        channel: "window".into(),
    };
    let received = Ts::parse("2025-12-01 08:30")
        .unwrap()
        .plus((mix(i, 5) as i64 * 31_536) + (i as i64 % 3_600));
    let mut n = 0;
    let mut ev = |at: Ts, kind: EventKind| {
        n += 1;
        CaseEvent {
            id: LogId::new(&node, "a1b2c3d4", n).unwrap(),
            node: node.clone(),
            at,
            by: "王芳".into(),
            kind,
        }
    };
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
    println!();
    println!(
        "hallsync statistics benchmark: a city hub, 10 counties × 10 townships × 40 items, cases over a year; {runs} runs each"
    );
    println!(
        "written straight into the store: {first} cases in {fill_first:.0} s, then {} more in {fill_rest:.0} s; {tallies} tallies",
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
