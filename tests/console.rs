//! The web console in a real browser: Debian's headless Chromium, driven
//! over the DevTools protocol, against a county and a township running as
//! `hallsync run` processes and linked over QUIC. It does what the hall's
//! staff do, with the keyboard where they would, on a 1366×768 screen, and
//! keeps a screenshot of each step in `target/tmp/console-shots/` (a step
//! that fails leaves `FAILED-<step>.png`).
//!
//! Needs `chromium` (`apt-get install chromium`); `HALLSYNC_SKIP_BROWSER=1`
//! skips it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Emulation;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

const ITEM: &str = "11140212MB1234567K500001";
const PASSWORD: &str = "窗口-密码-2026";
const WIDTH: u32 = 1366;
const HEIGHT: u32 = 768;
/// How long anything may take to appear (a page, a record crossing the link).
const PATIENCE: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The browser to drive, or why the test cannot run.
fn chromium() -> Option<PathBuf> {
    if std::env::var_os("HALLSYNC_SKIP_BROWSER").is_some_and(|v| v == "1") {
        println!("HALLSYNC_SKIP_BROWSER=1: the console's browser test is skipped");
        return None;
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None => panic!(
            "the console's browser test needs Chromium: install it with `apt-get install chromium` \
             (Debian), or set HALLSYNC_SKIP_BROWSER=1 to skip this test"
        ),
    }
}

fn hs(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hallsync"))
        .args(args)
        .env("HALLSYNC_DATA_DIR", dir)
        .env("HALLSYNC_OPERATOR", "系统管理员")
        .env_remove("HALLSYNC_NOW")
        .env_remove("HALLSYNC_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{text}").unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    ok_with(dir, args, None)
}

