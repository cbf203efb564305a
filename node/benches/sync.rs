//! Sync benchmark: two `hallsync run` processes on loopback, a township
//! (child) and its county (parent), with the foundation's case documents
//! (10 fields + 8 events). Measures initial sync at each N, incremental sync
//! after one new event on 10% of the documents, and the initial sync
//! through a relay capped at 4 Mbit/s. Then a township rebuilt from its
//! county (`hallsync restore --bundle`) on loopback and through the relay.
//!
//! `cargo bench -p hallsync --bench sync` (or `scripts/bench-sync.sh`).
//! Environment: `BENCH_SYNC_N` (default `10000,100000`),
//! `BENCH_SYNC_CAPPED_N` (default 10000; 0 skips), `BENCH_RESTORE_N`
//! (default 50000; 0 skips), `BENCH_WRITERS` (16).

#[path = "common/bundles.rs"]
mod bundles;
#[path = "../../crates/hall/tests/support/mod.rs"]
mod support;
#[path = "../../crates/hall/benches/common/workload.rs"]
mod workload;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hallsync_hall::Hall;
use hallsync_model::{DocKind, EventKind, Level, NodeId, RegionCode, Ts};
use hallsync_net::relay::Relay;
use hallsync_net::status::{read_file, PeerStatus};
use hallsync_pki::bundle::{Bundle, ParentConfig};
use hallsync_pki::{Ca, Identity};
use hallsync_store::StoreOptions;

/// 4 Mbit/s.
const CAPPED_BYTES_PER_SEC: u64 = 500_000;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One sync measured.
struct Run {
    secs: f64,
    /// UDP bytes township -> county.
    up: u64,
    /// UDP bytes county -> township.
    down: u64,
    /// Peak RSS (MB).
    rss_town: f64,
    rss_county: f64,
}

impl Run {
    fn wire(&self) -> u64 {
        self.up + self.down
    }
}

struct Pair {
    tmp: tempfile::TempDir,
    county_bundle: PathBuf,
    town_bundle: PathBuf,
    county_addr: SocketAddr,
    /// Sum of the saved sizes of the township's documents.
    saved_bytes: u64,
    docs: u64,
}

impl Pair {
    fn new(n: usize, writers: usize) -> Pair {
        let tmp = tempfile::tempdir().unwrap();
        let ca = Ca::init(&tmp.path().join("certs"), "bench", Ts(1_700_000_000), 3650).unwrap();
        let port = free_port();
        let county_addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let bundles = tmp.path().join("bundles");
        let cn = bundles::bundle(
            &ca,
            &bundles,
            Identity {
                id: NodeId::parse("cn-212").unwrap(),
                level: Level::County,
                region: RegionCode::parse("140212").unwrap(),
            },
            Some(county_addr.to_string()),
            None,
        );
        let tw = bundles::bundle(
            &ca,
            &bundles,
            Identity {
                id: NodeId::parse("tw-101").unwrap(),
                level: Level::Township,
                region: RegionCode::parse("140212101").unwrap(),
            },
            None,
            Some(ParentConfig {
                id: cn.config.id.clone(),
                addr: county_addr.to_string(),
            }),
        );
        eprintln!("writing {n} complete cases at the township …");
        let hall = workload::setup(&tmp.path().join("tw"));
        workload::fill(&hall, n, writers, 1);
        let (mut saved_bytes, mut docs) = (0, 0);
        for kind in [DocKind::Case, DocKind::Item] {
            let ids: Vec<_> = hall.store().ids(kind).map(Result::unwrap).collect();
            for id in ids {
                saved_bytes += hall.store().save(&id).unwrap().unwrap().len() as u64;
                hall.store().evict(&id);
                docs += 1;
            }
        }
        Pair {
            county_bundle: cn.dir,
            town_bundle: tw.dir,
            tmp,
            county_addr,
            saved_bytes,
            docs,
        }
    }

