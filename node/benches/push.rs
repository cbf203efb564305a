//! Push latency: a city, a county and a township, in-process on loopback;
//! clients write cases at the township, and each case's time from its
//! write returning (durable at the township) to its being durable at the
//! county, and from there to the city, is measured. Prints p50 / p90 / p99
//! / max per hop. A measurement, not a test: nothing is asserted.
//!
//! `cargo bench -p hallsync --bench push`. Environment: `PUSH_WRITES`
//! (default 1000), `PUSH_CLIENTS` (16, writing at once), `PUSH_PACE_MS`
//! (0: each client writes its next case as soon as the last returns; else
//! it waits this long between its writes).

#[path = "common/bundles.rs"]
mod bundles;
#[path = "../../crates/hall/tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hallsync_hall::Hall;
use hallsync_model::{DocId, Level, NodeId, RegionCode, Ts};
use hallsync_net::{NodeHandle, Options};
use hallsync_pki::bundle::{Bundle, ParentConfig};
use hallsync_pki::{Ca, Identity};
use hallsync_store::StoreOptions;

/// The allocator the `hallsync` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often a watcher looks at a store's durable feed.
const LOOK_EVERY: Duration = Duration::from_micros(250);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> Ts {
    Ts(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64)
}

fn identity(id: &str, level: Level, region: &str) -> Identity {
    Identity {
        id: NodeId::parse(id).unwrap(),
        level,
        region: RegionCode::parse(region).unwrap(),
    }
}

/// A bundle for `who`, listening on any loopback port if it has children.
fn bundle(ca: &Ca, dir: &Path, who: &Identity, listens: bool, parent: Option<&str>) -> Bundle {
    let parent = parent.map(|p| ParentConfig {
        id: NodeId::parse(p).unwrap(),
        addr: "127.0.0.1:9".into(),
    });
    bundles::bundle(
        ca,
        dir,
        who.clone(),
        listens.then(|| "127.0.0.1:0".to_string()),
        parent,
    )
}

fn hall(dir: &Path, who: &Identity) -> Arc<Hall> {
    Arc::new(
        Hall::init(
            dir,
            who.id.clone(),
            &format!("{} hall", who.id),
            who.region.clone(),
            who.level,
            StoreOptions::default(),
        )
        .unwrap(),
    )
}

async fn start(hall: &Arc<Hall>, bundle: &Bundle, parent: Option<SocketAddr>) -> NodeHandle {
    hallsync_net::start(
        hall.clone(),
        bundle.clone(),
        Options {
            parent_addr: parent,
            ..Options::default()
        },
    )
    .await
    .unwrap()
}

/// When each case of `want` first became durable in `hall`'s feed, looking
/// every [`LOOK_EVERY`] until all have or `stop` is set.
fn watch(
    hall: &Hall,
    want: usize,
    region: &RegionCode,
    stop: &std::sync::atomic::AtomicBool,
) -> HashMap<DocId, Instant> {
    let store = hall.store();
    let mut seen = HashMap::new();
    let mut after = store.durable_seq();
    while seen.len() < want && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let head = store.durable_seq();
        if head > after {
            let at = Instant::now();
            let (entries, _) = store.feed_entries(after, head, usize::MAX).unwrap();
            for e in entries {
                if e.id.region() == region && e.id.as_str().starts_with("case:") {
                    seen.entry(e.id).or_insert(at);
                }
            }
            after = head;
        } else {
            std::thread::sleep(LOOK_EVERY);
        }
    }
    seen
}

/// p50, p90, p99 and max of `d`, in milliseconds.
fn summary(mut d: Vec<Duration>) -> String {
    if d.is_empty() {
        return "no samples".into();
    }
    d.sort();
    let at = |q: f64| {
        let i = ((d.len() as f64 * q).ceil() as usize).clamp(1, d.len()) - 1;
        d[i].as_secs_f64() * 1e3
    };
    format!(
        "p50 {:7.1} ms  p90 {:7.1} ms  p99 {:7.1} ms  max {:7.1} ms  (n = {})",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
        d.len()
    )
}

