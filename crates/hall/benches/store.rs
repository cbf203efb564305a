//! Store benchmark: complete cases (accept + 8 events, every write durable
//! before it is acknowledged) through a hall node; then disk bytes per case,
//! reopen time and peak RSS.
//!
//! `cargo bench -p hallsync-hall --bench store` (or `scripts/bench-store.sh`).
//! Environment: `BENCH_CASES` (default 100000), `BENCH_WRITERS` (default 16,
//! the concurrent windows sharing group commits).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "../tests/support/mod.rs"]
mod support;

use hallsync_hall::Hall;
use hallsync_model::case::Outcome;
use hallsync_model::{EventKind, Ts};
use hallsync_store::StoreOptions;

const CODE: &str = "11140212MB1234567K500001";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
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

fn events() -> [EventKind; 8] {
    let s = |x: &str| x.to_string();
    [
        EventKind::StepStarted { step: s("审核") },
        EventKind::StepFinished {
            step: s("审核"),
            pass: true,
            opinion: s("材料齐全，符合条件"),
        },
        EventKind::StepStarted { step: s("决定") },
        EventKind::StepFinished {
            step: s("决定"),
            pass: true,
            opinion: s("同意"),
        },
        EventKind::FeeCharged {
            name: s("工本费"),
            amount_fen: 1000,
        },
        EventKind::Concluded {
            outcome: Outcome::Approved,
            opinion: s("准予许可"),
            certificate: s("宅基地批准书 2026-0001"),
        },
        EventKind::CertificateDelivered {
            method: s("窗口领取"),
        },
        EventKind::Published,
    ]
}

fn setup(dir: &Path) -> Hall {
    let hall = support::township(dir);
    support::publish(&hall, CODE, Ts::parse("2026-01-05").unwrap());
    hall
}

fn write_case(hall: &Hall, i: usize) {
    let base = Ts::parse("2026-03-02 08:00").unwrap().plus(i as i64 * 7);
    let number = format!("{CODE}-{i:08}");
    hall.accept_case(support::new_case(CODE, Some(number.clone()), base), base)
        .unwrap();
    for (k, kind) in events().into_iter().enumerate() {
        let at = base.plus(k as i64 + 1);
        hall.record_event(&number, kind, "李四", at, at).unwrap();
    }
}

fn main() {
    let cases = env("BENCH_CASES", 100_000);
    let writers = env("BENCH_WRITERS", 16).max(1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let hall = setup(dir);
    let next = AtomicUsize::new(0);
    let rss_before = status_kb("VmRSS:");
    let start = Instant::now();
    let mut report = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cases {
                    break;
                }
                write_case(&hall, i);
            });
        }
        while next.load(Ordering::Relaxed) < cases {
            std::thread::sleep(Duration::from_millis(200));
            if report.elapsed() > Duration::from_secs(10) {
                let done = next.load(Ordering::Relaxed).min(cases);
                eprintln!(
                    "  {done}/{cases} cases, {:.0}/s",
                    done as f64 / start.elapsed().as_secs_f64()
                );
                report = Instant::now();
            }
        }
    });
    let write_secs = start.elapsed().as_secs_f64();
    let peak_rss_mb = status_kb("VmHWM:") as f64 / 1024.0;
    let docs = hall.store().verify().unwrap();
    let live = hall.store().live_bytes().unwrap();
    drop(hall);
    let disk = dir_bytes(&dir.join("store"));

    let t = Instant::now();
    let hall = Hall::open(dir, StoreOptions::default()).unwrap();
    let (_, row) = hall
        .case(&format!("{CODE}-{:08}", cases - 1), Ts(0))
        .unwrap();
    let reopen_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(row.view.state.is_concluded());

    println!();
    println!("hallsync store benchmark: {cases} complete cases (accept + 8 events), {writers} writers, every write durable");
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
    for (prefix, keys, bytes) in live {
        let what = match prefix {
            'd' => "saved documents",
            'h' => "heads + case records",
            'c' => "feed chunks/markers",
            'x' => "case index",
            _ => "meta",
        };
        println!(
            "| live {what:<24} | {:>12.0} | bytes/case ({keys} keys)",
            bytes as f64 / cases as f64
        );
    }
}