fn ok_with(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = hs(dir, args, stdin);
    assert!(
        out.status.success(),
        "hallsync {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fed_ok(fed: &Path, rest: &[&str]) {
    let certs = fed.join("certs");
    let topology = fed.join("topology.toml");
    let mut args = rest.to_vec();
    args.extend([
        "--certs-dir",
        certs.to_str().unwrap(),
        "--topology",
        topology.to_str().unwrap(),
    ]);
    ok(fed, &args);
}

/// A `hallsync run` child, killed if the test ends early.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `hallsync run` and returns it with its console's base URL (from
/// the `api.json` it publishes once it listens).
fn run(data: &Path, bundle: &Path) -> (Node, String) {
    run_at(data, bundle, None)
}

/// [`run`], at a fixed time instead of the system clock if given (a PC
/// whose clock is off).
fn run_at(data: &Path, bundle: &Path, now: Option<&str>) -> (Node, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hallsync"));
    command
        .arg("--data-dir")
        .arg(data)
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .env_remove("HALLSYNC_NOW")
        .env_remove("HALLSYNC_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(now) = now {
        command.env("HALLSYNC_NOW", now);
    }
    let node = Node(command.spawn().unwrap());
    let start = Instant::now();
    loop {
        let published = std::fs::read(data.join("api.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter(|v| v["pid"] == node.0.id());
        if let Some(v) = published {
            return (
                node,
                v["url"].as_str().unwrap().trim_end_matches('/').into(),
            );
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the node did not publish api.json"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// An 18-digit resident identity number with its GB 11643 check digit
/// (`good`) or one off it.
fn id_number(first17: &str, good: bool) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let right = CHECK[(sum % 11) as usize];
    let digit = if good {
        right
    } else {
        CHECK[((sum + 1) % 11) as usize]
    };
    format!("{first17}{}", digit as char)
}

/// The browser, the screenshots it leaves, and the step it is at.
struct Session {
    tab: Arc<Tab>,
    shots: PathBuf,
    step: std::cell::RefCell<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let step = self.step.borrow().clone();
            if let Ok(png) =
                self.tab
                    .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            {
                let path = self.shots.join(format!("FAILED-{step}.png"));
                let _ = std::fs::write(&path, png);
                eprintln!("screenshot of the failed step: {}", path.display());
            }
        }
    }
}

impl Session {
    /// Names the step now under way (for the screenshot if it fails).
    fn step(&self, name: &str) {
        *self.step.borrow_mut() = name.to_string();
    }

    /// Keeps a screenshot of what the page shows now.
    fn shot(&self, name: &str) {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    fn eval(&self, js: &str) -> serde_json::Value {
        self.tab
            .evaluate(js, false)
            .unwrap_or_else(|e| panic!("{js}: {e}"))
            .value
            .unwrap_or(serde_json::Value::Null)
    }

    /// Does `act`, which leads to a new page, and waits until that page
    /// has loaded (the old one carried a mark the new one lacks).
    fn to_next_page(&self, act: impl FnOnce()) {
        self.eval("window.__hallsyncOld = true");
        act();
        let start = Instant::now();
        loop {
            let left = self
                .tab
                .evaluate(
                    "window.__hallsyncOld !== true && document.readyState === 'complete'",
                    false,
                )
                .ok()
                .and_then(|r| r.value)
                .is_some_and(|v| v == true);
            if left {
                break;
            }
            assert!(start.elapsed() < PATIENCE, "no new page after the action");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.check_page();
    }

    fn go(&self, url: &str) {
        self.to_next_page(|| {
            self.tab.navigate_to(url).unwrap();
        });
    }

    /// What every page must be: Chinese, fitting 1366 pixels wide, and
    /// loading nothing from anywhere but this node.
    fn check_page(&self) {
        let seen = self.eval(
            "JSON.stringify({lang: document.documentElement.lang,\
             wide: document.documentElement.scrollWidth,\
             foreign: performance.getEntriesByType('resource').map(e => e.name)\
               .filter(n => !n.startsWith(location.origin + '/'))})",
        );
        let seen: serde_json::Value = serde_json::from_str(seen.as_str().unwrap()).unwrap();
        let url = self.tab.get_url();
        assert_eq!(seen["lang"], "zh-CN", "{url}");
        assert!(
            seen["wide"].as_u64().unwrap() <= u64::from(WIDTH),
            "{url} is {} pixels wide: it scrolls sideways on a 1366×768 screen",
            seen["wide"]
        );
        assert_eq!(
            seen["foreign"],
            serde_json::json!([]),
            "{url} fetched from elsewhere"
        );
    }

    /// Waits for `selector` on the page, then runs `js` (a function of the
    /// element) on it and returns what it gives.
    fn on(&self, selector: &str, js: &str) -> serde_json::Value {
        let call = format!(
            "(e => e ? ({js})(e) : undefined)(document.querySelector({}))",
            serde_json::to_string(selector).unwrap()
        );
        let start = Instant::now();
        loop {
            let got = self.tab.evaluate(&call, false).ok().and_then(|r| r.value);
            if let Some(v) = got {
                return v;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{selector} not on {}",
                self.tab.get_url()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(&self, selector: &str) -> String {
        let text = self.on(selector, "e => e.innerText");
        text.as_str().unwrap().to_string()
    }

    /// Types `text` into the field (as one input, as a paste or an input
    /// method commits it).
    fn type_into(&self, selector: &str, text: &str) {
        self.on(selector, "e => { e.focus(); return true; }");
        self.tab.send_character(text).unwrap();
    }

    fn set(&self, selector: &str, value: &str) {
        let js = format!(
            "document.querySelector({}).value = {}",
            serde_json::to_string(selector).unwrap(),
            serde_json::to_string(value).unwrap()
        );
        self.eval(&js);
    }

    /// Activates a link, button or disclosure from the keyboard: focus it
    /// and press Enter.
    fn press(&self, selector: &str) {
        self.on(selector, "e => { e.focus(); return true; }");
        self.tab.press_key("Enter").unwrap();
    }

    fn press_to_next(&self, selector: &str) {
        self.to_next_page(|| self.press(selector));
    }

    /// Reloads `url` until `selector` shows `text` (a record crossing the
    /// link between two nodes).
    fn reload_until(&self, url: &str, selector: &str, text: &str) {
        let start = Instant::now();
        loop {
            self.go(url);
            let shown = self
                .tab
                .find_element(selector)
                .and_then(|e| e.get_inner_text())
                .is_ok_and(|t| t.contains(text));
            if shown {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{url}: {selector} never showed {text:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The kinds of event the case page offers.
    fn offered(&self) -> Vec<String> {
        let kinds = self.eval(
            "[...document.querySelectorAll('#actions form[data-kind]')]\
             .map(f => f.dataset.kind).join(' ')",
        );
        kinds
            .as_str()
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Logs in at `base` with the keyboard: name, Tab, password, Enter.
    fn log_in(&self, base: &str, login: &str, password: &str) {
        self.go(&format!("{base}/"));
        self.tab.wait_for_element("#login").unwrap();
        self.type_into("#login", login);
        self.tab.press_key("Tab").unwrap();
        self.tab.type_str(password).unwrap();
        self.to_next_page(|| {
            self.tab.press_key("Enter").unwrap();
        });
    }
}

#[test]
fn the_console_in_a_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let started = Instant::now();
    let fed = tempfile::tempdir().unwrap();
    let fed = fed.path();
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
            &free_addr(),
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
    let (county, town) = (fed.join("county"), fed.join("town"));
    let (_cn, cn_url) = run(&county, &fed.join("certs/bundles/cn-212"));
    let (tw, tw_url) = run(&town, &fed.join("certs/bundles/tw-101"));

    // The administrators' part, on the command line through the running nodes.
    let add = |dir: &Path, login: &str, name: &str, roles: &[&str]| {
        let mut args = vec!["operator", "add", login, "--name", name];
        for r in roles {
            args.extend(["--role", r]);
        }
        ok_with(dir, &args, Some(PASSWORD));
    };
    add(&town, "wangfang", "王芳", &["clerk", "reviewer"]);
    add(&county, "zhaoli", "赵立", &["supervisor", "clerk"]);
    let catalogue = repo().join("topology/sample-city/catalogue-township-140212101.csv");
    ok(
        &town,
        &[
            "item",
            "import",
            catalogue.to_str().unwrap(),
            "--publish-by",
            "法制办李明",
        ],
    );
    let calendar = repo().join("topology/sample-city/calendar-2026.csv");
    ok(&county, &["calendar", "import", calendar.to_str().unwrap()]);
    ok(&town, &["calendar", "import", calendar.to_str().unwrap()]);
    // Enough earlier cases for the list to run to two pages; the first
    // accepted 40 days ago, so that it carries red cards.
    let forty_days_ago = {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        hallsync_model::Ts(secs as i64 - 40 * 86_400).to_string()
    };
    for i in 0..16 {
        let number = id_number(&format!("14021219800101{:03}", 100 + i), true);
        let applicant = format!("申请人{i}");
        let mut args = vec![
            "case",
            "accept",
            "--item",
            "11140212MB1234567K500002",
            "--applicant",
            &applicant,
            "--id-number",
            &number,
        ];
        if i == 0 {
            args.extend(["--at", &forty_days_ago]);
        }
        ok(&town, &args);
    }

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-shots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let browser = Browser::new(
        LaunchOptions::default_builder()
            .path(Some(chromium))
            .window_size(Some((WIDTH, HEIGHT)))
            .sandbox(false)
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
    )
    .unwrap();
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(PATIENCE);
    // The window's size less the browser's own bars would leave less; the
    // page gets the whole hall screen.
    let screen: Emulation::SetDeviceMetricsOverride = serde_json::from_value(serde_json::json!({
        "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false,
    }))
    .unwrap();
    tab.call_method(screen).unwrap();
    let s = Session {
        tab,
        shots,
        step: std::cell::RefCell::new("start".into()),
    };
    let screen = s.eval("window.innerWidth + 'x' + window.innerHeight");
    assert_eq!(screen, format!("{WIDTH}x{HEIGHT}"));

    // Logging in: a wrong password is refused, the right one lets in.
    s.step("login-refused");
    s.log_in(&tw_url, "wangfang", "not-the-password");
    assert!(s.text(".refusal").contains("用户名或密码不正确"));
    s.shot("01-login-refused");
    s.step("login");
    s.log_in(&tw_url, "wangfang", PASSWORD);
    assert!(s.tab.get_url().ends_with("/window"), "{}", s.tab.get_url());
    assert_eq!(s.text("#operator"), "王芳");

    // 窗口: find the item by a word of its name, with the keyboard.
    s.step("find-item");
    s.type_into("#q", "宅基地");
    s.to_next_page(|| {
        s.tab.press_key("Enter").unwrap();
    });
    assert!(s.text("#items").contains("农村村民宅基地审批"));
    s.shot("02-window-found");
    s.press_to_next("#items a.button");
    assert_eq!(s.text("#item-name"), "农村村民宅基地审批");

    // A wrong check digit is caught as it is typed and the form is not sent …
    s.step("accept-bad-id");
    s.type_into("#applicant", "张三丰");
    let bad = id_number("14021219850315211", false);
    s.type_into("#id_number", &bad);
    s.press("#accept-submit");
    assert!(
        s.text("#id-msg").contains("校验位不符"),
        "{}",
        s.text("#id-msg")
    );
    assert!(s.tab.get_url().contains("item="), "the form was sent");
    s.shot("03-accept-bad-id");
    // … and refused by the node when sent anyway (script bypassed).
    s.to_next_page(|| {
        s.eval("document.getElementById('accept').submit()");
    });
    assert!(
        s.text(".refusal").contains("校验位"),
        "{}",
        s.text(".refusal")
    );
    assert_eq!(
        s.eval("document.getElementById('applicant').value"),
        "张三丰"
    );
    assert!(ok(&town, &["case", "list", "--all"]).contains("16 case(s)"));

    // A good number is accepted; the case page shows its clock.
    s.step("accept");
    s.set("#id_number", "");
    s.type_into("#id_number", &id_number("14021219850315211", true));
    assert_eq!(s.text("#id-msg"), "校验通过。");
    s.press_to_next("#accept-submit");
    assert!(s.text(".done").contains("已受理"));
    assert!(s.text("#case-state").contains("受理 (3)"));
    assert_eq!(s.text("#clock-state"), "计时中");
    assert!(s.text("#committed-due").contains("10个工作日"));
    assert!(s.text("#statutory-due").contains("20个工作日"));
    let number = s.text("#case-number");
    s.shot("04-case-accepted");

    // Only the actions the state allows are offered.
    s.step("events");
    let offered = s.offered();
    for must in [
        "supplement_requested",
        "step_started",
        "extended",
        "concluded",
    ] {
        assert!(
            offered.iter().any(|k| k == must),
            "{must} not in {offered:?}"
        );
    }
    for never in ["accepted", "supplement_completed", "step_finished", "rated"] {
        assert!(
            !offered.iter().any(|k| k == never),
            "{never} in {offered:?}"
        );
    }
    // Asking for materials pauses the clock.
    s.press("details[data-kind=supplement_requested] summary");
    s.type_into("#f-materials-supplement_requested", "户口簿复印件");
    s.press_to_next("details[data-kind=supplement_requested] button[type=submit]");
    assert!(s.text("#clock-state").contains("暂停计时"));
    let offered = s.offered();
    assert!(offered.iter().any(|k| k == "supplement_completed"));
    assert!(!offered.iter().any(|k| k == "supplement_requested"));
    s.shot("05-case-paused");
    s.press_to_next("form[data-kind=supplement_completed] button[type=submit]");
    assert_eq!(s.text("#clock-state"), "计时中");
    s.press("details[data-kind=step_started] summary");
    s.type_into("#f-step-step_started", "审核");
    s.press_to_next("details[data-kind=step_started] button[type=submit]");
    assert!(s.offered().iter().any(|k| k == "step_finished"));
    assert!(s.text("#events").contains("户口簿复印件"));

    // The receipt, to print.
    s.step("receipt");
    s.press_to_next("a[href^='/receipt']");
    assert_eq!(s.text("h1"), "受理通知书");
    assert!(s.text(".paper").contains(&number));
    assert!(s.text(".paper").contains("农村村民宅基地审批"));
    s.shot("06-receipt");

    // 办件: two pages, soonest due first, and a filter.
    s.step("case-list");
    s.go(&format!("{tw_url}/cases"));
    assert!(s.text(".pager").contains("共 17 条"));
    assert_eq!(s.tab.find_elements("#cases tbody tr").unwrap().len(), 15);
    s.shot("07-cases");
    s.press_to_next(".pager a[rel=next]");
    assert!(s.text(".pager").contains("第 16–17 条"));
    assert_eq!(s.tab.find_elements("#cases tbody tr").unwrap().len(), 2);
    s.go(&format!("{tw_url}/cases"));
    s.set("#f-item", ITEM);
    s.press_to_next(".filters button[type=submit]");
    assert_eq!(s.tab.find_elements("#cases tbody tr").unwrap().len(), 1);
    assert!(s.text("#cases").contains(&number));
    // A hand-edited address is read leniently and what cannot be used is named.
    s.go(&format!("{tw_url}/cases?offset=x&due_within=-3"));
    assert!(s.text(".refusal").contains("几个工作日内到期"));
    assert!(s.text(".pager").contains("共 17 条"));

    // 事项: the legal office drafts an item, approves and publishes it.
    s.step("item-workflow");
    s.go(&format!("{tw_url}/items/new"));
    s.type_into("#d-name", "农机购置补贴申请");
    s.set("#d-impl_code", "11140212MB1234567K599001");
    s.type_into("#d-basic_code", "0109");
    s.set("#d-agency", "样例镇人民政府");
    s.set("#d-statutory_limit", "20个工作日");
    s.set("#d-committed_limit", "5个工作日");
    s.press_to_next(".draft button[type=submit]");
    assert!(
        s.text("#item-status").contains("草稿"),
        "{}",
        s.text("main")
    );
    s.shot("08-item-draft");
    s.press_to_next("form.review input[value=approved] ~ button");
    assert!(s.text("#item-status").contains("审核通过"));
    s.press_to_next("form.review input[value=published] ~ button");
    assert!(s.text("#item-status").contains("已发布"));
    s.shot("09-item-published");
    s.go(&format!("{tw_url}/window?q=农机"));
    assert!(s.text("#items").contains("农机购置补贴申请"));

    // 督办: at the county, the township's case with its unit; an order.
    s.step("county-cases");
    s.log_in(&cn_url, "zhaoli", PASSWORD);
    s.reload_until(&format!("{cn_url}/cases?item={ITEM}"), "#cases", &number);
    assert!(s.text("#cases td.unit").contains("样例镇便民服务中心"));
    s.shot("10-county-cases");
    s.press_to_next("#cases tbody a");
    let unit = s.text("#case-unit");
    assert!(
        unit.contains("样例镇便民服务中心") && unit.contains("140212101"),
        "{unit}"
    );
    // The supervision desk: the case accepted 40 days ago carries a red
    // card; one click (and a confirmation) orders it put right.
    s.step("cards");
    s.go(&format!("{cn_url}/orders"));
    let cards = s.text("#cards");
    assert!(
        cards.contains("红牌") && cards.contains("办理时限"),
        "{cards}"
    );
    s.shot("10b-county-cards");
    s.eval("window.confirm = () => true");
    let red_time_limit =
        "#cards form:has(input[name=rule][value=case_time_limit]):has(input[name=card][value=red])";
    let buttons = |s: &Session| {
        s.eval(&format!(
            "document.querySelectorAll('{red_time_limit}').length"
        ))
        .as_i64()
        .unwrap()
    };
    let before = buttons(&s);
    s.press_to_next(&format!("{red_time_limit} button"));
    assert!(
        s.text(".done").contains("督办单已发出"),
        "{}",
        s.text("main")
    );
    let facts = s.text("main dl.facts");
    assert!(
        facts.contains("红牌") && facts.contains("140212101"),
        "{facts}"
    );
    let card_order_url = s.tab.get_url();
    let card_order = card_order_url
        .split("id=")
        .nth(1)
        .unwrap()
        .split('&')
        .next();
    let card_order = card_order.unwrap().to_string();
    // The desk now names that order on the card instead of a second button.
    s.go(&format!("{cn_url}/orders"));
    assert!(s.text("#cards").contains("已督办"), "{}", s.text("#cards"));
    assert_eq!(buttons(&s), before - 1, "the ordered card kept its button");
    s.shot("10b-county-cards-ordered");

    // 统计: the county's figures by township, a click down to the
    // township's items, and one more to an item's cases.
    s.step("stats");
    let since = {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        hallsync_model::Ts(secs as i64 - 60 * 86_400)
            .date()
            .to_string()
    };
    s.go(&format!("{cn_url}/stats?from={since}"));
    let row = s.text("#stats tbody tr");
    assert!(row.contains("样例镇便民服务中心"), "{row}");
    let received = |sel: &str| s.text(&format!("{sel} td"));
    let total = received("#stats tfoot tr");
    assert!(total.parse::<u32>().unwrap() >= 16, "{total}");
    assert_eq!(received("#stats tbody tr"), total);
    assert!(s.text("main").contains("办结率"));
    s.on("#stats-chart rect", "e => true");
    s.shot("10c-county-stats");
    s.press_to_next("#to-evaluation");
    let ranking = s.text("#ranking");
    assert!(
        ranking.contains("样例镇便民服务中心") && ranking.contains("按时办结"),
        "{ranking}"
    );
    s.shot("10c-county-evaluation");
    s.go(&format!("{cn_url}/stats?from={since}"));
    s.press_to_next("#stats tbody a[href*='unit=140212101']");
    assert_eq!(s.eval("document.getElementById('s-by').value"), "item");
    assert!(s.text("#stats").contains("11140212MB1234567K500002"));
    s.shot("10d-township-items");
    s.press_to_next("#stats tbody a[href*='item=11140212MB1234567K500002']");
    assert!(s.text("#cases").contains("申请人"), "{}", s.text("main"));
    s.go(&format!("{cn_url}/stats?unit=12x"));
    assert!(s.text(".refusal").contains("行政区划代码"));
    assert_eq!(s.eval("document.getElementById('s-unit').value"), "12x");
    s.go(&format!("{cn_url}/evaluation?unit=12x"));
    assert!(s.text(".refusal").contains("行政区划代码"));
    s.go(&format!("{cn_url}/stats?unit=1403"));
    assert!(s.text(".refusal").contains("不属于本中心"));
    s.go(&format!("{cn_url}/case?id=case:140212101:{number}"));

    s.step("order-issue");
    s.press_to_next("a[href^='/orders?unit=']");
    let about = s.eval("document.getElementById('o-case').value");
    assert!(about.as_str().unwrap().contains(&number), "{about}");
    s.type_into("#o-reason", "请说明补正材料的进展");
    // The case holds no yellow card of its time limit: refused, the form
    // kept as typed.
    s.press_to_next("#issue button[type=submit]");
    assert!(
        s.text(".refusal").contains("办件须持有所选的亮牌"),
        "{}",
        s.text("main")
    );
    s.shot("11-order-refused");
    let detail = s.eval("document.querySelector('.refusal .detail').textContent");
    assert!(
        detail.as_str().unwrap().contains("of case_time_limit"),
        "{detail}"
    );
    s.eval("document.getElementById('o-rule').value = 'anomaly'");
    s.press_to_next("#issue button[type=submit]");
    assert!(
        s.text(".done").contains("督办单已发出"),
        "{}",
        s.text("main")
    );
    let order_url = s.tab.get_url();
    let order_id = order_url.split("id=").nth(1).unwrap().split('&').next();
    let order_id = order_id.unwrap().to_string();
    s.shot("11-order-issued");

    s.step("order-reply");
    s.reload_until(
        &format!("{tw_url}/order?id={order_id}"),
        "#order-state",
        "待反馈",
    );
    s.type_into("#reply-text", "已通知申请人补齐材料");
    s.press_to_next("#reply button[type=submit]");
    assert!(s.text(".done").contains("反馈已提交"));

    s.step("order-close");
    let at_county = format!("{cn_url}/order?id={order_id}");
    s.reload_until(&at_county, "#order-events", "已通知申请人补齐材料");
    s.type_into("#close-text", "经核实已整改");
    assert!(s
        .tab
        .find_element("#close")
        .unwrap()
        .get_attribute_value("data-confirm")
        .unwrap()
        .is_some());
    s.eval("window.confirm = () => true");
    s.press_to_next("#close button[type=submit]");
    assert!(s.text("#order-state").contains("已办结"));
    s.shot("12-order-closed");

    // The township appeals the red card's order; the county revokes it.
    s.step("appeal");
    s.reload_until(
        &format!("{tw_url}/order?id={card_order}"),
        "#order-state",
        "待反馈",
    );
    s.type_into("#appeal-text", "申请人补正材料期间不应计入办理时限");
    s.eval("window.confirm = () => true");
    s.press_to_next("#appeal button[type=submit]");
    assert!(s.text(".done").contains("申诉已提交"), "{}", s.text("main"));
    assert!(s.text("#order-state").contains("申诉待裁决"));
    assert!(
        s.tab.find_element("#appeal").is_err(),
        "a card is appealed once"
    );
    s.step("decide");
    let appealed = format!("{cn_url}/order?id={card_order}");
    s.reload_until(&appealed, "#order-state", "申诉待裁决");
    s.eval("document.getElementById('decide-verdict').value = 'revoked'");
    s.type_into("#decide-text", "经核实，补正期间计时有误");
    s.press_to_next("#decide button[type=submit]");
    assert!(
        s.text(".done").contains("申诉裁决已记录"),
        "{}",
        s.text("main")
    );
    assert!(s.text("#order-appeal").contains("撤销亮牌"));
    assert!(s.text("#order-state").contains("已办结"));
    s.shot("12b-appeal-revoked");

    // The window concludes the case: approved, it leaves the open list.
    s.step("conclude");
    s.go(&format!("{tw_url}/cases?item={ITEM}"));
    s.press_to_next("#cases tbody a");
    s.press("details[data-kind=concluded] summary");
    s.type_into("#f-opinion-concluded", "材料齐全，准予许可");
    s.eval("window.confirm = () => true");
    s.press_to_next("details[data-kind=concluded] button[type=submit]");
    assert!(
        s.text("#case-state").contains("办结(准予)"),
        "{}",
        s.text("main")
    );
    assert!(!s.offered().iter().any(|k| k == "concluded"));
    s.shot("13-case-concluded");
    s.go(&format!("{tw_url}/cases"));
    assert!(s.text(".pager").contains("共 16 条"));

    // 联网: the county's link to the township and the registry.
    s.step("links");
    s.go(&format!("{tw_url}/links"));
    assert!(s.text("#peers").contains("cn-212"));
    assert!(s.text("#peers").contains("已连接"));
    assert!(s.text("#registry").contains("样例县政务服务中心"));
    s.shot("14-links");

    // A case the county decides (上报件): the window forwards it, and only
    // once; an item that is published is never filed instead.
    s.step("forward");
    let up = "11140212MB1234567K500006";
    ok(
        &town,
        &[
            "case",
            "accept",
            "--item",
            up,
            "--applicant",
            "李四",
            "--id-number",
            &id_number("14021219850315211", true),
        ],
    );
    s.go(&format!("{tw_url}/cases?item={up}"));
    s.press_to_next("#cases tbody a");
    let offered = s.offered();
    assert!(offered.iter().any(|k| k == "forwarded"), "{offered:?}");
    assert!(!offered.iter().any(|k| k == "filed"), "{offered:?}");
    s.press("details[data-kind=forwarded] summary");
    s.type_into("#f-to-forwarded", "县自然资源局");
    s.press_to_next("details[data-kind=forwarded] button[type=submit]");
    assert!(
        s.text("#events").contains("上报至：县自然资源局"),
        "{}",
        s.text("#events")
    );
    assert!(!s.offered().iter().any(|k| k == "forwarded"));
    s.eval("document.getElementById('events').scrollIntoView()");
    s.shot("15-case-forwarded");

    // The township's PC clock runs ten minutes slow: the county's 联网
    // page says so, and the case page marks what the township stamped
    // meanwhile.
    s.step("clock");
    drop(tw);
    let slow = {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        hallsync_model::Ts(secs as i64 - 600).to_string()
    };
    let (_tw, _) = run_at(&town, &fed.join("certs/bundles/tw-101"), Some(&slow));
    s.reload_until(&format!("{cn_url}/links"), "#peers", "慢 10 分钟");
    assert!(s.text("#peers").contains("请校准时钟"));
    s.reload_until(
        &format!("{cn_url}/links"),
        "#history-tw-101",
        "时钟慢 10 分钟",
    );
    assert!(s.text("#history-cn-212").contains("时钟正常"));
    s.shot("16-links-clock-off");
    let accepted = ok(
        &town,
        &[
            "--json",
            "--now",
            &slow,
            "case",
            "accept",
            "--item",
            ITEM,
            "--applicant",
            "周五",
            "--id-number",
            &id_number("14021219900101123", true),
        ],
    );
    let id = serde_json::from_str::<serde_json::Value>(&accepted).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.reload_until(
        &format!("{cn_url}/case?id={id}"),
        "#events",
        "时钟慢 10 分钟，时间存疑",
    );
    s.eval("document.getElementById('events').scrollIntoView()");
    s.shot("17-case-clock-off");

    println!(
        "console browser test: {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        s.shots.display()
    );
}
