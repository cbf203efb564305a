//! End-to-end tests of the `hallsync` binary, run as an administrator would.

#[path = "../crates/hall/tests/support/hostile.rs"]
mod hostile;
#[path = "../crates/hall/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOW: &str = "2026-11-23 10:00";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn hs(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hallsync"))
        .args(args)
        .env("HALLSYNC_DATA_DIR", dir)
        .env("HALLSYNC_NOW", NOW)
        .env("HALLSYNC_OPERATOR", "王芳")
        .env_remove("HALLSYNC_LOG")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = hs(dir, args);
    assert!(
        out.status.success(),
        "hallsync {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = hs(dir, args);
    assert!(
        !out.status.success(),
        "hallsync {args:?} should have failed"
    );
    String::from_utf8(out.stderr).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &a)).unwrap()
}

const ITEM: &str = "11140212MB1234567K500001";

fn township(dir: &Path) {
    ok(
        dir,
        &[
            "init",
            "--id",
            "tw-101",
            "--name",
            "样例镇便民服务中心",
            "--region",
            "140212101",
            "--level",
            "township",
        ],
    );
    let catalogue = repo().join("topology/sample-city/catalogue-township-140212101.csv");
    ok(
        dir,
        &[
            "item",
            "import",
            catalogue.to_str().unwrap(),
            "--publish-by",
            "法制办李明",
        ],
    );
    let calendar = repo().join("topology/sample-city/calendar-2026.csv");
    ok(dir, &["calendar", "import", calendar.to_str().unwrap()]);
}

