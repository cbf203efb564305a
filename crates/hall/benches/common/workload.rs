//! The benchmark workload shared by the store and sync benchmarks: a
//! township writing complete cases (accept + 8 events) from many windows at
//! once. Included with `#[path]`; needs `mod support` beside it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hallsync_hall::Hall;
use hallsync_model::case::Outcome;
use hallsync_model::{EventKind, Ts};

use crate::support;

/// The item every benchmark case is filed under.
pub const CODE: &str = "11140212MB1234567K500001";

/// A `/proc/<pid>/status` field in kB (`None`: this process).
pub fn status_kb(pid: Option<u32>, field: &str) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The eight events after acceptance that complete a case.
pub fn events() -> [EventKind; 8] {
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

/// A township node with the benchmark item published.
pub fn setup(dir: &Path) -> Hall {
    let hall = support::township(dir);
    support::publish(&hall, CODE, Ts::parse("2026-01-05").unwrap());
    hall
}

/// The case number of case `i`.
pub fn number(i: usize) -> String {
    format!("{CODE}-{i:08}")
}

fn write_case(hall: &Hall, i: usize) {
    let base = Ts::parse("2026-03-02 08:00").unwrap().plus(i as i64 * 7);
    let number = number(i);
    hall.accept_case(support::new_case(CODE, Some(number.clone()), base), base)
        .unwrap();
    for (k, kind) in events().into_iter().enumerate() {
        let at = base.plus(k as i64 + 1);
        hall.record_event(&number, kind, "李四", at, at).unwrap();
    }
}

/// Writes `cases` complete cases from `writers` threads, reporting
/// progress every 10 s.
pub fn fill(hall: &Hall, cases: usize, writers: usize) {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let mut report = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cases {
                    break;
                }
                write_case(hall, i);
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
}
