//! API benchmark: a city, a county and a township as three `hallsync run`
//! processes on loopback, the township written through its HTTP API by
//! concurrent clients, beside the store benchmark's rate measured in the
//! same run. Prints one table:
//!
//! - the store benchmark's workload (complete cases: acceptance + 8 events,
//!   16 writers, every write durable) through the library, before and
//!   after the API runs;
//! - the same cases through the running township's API, each write its own
//!   request, from 16 client threads on keep-alive connections: cases/s,
//!   the ratio to the store's rate, and p50/p99 latency per request;
//! - propagation while 16 clients write: every `BENCH_API_PROBE_EVERY`th
//!   acceptance is a probe, and a watcher per hub asks that hub's API for
//!   the probe's case (`GET /api/v1/case?case=<id>`) until it answers 200;
//!   the arrival time is when that answer came back, so a hop is measured
//!   high by at most a polling round;
//! - the console's first page (`GET /api/v1/cases`, open cases, 50 rows)
//!   at the county once it holds `BENCH_API_COUNTY_CASES` cases (the rest
//!   written at the township through the library while it is stopped,
//!   then replicated), timed by the server (its `server-timing` header);
//!   the standing supervision cards there (`GET /api/v1/warnings`); and
//!   the county's peak RSS over the whole run.
//!
//! On a machine with two CPUs or more, while the two rates are measured the
//! node under test (the store workload, then the township) runs on the
//! first half of them and what stands in for other machines (the API
//! clients at the windows, the county and the city) on the other half, so
//! both rates are measured on the same CPUs and the clients' and hubs' work
//! is not charged to the township. From the propagation on, everything
//! shares every CPU: a hop's latency should not count the county waiting
//! behind sixteen clients and two watchers on half the machine.
//! `BENCH_API_PIN=0` lets everything share every CPU throughout.
//!
//! `cargo bench -p hallsync --bench api` (or `scripts/bench-api.sh`).
//! Environment: `BENCH_API_CASES` (10000), `BENCH_API_CLIENTS` (16),
//! `BENCH_API_PROBES` (1000), `BENCH_API_PROBE_EVERY` (4),
//! `BENCH_API_COUNTY_CASES` (100000), `BENCH_API_OPEN` (10000: how many
//! of those are still open), `BENCH_API_PAGES` (50 first-page requests),
//! `BENCH_API_PIN` (1).

#[path = "common/bundles.rs"]
mod bundles;
#[path = "../../crates/hall/tests/support/mod.rs"]
mod support;
#[path = "../../crates/hall/benches/common/workload.rs"]
mod workload;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hallsync_api::ops::cases::{AcceptCase, RecordEvent};
use hallsync_hall::Hall;
use hallsync_model::{EventKind, Level, NodeId, RegionCode, Ts};
use hallsync_net::status::NodeStatus;
use hallsync_pki::bundle::ParentConfig;
use hallsync_pki::{Ca, Identity};
use hallsync_store::StoreOptions;
use hallsync_web::ApiFile;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The allocator the `hallsync` binary runs with (the store benchmark's
/// workload runs in this process).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A watcher's pause between two rounds over the probes it waits for.
const POLL_PAUSE: Duration = Duration::from_millis(1);

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn identity(id: &str, level: Level, region: &str) -> Identity {
    Identity {
        id: NodeId::parse(id).unwrap(),
        level,
        region: RegionCode::parse(region).unwrap(),
    }
}

/// Every CPU this process may use; the CPUs of the node under test and of
/// the rest while the rates are measured (see the module's text), or
/// `None` for both when they share every CPU; and a line saying which.
fn split_cpus(pin: bool) -> (CpuSet, Option<CpuSet>, Option<CpuSet>, String) {
    let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let ids: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    if !pin || ids.len() < 2 {
        let why = if pin { "one CPU" } else { "BENCH_API_PIN=0" };
        let line = format!("everything shares {} CPU(s) ({why})", ids.len());
        return (allowed, None, None, line);
    }
    let (node, rest) = ids.split_at(ids.len() / 2);
    let set = |ids: &[usize]| {
        let mut s = CpuSet::new();
        for &c in ids {
            s.set(c).unwrap();
        }
        s
    };
    let line = format!(
        "for the rates, store workload and township on CPU {node:?}, clients, county and city on CPU {rest:?}; then everything on every CPU"
    );
    (allowed, Some(set(node)), Some(set(rest)), line)
}

/// Lets every thread of process `pid` run on `cpus` (threads it starts
/// later inherit it from theirs).
fn repin_process(pid: u32, cpus: &CpuSet) {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid = task.unwrap().file_name().to_string_lossy().parse().unwrap();
        // A thread may have ended since the listing.
        let _ = sched_setaffinity(Pid::from_raw(tid), cpus);
    }
}