fn main() {
    let writes = env("PUSH_WRITES", 1000) as usize;
    let clients = env("PUSH_CLIENTS", 16).max(1) as usize;
    let pace = Duration::from_millis(env("PUSH_PACE_MS", 0));
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::init(&tmp.path().join("certs"), "bench", now().plus(-3_600), 3650).unwrap();
    let bundles = tmp.path().join("bundles");
    let (ct_id, cn_id, tw_id) = (
        identity("ct-02", Level::City, "1402"),
        identity("cn-212", Level::County, "140212"),
        identity("tw-101", Level::Township, "140212101"),
    );
    let ct_b = bundle(&ca, &bundles, &ct_id, true, None);
    let cn_b = bundle(&ca, &bundles, &cn_id, true, Some("ct-02"));
    let tw_b = bundle(&ca, &bundles, &tw_id, false, Some("cn-212"));
    let city = hall(&tmp.path().join("ct"), &ct_id);
    let county = hall(&tmp.path().join("cn"), &cn_id);
    let town = Arc::new(support::township(&tmp.path().join("tw")));
    let at = now();
    support::publish(&town, "T1", at);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let nodes = rt.block_on(async {
        let ct = start(&city, &ct_b, None).await;
        let cn = start(&county, &cn_b, ct.local_addr()).await;
        let tw = start(&town, &tw_b, cn.local_addr()).await;
        [tw, cn, ct]
    });

    // Links up and the item through to the city.
    let region = tw_id.region.clone();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let warm = town
        .accept_case(support::new_case("T1", Some("WARM".into()), at), at)
        .unwrap()
        .id
        .to_string();
    let started = Instant::now();
    while city.case(&warm, at).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the links did not come up"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "links up in {:.1} s; {writes} writes from {clients} clients, pace {} ms",
        started.elapsed().as_secs_f64(),
        pace.as_millis()
    );

    let written: Mutex<HashMap<DocId, Instant>> = Mutex::new(HashMap::new());
    let (at_county, at_city, wall) = std::thread::scope(|s| {
        let watch_county = s.spawn(|| watch(&county, writes, &region, &stop));
        let watch_city = s.spawn(|| watch(&city, writes, &region, &stop));
        let begin = Instant::now();
        let writers: Vec<_> = (0..clients)
            .map(|c| {
                let (town, written) = (&town, &written);
                s.spawn(move || {
                    for i in (c..writes).step_by(clients) {
                        let row = town
                            .accept_case(support::new_case("T1", Some(format!("P-{i}")), at), at)
                            .unwrap();
                        let done = Instant::now();
                        written.lock().unwrap().insert(row.id, done);
                        if !pace.is_zero() {
                            std::thread::sleep(pace);
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let wall = begin.elapsed();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !(watch_county.is_finished() && watch_city.is_finished()) {
            if Instant::now() > deadline {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (
            watch_county.join().unwrap(),
            watch_city.join().unwrap(),
            wall,
        )
    });
    let written = written.into_inner().unwrap();
    let hop = |from: &HashMap<DocId, Instant>, to: &HashMap<DocId, Instant>| {
        from.iter()
            .filter_map(|(id, t)| to.get(id).map(|u| u.saturating_duration_since(*t)))
            .collect::<Vec<_>>()
    };
    println!();
    println!(
        "push latency: {} cases written at the township in {:.2} s ({:.0}/s) by {clients} clients, pace {} ms; watched every {} µs",
        written.len(),
        wall.as_secs_f64(),
        written.len() as f64 / wall.as_secs_f64(),
        pace.as_millis(),
        LOOK_EVERY.as_micros()
    );
    println!("township → county: {}", summary(hop(&written, &at_county)));
    println!("county → city:     {}", summary(hop(&at_county, &at_city)));
    println!("township → city:   {}", summary(hop(&written, &at_city)));
    if at_county.len() < written.len() || at_city.len() < written.len() {
        println!(
            "missing after 120 s: {} at the county, {} at the city",
            written.len() - at_county.len(),
            written.len() - at_city.len()
        );
    }
    rt.block_on(async {
        for n in nodes {
            n.shutdown().await;
        }
    });
}