    fn spawn(&self, data: &str, bundle: &Path) -> Child {
        Command::new(env!("CARGO_BIN_EXE_hallsync"))
            .args(["--data-dir"])
            .arg(self.tmp.path().join(data))
            .args(["run", "--bundle"])
            .arg(bundle)
            .env("HALLSYNC_LOG", "warn")
            .spawn()
            .unwrap()
    }

    fn status(&self) -> Option<PeerStatus> {
        read_file(&self.tmp.path().join("tw").join("status.json"))
            .ok()?
            .peers
            .into_iter()
            .find(|p| p.id == "cn-212")
    }

    /// Starts both nodes, waits until the township reports both directions
    /// caught up, and stops them.
    fn sync(&self, through: Option<SocketAddr>) -> Run {
        let _ = std::fs::remove_file(self.tmp.path().join("tw").join("status.json"));
        self.dial(through);
        let mut county = self.spawn("cn", &self.county_bundle);
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let mut town = self.spawn("tw", &self.town_bundle);
        let status = loop {
            std::thread::sleep(Duration::from_millis(20));
            if let Some(p) = self.status().filter(|p| p.in_sync) {
                break p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(3_600),
                "no sync within an hour"
            );
        };
        let secs = start.elapsed().as_secs_f64();
        let rss = |c: &Child| workload::status_kb(Some(c.id()), "VmHWM:") as f64 / 1024.0;
        let (rt, rc) = (rss(&town), rss(&county));
        eprintln!(
            "  CPU seconds: township {:.2}, county {:.2}",
            cpu_secs(town.id()),
            cpu_secs(county.id())
        );
        for c in [&mut town, &mut county] {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            c.wait().unwrap();
        }
        Run {
            secs,
            up: status.wire_tx,
            down: status.wire_rx,
            rss_town: rt,
            rss_county: rc,
        }
    }

    /// Points the township's bundle at its county, directly or through a
    /// relay.
    fn dial(&self, through: Option<SocketAddr>) {
        let mut b = Bundle::open(&self.town_bundle).unwrap();
        b.config.parent.as_mut().unwrap().addr = through.unwrap_or(self.county_addr).to_string();
        rewrite_config(&b);
    }

    /// Wipes the township's data directory and rebuilds it from the county
    /// (running), through `through` if given: seconds, bytes received.
    fn restore(&self, through: Option<SocketAddr>, n: usize) -> (f64, u64) {
        let town = self.tmp.path().join("tw");
        let _ = std::fs::remove_dir_all(&town);
        self.dial(through);
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_hallsync"))
            .arg("--json")
            .arg("--data-dir")
            .arg(&town)
            .args(["restore", "--bundle"])
            .arg(&self.town_bundle)
            .env("HALLSYNC_LOG", "warn")
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!(out.status.success(), "the restore failed");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["cases"].as_u64(), Some(n as u64), "{v}");
        (secs, v["wire_rx"].as_u64().unwrap())
    }

    /// One new event on every tenth case, written while the nodes are down.
    fn touch_tenth(&self, n: usize) -> u64 {
        let hall = Hall::open(&self.tmp.path().join("tw"), StoreOptions::default()).unwrap();
        let at = Ts::parse("2026-06-01 10:00").unwrap();
        let mut changed = 0;
        for i in (0..n).step_by(10) {
            hall.record_event(
                &workload::number(i),
                EventKind::Rated { score: 5 },
                "申请人",
                at,
                at,
            )
            .unwrap();
            changed += 1;
        }
        changed
    }
}

/// User + system CPU time of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn rewrite_config(b: &Bundle) {
    let text = toml::to_string_pretty(&b.config).unwrap();
    std::fs::write(b.file(hallsync_pki::bundle::CONFIG), text).unwrap();
}

