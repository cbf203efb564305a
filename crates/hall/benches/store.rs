//! Store benchmark: complete cases (accept + 8 events, every write durable
//! before it is acknowledged) through a hall node; then disk bytes per case,
//! reopen time and peak RSS.
//!
//! `cargo bench -p hallsync-hall --bench store` (or `scripts/bench-store.sh`).
//! Environment: `BENCH_CASES` (default 100000), `BENCH_WRITERS` (default 16,
//! the concurrent windows sharing group commits), `BENCH_SPREAD` (default
//! 1: cases each window advances together, so that a case's writes are
//! spread over time and over many checkpoints).

use std::path::Path;
use std::time::Instant;

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "common/workload.rs"]
mod workload;

use hallsync_hall::Hall;
use hallsync_model::Ts;
use hallsync_store::StoreOptions;

/// The allocator the `hallsync` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let m = e.metadata().ok();
                    match m {
                        Some(m) if m.is_dir() => dir_bytes(&e.path()),
                        Some(m) => m.len(),
                        None => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let cases = env("BENCH_CASES", 100_000);
    let writers = env("BENCH_WRITERS", 16).max(1);
    let spread = env("BENCH_SPREAD", 1).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hall = workload::setup(dir);
    let rss_before = workload::status_kb(None, "VmRSS:");
    let start = Instant::now();
    workload::fill(&hall, cases, writers, spread);
    let write_secs = start.elapsed().as_secs_f64();
    let peak_rss_mb = workload::status_kb(None, "VmHWM:") as f64 / 1024.0;
    let docs = hall.store().verify().unwrap();
    let live = hall.store().live_bytes().unwrap();
    drop(hall);
    let disk = dir_bytes(&dir.join("store"));

    let t = Instant::now();
    let hall = Hall::open(dir, StoreOptions::default()).unwrap();
    let (_, row) = hall.case(&workload::number(cases - 1), Ts(0)).unwrap();
    let reopen_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(row.view.state.is_concluded());

    let stats = stats_times(&hall);

    // A backup of the whole hall, and its restore on a new data directory.
    let file = dir.join("hall.backup");
    let now = workload::event_at(0, 0).plus(400 * 86_400);
    let t = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    hall.backup(&mut out, now).unwrap();
    drop(out);
    let backup_secs = t.elapsed().as_secs_f64();
    let backup_bytes = std::fs::metadata(&file).unwrap().len();
    let t = Instant::now();
    let mut input = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
    let (restored, summary) = Hall::restore(
        &dir.join("restored"),
        &mut input,
        StoreOptions::default(),
        now,
    )
    .unwrap();
    let restore_secs = t.elapsed().as_secs_f64();
    drop(restored);

    println!();
    println!("hallsync store benchmark: {cases} complete cases (accept + 8 events), {writers} writers advancing {spread} at a time, every write durable");
    println!("| measure                       | value        | target     |");
    println!("|-------------------------------|--------------|------------|");
    println!(
        "| complete cases / s            | {:>12.0} | >= 2,000   |",
        cases as f64 / write_secs
    );
    println!(
        "| durable writes / s            | {:>12.0} |            |",
        cases as f64 * 9.0 / write_secs
    );
    println!(
        "| disk bytes / case             | {:>12.0} | <= 2,048   |",
        disk as f64 / cases as f64
    );
    println!(
        "| reopen + first read (ms)      | {:>12.1} |            |",
        reopen_ms
    );
    println!(
        "| peak RSS (MB)                 | {:>12.1} | <= 150     |",
        peak_rss_mb
    );
    println!(
        "| RSS before writing (MB)       | {:>12.1} |            |",
        rss_before as f64 / 1024.0
    );
    println!(
        "| documents verified            | {:>12} |            |",
        docs
    );
    println!(
        "| backup (s) / bytes per case   | {:>5.1} / {:>5.0} |            |",
        backup_secs,
        backup_bytes as f64 / cases as f64
    );
    println!(
        "| restore, {:>7} documents (s) | {:>12.1} |            |",
        summary.documents, restore_secs
    );
    for (what, p50, p95) in stats {
        println!("| stats {what:<23} | {p50:>7.2} / {p95:>6.2} | ms p50/p95 |");
    }
    for (prefix, keys, bytes) in live {
        let what = match prefix {
            'd' => "saved documents",
            'h' => "heads + case records",
            'c' => "feed chunks/markers",
            'x' => "case index",
            'k' => "statistics facts",
            't' => "statistics tallies",
            _ => "meta",
        };
        println!(
            "| live {what:<24} | {:>12.0} | bytes/case ({keys} keys)",
            bytes as f64 / cases as f64
        );
    }
}

/// Statistics of the hall's unit from its tallies: this month, and from 1
/// January last year in total, by item and by day (p50 and p95 of 50 runs
/// each, in ms).
fn stats_times(hall: &Hall) -> Vec<(&'static str, f64, f64)> {
    use hallsync_hall::{StatsBy, StatsQuery};
    let unit = hall.node().region.clone();
    let now = workload::event_at(0, 0).plus(400 * 86_400);
    let q = |from: &str, by| StatsQuery {
        unit: unit.clone(),
        from: Ts::parse(from).unwrap(),
        to: now,
        by,
    };
    let month = {
        let d = now.date();
        format!(
            "{}-{:02}-01",
            chrono::Datelike::year(&d),
            chrono::Datelike::month(&d)
        )
    };
    let year = format!("{}-01-01", chrono::Datelike::year(&now.date()) - 1);
    let queries = [
        ("month", q(&month, StatsBy::Total)),
        ("since 1 Jan last year", q(&year, StatsBy::Total)),
        ("… by item", q(&year, StatsBy::Item)),
        ("… by day", q(&year, StatsBy::Day)),
    ];
    queries
        .into_iter()
        .map(|(what, query)| {
            let mut ms: Vec<f64> = (0..50)
                .map(|_| {
                    let t = Instant::now();
                    let s = hall.stats(&query, now).unwrap();
                    std::hint::black_box(s);
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            (what, ms[ms.len() / 2], ms[ms.len() * 95 / 100])
        })
        .collect()
}
