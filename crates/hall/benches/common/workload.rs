//! The benchmark workload shared by the store and sync benchmarks: a
//! township writing complete cases (accept + 8 events) from many windows at
//! once. Included with `#[path]`; needs `mod support` beside it.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hallsync_hall::{Hall, NewCase};
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

/// Picks one of `options` for case `i` and a salt, so that cases differ as
/// real ones do (applicants, handlers' opinions) rather than repeating one
/// text, which would flatter every compression figure.
fn pick(options: &[&'static str], i: usize, salt: usize) -> &'static str {
    options[(i.wrapping_mul(2_654_435_761) >> (salt * 3)) % options.len()]
}

/// The eight events after acceptance that complete case `i`.
pub fn events(i: usize) -> [EventKind; 8] {
    let s = |x: &str| x.to_string();
    let review = pick(
        &[
            "材料齐全，符合条件",
            "经核查，申请材料真实有效",
            "现场踏勘无异议，符合规划要求",
            "申请人已补齐户籍证明，符合条件",
            "公示期满无异议",
            "经村民代表会议讨论同意",
        ],
        i,
        1,
    );
    let decision = pick(
        &["同意", "同意，按规定办理", "准予办理", "经研究同意"],
        i,
        2,
    );
    let delivery = pick(&["窗口领取", "邮寄送达", "网上送达", "村代办员代领"], i, 3);
    [
        EventKind::StepStarted { step: s("审核") },
        EventKind::StepFinished {
            step: s("审核"),
            pass: true,
            opinion: s(review),
        },
        EventKind::StepStarted { step: s("决定") },
        EventKind::StepFinished {
            step: s("决定"),
            pass: true,
            opinion: s(decision),
        },
        EventKind::FeeCharged {
            name: s("工本费"),
            amount_fen: 500 + (i % 4) as i64 * 500,
        },
        EventKind::Concluded {
            outcome: Outcome::Approved,
            opinion: s("准予许可"),
            certificate: format!("宅基地批准书 2026-{:06}", i + 1),
        },
        EventKind::CertificateDelivered {
            method: s(delivery),
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

/// When case `i` is received and accepted.
pub fn received_at(i: usize) -> Ts {
    Ts::parse("2026-03-02 08:00").unwrap().plus(i as i64 * 7)
}

/// Who records case `i`'s events after acceptance.
pub fn handler(i: usize) -> &'static str {
    pick(&["李四", "王五", "陈红", "周平"], i, 7)
}

/// When case `i`'s event `k` (of [`events`]) happens.
pub fn event_at(i: usize, k: usize) -> Ts {
    received_at(i).plus(k as i64 + 1)
}

/// Case `i` as received at the window: a different applicant each time.
pub fn new_case(i: usize, at: Ts) -> NewCase {
    const SURNAMES: &[&str] = &[
        "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
    ];
    const GIVEN: &[&str] = &[
        "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
        "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建国",
    ];
    let mut case = support::new_case(CODE, Some(number(i)), at);
    case.applicant.name = format!("{}{}", pick(SURNAMES, i, 4), pick(GIVEN, i, 5));
    let first17 = format!(
        "14021219{:02}{:02}{:02}{:03}",
        50 + i % 50,
        1 + i % 12,
        1 + i % 28,
        i % 1_000
    );
    let check = hallsync_model::idcheck::resident_id_check(&first17).unwrap_or('X');
    case.applicant.id_number = format!("{first17}{check}");
    case.by = pick(&["王芳", "李静", "赵磊", "孙丽"], i, 6).to_string();
    case
}

/// The cases `batch`, complete: all accepted, then each one's first event,
/// then each one's second, and so on.
fn write_cases(hall: &Hall, batch: std::ops::Range<usize>) {
    for i in batch.clone() {
        hall.accept_case(new_case(i, received_at(i)), received_at(i))
            .unwrap();
    }
    let events: Vec<_> = batch.clone().map(events).collect();
    for k in 0..events[0].len() {
        for (i, kinds) in batch.clone().zip(&events) {
            let at = event_at(i, k);
            hall.record_event(&number(i), kinds[k].clone(), handler(i), at, at)
                .unwrap();
        }
    }
}

/// Writes `cases` complete cases from `writers` threads, each taking
/// `spread` cases at a time and advancing them together (1: one case from
/// acceptance to its last event, then the next), reporting progress every
/// 10 s.
pub fn fill(hall: &Hall, cases: usize, writers: usize, spread: usize) {
    fill_range(hall, 0..cases, writers, spread);
}

/// As [`fill`], the cases numbered `range`.
pub fn fill_range(hall: &Hall, range: std::ops::Range<usize>, writers: usize, spread: usize) {
    let (first, cases) = (range.start, range.end);
    let next = AtomicUsize::new(first);
    let start = Instant::now();
    let mut report = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                s.spawn(|| loop {
                    let i = next.fetch_add(spread, Ordering::Relaxed);
                    if i >= cases {
                        break;
                    }
                    write_cases(hall, i..(i + spread).min(cases));
                })
            })
            .collect();
        // Until every writer is done (or has failed: the scope then
        // reports its panic).
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(200));
            if report.elapsed() > Duration::from_secs(10) {
                let done = next.load(Ordering::Relaxed).min(cases) - first;
                eprintln!(
                    "  {done}/{} cases, {:.0}/s",
                    cases - first,
                    done as f64 / start.elapsed().as_secs_f64()
                );
                report = Instant::now();
            }
        }
    });
}