fn main() {
    let ns: Vec<usize> = env("BENCH_SYNC_N", "10000,100000")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let capped: usize = env("BENCH_SYNC_CAPPED_N", "10000")
        .parse()
        .unwrap_or(10_000);
    let writers: usize = env("BENCH_WRITERS", "16").parse().unwrap_or(16);
    let restore_n: usize = env("BENCH_RESTORE_N", "50000").parse().unwrap_or(50_000);
    let mut rows = Vec::new();
    for &n in &ns {
        let pair = Pair::new(n, writers);
        let r = pair.sync(None);
        rows.push(format!(
            "| initial, N = {n} | {:.2} s | {:.0} docs/s | {:.3} × saved ({} B up + {} B down; saved {} B) | township {:.0} MB, county {:.0} MB |",
            r.secs,
            pair.docs as f64 / r.secs,
            r.wire() as f64 / pair.saved_bytes as f64,
            r.up,
            r.down,
            pair.saved_bytes,
            r.rss_town,
            r.rss_county
        ));
        let changed = pair.touch_tenth(n);
        let r = pair.sync(None);
        rows.push(format!(
            "| incremental, {changed} changed | {:.2} s | | {:.0} B per changed doc (both ways, handshake included) | township {:.0} MB, county {:.0} MB |",
            r.secs,
            r.wire() as f64 / changed as f64,
            r.rss_town,
            r.rss_county
        ));
        eprintln!("{}", rows[rows.len() - 2]);
        eprintln!("{}", rows[rows.len() - 1]);
    }
    if capped > 0 {
        let pair = Pair::new(capped, writers);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let relay = rt
            .block_on(Relay::start(pair.county_addr, CAPPED_BYTES_PER_SEC))
            .unwrap();
        let r = pair.sync(Some(relay.addr()));
        // The link carries 500 KB/s each way; the upstream bytes bound the
        // time from below.
        let floor = r.up as f64 / CAPPED_BYTES_PER_SEC as f64;
        rows.push(format!(
            "| initial at 4 Mbit/s, N = {capped} | {:.2} s | {:.3} × the floor of {floor:.2} s | {} B up ÷ 500 KB/s ({} B down) | |",
            r.secs,
            r.secs / floor,
            r.up,
            r.down
        ));
        drop(relay);
    }
    if restore_n > 0 {
        let pair = Pair::new(restore_n, writers);
        let up = pair.sync(None);
        rows.push(format!(
            "| initial, N = {restore_n} (the township the restores rebuild) | {:.2} s | {:.0} docs/s | {} B up + {} B down | |",
            up.secs,
            pair.docs as f64 / up.secs,
            up.up,
            up.down
        ));
        let mut county = pair.spawn("cn", &pair.county_bundle);
        std::thread::sleep(Duration::from_millis(300));
        let (secs, rx) = pair.restore(None, restore_n);
        rows.push(format!(
            "| restore from the county, N = {restore_n} | {secs:.2} s | {:.0} docs/s | {rx} B down ({:.3} × saved) | |",
            pair.docs as f64 / secs,
            rx as f64 / pair.saved_bytes as f64
        ));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let relay = rt
            .block_on(Relay::start(pair.county_addr, CAPPED_BYTES_PER_SEC))
            .unwrap();
        let (secs, rx) = pair.restore(Some(relay.addr()), restore_n);
        let floor = rx as f64 / CAPPED_BYTES_PER_SEC as f64;
        rows.push(format!(
            "| restore at 4 Mbit/s, N = {restore_n} | {secs:.2} s | {:.3} × the floor of {floor:.2} s | {rx} B down ÷ 500 KB/s | |",
            secs / floor
        ));
        drop(relay);
        Command::new("kill")
            .args(["-TERM", &county.id().to_string()])
            .status()
            .unwrap();
        county.wait().unwrap();
    }
    println!();
    println!("hallsync sync benchmark: township -> county, two processes on loopback, case documents of 10 fields + 8 events");
    println!("| run | time | rate | wire | peak RSS |");
    println!("|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!("targets: >= 5,000 docs/s initial; wire <= 1.15x saved; incremental <= 200 B per changed doc; <= 200 MB RSS per node at 100,000; capped within 10% of the floor; restore at 4 Mbit/s <= 1.1x its floor");
}