/// Keeps the calling thread, and the threads and processes it starts from
/// now on, to `cpus`.
fn pin(cpus: Option<&CpuSet>) {
    if let Some(set) = cpus {
        sched_setaffinity(Pid::from_raw(0), set).unwrap();
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A running node's API, as its `api.json` says.
#[derive(Clone)]
struct Api {
    url: String,
    auth: String,
}

/// One HTTP client: one keep-alive connection.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// An answer: status, body, and the server's own time (ms).
struct Answer {
    status: u16,
    body: Vec<u8>,
    server_ms: Option<f64>,
}

impl Api {
    fn answer(mut resp: ureq::http::Response<ureq::Body>) -> Answer {
        let server_ms = resp
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split("dur=").nth(1))
            .and_then(|v| v.parse().ok());
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        Answer {
            status,
            body,
            server_ms,
        }
    }

    /// Posts `body` as if at `now` (the workload's own times, which a
    /// node would refuse as too old once a year has passed since them).
    fn post(&self, agent: &ureq::Agent, path: &str, body: &[u8], now: Ts) -> Answer {
        let resp = agent
            .post(&format!("{}/api/v1{path}", self.url))
            .header("authorization", &self.auth)
            .header("content-type", "application/json")
            .header(hallsync_web::auth::NOW_HEADER, now.to_string())
            .send(body)
            .unwrap();
        let a = Api::answer(resp);
        assert_eq!(
            a.status,
            200,
            "POST {path}: {}",
            String::from_utf8_lossy(&a.body)
        );
        a
    }

    fn get(&self, agent: &ureq::Agent, path_and_query: &str) -> Answer {
        let resp = agent
            .get(&format!("{}/api/v1{path_and_query}", self.url))
            .header("authorization", &self.auth)
            .call()
            .unwrap();
        Api::answer(resp)
    }

    fn status(&self, agent: &ureq::Agent) -> NodeStatus {
        let a = self.get(agent, "/status");
        assert_eq!(a.status, 200);
        serde_json::from_slice(&a.body).unwrap()
    }
}

/// A `hallsync run` process.
struct Node {
    name: &'static str,
    data: PathBuf,
    bundle: PathBuf,
    child: Option<Child>,
    api: Option<Api>,
}

impl Node {
    fn new(name: &'static str, data: PathBuf, bundle: PathBuf) -> Node {
        Node {
            name,
            data,
            bundle,
            child: None,
            api: None,
        }
    }

    /// Starts it on `cpus` and waits for its API.
    fn start(&mut self, cpus: Option<&CpuSet>) {
        let child = std::thread::scope(|s| {
            s.spawn(|| {
                pin(cpus);
                Command::new(env!("CARGO_BIN_EXE_hallsync"))
                    .arg("--data-dir")
                    .arg(&self.data)
                    .arg("run")
                    .arg("--bundle")
                    .arg(&self.bundle)
                    .env("HALLSYNC_LOG", "warn")
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .join()
            .unwrap()
        });
        let pid = child.id();
        self.child = Some(child);
        let started = Instant::now();
        let file = self.data.join(hallsync_web::API_FILE);
        loop {
            let api = std::fs::read(&file)
                .ok()
                .and_then(|b| serde_json::from_slice::<ApiFile>(&b).ok())
                .filter(|a| a.pid == pid);
            if let Some(a) = api {
                self.api = Some(Api {
                    url: a.url,
                    auth: format!("Bearer {}", a.token),
                });
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} did not start",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn api(&self) -> &Api {
        self.api.as_ref().unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn peak_rss_mb(&self) -> f64 {
        workload::status_kb(Some(self.pid()), "VmHWM:") as f64 / 1024.0
    }

    /// SIGTERM, and waits for it to exit.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            c.wait().unwrap();
        }
        self.api = None;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The three nodes, the township dialling the county and the county the
/// city; the township's data directory holds the benchmark item.
struct Federation {
    _tmp: tempfile::TempDir,
    city: Node,
    county: Node,
    town: Node,
}

impl Federation {
    fn new() -> Federation {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::init(&tmp.path().join("certs"), "bench", Ts(1_700_000_000), 3650).unwrap();
        let bundles = tmp.path().join("bundles");
        let city_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let county_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let ct = bundles::bundle(
            &ca,
            &bundles,
            identity("ct-02", Level::City, "1402"),
            Some(city_addr.to_string()),
            None,
        );
        let cn = bundles::bundle(
            &ca,
            &bundles,
            identity("cn-212", Level::County, "140212"),
            Some(county_addr.to_string()),
            Some(ParentConfig {
                id: ct.config.id.clone(),
                addr: city_addr.to_string(),
            }),
        );
        let tw = bundles::bundle(
            &ca,
            &bundles,
            identity("tw-101", Level::Township, "140212101"),
            None,
            Some(ParentConfig {
                id: cn.config.id.clone(),
                addr: county_addr.to_string(),
            }),
        );
        drop(workload::setup(&tmp.path().join("tw")));
        Federation {
            city: Node::new("city", tmp.path().join("ct"), ct.dir),
            county: Node::new("county", tmp.path().join("cn"), cn.dir),
            town: Node::new("township", tmp.path().join("tw"), tw.dir),
            _tmp: tmp,
        }
    }

    /// Waits until the township and the county each report their link
    /// upwards caught up both ways.
    fn wait_in_sync(&self, within: Duration) -> f64 {
        let started = Instant::now();
        let agent = agent();
        let caught_up = |node: &Node, parent: &str| {
            node.api()
                .status(&agent)
                .peers
                .iter()
                .any(|p| p.id == parent && p.connected && p.in_sync && p.backlog_out == 0)
        };
        while !(caught_up(&self.town, "cn-212") && caught_up(&self.county, "ct-02")) {
            assert!(started.elapsed() < within, "no sync within {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed().as_secs_f64()
    }
}

/// The store benchmark's workload through the library, on `cpus`:
/// complete cases/s.
fn store_rate(cases: usize, writers: usize, cpus: Option<&CpuSet>) -> f64 {
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(cpus);
            let tmp = tempfile::tempdir().unwrap();
            let hall = workload::setup(tmp.path());
            let started = Instant::now();
            workload::fill(&hall, cases, writers, 1);
            cases as f64 / started.elapsed().as_secs_f64()
        })
        .join()
        .unwrap()
    })
}

/// The requests writing complete case `i` (acceptance, then its 8 events).
fn requests(i: usize) -> Vec<(&'static str, Vec<u8>, Ts)> {
    let at = workload::received_at(i);
    let new = workload::new_case(i, at);
    let accept = AcceptCase {
        item: new.item_code,
        applicant: new.applicant.name,
        id_type: new.applicant.id_type,
        id_number: new.applicant.id_number,
        channel: new.channel,
        number: new.number,
        by: new.by,
        at: Some(at),
        receive_only: false,
    };
    let mut out = vec![("/cases", serde_json::to_vec(&accept).unwrap(), at)];
    for (k, event) in workload::events(i).into_iter().enumerate() {
        let e = RecordEvent {
            case: workload::number(i),
            by: workload::handler(i).into(),
            at: Some(workload::event_at(i, k)),
            event,
        };
        out.push((
            "/cases/event",
            serde_json::to_vec(&e).unwrap(),
            workload::event_at(i, k),
        ));
    }
    out
}

/// A probe: a case's id and when its acceptance returned.
type Probe = (String, Instant);

/// Writes complete cases `range` through `api` from `clients` threads;
/// every `probe_every`th acceptance (0: none) goes to each of `probes`.
/// Returns the wall time and every request's latency.
fn write_through(
    api: &Api,
    range: std::ops::Range<usize>,
    clients: usize,
    probe_every: usize,
    probes: &[mpsc::Sender<Probe>],
) -> (Duration, Vec<Duration>) {
    let next = AtomicUsize::new(range.start);
    let started = Instant::now();
    let latencies = std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let (next, end, first) = (&next, range.end, range.start);
                let probes = probes.to_vec();
                s.spawn(move || {
                    let agent = agent();
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            break;
                        }
                        for (n, (path, body, now)) in requests(i).into_iter().enumerate() {
                            let t = Instant::now();
                            api.post(&agent, path, &body, now);
                            let done = Instant::now();
                            lat.push(done - t);
                            if n == 0 && probe_every > 0 && (i - first) % probe_every == 0 {
                                let id = format!("case:140212101:{}", workload::number(i));
                                for p in &probes {
                                    p.send((id.clone(), done)).unwrap();
                                }
                            }
                        }
                    }
                    lat
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    (started.elapsed(), latencies)
}

/// Asks `api` for each probe's case until it has it; returns when each
/// first answered 200, and how many requests that took.
fn watch(api: &Api, probes: mpsc::Receiver<Probe>, want: usize) -> (HashMap<String, Instant>, u64) {
    let agent = agent();
    let mut pending: Vec<Probe> = Vec::new();
    let mut arrived = HashMap::new();
    let mut asked = 0u64;
    let mut open = true;
    let deadline_after = Duration::from_secs(120);
    let mut last_probe = Instant::now();
    while arrived.len() < want {
        loop {
            match probes.try_recv() {
                Ok(p) => {
                    pending.push(p);
                    last_probe = Instant::now();
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        if !open && pending.is_empty() {
            break;
        }
        if last_probe.elapsed() > deadline_after {
            eprintln!("  {} probes never arrived", pending.len());
            break;
        }
        pending.retain(|(id, _)| {
            asked += 1;
            let a = api.get(&agent, &format!("/case?case={id}"));
            if a.status == 200 {
                arrived.insert(id.clone(), Instant::now());
                return false;
            }
            assert_eq!(a.status, 404, "{}", String::from_utf8_lossy(&a.body));
            true
        });
        std::thread::sleep(POLL_PAUSE);
    }
    (arrived, asked)
}

/// p50 and p99 of `d`, in milliseconds.
fn quantiles(d: &mut [Duration]) -> (f64, f64, f64) {
    d.sort();
    let at = |q: f64| {
        let i = ((d.len() as f64 * q).ceil() as usize).clamp(1, d.len()) - 1;
        d[i].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.99), at(1.0))
}

fn quantiles_ms(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.5), at(0.99), at(1.0))
}

/// Open cases at the township, as a hall has them: accepted over the last
/// six weeks (some overdue), a third being handled, a tenth waiting for
/// supplements. Numbered after `first`.
fn write_open(hall: &Hall, first: usize, count: usize, writers: usize) {
    let now = Ts(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64);
    let span = 42 * 86_400;
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let i = first + n;
                let at = now.plus(-span + (n as i64 * span / count.max(1) as i64));
                hall.accept_case(workload::new_case(i, at), at).unwrap();
                let later = at.plus(3_600);
                let event = match n % 10 {
                    0 => Some(EventKind::SupplementRequested {
                        materials: "户口簿".into(),
                    }),
                    1..=3 => Some(EventKind::StepStarted {
                        step: "审核".into(),
                    }),
                    _ => None,
                };
                if let Some(e) = event {
                    hall.record_event(&workload::number(i), e, workload::handler(i), later, later)
                        .unwrap();
                }
            });
        }
    });
}

