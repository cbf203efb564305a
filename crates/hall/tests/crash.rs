//! Crash safety: a child process accepting and advancing cases is killed
//! with SIGKILL at random moments, many times over one data directory.
//! After every kill the node must open cleanly, every document must load,
//! the case index must agree with the documents, and no acknowledged write
//! may be missing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/mod.rs"]
mod support;

use hallsync_hall::{case_field, Hall};
use hallsync_model::case::Outcome;
use hallsync_model::{EventKind, Ts};
use hallsync_store::{StoreOptions, Term};
use rand::Rng;

const ROUNDS: usize = 30;
const CODE: &str = "CRASH1";

fn base() -> Ts {
    Ts::parse("2026-11-02 08:00").unwrap()
}

fn setup(dir: &Path) {
    support::publish(&support::township(dir), CODE, base());
}

/// The events each case goes through after being accepted.
fn steps() -> Vec<EventKind> {
    vec![
        EventKind::StepStarted {
            step: "审核".into(),
        },
        EventKind::StepFinished {
            step: "审核".into(),
            pass: true,
            opinion: "同意".into(),
        },
        EventKind::Concluded {
            outcome: Outcome::Approved,
            opinion: "准予".into(),
            certificate: "批准书".into(),
        },
        EventKind::Published,
    ]
}

/// Runs in the child: writes cases until killed, printing each
/// acknowledgement as `ack NUMBER EVENTS`.
#[test]
#[ignore = "run by killed_writers_lose_no_acknowledged_write in a child process"]
fn crash_child() {
    let (Ok(dir), Ok(round)) = (
        std::env::var("HALLSYNC_CRASH_DIR"),
        std::env::var("HALLSYNC_CRASH_ROUND"),
    ) else {
        return;
    };
    // A small memtable: checkpoints run all the time, so kills land in
    // the middle of them too.
    let options = StoreOptions {
        memtable_bytes: 64 << 10,
        ..StoreOptions::default()
    };
    let hall = Hall::open(Path::new(&dir), options).unwrap();
    for i in 0.. {
        let number = format!("R{round}-{i:05}");
        let mut at = base().plus(i * 60);
        hall.accept_case(support::new_case(CODE, Some(number.clone()), at), at)
            .unwrap();
        println!("ack {number} 2");
        for (k, kind) in steps().into_iter().enumerate() {
            at = at.plus(10);
            hall.record_event(&number, kind, "李四", at, at).unwrap();
            println!("ack {number} {}", k + 3);
        }
    }
}

#[test]
fn killed_writers_lose_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let exe = std::env::current_exe().unwrap();
    let mut acked: BTreeMap<String, usize> = BTreeMap::new();
    let mut rng = rand::rng();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HALLSYNC_CRASH_DIR", dir.path())
            .env("HALLSYNC_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let mut p = l.strip_prefix("ack ")?.split(' ');
                    Some((p.next()?.to_string(), p.next()?.parse::<usize>().ok()?))
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(40..400)));
        child.kill().unwrap();
        child.wait().unwrap();
        for (number, events) in reader.join().unwrap() {
            let e = acked.entry(number).or_default();
            *e = (*e).max(events);
        }

        let hall = Hall::open(dir.path(), StoreOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: the node does not open after a kill: {e}"));
        hall.store()
            .verify()
            .unwrap_or_else(|e| panic!("round {round}: store damaged: {e}"));
        for (number, events) in &acked {
            let (case, row) = hall
                .case(number, base())
                .unwrap_or_else(|e| panic!("round {round}: acknowledged case {number} lost: {e}"));
            assert!(
                case.events.len() >= *events,
                "round {round}: case {number} has {} events, {events} were acknowledged",
                case.events.len()
            );
            let rec = hall.store().index_record(&row.id).unwrap().unwrap();
            let state = Term::Exact(case_field::STATE, vec![case.view().state.code()]);
            assert!(
                rec.terms.contains(&state),
                "round {round}: index out of step for {number}"
            );
        }
    }
    assert!(
        acked.len() >= ROUNDS,
        "too few writes acknowledged ({}) for the test to mean anything",
        acked.len()
    );
    eprintln!(
        "{} cases, {} events acknowledged across {ROUNDS} kills",
        acked.len(),
        acked.values().sum::<usize>()
    );
}