fn case_count(dir: &Path) -> usize {
    json(dir, &["case", "list", "--all", "--limit", "10000"])["page"]["items"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_working_day_at_a_township_hall() {
    let d = tempfile::tempdir().unwrap();
    township(d.path());
    working_day(d.path());
}

/// The same day's work typed while the hall's node runs: every command
/// goes through its API (the node holds the store) and prints what it
/// prints with no node running.
#[test]
fn a_working_day_through_the_running_node() {
    let fed = tempfile::tempdir().unwrap();
    federation(fed.path(), &free_addr());
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    township(dir);
    let _node = spawn_run(dir, &fed.path().join("certs/bundles/tw-101"));
    let start = std::time::Instant::now();
    while !dir.join("api.json").exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the node never published its API"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    working_day(dir);
    assert!(dir.join("api.json").exists(), "the node ran throughout");
}

fn working_day(dir: &Path) {
    let items = json(dir, &["item", "list", "--status", "published"]);
    assert_eq!(items["total"], 58);

    // One case accepted three weeks ago and never advanced: overdue.
    let old = json(
        dir,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三丰",
            "--id-number",
            "140212199001011237",
            "--at",
            "2026-11-02 09:30",
        ],
    );
    let old_no = old["header"]["number"].as_str().unwrap().to_string();
    assert_eq!(old_no, format!("{ITEM}-20261102-0001"));
    // One accepted last week and handled: due soon, not overdue.
    let new = json(
        dir,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "李四",
            "--at",
            "2026-11-13 15:00",
        ],
    );
    let new_no = new["header"]["number"].as_str().unwrap().to_string();
    ok(
        dir,
        &[
            "case",
            "event",
            &new_no,
            "--at",
            "2026-11-16 09:00",
            "step-start",
            "--step",
            "审核",
        ],
    );
    ok(
        dir,
        &[
            "case",
            "event",
            &new_no,
            "--at",
            "2026-11-16 11:00",
            "step-finish",
            "--step",
            "审核",
            "--opinion",
            "同意",
        ],
    );
    ok(
        dir,
        &[
            "case",
            "event",
            &new_no,
            "--at",
            "2026-11-16 12:00",
            "publish",
        ],
    );

    let overdue = json(dir, &["case", "list", "--overdue"]);
    let numbers: Vec<&str> = overdue["page"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["header"]["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec![old_no.as_str()]);
    let soon = json(dir, &["case", "list", "--due-within", "5"]);
    let numbers: Vec<&str> = soon["page"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["header"]["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec![new_no.as_str()]);
    assert_eq!(soon["page"]["items"][0]["view"]["state"], "Handling");

    // Tables for people.
    let table = ok(dir, &["case", "list"]);
    assert!(
        table.contains("OVERDUE")
            && table.contains("not published")
            && table.contains("张**")
            && !table.contains("张三丰"),
        "{table}"
    );
    let shown = ok(dir, &["case", "show", &old_no]);
    assert!(
        shown.contains("24:00") && shown.contains("张三丰"),
        "{shown}"
    );

    // Supervision cards at the fixed now: the old case is past its
    // committed due time and unpublished; the new one neither.
    let cards = json(dir, &["warning", "list"]);
    let of = |rule: &str| -> Vec<(String, String)> {
        cards["page"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["rule"] == rule)
            .map(|w| {
                (
                    w["number"].as_str().unwrap().to_string(),
                    w["card"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        of("case_time_limit"),
        [(old_no.clone(), "yellow".to_string())]
    );
    assert_eq!(of("disclosure"), [(old_no.clone(), "red".to_string())]);
    let yellow = json(dir, &["warning", "list", "--card", "yellow"]);
    assert_eq!(yellow["page"]["total"], 1);
    assert!(fails(dir, &["warning", "list", "--card", "purple"]).contains("notice"));
    assert!(ok(dir, &["case", "show", &old_no]).contains("supervision cards"));

    // Conclude the old one late; it leaves the open lists.
    ok(
        dir,
        &[
            "case",
            "event",
            &old_no,
            "conclude",
            "--outcome",
            "approved",
            "--certificate",
            "宅基地批准书 001",
        ],
    );
    assert!(json(dir, &["case", "list", "--overdue"])["page"]["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let done = json(dir, &["case", "list", "--state", "approved"]);
    assert_eq!(
        done["page"]["items"][0]["clock"]["over_committed"], true,
        "concluded late stays late"
    );

    // The raw document opens with any Automerge implementation.
    let file = dir.join("case.automerge");
    let id = format!("case:140212101:{old_no}");
    ok(dir, &["doc", "export", &id, "-o", file.to_str().unwrap()]);
    let mut doc = automerge::AutoCommit::load(&std::fs::read(&file).unwrap()).unwrap();
    assert!(!doc.get_heads().is_empty());
    let shown = json(dir, &["doc", "show", &id]);
    assert_eq!(shown["schema"], "hallsync/case/1");
    assert_eq!(shown["number"], old_no.as_str());
    assert_eq!(shown["events"].as_object().unwrap().len(), 3);

    // November's statistics, and the monthly report holding the same
    // numbers: two received, one concluded (late), cards as the list had.
    let stats = json(
        dir,
        &["stats", "--from", "2026-11-01", "--to", "2026-11-30"],
    );
    let total = &stats["total"];
    assert_eq!(stats["to"], "2026-11-23", "no day after today");
    assert_eq!(total["received"], 2);
    assert_eq!(total["concluded"], 1);
    assert_eq!(total["committed_cases"], 1);
    assert_eq!(total["on_time"], 0);
    assert_eq!(total["open"], 1);
    assert_eq!(total["overdue"], 0);
    assert!(
        total["cards_total"]["yellow"].as_i64().unwrap() >= 1,
        "{total}"
    );
    let by_day = json(dir, &["stats", "--from", "2026-11-01", "--by", "day"]);
    let days: Vec<&str> = by_day["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(
        days.contains(&"2026-11-02") && days.contains(&"2026-11-13"),
        "{days:?}"
    );
    let book = dir.join("monthly.xlsx");
    ok(
        dir,
        &[
            "report",
            "monthly",
            "--month",
            "2026-11",
            "-o",
            book.to_str().unwrap(),
        ],
    );
    use calamine::{Data, Reader};
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&book).unwrap();
    let sheet = wb.worksheet_range("本级").unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    let heads: Vec<String> = rows[2].iter().map(|c| c.to_string()).collect();
    let total_row = rows.iter().find(|r| r[0] == "合计").expect("a total row");
    let cell = |name: &str| -> f64 {
        let col = heads.iter().position(|h| h == name).unwrap();
        match &total_row[col] {
            Data::Float(f) => *f,
            Data::Int(i) => *i as f64,
            other => panic!("{name}: {other:?}"),
        }
    };
    for (head, field) in [
        ("收件", "received"),
        ("办结", "concluded"),
        ("在办", "open"),
    ] {
        assert_eq!(cell(head), total[field].as_f64().unwrap(), "{head}");
    }
    assert_eq!(
        cell("黄牌"),
        total["cards_total"]["yellow"].as_f64().unwrap()
    );
    // Items by name as well as by code.
    let items = wb.worksheet_range("按事项").unwrap();
    let named = items
        .rows()
        .any(|r| r[0] == ITEM && r[1] == "农村村民宅基地审批");
    assert!(named, "{:?}", items.rows().collect::<Vec<_>>());
    let csv = dir.join("weekly.csv");
    ok(
        dir,
        &[
            "report",
            "weekly",
            "--week",
            "2026-11-04",
            "-o",
            csv.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let total_line = text.lines().find(|l| l.starts_with("本级,合计,")).unwrap();
    let fields: Vec<&str> = total_line.split(',').collect();
    assert_eq!(fields[3..5], ["1", "1"], "{text}");
    assert!(fails(dir, &["report", "monthly", "-o", "report.pdf"]).contains(".xlsx"));
    // An existing file is replaced only when asked; a month that has not
    // begun, or is not written as one, writes nothing.
    let again = [
        "report",
        "weekly",
        "--week",
        "2026-11-04",
        "-o",
        csv.to_str().unwrap(),
    ];
    let err = fails(dir, &again);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), text);
    ok(dir, &[&again[..], &["--force"]].concat());
    let later = dir.join("december.xlsx");
    let later = later.to_str().unwrap();
    let err = fails(
        dir,
        &["report", "monthly", "--month", "2026-12", "-o", later],
    );
    assert!(err.contains("has not begun"), "{err}");
    let err = fails(
        dir,
        &["report", "monthly", "--month", "2026-1", "-o", later],
    );
    assert!(err.contains("use YYYY-MM"), "{err}");
    assert!(!Path::new(later).exists());
    let err = fails(dir, &["stats", "--from", "2026-11-01 10:00"]);
    assert!(err.contains("is not a date: use YYYY-MM-DD"), "{err}");
    let err = fails(dir, &["stats", "--from", "2026-11-30"]);
    assert!(err.contains("is after today (2026-11-23)"), "{err}");
    let err = fails(dir, &["stats", "--to", "2026-10-31"]);
    assert!(err.contains("before the 1st of this month"), "{err}");

    // A backup (written by the node, if it runs), restored on a "new PC":
    // the same cases, the same items; an existing file is never replaced.
    let saved = tempfile::tempdir().unwrap();
    let file = saved.path().join("hall.backup");
    let done = json(dir, &["backup", "-o", file.to_str().unwrap()]);
    assert!(done["documents"].as_u64().unwrap() > 58, "{done}");
    assert!(fails(dir, &["backup", "-o", file.to_str().unwrap()]).contains("exists"));
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600, "a backup is its owner's alone");
    let new_pc = saved.path().join("new-pc");
    let new_pc = new_pc.as_path();
    let restored = json(new_pc, &["restore", "--from", file.to_str().unwrap()]);
    assert_eq!(restored["documents"], done["documents"], "{restored}");
    let cases = |d: &Path| json(d, &["case", "list", "--all"])["page"]["items"].clone();
    assert_eq!(cases(new_pc), cases(dir));
    let err = fails(new_pc, &["restore", "--from", file.to_str().unwrap()]);
    assert!(err.contains("already"), "{err}");
    std::fs::write(&file, b"not a backup").unwrap();
    let elsewhere = saved.path().join("elsewhere");
    let err = fails(&elsewhere, &["restore", "--from", file.to_str().unwrap()]);
    assert!(err.contains("not a usable hallsync backup"), "{err}");
    assert!(!elsewhere.exists());
}

#[test]
fn the_review_workflow_from_the_command_line() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(
        dir,
        &[
            "init",
            "--id",
            "tw-101",
            "--name",
            "样例镇",
            "--region",
            "140212101",
            "--level",
            "township",
        ],
    );
    let add = [
        "item",
        "add",
        "--code",
        "X1",
        "--basic-code",
        "0101",
        "--name",
        "宅基地审批",
        "--category",
        "行政许可",
        "--agency",
        "样例镇人民政府",
        "--statutory",
        "20wd",
        "--committed",
        "10wd",
    ];
    assert!(ok(dir, &add).contains("created as a draft"));
    assert!(fails(dir, &["item", "publish", "X1"])
        .contains("cannot mark the item published while it is draft"));
    assert!(
        fails(dir, &["item", "review", "X1", "--decision", "return"])
            .contains("reason is required")
    );
    ok(
        dir,
        &[
            "item",
            "review",
            "X1",
            "--decision",
            "return",
            "--reason",
            "依据条款有误",
        ],
    );
    assert!(ok(dir, &add).contains("unchanged"));
    let mut revised = add.to_vec();
    let last = revised.len() - 1;
    revised[last] = "8wd";
    assert!(ok(dir, &revised).contains("revised"));
    ok(dir, &["item", "review", "X1", "--decision", "approve"]);
    ok(dir, &["item", "publish", "X1"]);
    assert!(fails(dir, &["item", "suspend", "X1"]).contains("reason"));
    ok(dir, &["item", "suspend", "X1", "--reason", "上位法修订"]);
    ok(dir, &["item", "publish", "X1"]);
    ok(dir, &["item", "revoke", "X1", "--reason", "事项取消"]);
    let item = json(dir, &["item", "show", "X1"]);
    assert_eq!(item["version"], 2);
    assert_eq!(item["view"]["status"], "revoked");
    let actions: Vec<&str> = item["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 8);
    let err = fails(
        dir,
        &["case", "accept", "--item", "X1", "--applicant", "张三"],
    );
    assert!(err.contains("revoked"), "{err}");
}

#[test]
fn bad_input_names_the_problem_and_stores_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // Malformed region code, level mismatch: nothing created.
    let err = fails(
        dir,
        &[
            "init", "--id", "tw", "--name", "x", "--region", "14021210", "--level", "township",
        ],
    );
    assert!(err.contains("must be 2, 4, 6, 9 or 12 digits"), "{err}");
    let err = fails(
        dir,
        &[
            "init", "--id", "tw", "--name", "x", "--region", "140212", "--level", "township",
        ],
    );
    assert!(err.contains("county code"), "{err}");
    assert!(!dir.join("node.toml").exists());
    assert!(fails(dir, &["case", "list"]).contains("run `hallsync init` first"));

    township(dir);
    // Unknown item; impossible date; invalid order.
    assert!(fails(
        dir,
        &["case", "accept", "--item", "NOPE", "--applicant", "张三"]
    )
    .contains("no catalogue item"));
    assert!(fails(
        dir,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三",
            "--at",
            "2026-02-30"
        ]
    )
    .contains("not a valid date"));
    assert!(fails(
        dir,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三",
            "--channel",
            "pigeon"
        ]
    )
    .contains("channel"));
    assert_eq!(case_count(dir), 0);
    let row = json(
        dir,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三",
            "--receive-only",
            "--at",
            "2026-11-20 09:00",
        ],
    );
    let no = row["header"]["number"].as_str().unwrap().to_string();
    let err = fails(
        dir,
        &["case", "event", &no, "conclude", "--outcome", "approved"],
    );
    assert!(
        err.contains("cannot record concluded while the case is in state 1 received"),
        "{err}"
    );
    let err = fails(
        dir,
        &["case", "event", &no, "conclude", "--outcome", "refused"],
    );
    assert!(err.contains("refusal must give its reasons"), "{err}");
    ok(
        dir,
        &["case", "event", &no, "withdraw", "--reason", "申请人撤回"],
    );
    let err = fails(dir, &["case", "event", &no, "accept"]);
    assert!(err.contains("withdrawn"), "{err}");
    let shown = json(dir, &["case", "show", &no]);
    assert_eq!(shown["case"]["events"].as_array().unwrap().len(), 2);

    // A spreadsheet with broken rows: good rows stored, bad rows reported by line.
    let sheet = dir.join("bad.csv");
    std::fs::write(
        &sheet,
        "事项名称,基本编码,实施编码,权力类别,实施主体,法定时限,承诺时限\n\
         好事项,0101,GOOD1,行政许可,样例镇人民政府,20个工作日,10个工作日\n\
         坏类别,0102,BAD1,行政摊派,样例镇人民政府,20个工作日,10个工作日\n\
         坏时限,0103,BAD2,行政许可,样例镇人民政府,二十天,10个工作日\n",
    )
    .unwrap();
    let out = hs(dir, &["item", "import", sheet.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3: category") && err.contains("line 4: statutory_limit"),
        "{err}"
    );
    assert!(ok(dir, &["item", "show", "GOOD1"]).contains("draft"));
    assert!(fails(dir, &["item", "show", "BAD1"]).contains("no catalogue item"));
    let txt = dir.join("x.pdf");
    std::fs::write(&txt, "%PDF").unwrap();
    assert!(fails(dir, &["item", "import", txt.to_str().unwrap()]).contains("use a .csv or .xlsx"));

    // Truncated and foreign document files.
    let id = format!("case:140212101:{no}");
    let file = dir.join("doc.bin");
    ok(dir, &["doc", "export", &id, "-o", file.to_str().unwrap()]);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 7]).unwrap();
    assert!(fails(dir, &["doc", "import", file.to_str().unwrap()])
        .contains("not an Automerge document"));
    std::fs::write(&file, b"{\"json\": true}").unwrap();
    assert!(fails(dir, &["doc", "import", file.to_str().unwrap()])
        .contains("not an Automerge document"));
    let mut foreign = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut foreign, automerge::ROOT, "todo", "buy milk")
        .unwrap();
    std::fs::write(&file, foreign.save()).unwrap();
    assert!(fails(dir, &["doc", "import", file.to_str().unwrap()]).contains("no schema field"));
    assert!(fails(dir, &["doc", "show", "case:140212101"]).contains("not of the form"));
    assert_eq!(case_count(dir), 1);

    // A broken calendar changes nothing.
    let cal = dir.join("cal.csv");
    std::fs::write(&cal, "2026-13-01,holiday,x\n").unwrap();
    assert!(fails(dir, &["calendar", "import", cal.to_str().unwrap()]).contains("line 1"));
    assert_eq!(
        json(dir, &["calendar", "show"])[0]["days"]
            .as_array()
            .unwrap()
            .len(),
        39
    );
}

#[test]
fn what_a_clerk_types_or_a_disk_suffers_is_refused_or_reported_plainly() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    township(dir);
    // One over-long field: refused at the door, naming the field and the
    // limit, once, and nothing stored.
    let long = "张".repeat(5_000);
    let err = fails(
        dir,
        &["case", "accept", "--item", ITEM, "--applicant", &long],
    );
    assert!(
        err.contains("field applicant.name: is longer than 4096 characters"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line, no library noise: {err}");
    assert_eq!(case_count(dir), 0);
    let case = json(
        dir,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三",
            "--at",
            "2026-11-16 09:00",
        ],
    );
    let no = case["header"]["number"].as_str().unwrap().to_string();
    let by = format!("--by={long}");
    let err = fails(
        dir,
        &[
            "case",
            "event",
            &no,
            &by,
            "--at",
            "2026-11-16 09:00",
            "publish",
        ],
    );
    assert!(err.contains("longer than 4096"), "{err}");
    // A file for a directory: said so.
    let file = dir.join("node.toml");
    let err = fails(&file, &["case", "list"]);
    assert!(err.contains("is, or lies under, a file"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Ten more events at the same minute fold in the order recorded.
    let at = ["--at", "2026-11-16 09:00"];
    for step in ["一", "二", "三", "四"] {
        ok(
            dir,
            &[
                &["case", "event", &no][..],
                &at,
                &["step-start", "--step", step],
            ]
            .concat(),
        );
        ok(
            dir,
            &[
                &["case", "event", &no][..],
                &at,
                &["step-finish", "--step", step, "--opinion", "同意"],
            ]
            .concat(),
        );
    }
    ok(
        dir,
        &[
            &["case", "event", &no][..],
            &at,
            &["conclude", "--outcome", "approved"],
        ]
        .concat(),
    );
    ok(
        dir,
        &[&["case", "event", &no][..], &at, &["publish"]].concat(),
    );
    let shown = json(dir, &["case", "show", &no]);
    assert_eq!(shown["row"]["view"]["state"], "Approved", "{shown}");
    assert_eq!(shown["row"]["view"]["conflicts"], serde_json::json!([]));

    // A directory where a file should be: said so, once.
    let err = fails(dir, &["calendar", "import", dir.to_str().unwrap()]);
    assert!(err.contains("is a directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A snapshot sled left half-written when the disk filled: ignored.
    std::fs::write(dir.join("store/sled/snap.00000000DEADBEEF.generating"), []).unwrap();
    assert_eq!(
        json(dir, &["case", "list", "--all"])["page"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // `repair` asks for the loss to be accepted; on a whole log it says so.
    let err = fails(dir, &["repair"]);
    assert!(err.contains("--accept-log-loss"), "{err}");
    let out = ok(dir, &["repair", "--accept-log-loss"]);
    assert!(out.contains("nothing was discarded"), "{out}");

    // The store gone: reported, not replaced by an empty one.
    std::fs::rename(dir.join("store"), dir.join("store.moved")).unwrap();
    let err = fails(dir, &["case", "list"]);
    assert!(err.contains("missing"), "{err}");
    assert!(!dir.join("store").exists());
    std::fs::rename(dir.join("store.moved"), dir.join("store")).unwrap();
    assert_eq!(
        json(dir, &["case", "list", "--all"])["page"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    at: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts `size` (e.g. "8m"), or says why it cannot.
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let at = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallDisk { at })
    }

    fn path(&self) -> &Path {
        self.at.path()
    }

    /// Bytes free.
    fn free(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(self.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.at.path()).status();
    }
}

#[test]
fn a_full_disk_refuses_the_write_and_the_store_opens_once_space_is_back() {
    let disk = match SmallDisk::mount("8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: cannot mount a small filesystem here ({why}); CI runs as root");
            return;
        }
    };
    let dir = disk.path().join("hall");
    township(&dir);
    let filler = disk.path().join("filler");
    let mut accepted = Vec::new();
    // Leaving more or less room, the disk fills at different steps: a
    // commit, a checkpoint, sled's own flush or snapshot, a new log segment.
    for room in [16 << 10, 64 << 10, 256 << 10] {
        std::fs::write(
            &filler,
            vec![1u8; disk.free().saturating_sub(room) as usize],
        )
        .unwrap();
        let failure = fill(&dir, &mut accepted);
        eprintln!(
            "{room} bytes of room: {} cases acknowledged so far; {failure}",
            accepted.len()
        );
        assert!(failure.contains("No space left on device"), "{failure}");
        assert!(failure.contains("free space"), "{failure}");
        // Space back: every command works, and every acknowledged case is
        // there.
        std::fs::remove_file(&filler).unwrap();
        assert_held(&dir, &accepted);
        let leftovers: Vec<String> = std::fs::read_dir(dir.join("store/sled"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".generating"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

/// Accepts cases with long applicants' names until a write is refused;
/// adds the numbers acknowledged to `accepted` and returns the refusal.
fn fill(dir: &Path, accepted: &mut Vec<String>) -> String {
    loop {
        let out = hs(
            dir,
            &[
                "--json",
                "case",
                "accept",
                "--item",
                ITEM,
                "--applicant",
                &"张".repeat(4_000),
                "--id-number",
                "140212199001011237",
            ],
        );
        if !out.status.success() {
            return String::from_utf8_lossy(&out.stderr).to_string();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        accepted.push(v["header"]["number"].as_str().unwrap().to_string());
        assert!(accepted.len() < 5_000, "the disk never filled");
    }
}

/// Every case in `accepted` is held at `dir`.
fn assert_held(dir: &Path, accepted: &[String]) {
    let held: Vec<String> = json(dir, &["case", "list", "--all", "--limit", "10000"])["page"]
        ["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["header"]["number"].as_str().unwrap().to_string())
        .collect();
    for no in accepted {
        assert!(held.contains(no), "{no} was acknowledged and is gone");
    }
}

/// A running node whose disk fills refuses the write and stops (its memory
/// may hold what never reached the disk, which it must not show); with
/// space back it starts again holding every acknowledged case.
#[test]
fn a_running_node_stops_when_its_disk_fills_and_starts_again_once_space_is_back() {
    let disk = match SmallDisk::mount("8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: cannot mount a small filesystem here ({why}); CI runs as root");
            return;
        }
    };
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    let bundle = fed.join("certs/bundles/tw-101");
    let dir = disk.path().join("hall");
    township(&dir);
    let mut node = run_logged("township", &dir, &bundle);
    node.wait_for("console and API at", std::time::Duration::from_secs(60));
    let accept = |applicant: &str| {
        hs(
            &dir,
            &[
                "--json",
                "case",
                "accept",
                "--item",
                ITEM,
                "--applicant",
                applicant,
                "--id-number",
                "140212199001011237",
            ],
        )
    };
    let filler = disk.path().join("filler");
    std::fs::write(
        &filler,
        vec![1u8; disk.free().saturating_sub(64 << 10) as usize],
    )
    .unwrap();
    let mut accepted = Vec::new();
    let failure = fill(&dir, &mut accepted);
    assert!(failure.contains("No space left on device"), "{failure}");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "still running after its store failed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    while let Ok(line) = node.log.recv_timeout(std::time::Duration::from_secs(5)) {
        node.lines.push(line);
    }
    assert!(!status.success(), "{}", node.log_text());
    assert!(
        node.log_text().contains("free space"),
        "{}",
        node.log_text()
    );
    std::fs::remove_file(&filler).unwrap();
    assert_held(&dir, &accepted);
    let mut node = run_logged("township", &dir, &bundle);
    node.wait_for("console and API at", std::time::Duration::from_secs(60));
    let out = accept("李四");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    node.stop("TERM", "after its disk was full");
}

#[test]
fn the_sample_county_catalogue_imports_whole() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(
        dir,
        &[
            "init",
            "--id",
            "county",
            "--name",
            "新荣区政务服务中心",
            "--region",
            "140212",
            "--level",
            "county",
        ],
    );
    let catalogue = repo().join("topology/sample-city/catalogue-county-140212.csv");
    let report = json(
        dir,
        &[
            "item",
            "import",
            catalogue.to_str().unwrap(),
            "--publish-by",
            "法制办",
        ],
    );
    assert_eq!(report["report"]["created"], 60);
    assert_eq!(report["report"]["problems"].as_array().unwrap().len(), 0);
    let items = json(dir, &["item", "list"]);
    let categories: std::collections::BTreeSet<&str> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["content"]["category"].as_str().unwrap())
        .collect();
    assert!(categories.len() >= 12, "{categories:?}");
}

/// The peak resident memory, in MiB, of the largest child this process has
/// waited for: getrusage reports no single child, so a bound on it holds for
/// every child so far (the other tests' are far smaller).
fn children_peak_mib() -> i64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    // Linux reports KiB.
    usage.max_rss() / 1024
}

#[test]
fn hostile_workbooks_are_refused_in_well_under_300_mb_and_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    township(dir);
    let items = json(dir, &["item", "list"]);
    let cases = [
        hostile::whole_sheet_dimension(dir),
        hostile::huge_cell(dir),
        hostile::million_rows(dir),
        hostile::lying_size(dir),
        hostile::too_many_columns(dir),
        hostile::too_many_parts(dir),
        hostile::bloated_styles(dir),
        hostile::lying_string_count(dir),
    ];
    for case in cases {
        let file = case.file.to_str().unwrap();
        let out = hs(dir, &["item", "import", file]);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{}: {err}", case.what);
        assert!(
            err.starts_with(&format!("error: {file}: ")) && err.lines().count() == 1,
            "{}: one line naming the file: {err}",
            case.what
        );
        for w in case.refusal {
            assert!(err.contains(w), "{}: {w:?} missing from {err}", case.what);
        }
        let peak = children_peak_mib();
        println!("{}: peak {peak} MiB so far", case.what);
        assert!(peak < 300, "{}: a child peaked at {peak} MiB", case.what);
    }
    assert_eq!(json(dir, &["item", "list"]), items);

    // A dimension is never believed: the small table under one that claims
    // the whole sheet imports.
    let file = hostile::small_table_claiming_the_whole_sheet(dir);
    let report = json(dir, &["item", "import", file.to_str().unwrap()]);
    assert_eq!(report["report"]["created"], 1);
}

/// `hallsync` with the federation files of `fed` and the data directory
/// `data`.
/// Carries document `id` from one data directory to another as a file, the
/// way an administrator would on a memory stick.
fn carry(from: &Path, to: &Path, id: &str) {
    let file = to.join("carried.automerge");
    ok(
        from,
        &["doc", "export", id, "--output", file.to_str().unwrap()],
    );
    ok(to, &["doc", "import", file.to_str().unwrap()]);
}

#[test]
fn supervision_orders_from_the_command_line() {
    let (t, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (town, county) = (t.path(), c.path());
    township(town);
    ok(
        county,
        &[
            "init",
            "--id",
            "cn-212",
            "--name",
            "样例县政务服务中心",
            "--region",
            "140212",
            "--level",
            "county",
        ],
    );
    let accept = [
        "case",
        "accept",
        "--item",
        ITEM,
        "--applicant",
        "张三丰",
        "--number",
        "A-1",
        "--at",
        "2026-11-02 09:30",
    ];
    ok(town, &accept);
    let issue = |dir: &Path, unit: &str, extra: &[&str]| {
        let mut a = vec![
            "order",
            "issue",
            "--unit",
            unit,
            "--case",
            "A-1",
            "--rule",
            "case_time_limit",
            "--reason",
            "超过承诺时限未办结",
        ];
        a.extend_from_slice(extra);
        hs(dir, &a)
    };
    let stderr = |o: Output| String::from_utf8(o.stderr).unwrap();
    let err = stderr(issue(county, "140212101", &[]));
    assert!(err.contains("no copy of case:140212101:A-1"), "{err}");
    carry(town, county, "case:140212101:A-1");
    let err = stderr(issue(county, "140212101", &["--card", "purple"]));
    assert!(err.contains("use notice, yellow, red"), "{err}");
    let err = stderr(issue(town, "140212", &[]));
    assert!(err.contains("not below"), "{err}");
    // The case is late against its commitment, not its statutory limit: it
    // holds a yellow card, so a red one is not ordered; nor is a reply due
    // at once or in a year.
    let err = stderr(issue(county, "140212101", &["--card", "red"]));
    assert!(
        err.contains("holds a yellow card of case_time_limit")
            && err.contains("issue the order at yellow"),
        "{err}"
    );
    for within in ["0wd", "61d"] {
        let err = stderr(issue(county, "140212101", &["--reply-within", within]));
        assert!(
            err.contains("must be more than zero and at most 60 days"),
            "{err}"
        );
    }
    // A complaint about the case is ordered by hand, with no card.
    ok(
        county,
        &[
            "order",
            "issue",
            "--unit",
            "140212101",
            "--case",
            "A-1",
            "--rule",
            "complaint_reply",
            "--card",
            "red",
            "--reason",
            "群众投诉办理缓慢，请核实答复",
        ],
    );
    let id = "order:140212101:cn-212.1";

    carry(county, town, id);
    let list = json(town, &["order", "list"])["page"]["items"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["view"]["state"], "open");
    assert_eq!(list[0]["header"]["card"], "red");
    let shown = json(town, &["case", "show", "A-1"]);
    assert_eq!(shown["orders"][0]["id"], id);
    assert!(ok(town, &["case", "show", "A-1"]).contains("supervision orders about this case"));
    let err = fails(county, &["order", "reply", "cn-212.1", "--text", "x"]);
    assert!(
        err.contains("reply is for the hall of region 140212101"),
        "{err}"
    );
    ok(town, &["order", "reply", "cn-212.1", "--text", "已办结"]);
    carry(town, county, id);
    let err = fails(
        county,
        &[
            "order", "close", "cn-212.1", "--result", "fixed", "--text", "x",
        ],
    );
    assert!(
        err.contains("use rectified, not_rectified, withdrawn"),
        "{err}"
    );
    ok(
        county,
        &[
            "order",
            "close",
            "cn-212.1",
            "--result",
            "rectified",
            "--text",
            "经核实已整改",
        ],
    );
    let shown = json(county, &["order", "show", "cn-212.1"]);
    assert_eq!(shown["view"]["state"], "closed");
    assert_eq!(shown["events"].as_array().unwrap().len(), 2);
    assert!(ok(county, &["order", "list", "--open"]).contains("0 order(s)"));
    let err = fails(county, &["order", "show", "cn-212.7"]);
    assert!(err.contains("no supervision order"), "{err}");

    // The county's rules order its halls' yellow time-limit cards by
    // themselves; the township appeals, the county revokes the card.
    let err = fails(county, &["order", "auto"]);
    assert!(err.contains("name no automatic orders"), "{err}");
    let err = fails(town, &["order", "auto"]);
    assert!(err.contains("this hall is a township"), "{err}");
    let err = fails(county, &["rules", "set", "auto_order.complaint_reply=red"]);
    assert!(err.contains("order issue"), "{err}");
    let err = fails(
        county,
        &["rules", "set", "--weights", "on_time=40,on_time=60"],
    );
    assert!(err.contains("on_time is given more than once"), "{err}");
    let err = fails(county, &["rules", "set", "delivery=2d", "delivery=3d"]);
    assert!(err.contains("delivery is given more than once"), "{err}");
    let err = fails(county, &["rules", "set", "auto_order_reply=1441h"]);
    assert!(err.contains("at most 60 days"), "{err}");
    let err = fails(
        county,
        &["rules", "set", "auto_order.case_time_limit=purple"],
    );
    assert!(err.contains("use notice, yellow, red or off"), "{err}");
    ok(
        county,
        &[
            "rules",
            "set",
            "auto_order.case_time_limit=yellow",
            "auto_order_reply=2wd",
        ],
    );
    ok(county, &["rules", "publish"]);
    assert!(ok(county, &["rules", "show"]).contains("case_time_limit=yellow (reply within 2wd)"));
    let auto = json(county, &["order", "auto"]);
    let issued = auto.as_array().unwrap();
    assert_eq!(issued.len(), 1, "{auto}");
    assert_eq!(issued[0]["header"]["card"], "yellow");
    assert_eq!(issued[0]["header"]["issued_by"], "自动督办");
    assert!(ok(county, &["order", "auto"]).contains("no order to issue"));
    let err = stderr(issue(county, "140212101", &["--card", "yellow"]));
    assert!(
        err.contains("order cn-212.2 of this hub already names the yellow card"),
        "{err}"
    );
    let id = "order:140212101:cn-212.2";
    carry(county, town, id);
    let appeal = [
        "order",
        "appeal",
        "cn-212.2",
        "--text",
        "申请人补正期间不应计时",
    ];
    assert!(ok(town, &appeal).contains("appealed"));
    let err = fails(town, &appeal);
    assert!(err.contains("appealed once"), "{err}");
    carry(town, county, id);
    let err = fails(
        county,
        &[
            "order",
            "decide",
            "cn-212.2",
            "--verdict",
            "maybe",
            "--text",
            "x",
        ],
    );
    assert!(err.contains("use upheld, revoked"), "{err}");
    let err = fails(
        town,
        &[
            "order",
            "decide",
            "cn-212.2",
            "--verdict",
            "revoked",
            "--text",
            "x",
        ],
    );
    assert!(
        err.contains("decide is for the hall of region 140212"),
        "{err}"
    );
    ok(
        county,
        &[
            "order",
            "decide",
            "cn-212.2",
            "--verdict",
            "revoked",
            "--text",
            "经核实补正期间计时有误",
        ],
    );
    let shown = json(county, &["order", "show", "cn-212.2"]);
    assert_eq!(shown["view"]["state"], "closed");
    assert_eq!(shown["view"]["appeal"]["verdict"][0], "revoked");
    let standing = json(county, &["warning", "list", "--rule", "case_time_limit"]);
    assert_eq!(standing["page"]["total"], 0, "{standing}");
    let all = json(
        county,
        &["warning", "list", "--rule", "case_time_limit", "--ended"],
    );
    assert_eq!(all["page"]["items"][0]["revoked"], true, "{all}");
    assert!(ok(county, &["order", "auto"]).contains("no order to issue"));
    let err = stderr(issue(county, "140212101", &["--card", "yellow"]));
    assert!(
        err.contains("was revoked on appeal (order cn-212.2)"),
        "{err}"
    );
    let stats = json(
        county,
        &["stats", "--unit", "140212101", "--from", "2026-11-01"],
    );
    assert_eq!(stats["total"]["appeals"], 1, "{stats}");
    assert_eq!(stats["total"]["revoked"]["yellow"], 1, "{stats}");

    // The evaluation ranks the township for November, when it worked; in
    // October it did nothing and is not ranked; December has not begun.
    let november = json(county, &["evaluate", "--month", "2026-11"]);
    assert_eq!(november["rows"][0]["key"], "140212101", "{november}");
    assert_eq!(november["rows"][0]["rank"], 1, "{november}");
    let october = json(county, &["evaluate", "--month", "2026-10"]);
    let rows = october["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["rank"].is_null()), "{october}");
    let err = fails(county, &["evaluate", "--month", "2026-12"]);
    assert!(err.contains("has not begun"), "{err}");

    // A fee the catalogue does not list (the item charges nothing): a red
    // anomaly card from the instant it is charged.
    ok(
        town,
        &[
            "case",
            "event",
            "A-1",
            "fee",
            "--name",
            "资料费",
            "--yuan",
            "20",
        ],
    );
    let anomaly = json(town, &["warning", "list", "--rule", "anomaly"]);
    assert_eq!(anomaly["page"]["total"], 1, "{anomaly}");
    assert_eq!(anomaly["page"]["items"][0]["card"], "red", "{anomaly}");
    assert!(ok(town, &["case", "show", "A-1"]).contains("目录外收费"));
}

#[test]
fn a_case_not_forwarded_or_not_filed_in_time_raises_an_anomaly() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    township(dir);
    // Monday 16 Nov 09:00: a case the county decides (上报件), one of an
    // item disclosed on request only (依申请公开), and an ordinary one.
    let accept = |item: &str| {
        let case = json(
            dir,
            &[
                "case",
                "accept",
                "--item",
                item,
                "--applicant",
                "张三",
                "--id-number",
                "140212199001011237",
                "--at",
                "2026-11-16 09:00",
            ],
        );
        case["header"]["number"].as_str().unwrap().to_string()
    };
    let up = accept("11140212MB1234567K500006");
    let unpublished = accept("11140212MB1234567K500026");
    let ordinary = accept(ITEM);
    fn event<'a>(case: &'a str, at: &'a str, kind: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["case", "event", case, "--at", at];
        a.extend_from_slice(kind);
        a
    }
    let err = fails(
        dir,
        &event(
            &ordinary,
            "2026-11-16 10:00",
            &["forward", "--to", "县民政局"],
        ),
    );
    assert!(err.contains("上报件"), "{err}");
    let err = fails(
        dir,
        &event(
            &ordinary,
            "2026-11-16 10:00",
            &["file", "--office", "县监察室"],
        ),
    );
    assert!(err.contains("publication"), "{err}");

    // A working day to forward it, 12 hours to file the other: nothing at
    // 20:59, the filing's yellow card from 21:00:01, the forwarding's from
    // Tuesday 09:00:01.
    let anomalies = |now: &str| {
        let page = json(dir, &["--now", now, "warning", "list", "--rule", "anomaly"]);
        let mut cards: Vec<(String, String)> = page["page"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let case = c["number"].as_str().unwrap().to_string();
                (case, c["card"].as_str().unwrap().to_string())
            })
            .collect();
        cards.sort();
        cards
    };
    assert!(anomalies("2026-11-16 20:59").is_empty());
    assert_eq!(
        anomalies("2026-11-16 21:01"),
        vec![(unpublished.clone(), "yellow".to_string())]
    );
    let both = anomalies("2026-11-17 09:01");
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&(up.clone(), "yellow".to_string())));
    assert!(both.contains(&(unpublished.clone(), "red".to_string())));

    // Forwarded and filed: the cards end, and the case shows both.
    ok(
        dir,
        &event(
            &up,
            "2026-11-17 10:00",
            &["forward", "--to", "县自然资源局"],
        ),
    );
    ok(
        dir,
        &event(
            &unpublished,
            "2026-11-17 10:00",
            &["file", "--office", "县电子监察室"],
        ),
    );
    assert!(anomalies("2026-11-18 09:00").is_empty());
    assert!(ok(dir, &["case", "show", &up]).contains("forwarded"));
    let err = fails(
        dir,
        &event(
            &up,
            "2026-11-17 11:00",
            &["forward", "--to", "县自然资源局"],
        ),
    );
    assert!(err.contains("already"), "{err}");
}

fn fed_args<'a>(fed: &'a Path, rest: &[&'a str]) -> Vec<String> {
    let mut a: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    a.extend([
        "--certs-dir".to_string(),
        fed.join("certs").to_str().unwrap().to_string(),
        "--topology".to_string(),
        fed.join("topology.toml").to_str().unwrap().to_string(),
    ]);
    a
}

fn fed_ok(fed: &Path, rest: &[&str]) -> String {
    let a = fed_args(fed, rest);
    ok(fed, &a.iter().map(String::as_str).collect::<Vec<_>>())
}

fn fed_fails(fed: &Path, rest: &[&str]) -> String {
    let a = fed_args(fed, rest);
    fails(fed, &a.iter().map(String::as_str).collect::<Vec<_>>())
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A `hallsync run` child, killed if a failing test leaves it running.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_run(data: &Path, bundle: &Path) -> Node {
    spawn_run_at(data, bundle, None)
}

/// A command that finds the store held by a process that has not
/// published its API (a node starting, a moment before it serves) waits
/// for it instead of failing, and goes on once the store is free.
#[test]
fn a_command_waits_for_a_node_that_is_starting() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("town");
    let holder = support::township(&dir);
    let cli = Command::new(env!("CARGO_BIN_EXE_hallsync"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["case", "list", "--all"])
        .env_remove("HALLSYNC_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Past the store's own patience with a lock (3 s).
    std::thread::sleep(std::time::Duration::from_secs(5));
    drop(holder);
    let out = cli.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("is starting or stopping; waiting for it"),
        "{err}"
    );
}

/// `hallsync run`, at a fixed time instead of the system clock if given.
fn spawn_run_at(data: &Path, bundle: &Path, now: Option<&str>) -> Node {
    let mut run = Command::new(env!("CARGO_BIN_EXE_hallsync"));
    run.arg("--data-dir")
        .arg(data)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .env_remove("HALLSYNC_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(now) = now {
        run.env("HALLSYNC_NOW", now);
    }
    Node(run.spawn().unwrap())
}

/// A township whose clock is ten minutes slow: its county shows it in
/// `status` (text and JSON), and the township sees the county ahead.
#[test]
fn a_node_whose_clock_is_off_is_flagged_at_its_peer() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    let (town, county) = (fed.join("town"), fed.join("county"));
    township(&town);
    let slow = hallsync_model::Ts(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 600,
    );
    let _cn = spawn_run(&county, &fed.join("certs/bundles/cn-212"));
    let _tw = spawn_run_at(
        &town,
        &fed.join("certs/bundles/tw-101"),
        Some(&slow.to_string()),
    );
    wait_in_sync(&town, &county);
    let skew = |dir: &Path, peer: &str| {
        let st = json(dir, &["status"]);
        st["status"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == peer)
            .and_then(|p| p["clock_skew_secs"].as_i64())
    };
    let start = std::time::Instant::now();
    while skew(&county, "tw-101").is_none() || skew(&town, "cn-212").is_none() {
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let behind = skew(&county, "tw-101").unwrap();
    assert!((-700..=-590).contains(&behind), "{behind}");
    assert!((590..=700).contains(&skew(&town, "cn-212").unwrap()));
    let text = ok(&county, &["status"]);
    assert!(text.contains("tw-101's clock is 10 min behind"), "{text}");

    // What the township stamps meanwhile is flagged wherever it is shown:
    // its registry entry says when its clock was off.
    let slow = slow.to_string();
    let accepted = json(
        &town,
        &[
            "--now",
            &slow,
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三",
        ],
    );
    let id = accepted["id"].as_str().unwrap().to_string();
    let start = std::time::Instant::now();
    let shown = loop {
        let out = hs(&county, &["--json", "case", "show", &id]);
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if !v["clock_off"].as_array().unwrap().is_empty() {
                break v;
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no flag at the county: {}\n{}",
            ok(&town, &["status"]),
            ok(&county, &["case", "show", &id])
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let flag = &shown["clock_off"][0];
    assert_eq!(flag["node"], "tw-101", "{shown}");
    assert!(
        (-700..=-590).contains(&flag["ahead_secs"].as_i64().unwrap()),
        "{shown}"
    );
    let text = ok(&county, &["case", "show", &id]);
    assert!(text.contains("[clock 10 min behind]"), "{text}");
    assert!(text.contains("may be wrong"), "{text}");
    // The county's own clock was right: nothing of its own is in doubt.
    let entry = |id: &str| {
        let st = json(&county, &["status"]);
        let known = st["status"]["registry"].as_array().unwrap().clone();
        known.into_iter().find(|e| e["id"] == id)
    };
    let start = std::time::Instant::now();
    while entry("tw-101").is_none_or(|e| e["clock_off"].is_null()) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{}",
            ok(&county, &["status"])
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let ahead = entry("tw-101").unwrap()["clock_off"].as_i64().unwrap();
    assert!((-700..=-590).contains(&ahead), "{ahead}");
    assert!(entry("cn-212").unwrap()["clock_off"].is_null());
    assert!(ok(&county, &["status"]).contains("off now: clock 10 min behind"));
}

fn in_sync(data: &Path) -> bool {
    let out = hs(data, &["--json", "status"]);
    out.status.success()
        && serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .map(|v| {
                v["running"] == true
                    && v["status"]["peers"]
                        .as_array()
                        .is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["in_sync"] == true))
            })
            .unwrap_or(false)
}

/// A loopback address with a free UDP port.
fn free_addr() -> String {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// A CA, the county cn-212 at `addr` and the township tw-101 below it.
fn federation(fed: &Path, addr: &str) {
    fed_ok(fed, &["ca", "init", "--name", "样例市政务服务"]);
    fed_ok(
        fed,
        &[
            "node",
            "add",
            "--id",
            "cn-212",
            "--name",
            "样例县政务服务中心",
            "--level",
            "county",
            "--region",
            "140212",
            "--addr",
            addr,
            "--console",
            "127.0.0.1:0",
        ],
    );
    fed_ok(
        fed,
        &[
            "node",
            "add",
            "--id",
            "tw-101",
            "--name",
            "样例镇便民服务中心",
            "--level",
            "township",
            "--region",
            "140212101",
            "--parent",
            "cn-212",
            "--console",
            "127.0.0.1:0",
        ],
    );
}

/// Waits until both nodes say every link is in sync.
fn wait_in_sync(a: &Path, b: &Path) {
    let start = std::time::Instant::now();
    while !(in_sync(a) && in_sync(b)) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "no sync: {}",
            ok(a, &["status"])
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn terminate(node: &mut Node) {
    let sent = Command::new("kill")
        .args(["-TERM", &node.0.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    assert!(node.0.wait().unwrap().success(), "a clean exit on SIGTERM");
}

#[test]
fn a_county_killed_mid_catch_up_loses_nothing() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    // Short link timings, so the township notices the dead county in
    // seconds rather than a minute.
    let town_bundle = fed.join("certs/bundles/tw-101");
    let cfg = town_bundle.join("hallsync.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("idle_timeout_secs = 60", "idle_timeout_secs = 3")
        .replace("keep_alive_secs = 15", "keep_alive_secs = 1")
        .replace("max_backoff_secs = 300", "max_backoff_secs = 2");
    std::fs::write(&cfg, text).unwrap();
    let (town, county) = (fed.join("town"), fed.join("county"));
    // Enough that the catch-up outlasts the county's first status write
    // (once a second), when the kill comes.
    let total = 4_000;
    {
        let hall = support::township(&town);
        let at = hallsync_model::Ts::parse(NOW).unwrap();
        support::publish(&hall, "K1", at);
        for i in 0..total {
            hall.accept_case(support::new_case("K1", Some(format!("K1-{i}")), at), at)
                .unwrap();
        }
    }
    let county_bundle = fed.join("certs/bundles/cn-212");
    let mut cn = spawn_run(&county, &county_bundle);
    let mut tw = spawn_run(&town, &town_bundle);
    let received = || {
        std::fs::read(county.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["peers"][0]["received_docs"].as_u64())
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while received() == 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(120));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cn.0.kill().unwrap();
    cn.0.wait().unwrap();
    let at_kill = received();
    assert!(
        at_kill < total as u64,
        "the catch-up finished before the kill; the test proves nothing"
    );
    // The county comes back on the same data directory and catches up.
    let mut cn = spawn_run(&county, &county_bundle);
    wait_in_sync(&town, &county);
    terminate(&mut tw);
    terminate(&mut cn);
    assert_eq!(case_count(&county), total);
}

#[test]
fn a_federation_from_the_command_line() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    #[cfg(unix)]
    assert_eq!(mode(&fed.join("certs/ca.key")), 0o600);
    assert!(fed_fails(fed, &["ca", "init", "--name", "again"]).contains("already"));
    // Mistakes an administrator makes, each refused with nothing written:
    // (id, level, region, parent) and what the refusal says.
    for (id, level, region, parent, says) in [
        (
            "tw-9",
            "township",
            "140212109",
            "nobody",
            "not in the topology",
        ),
        ("tw-9", "county", "140212109", "cn-212", "township code"),
        ("tw-9", "township", "140213101", "cn-212", "not above"),
        (
            "cn-212",
            "township",
            "140212109",
            "cn-212",
            "already exists",
        ),
    ] {
        let args = [
            "node", "add", "--id", id, "--name", "x", "--level", level, "--region", region,
            "--parent", parent,
        ];
        let err = fed_fails(fed, &args);
        assert!(err.contains(says), "{err}");
    }
    let bundle = fed.join("certs/bundles/tw-101");
    for f in [
        "hallsync.toml",
        "node.crt",
        "node.key",
        "ca.crt",
        "crl.pem",
        "topology.toml",
    ] {
        assert!(bundle.join(f).exists(), "bundle lacks {f}");
    }
    #[cfg(unix)]
    assert_eq!(mode(&bundle.join("node.key")), 0o600);
    let list: serde_json::Value =
        serde_json::from_str(&fed_ok(fed, &["--json", "node", "list"])).unwrap();
    assert_eq!(list["node"].as_array().unwrap().len(), 2);
    let show: serde_json::Value =
        serde_json::from_str(&fed_ok(fed, &["--json", "node", "show", "cn-212"])).unwrap();
    assert_eq!(show["children"][0], "tw-101");

    // Run both as real processes; the township's cases reach the county.
    let (town, county) = (fed.join("town"), fed.join("county"));
    township(&town);
    ok(
        &town,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三",
            "--at",
            "2026-11-20 09:00",
        ],
    );
    // The county holds that case already, and its rules order every time
    // limit card of its halls by themselves: the running county issues the
    // order at once, and it reaches the township.
    ok(
        &county,
        &[
            "init",
            "--id",
            "cn-212",
            "--name",
            "样例县政务服务中心",
            "--region",
            "140212",
            "--level",
            "county",
        ],
    );
    let first = json(&town, &["case", "list"])["page"]["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    carry(&town, &county, &first);
    ok(
        &county,
        &["rules", "set", "auto_order.case_time_limit=notice"],
    );
    ok(&county, &["rules", "publish"]);
    let mut cn = spawn_run(&county, &fed.join("certs/bundles/cn-212"));
    let mut tw = spawn_run(&town, &bundle);
    wait_in_sync(&town, &county);
    let orders = |dir: &Path| json(dir, &["order", "list"])["page"]["items"].clone();
    let start = std::time::Instant::now();
    while orders(&town).as_array().is_none_or(|o| o.is_empty()) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the running county issued no order by its rules: {}",
            orders(&county)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let auto = orders(&town);
    assert_eq!(auto[0]["header"]["issued_by"], "自动督办", "{auto}");
    assert_eq!(auto[0]["header"]["case"], first.as_str());
    // While the nodes run, commands go through them: a case accepted at
    // the township shows at the county within seconds, and the county finds
    // it by its number alone.
    assert_eq!(case_count(&county), 1);
    let live = json(
        &town,
        &["case", "accept", "--item", ITEM, "--applicant", "赵六"],
    );
    let number = live["header"]["number"].as_str().unwrap().to_string();
    let start = std::time::Instant::now();
    while case_count(&county) < 2 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "a case accepted at a running township never reached the running county"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let shown = json(&county, &["case", "show", &number]);
    assert_eq!(shown["row"]["header"]["hall"], "tw-101");
    terminate(&mut tw);
    terminate(&mut cn);
    assert_eq!(case_count(&county), 2);
    assert!(ok(&county, &["status"]).contains("NOT running"));

    // Revocation: a new CRL naming the township's certificate.
    let crl = std::fs::read_to_string(fed.join("certs/crl.pem")).unwrap();
    fed_ok(fed, &["node", "revoke", "tw-101"]);
    assert_ne!(
        std::fs::read_to_string(fed.join("certs/crl.pem")).unwrap(),
        crl
    );
    assert!(fed_fails(fed, &["node", "revoke", "tw-101"]).contains("already revoked"));
    let show: serde_json::Value =
        serde_json::from_str(&fed_ok(fed, &["--json", "node", "show", "tw-101"])).unwrap();
    assert!(show["node"]["revoked"].is_string());
}

/// What a stop may take in these tests: the target is 2 s, but the tests
/// share two cores with each other.
const STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// A `hallsync run` process whose log is kept, to wait for a line in it and
/// to show it when something fails. Killed if a test fails first.
struct Running {
    name: &'static str,
    child: std::process::Child,
    log: std::sync::mpsc::Receiver<String>,
    lines: Vec<String>,
    /// Lines before this one were matched by an earlier `wait_for`.
    checked: usize,
}

fn run_logged(name: &'static str, data: &Path, bundle: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallsync"))
        .arg("--data-dir")
        .arg(data)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .env_remove("HALLSYNC_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        // Read to the end whatever happens, so the node never blocks on a
        // full pipe.
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    Running {
        name,
        child,
        log,
        lines: Vec::new(),
        checked: 0,
    }
}

impl Running {
    fn log_text(&self) -> String {
        self.lines.join("\n")
    }

    /// Waits for a log line containing `needle`, after the last one found.
    fn wait_for(&mut self, needle: &str, within: std::time::Duration) {
        let end = std::time::Instant::now() + within;
        loop {
            if let Some(i) = self.lines[self.checked..]
                .iter()
                .position(|l| l.contains(needle))
            {
                self.checked += i + 1;
                return;
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) => self.lines.push(line),
                Err(_) => panic!(
                    "{}: no {needle:?} in the log within {within:?}:\n{}",
                    self.name,
                    self.log_text()
                ),
            }
        }
    }

    /// Sends `signal` (INT or TERM) and waits for the process to end; checks
    /// it ended cleanly within `STOP_BOUND`, having closed its store, and
    /// returns how long it took. `state` says what the node was doing.
    fn stop(&mut self, signal: &str, state: &str) -> std::time::Duration {
        let start = std::time::Instant::now();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "{}: still running a minute after SIG{signal}",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let took = start.elapsed();
        // The rest of the log: the reader ends at the end of the pipe.
        while let Ok(line) = self.log.recv_timeout(std::time::Duration::from_secs(5)) {
            self.lines.push(line);
        }
        println!(
            "{} {state}: stopped {:.3} s after SIG{signal}",
            self.name,
            took.as_secs_f64()
        );
        assert!(
            status.success(),
            "{}: exit {status} on SIG{signal}:\n{}",
            self.name,
            self.log_text()
        );
        assert!(
            took < STOP_BOUND,
            "{}: took {took:?} to stop on SIG{signal} ({state}):\n{}",
            self.name,
            self.log_text()
        );
        let log = self.log_text();
        assert!(
            log.contains(&format!("stopping: SIG{signal} received")) && log.contains("is free"),
            "{}: the log does not say it stopped and closed its store:\n{log}",
            self.name
        );
        took
    }

    /// SIGKILL: a machine that lost power.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The federation, with a UDP socket at the county's address that takes
/// every datagram and never answers: a county whose address is right but
/// whose machine is not (or a link that drops everything).
fn silent_county(fed: &Path) -> std::net::UdpSocket {
    let addr = free_addr();
    let socket = std::net::UdpSocket::bind(&addr).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    federation(fed, &addr);
    socket
}

/// Waits for the next datagram, after dropping those already there.
fn next_datagram(socket: &std::net::UdpSocket) {
    let mut buf = [0u8; 2048];
    socket.set_nonblocking(true).unwrap();
    while socket.recv(&mut buf).is_ok() {}
    socket.set_nonblocking(false).unwrap();
    socket.recv(&mut buf).expect("a datagram from the township");
}

/// Short link timings in a bundle, so that a dead link is noticed in
/// seconds.
fn short_timings(bundle: &Path) {
    let cfg = bundle.join("hallsync.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("idle_timeout_secs = 60", "idle_timeout_secs = 2")
        .replace("keep_alive_secs = 15", "keep_alive_secs = 1");
    std::fs::write(&cfg, text).unwrap();
}

#[test]
fn a_township_whose_county_never_answers_stops_at_once_in_the_handshake() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    let county = silent_county(fed);
    let (town, bundle) = (fed.join("town"), fed.join("certs/bundles/tw-101"));
    for signal in ["TERM", "INT"] {
        let mut tw = run_logged("township", &town, &bundle);
        // Its first handshake packet: the dial is under way, and would
        // wait a minute (the idle timeout) for an answer.
        next_datagram(&county);
        tw.stop(signal, "in a handshake nobody answers");
        assert_eq!(case_count(&town), 0, "the data directory is free");
    }
}

#[test]
fn a_township_backing_off_between_attempts_stops_at_once() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    let _county = silent_county(fed);
    let (town, bundle) = (fed.join("town"), fed.join("certs/bundles/tw-101"));
    short_timings(&bundle);
    let mut tw = run_logged("township", &town, &bundle);
    // The handshake gives up after 2 s; the next attempt is 0.5-1 s away.
    tw.wait_for("next attempt in", std::time::Duration::from_secs(20));
    tw.stop("INT", "backing off");
    assert_eq!(case_count(&town), 0, "the data directory is free");
}

#[test]
fn a_county_stops_at_once_with_its_township_linked_and_a_township_when_its_county_died() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    let (town, county) = (fed.join("town"), fed.join("county"));
    let town_bundle = fed.join("certs/bundles/tw-101");
    let county_bundle = fed.join("certs/bundles/cn-212");
    township(&town);
    ok(
        &town,
        &[
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "张三",
            "--at",
            "2026-11-20 09:00",
        ],
    );
    let mut cn = run_logged("county", &county, &county_bundle);
    let mut tw = run_logged("township", &town, &town_bundle);
    wait_in_sync(&town, &county);
    cn.stop("TERM", "with its township linked, in sync");
    assert_eq!(case_count(&county), 1);
    // The county said goodbye, and the township heard it.
    tw.wait_for("shutting down", std::time::Duration::from_secs(5));

    let mut cn = run_logged("county", &county, &county_bundle);
    wait_in_sync(&town, &county);
    // The county dies: the township's link looks alive until the idle
    // timeout (a minute), and nothing answers its goodbye.
    cn.kill();
    tw.stop("TERM", "linked to a county that died");
    assert_eq!(case_count(&town), 1);
}

#[test]
fn both_ends_of_a_catch_up_stop_at_once_and_keep_what_they_acknowledged() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    let county_addr = free_addr();
    federation(fed, &county_addr);
    let (town, county) = (fed.join("town"), fed.join("county"));
    let total = 600;
    {
        let hall = support::township(&town);
        let at = hallsync_model::Ts::parse(NOW).unwrap();
        support::publish(&hall, "K1", at);
        for i in 0..total {
            hall.accept_case(support::new_case("K1", Some(format!("K1-{i}")), at), at)
                .unwrap();
        }
    }
    // The township reaches its county through a slow link: the documents
    // go in parts of 256, the first one taking a few seconds.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt
        .block_on(hallsync_net::relay::Relay::start(
            county_addr.parse().unwrap(),
            10_000,
        ))
        .unwrap();
    let town_bundle = fed.join("certs/bundles/tw-101");
    let cfg = town_bundle.join("hallsync.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("addr = \"{county_addr}\""),
        &format!("addr = \"{}\"", relay.addr()),
    );
    std::fs::write(&cfg, text).unwrap();
    let county_bundle = fed.join("certs/bundles/cn-212");

    let mut cn = run_logged("county", &county, &county_bundle);
    let mut tw = run_logged("township", &town, &town_bundle);
    tw.wait_for("session established", std::time::Duration::from_secs(30));
    std::thread::sleep(std::time::Duration::from_millis(300));
    cn.stop("TERM", "receiving a catch-up");
    let at_stop = case_count(&county);
    // The county said goodbye, and the township heard it.
    tw.wait_for("shutting down", std::time::Duration::from_secs(5));

    let mut cn = run_logged("county", &county, &county_bundle);
    let received = || {
        std::fs::read(county.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["peers"][0]["received_docs"].as_u64())
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while received() == 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tw.stop("TERM", "sending a catch-up");
    assert_eq!(case_count(&town), total, "the data directory is free");
    cn.stop("INT", "after its township left");

    // Everything the county acknowledged is on its disk: its checkpoint of
    // the township's feed was written with the documents it covers.
    let county =
        hallsync_hall::Hall::open(&county, hallsync_store::StoreOptions::default()).unwrap();
    let town = hallsync_hall::Hall::open(&town, hallsync_store::StoreOptions::default()).unwrap();
    let acked = county.store().peer_checkpoint("tw-101").unwrap();
    assert_eq!(acked.feed, town.store().feed_id());
    assert!(acked.seq > 0, "the county acknowledged nothing");
    let mut covered = 0;
    for (seq, id) in town.store().feed_since(0, usize::MAX).unwrap() {
        if seq > acked.seq {
            break;
        }
        let theirs = county.store().heads(&id).unwrap().unwrap_or_default();
        for head in town.store().heads(&id).unwrap().unwrap() {
            assert!(theirs.contains(&head), "{id} acknowledged but not stored");
        }
        covered += 1;
    }
    println!(
        "the county had {at_stop} of {total} cases when stopped in the first session; it acknowledged {covered} documents in the second, all on its disk"
    );
}

/// A client of a console over HTTPS that trusts only the CA certificate in
/// `ca_pem`, as the command line does.
fn https_client(ca_pem: &str) -> ureq::Agent {
    hallsync_net::tls::provider();
    let ca = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into()
}

#[test]
fn a_console_beyond_the_hall_pc_is_https_from_the_federation_ca_or_does_not_start() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    let town = fed.join("town");
    township(&town);
    ok(
        &town,
        &["case", "accept", "--item", ITEM, "--applicant", "张三"],
    );
    let bundle = fed.join("certs/bundles/tw-101");
    let run = |what: &str| {
        let out = hs(&town, &["run", "--bundle", bundle.to_str().unwrap()]);
        assert!(!out.status.success(), "{what}: the node started");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!town.join("api.json").exists(), "{what}: api.json left");
        err
    };

    // Every address of the PC, but no certificate: refused, naming the fix.
    let cfg = bundle.join("hallsync.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("console = \"127.0.0.1:0\""), "{text}");
    std::fs::write(
        &cfg,
        text.replace("console = \"127.0.0.1:0\"", "console = \"0.0.0.0:0\""),
    )
    .unwrap();
    let err = run("no certificate");
    assert!(
        err.contains("HTTPS") && err.contains("console.crt") && err.contains("--console-host"),
        "{err}"
    );
    // `node add` will not issue a network console without its hosts.
    let err = fed_fails(
        fed,
        &[
            "node",
            "add",
            "--id",
            "tw-102",
            "--name",
            "x",
            "--level",
            "township",
            "--region",
            "140212102",
            "--parent",
            "cn-212",
            "--console",
            "0.0.0.0:7480",
        ],
    );
    assert!(err.contains("--console-host"), "{err}");

    // A certificate from the federation CA, but no operator to log in.
    fed_ok(
        fed,
        &[
            "node",
            "console",
            "tw-101",
            "--console",
            "0.0.0.0:0",
            "--console-host",
            "hall.example",
        ],
    );
    #[cfg(unix)]
    assert_eq!(mode(&bundle.join("console.key")), 0o600);
    let err = run("no operator");
    assert!(err.contains("operator add"), "{err}");
    let mut add = Command::new(env!("CARGO_BIN_EXE_hallsync"))
        .args([
            "operator",
            "add",
            "admin1",
            "--name",
            "管理员",
            "--role",
            "admin",
        ])
        .env("HALLSYNC_DATA_DIR", &town)
        .env_remove("HALLSYNC_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = add.stdin.take().unwrap();
        stdin.write_all(b"correct horse 1\n").unwrap();
    }
    assert!(add.wait().unwrap().success());

    // What the command line prints without the node, and then through it.
    let commands: [&[&str]; 4] = [
        &["case", "list"],
        &["--json", "case", "list", "--all"],
        &["item", "list"],
        &["--json", "calendar", "show"],
    ];
    let offline: Vec<String> = commands.iter().map(|c| ok(&town, c)).collect();
    let mut tw = spawn_run(&town, &bundle);
    let api_file = town.join("api.json");
    let start = std::time::Instant::now();
    while !api_file.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the node never published api.json"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    #[cfg(unix)]
    assert_eq!(mode(&api_file), 0o600);
    let api: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&api_file).unwrap()).unwrap();
    let url = api["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{api}");
    let ca = std::fs::read_to_string(bundle.join("ca.crt")).unwrap();
    assert_eq!(api["ca"], ca.as_str());
    for (command, before) in commands.iter().zip(&offline) {
        assert_eq!(&ok(&town, command), before, "{command:?} through the node");
    }
    ok(
        &town,
        &["case", "accept", "--item", ITEM, "--applicant", "李四"],
    );
    assert_eq!(case_count(&town), 2);

    // A client trusting the federation CA is served; operators log in
    // with a Secure cookie.
    let client = https_client(&ca);
    let mut me = client.get(&format!("{url}/api/v1/me")).call().unwrap();
    assert_eq!(me.status().as_u16(), 401);
    let body: serde_json::Value = me.body_mut().read_json().unwrap();
    assert_eq!(body["code"], "unauthorized");
    let login = client
        .post(&format!("{url}/api/v1/login"))
        .header("content-type", "application/json")
        .send(r#"{"login":"admin1","password":"correct horse 1"}"#)
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // One trusting another CA is refused in the handshake, and plain
    // HTTP is not served.
    let other = tempfile::tempdir().unwrap();
    fed_ok(other.path(), &["ca", "init", "--name", "另一个联盟"]);
    let other_ca = std::fs::read_to_string(other.path().join("certs/ca.crt")).unwrap();
    let refused = https_client(&other_ca)
        .get(&format!("{url}/api/v1/me"))
        .call();
    assert!(refused.is_err(), "a client not trusting the CA was served");
    let plain = url.replace("https://", "http://");
    let plain_answer = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(&format!("{plain}/api/v1/me"))
        .call();
    assert!(plain_answer.is_err(), "plain HTTP was served");
    terminate(&mut tw);
    assert!(!api_file.exists(), "api.json outlived the node");
}