fn main() {
    let cases = env("BENCH_API_CASES", 10_000);
    let clients = env("BENCH_API_CLIENTS", 16).max(1);
    let probes = env("BENCH_API_PROBES", 1_000);
    let every = env("BENCH_API_PROBE_EVERY", 4).max(1);
    let county_cases = env("BENCH_API_COUNTY_CASES", 100_000);
    let open = env("BENCH_API_OPEN", 10_000);
    let pages = env("BENCH_API_PAGES", 50).max(1);
    let writers = 16;
    let load_start = load();
    let (all_cpus, node_cpus, rest_cpus, placement) = split_cpus(env("BENCH_API_PIN", 1) != 0);
    let (node_cpus, rest_cpus) = (node_cpus.as_ref(), rest_cpus.as_ref());
    eprintln!("{placement}");
    pin(rest_cpus);

    eprintln!("store benchmark workload, {cases} cases through the library …");
    let store_before = store_rate(cases, writers, node_cpus);
    eprintln!("  {store_before:.0} cases/s");

    let mut fed = Federation::new();
    fed.city.start(rest_cpus);
    fed.county.start(rest_cpus);
    fed.town.start(node_cpus);
    fed.wait_in_sync(Duration::from_secs(120));
    let town = fed.town.api().clone();

    eprintln!("{cases} complete cases through the township's API, {clients} clients …");
    let (wall, mut lat) = write_through(&town, 0..cases, clients, 0, &[]);
    let api_rate = cases as f64 / wall.as_secs_f64();
    let (w50, w99, wmax) = quantiles(&mut lat);
    eprintln!("  {api_rate:.0} cases/s, p50 {w50:.1} ms, p99 {w99:.1} ms");

    pin(Some(&all_cpus));
    for node in [&fed.city, &fed.county, &fed.town] {
        repin_process(node.pid(), &all_cpus);
    }
    // What the hubs still owe from the writes above is not a probe's delay.
    fed.wait_in_sync(Duration::from_secs(600));
    eprintln!(
        "propagation: {probes} probes, one acceptance in {every}, {clients} clients writing …"
    );
    let probe_range = cases..cases + probes * every;
    let (to_county, county_rx) = mpsc::channel();
    let (to_city, city_rx) = mpsc::channel();
    let (county_api, city_api) = (fed.county.api().clone(), fed.city.api().clone());
    let ((at_county, asked_county), (at_city, asked_city), written, probe_wall) =
        std::thread::scope(|s| {
            let wc = s.spawn(|| watch(&county_api, county_rx, probes));
            let wt = s.spawn(|| watch(&city_api, city_rx, probes));
            let (written_tx, written_rx) = mpsc::channel();
            let (wall, _) = write_through(
                &town,
                probe_range.clone(),
                clients,
                every,
                &[to_county, to_city, written_tx],
            );
            let written: HashMap<String, Instant> = written_rx.into_iter().collect();
            (wc.join().unwrap(), wt.join().unwrap(), written, wall)
        });
    let hop = |from: &HashMap<String, Instant>, to: &HashMap<String, Instant>| {
        let mut d: Vec<Duration> = from
            .iter()
            .filter_map(|(id, t)| to.get(id).map(|u| u.saturating_duration_since(*t)))
            .collect();
        let n = d.len();
        (quantiles(&mut d), n)
    };
    let ((c50, c99, cmax), n_county) = hop(&written, &at_county);
    let ((k50, k99, kmax), n_city) = hop(&at_county, &at_city);
    let ((e50, e99, emax), _) = hop(&written, &at_city);
    let probe_rate = probe_range.len() as f64 / probe_wall.as_secs_f64();
    eprintln!(
        "  county p99 {c99:.1} ms, city hop p99 {k99:.1} ms ({asked_county} + {asked_city} polls)"
    );

    // The rest of the county's cases, written at the township while it is
    // stopped, then replicated up.
    let written_so_far = probe_range.end;
    let bulk = county_cases.saturating_sub(written_so_far + open);
    eprintln!("filling the township to {county_cases} cases ({bulk} complete, {open} open) …");
    fed.town.stop();
    {
        let hall = Hall::open(&fed.town.data, StoreOptions::default()).unwrap();
        workload::fill_range(&hall, written_so_far..written_so_far + bulk, writers, 1);
        write_open(&hall, written_so_far + bulk, open, writers);
    }
    fed.town.start(None);
    let sync_secs = fed.wait_in_sync(Duration::from_secs(3_600));
    eprintln!("  replicated to the county and the city in {sync_secs:.1} s");

    let county = fed.county.api().clone();
    let agent = agent();
    let mut first_page = Vec::new();
    let mut first_page_client = Vec::new();
    let mut total = 0;
    for _ in 0..pages {
        let t = Instant::now();
        let a = county.get(&agent, "/cases");
        first_page_client.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(a.status, 200);
        first_page.push(a.server_ms.unwrap());
        let list: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        total = list["page"]["total"].as_u64().unwrap_or(0);
    }
    let (held, whole_ms) = {
        let a = county.get(&agent, "/cases?all=true&limit=1");
        let list: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        (
            list["page"]["total"].as_u64().unwrap_or(0),
            a.server_ms.unwrap(),
        )
    };
    let mut warnings = Vec::new();
    let mut cards = 0;
    for _ in 0..pages.min(10) {
        let a = county.get(&agent, "/warnings");
        assert_eq!(a.status, 200);
        warnings.push(a.server_ms.unwrap());
        let list: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        cards = list["page"]["total"].as_u64().unwrap_or(0);
    }
    let (cards50, _, cards_max) = quantiles_ms(&mut warnings);
    let cold = first_page[0];
    let (p50, p99, pmax) = quantiles_ms(&mut first_page);
    let (q50, _, _) = quantiles_ms(&mut first_page_client);
    let rss_county = fed.county.peak_rss_mb();
    let rss_city = fed.city.peak_rss_mb();
    let rss_town = fed.town.peak_rss_mb();
    fed.town.stop();
    fed.county.stop();
    fed.city.stop();

    eprintln!("store benchmark workload again, {cases} cases through the library …");
    let store_after = store_rate(cases, writers, node_cpus);
    let store_mean = (store_before + store_after) / 2.0;
    let load_end = load();

    println!();
    println!("hallsync API benchmark: city, county and township as three `hallsync run` processes on loopback; {clients} clients; {placement}; load average at start {load_start}, at end {load_end}");
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| store workload through the library, {cases} complete cases (before / after) | {store_before:.0} / {store_after:.0} cases/s | |"
    );
    println!(
        "| the same through the township's API (9 requests a case) | {api_rate:.0} cases/s ({:.0} requests/s) | |",
        api_rate * 9.0
    );
    println!(
        "| API ÷ store (mean of before and after) | {:.2} | >= 0.60 |",
        api_rate / store_mean
    );
    println!(
        "| latency per write p50 / p99 / max | {w50:.1} / {w99:.1} / {wmax:.1} ms | p99 <= 25 ms |"
    );
    println!(
        "| propagation township → county p50 / p99 / max ({n_county} of {} probes) | {c50:.1} / {c99:.1} / {cmax:.1} ms | p99 <= 500 ms |",
        written.len()
    );
    println!(
        "| propagation county → city p50 / p99 / max ({n_city} probes) | {k50:.1} / {k99:.1} / {kmax:.1} ms | p99 <= 500 ms |"
    );
    println!("| township → city p50 / p99 / max | {e50:.1} / {e99:.1} / {emax:.1} ms | |");
    println!(
        "| writing meanwhile; polls of the hubs' APIs | {probe_rate:.0} cases/s; {asked_county} county + {asked_city} city | |"
    );
    println!(
        "| console first page at the county ({held} cases, {total} open), server time p50 / p99 / max | {p50:.2} / {p99:.2} / {pmax:.2} ms (client {q50:.2} ms p50) | <= 50 ms |"
    );
    println!("| of which the first of those requests | {cold:.2} ms | |");
    println!(
        "| first page of all {held} cases, closed included (every case read, the page kept) | {whole_ms:.1} ms | |"
    );
    println!(
        "| standing cards at the county (GET /api/v1/warnings: every case's record read, its clock where a card can stand; {cards} cards), server time p50 / max of {} | {cards50:.0} / {cards_max:.0} ms | <= 200 ms |",
        warnings.len()
    );
    println!("| county peak RSS (whole run) | {rss_county:.0} MB | <= 200 MB |");
    println!("| peak RSS of the city / the township (since its restart) | {rss_city:.0} / {rss_town:.0} MB | |");
    println!("| replication of the bulk fill to county and city | {sync_secs:.1} s | |");
}