#[test]
fn a_township_finds_its_crashed_county_back_before_the_idle_timeout() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    let (town, county) = (fed.join("town"), fed.join("county"));
    {
        let hall = support::township(&town);
        support::publish(&hall, "K1", hallsync_model::Ts::parse(NOW).unwrap());
    }
    let county_bundle = fed.join("certs/bundles/cn-212");
    let mut cn = spawn_run(&county, &county_bundle);
    let _tw = spawn_run(&town, &fed.join("certs/bundles/tw-101"));
    wait_in_sync(&town, &county);
    // A crash: no goodbye reaches the township, whose link (60 s idle
    // timeout, the default) still looks up.
    cn.0.kill().unwrap();
    cn.0.wait().unwrap();
    let _cn = spawn_run(&county, &county_bundle);
    let back = std::time::Instant::now();
    ok(
        &town,
        &[
            "case",
            "accept",
            "--item",
            "K1",
            "--applicant",
            "张三",
            "--number",
            "K1-after",
        ],
    );
    let id = "case:140212101:K1-after";
    while !hs(&county, &["doc", "show", id]).status.success() {
        // Recognising the restarted county's stateless reset, the township
        // dials again at its next packet (a keep-alive within 15 s).
        assert!(
            back.elapsed() < std::time::Duration::from_secs(40),
            "the case written after the county came back has not reached it"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    eprintln!("reached the restarted county after {:?}", back.elapsed());
}

/// `hallsync restore --bundle DIR` as a child process, its output kept.
fn spawn_restore(data: &Path, bundle: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_hallsync"))
        .arg("--data-dir")
        .arg(data)
        .args(["restore", "--bundle"])
        .arg(bundle)
        .env_remove("HALLSYNC_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A township PC dies with its disk. On a new one, `restore --bundle`
/// fetches every case from the county with its events, and the order the
/// county sent it, under a new actor; killed halfway it carries on where
/// it stopped; the county's `status` shows the restore; the hall works on.
#[test]
fn a_township_whose_disk_died_is_restored_from_its_county() {
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
    federation(fed, &free_addr());
    let town_bundle = fed.join("certs/bundles/tw-101");
    short_timings(&town_bundle);
    let (town, county) = (fed.join("town"), fed.join("county"));
    let total = 5_000;
    {
        let hall = support::township(&town);
        let at = hallsync_model::Ts::parse(NOW).unwrap();
        support::publish(&hall, "K1", at);
        for i in 0..total {
            hall.accept_case(support::new_case("K1", Some(format!("K1-{i}")), at), at)
                .unwrap();
        }
    }
    let old_actor = std::fs::read_to_string(town.join("node.toml")).unwrap();
    let county_bundle = fed.join("certs/bundles/cn-212");
    let mut cn = spawn_run(&county, &county_bundle);
    let mut tw = spawn_run(&town, &town_bundle);
    wait_in_sync(&town, &county);
    ok(
        &county,
        &[
            "order",
            "issue",
            "--unit",
            "140212101",
            "--case",
            "K1-7",
            "--rule",
            "complaint_reply",
            "--reason",
            "群众投诉办理缓慢",
        ],
    );
    let backup = fed.join("tw.backup");
    ok(&town, &["backup", "-o", backup.to_str().unwrap()]);
    ok(
        &town,
        &[
            "case",
            "event",
            "K1-9",
            "supplement-request",
            "--materials",
            "身份证复印件",
        ],
    );
    wait_in_sync(&town, &county);
    let listed = |dir: &Path| json(dir, &["case", "list", "--all", "--limit", "10000"]);
    let before = listed(&town);
    let shown = json(&town, &["case", "show", "K1-9"]);
    assert_eq!(
        json(&town, &["order", "list"])["page"]["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The PC dies with its disk.
    tw.0.kill().unwrap();
    tw.0.wait().unwrap();
    std::fs::remove_dir_all(&town).unwrap();

    // A bundle whose hallsync.toml was edited to name another hall is
    // refused before anything is made.
    let edited = fed.join("edited");
    std::fs::create_dir(&edited).unwrap();
    for f in std::fs::read_dir(&town_bundle).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, edited.join(f.file_name().unwrap())).unwrap();
    }
    let cfg = edited.join("hallsync.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replacen("id = \"tw-101\"", "id = \"tw-102\"", 1)).unwrap();
    let nowhere = fed.join("nowhere");
    let err = fails(&nowhere, &["restore", "--bundle", edited.to_str().unwrap()]);
    assert!(err.contains("but hallsync.toml says tw-102"), "{err}");
    assert!(!nowhere.exists());
    // The backup with the bundle: the backup, then what the county holds
    // beyond it, in one command; a backup of another hall is refused first.
    let (backup, county_b) = (backup.to_str().unwrap(), county_bundle.to_str().unwrap());
    let err = fails(
        &nowhere,
        &["restore", "--from", backup, "--bundle", county_b],
    );
    assert!(
        err.contains("is a backup of tw-101, but the bundle"),
        "{err}"
    );
    assert!(!nowhere.exists());
    let from_backup = fed.join("from-backup");
    let town_b = town_bundle.to_str().unwrap();
    let done = json(
        &from_backup,
        &["restore", "--from", backup, "--bundle", town_b],
    );
    assert_eq!(done["node"], "tw-101", "{done}");
    assert_eq!(
        json(&from_backup, &["case", "show", "K1-9"])["events"],
        shown["events"],
        "the event written after the backup came from the county"
    );
    std::fs::remove_dir_all(&from_backup).unwrap();

    // A restore killed a moment after it began leaves a directory the same
    // command carries on with.
    let mut first = spawn_restore(&town, &town_bundle);
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let finished_already = first.try_wait().unwrap().is_some();
    let _ = first.kill();
    let first = first.wait_with_output().unwrap();
    let out = if finished_already && first.status.success() {
        first
    } else {
        if town.join("node.toml").exists() {
            // Half restored: nothing is recorded, or a new case would take
            // a number the county already holds.
            let err = fails(
                &town,
                &["case", "accept", "--item", "K1", "--applicant", "半途"],
            );
            assert!(err.contains("being rebuilt from its parent"), "{err}");
        }
        let again = spawn_restore(&town, &town_bundle)
            .wait_with_output()
            .unwrap();
        let err = String::from_utf8_lossy(&again.stderr);
        if town.join("node.toml").exists() && !finished_already {
            assert!(err.contains("carrying on with the restore"), "{err}");
        }
        again
    };
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(&format!("{total} case(s), 1 order(s)")),
        "{said}"
    );
    assert!(
        said.contains("its registry entry notes the restore"),
        "{said}"
    );
    assert_ne!(
        std::fs::read_to_string(town.join("node.toml")).unwrap(),
        old_actor,
        "a new actor"
    );
    assert_eq!(listed(&town)["page"], before["page"]);
    assert_eq!(
        json(&town, &["case", "show", "K1-9"])["events"],
        shown["events"]
    );
    // Restoring over a hall that is whole is refused.
    let err = fails(
        &town,
        &["restore", "--bundle", town_bundle.to_str().unwrap()],
    );
    assert!(err.contains("is not being restored"), "{err}");

    // The hall carries on: a new case reaches the county, which shows the
    // restore in its registry.
    let mut tw = spawn_run(&town, &town_bundle);
    wait_in_sync(&town, &county);
    ok(
        &town,
        &[
            "case",
            "accept",
            "--item",
            "K1",
            "--applicant",
            "张三丰",
            "--number",
            "K1-new",
        ],
    );
    wait_in_sync(&town, &county);
    assert_eq!(case_count(&county), total + 1);
    // A restore while the hall's PC is up and linked is refused by the
    // county, which keeps the live link.
    let twin = fed.join("twin");
    let mut second = spawn_restore(&twin, &town_bundle);
    std::thread::sleep(std::time::Duration::from_secs(8));
    let _ = second.kill();
    let second = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("while the PC it replaces is still linked here"),
        "{err}"
    );
    // Refused every time it tried, not only the first.
    assert!(!second.status.success(), "{err}");
    assert!(!err.contains("caught up"), "{err}");
    ok(
        &town,
        &[
            "case",
            "accept",
            "--item",
            "K1",
            "--applicant",
            "李四",
            "--number",
            "K1-live",
        ],
    );
    wait_in_sync(&town, &county);
    assert_eq!(case_count(&county), total + 2);
    let status = ok(&county, &["status"]);
    assert!(
        status.contains("tw-101 was last restored at") && status.contains("caught up from cn-212"),
        "{status}"
    );
    terminate(&mut tw);
    terminate(&mut cn);
}
