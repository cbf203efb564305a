//! Real nodes on loopback: a county and its townships over mutual-TLS QUIC,
//! with links cut through a UDP relay, strangers knocking, and garbage on
//! the wire.

#[path = "../crates/hall/tests/support/levels.rs"]
mod levels;
#[path = "../crates/hall/tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallsync_hall::{CaseFilter, Hall, NewOrder};
use hallsync_model::order::{Card, OrderState, Resolution, Rule};
use hallsync_model::{Level, NodeId, RegionCode, TimeLimit, Ts};
use hallsync_net::relay::{Mode, Relay};
use hallsync_net::{NodeHandle, Options};
use hallsync_pki::bundle::{Bundle, ParentConfig};
use hallsync_pki::topology::NodeEntry;
use hallsync_pki::{Ca, Identity};
use hallsync_store::StoreOptions;

fn now() -> Ts {
    Ts::parse("2026-11-23 10:00").unwrap()
}

/// A federation CA in a temporary directory, making bundles with short
/// timeouts so cuts are noticed in seconds.
struct Fed {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Fed {
    fn new(name: &str) -> Fed {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("certs"), name, now(), 3650).unwrap();
        Fed { dir, ca }
    }

    /// A bundle valid from `from` to `until`. A node with `addr` listens
    /// there and its topology entry (so its registry entry) says so; a node
    /// without one listens on any loopback port if it has no parent.
    fn bundle_valid(
        &self,
        id: &str,
        level: Level,
        region: &str,
        parent: Option<&str>,
        addr: Option<&str>,
        (from, until): (Ts, Ts),
    ) -> Bundle {
        let who = Identity {
            id: NodeId::parse(id).unwrap(),
            level,
            region: RegionCode::parse(region).unwrap(),
        };
        let issued = self.ca.issue(&who, from, until).unwrap();
        let entry = NodeEntry {
            id: who.id.clone(),
            name: format!("{id} hall"),
            level,
            region: who.region.clone(),
            parent: parent.map(|p| NodeId::parse(p).unwrap()),
            addr: addr.map(str::to_string),
            serial: issued.serial.clone(),
            issued: from.to_string(),
            expires: until.to_string(),
            revoked: None,
        };
        let dir = self.dir.path().join("bundles").join(id);
        let listen = match addr {
            Some(a) => Some(a.to_string()),
            None => parent.is_none().then(|| "127.0.0.1:0".to_string()),
        };
        let parent = parent.map(|p| ParentConfig {
            id: NodeId::parse(p).unwrap(),
            addr: "127.0.0.1:9".into(),
        });
        let mut b = Bundle::write(&dir, &self.ca, &entry, &issued, listen, parent, None).unwrap();
        b.config.idle_timeout_secs = 3;
        b.config.keep_alive_secs = 1;
        b.config.max_backoff_secs = 2;
        b
    }

    fn bundle(&self, id: &str, level: Level, region: &str, parent: Option<&str>) -> Bundle {
        self.hub(id, level, region, parent, None)
    }

    /// A bundle valid for a day, listening at `addr` if given.
    fn hub(
        &self,
        id: &str,
        level: Level,
        region: &str,
        parent: Option<&str>,
        addr: Option<&str>,
    ) -> Bundle {
        let t = Ts(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64);
        self.bundle_valid(
            id,
            level,
            region,
            parent,
            addr,
            (t.plus(-600), t.plus(86_400)),
        )
    }
}

fn county_hall(dir: &Path) -> Arc<Hall> {
    Arc::new(levels::county(dir))
}

fn township_hall(dir: &Path, id: &str, region: &str) -> Arc<Hall> {
    Arc::new(
        Hall::init(
            dir,
            NodeId::parse(id).unwrap(),
            "样例镇便民服务中心",
            RegionCode::parse(region).unwrap(),
            Level::Township,
            StoreOptions::default(),
        )
        .unwrap(),
    )
}

/// The county with two of its townships, tw-101 and tw-102, each in a
/// temporary directory (kept alive by the first value).
fn county_and_two_townships() -> (Vec<tempfile::TempDir>, Arc<Hall>, Arc<Hall>, Arc<Hall>) {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let county = county_hall(dirs[0].path());
    let a = Arc::new(support::township(dirs[1].path()));
    let b = township_hall(dirs[2].path(), "tw-102", "140212102");
    (dirs, county, a, b)
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

/// The county node, listening on a loopback port.
async fn start_county(fed: &Fed, county: &Arc<Hall>) -> NodeHandle {
    start(
        county,
        &fed.bundle("cn-212", Level::County, "140212", None),
        None,
    )
    .await
}

/// A township node dialing the county (or `via`, a relay).
async fn start_township(fed: &Fed, hall: &Arc<Hall>, via: Option<SocketAddr>) -> NodeHandle {
    let node = hall.node();
    let bundle = fed.bundle(
        node.id.as_str(),
        Level::Township,
        node.region.as_str(),
        Some("cn-212"),
    );
    start(hall, &bundle, via).await
}

/// Publishes item `code` and accepts `n` cases under it, numbered
/// `<code>-<i>`.
fn with_cases(hall: &Hall, code: &str, n: usize, at: Ts) {
    support::publish(hall, code, now());
    for i in 0..n {
        hall.accept_case(support::new_case(code, Some(format!("{code}-{i}")), at), at)
            .unwrap();
    }
}

/// Waits until `f` holds, failing with `what` after `secs`.
async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all() -> CaseFilter {
    CaseFilter {
        include_closed: true,
        ..CaseFilter::default()
    }
}

fn peer(node: &NodeHandle, id: &str) -> Option<hallsync_net::status::PeerStatus> {
    node.board()
        .snapshot()
        .peers
        .into_iter()
        .find(|p| p.id == id)
}

/// Starts the county and both its townships.
async fn start_all(
    fed: &Fed,
    county: &Arc<Hall>,
    a: &Arc<Hall>,
    b: &Arc<Hall>,
) -> (NodeHandle, NodeHandle, NodeHandle) {
    let cn = start_county(fed, county).await;
    let ta = start_township(fed, a, cn.local_addr()).await;
    let tb = start_township(fed, b, cn.local_addr()).await;
    (cn, ta, tb)
}

/// Waits until both townships' links to the county are up with nothing
/// owed either way.
async fn both_caught_up(ta: &NodeHandle, tb: &NodeHandle) {
    wait_for("every link caught up", 30, || {
        [(ta, "cn-212"), (tb, "cn-212")].iter().all(|(n, p)| {
            peer(n, p).is_some_and(|s| s.connected && s.backlog_in == 0 && s.backlog_out == 0)
        })
    })
    .await;
}

fn cases(h: &Hall) -> usize {
    h.list_cases(&all(), now()).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_go_up_items_come_down_live_and_concurrent_edits_merge() {
    let fed = Fed::new("样例市");
    let (dc, dt) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let county = county_hall(dc.path());
    let town = Arc::new(support::township(dt.path()));
    with_cases(&town, "T1", 20, now());
    county
        .add_item(&support::item("C9", "15个工作日"), "县法制办", now())
        .unwrap();
    let cn = start_county(&fed, &county).await;
    let tw = start_township(&fed, &town, cn.local_addr()).await;
    wait_for("the township's cases at the county", 30, || {
        cases(&county) == 20
    })
    .await;
    wait_for("the county item at the township", 30, || {
        town.item("C9").is_ok()
    })
    .await;

    // Live: a case accepted now shows up upstairs without a reconnect.
    town.accept_case(
        support::new_case("T1", Some("T1-LIVE".into()), now()),
        now(),
    )
    .unwrap();
    wait_for("a live case at the county", 10, || cases(&county) == 21).await;

    // Both levels act on one case at once.
    let later = now().plus(600);
    let id = levels::act_at_both_levels(&town, &county, "T1-3", later);
    wait_for("both events on both sides", 10, || {
        let a = town.case("T1-3", later).unwrap().0;
        let b = county.case(&id, later).unwrap().0;
        a.events.len() == 4 && b.events.len() == 4
    })
    .await;
    assert_eq!(
        town.case("T1-3", later).unwrap().0.view(),
        county.case(&id, later).unwrap().0.view()
    );
    let p = peer(&tw, "cn-212").unwrap();
    assert!(p.connected && p.last_sync.is_some(), "{p:?}");
    tw.shutdown().await;
    cn.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_the_county_refuses_does_not_stop_the_townships_uplink() {
    use automerge::{transaction::Transactable, ReadDoc, ROOT};
    let fed = Fed::new("样例市");
    let (dc, dt) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let county = county_hall(dc.path());
    let town = Arc::new(support::township(dt.path()));
    with_cases(&town, "T1", 10, now());
    // A 5,000-character applicant, as an older build let through the
    // window, put straight into the stored case.
    let bad = town.case_id("T1-4").unwrap();
    {
        let h = town.store().doc(&bad).unwrap();
        let mut l = hallsync_store::lock(&h).unwrap();
        let (_, applicant) = l.doc.get(ROOT, "applicant").unwrap().unwrap();
        l.doc.put(&applicant, "name", "张".repeat(5_000)).unwrap();
        l.doc.commit();
        town.store()
            .persist(&mut [hallsync_store::Pending {
                id: &bad,
                loaded: &mut l,
                index: None,
                facts: None,
            }])
            .unwrap();
    }
    let cn = start_county(&fed, &county).await;
    let tw = start_township(&fed, &town, cn.local_addr()).await;
    wait_for("the other nine cases at the county", 30, || {
        cases(&county) == 9
    })
    .await;
    // Cases written later still flow, on the same session.
    town.accept_case(
        support::new_case("T1", Some("T1-LATER".into()), now()),
        now(),
    )
    .unwrap();
    wait_for("a later case at the county", 10, || cases(&county) == 10).await;
    let shown = |n: &NodeHandle| n.board().snapshot().set_aside;
    wait_for("both ends showing the record set aside", 10, || {
        shown(&cn).len() == 1 && shown(&tw).len() == 1
    })
    .await;
    let (at_county, at_town) = (shown(&cn), shown(&tw));
    assert_eq!(at_county[0].id, bad.to_string());
    assert_eq!(at_county[0].direction, "refused");
    assert!(
        at_county[0].reason.contains("applicant.name"),
        "{at_county:?}"
    );
    assert_eq!(at_town[0].direction, "refused_by_peer");
    let p = peer(&tw, "cn-212").unwrap();
    assert!(p.connected && p.last_error.is_none(), "{p:?}");
    assert_eq!(
        p.backlog_out, 0,
        "the county acknowledged everything: {p:?}"
    );
    tw.shutdown().await;
    cn.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_offline_then_a_cut_mid_catch_up_resumes_without_resending() {
    let fed = Fed::new("样例市");
    let (dc, dt) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let county = county_hall(dc.path());
    let town = Arc::new(support::township(dt.path()));
    support::publish(&town, "T1", now());
    // A week of work with the link down: 5,000 cases.
    let total = 5_000;
    for i in 0..total {
        let at = now().plus((i as i64) * 7 * 86_400 / total as i64);
        town.accept_case(support::new_case("T1", Some(format!("W-{i:05}")), at), at)
            .unwrap();
    }
    let cn = start_county(&fed, &county).await;
    let relay = Relay::start(cn.local_addr().unwrap(), 0).await.unwrap();
    let tw = start_township(&fed, &town, Some(relay.addr())).await;
    let head = town.store().durable_seq();
    let checkpoint = || county.store().peer_checkpoint("tw-101").unwrap().seq;
    wait_for("catch-up to begin", 60, || checkpoint() > 200).await;
    relay.set(Mode::Blackhole);
    wait_for("the township to notice the cut", 30, || {
        peer(&tw, "cn-212").is_some_and(|p| !p.connected)
    })
    .await;
    let acked = checkpoint();
    assert!(
        acked < head,
        "catch-up finished before the cut ({acked} of {head}); the test proves nothing"
    );
    // What the township still owes: its entries after the checkpoint, but
    // not the copy of the county's registry entry it received meanwhile
    // (never offered back to the county).
    let store = town.store();
    let (owed, _) = store
        .feed_entries(acked, store.durable_seq(), usize::MAX)
        .unwrap();
    let not_acked = owed
        .iter()
        .filter(|e| e.origin.as_deref() != Some("cn-212"))
        .count() as u64;
    relay.set(Mode::Pass);
    wait_for("catch-up to finish after the cut", 120, || {
        checkpoint() >= head
    })
    .await;
    assert_eq!(cases(&county), total);
    let p = peer(&tw, "cn-212").unwrap();
    assert_eq!(
        p.sent_docs, not_acked,
        "the resumed session sent exactly the documents not acknowledged before the cut"
    );
    tw.shutdown().await;
    cn.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_township_never_receives_a_siblings_cases() {
    let fed = Fed::new("样例市");
    let (_dirs, county, a, b) = county_and_two_townships();
    with_cases(&a, "A1", 10, now());
    with_cases(&b, "B1", 10, now());
    county
        .add_item(&support::item("C9", "15个工作日"), "县法制办", now())
        .unwrap();
    let (cn, ta, tb) = start_all(&fed, &county, &a, &b).await;
    wait_for("both townships' cases at the county", 30, || {
        cases(&county) == 20
    })
    .await;
    wait_for("the county item at both townships", 30, || {
        a.item("C9").is_ok() && b.item("C9").is_ok()
    })
    .await;
    both_caught_up(&ta, &tb).await;
    assert_eq!(cases(&a), 10);
    assert_eq!(cases(&b), 10);
    assert!(a.item("B1").is_err(), "a sibling's catalogue item leaked");
    for n in [ta, tb, cn] {
        n.shutdown().await;
    }
}

fn order_state(h: &Hall, key: &str) -> Option<OrderState> {
    h.order(key, now()).ok().map(|r| r.view.state)
}

/// An order about a complaint over case `case` of the hall at `unit`
/// (typed by a person: it needs no card standing on the case).
fn complaint_order(unit: &Hall, case: &str) -> NewOrder {
    NewOrder {
        unit: unit.node().region.clone(),
        department: String::new(),
        case: case.into(),
        rule: Rule::ComplaintReply,
        card: Card::Yellow,
        reason: "群众投诉办理缓慢，请核实答复".into(),
        by: "电子监察室".into(),
        reply_within: TimeLimit::parse("3wd").unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_reaches_only_the_township_it_names_and_its_reply_comes_back_up() {
    let fed = Fed::new("样例市");
    let (_dirs, county, a, b) = county_and_two_townships();
    with_cases(&a, "A1", 3, now());
    with_cases(&b, "B1", 3, now());
    let (cn, ta, tb) = start_all(&fed, &county, &a, &b).await;
    wait_for("both townships' cases at the county", 30, || {
        cases(&county) == 6
    })
    .await;
    let issued = county
        .issue_order(complaint_order(&a, "A1-0"), now())
        .unwrap();
    wait_for("the order at the township it names", 30, || {
        order_state(&a, "cn-212.1") == Some(OrderState::Open)
    })
    .await;
    a.reply_order("cn-212.1", "已办结", "李四", now().plus(60))
        .unwrap();
    wait_for("the reply at the county", 30, || {
        order_state(&county, "cn-212.1") == Some(OrderState::Replied)
    })
    .await;
    county
        .close_order(
            "cn-212.1",
            Resolution::Rectified,
            "整改到位",
            "县电子监察室",
            now().plus(120),
        )
        .unwrap();
    wait_for("the closing at the township", 30, || {
        order_state(&a, "cn-212.1") == Some(OrderState::Closed)
    })
    .await;
    both_caught_up(&ta, &tb).await;
    assert!(
        b.orders(now()).unwrap().is_empty(),
        "a sibling got the order"
    );
    assert!(!b.store().contains(&issued.id).unwrap());
    assert_eq!(a.orders(now()).unwrap().len(), 1);
    for n in [ta, tb, cn] {
        n.shutdown().await;
    }
}

/// Revokes the certificate in `bundle` at the CA; returns the new list (PEM).
fn revoke(fed: &Fed, bundle: &Bundle, id: &str) -> String {
    let serial = hallsync_pki::serial_of_pem(&bundle.read("node.crt").unwrap()).unwrap();
    let mut ca = Ca::open(&fed.dir.path().join("certs")).unwrap();
    ca.revoke(&serial, id, now()).unwrap();
    ca.crl_pem().unwrap()
}

/// Waits until the county drops the revoked node `id`, and checks it
/// cannot come back.
async fn locked_out(cn: &NodeHandle, id: &str) {
    wait_for("the county to drop the revoked node", 30, || {
        peer(cn, id).is_some_and(|p| !p.connected)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        peer(cn, id).is_some_and(|p| !p.connected),
        "{id} came back after its revocation"
    );
}

fn registry_ids(h: &Hall) -> Vec<String> {
    let mut ids: Vec<String> = h
        .registry()
        .unwrap()
        .into_iter()
        .map(|e| e.node.to_string())
        .collect();
    ids.sort();
    ids
}

fn crl_number(b: &Bundle) -> u64 {
    hallsync_pki::check_crl_pem(&b.read("ca.crt").unwrap(), &b.read("crl.pem").unwrap())
        .unwrap()
        .number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_given_to_one_township_reaches_the_county_and_locks_out_the_sibling() {
    let fed = Fed::new("样例市");
    let (_dirs, county, a, b) = county_and_two_townships();
    let cn_bundle = fed.bundle("cn-212", Level::County, "140212", None);
    let cn = start(&county, &cn_bundle, None).await;
    let a_bundle = fed.bundle("tw-101", Level::Township, "140212101", Some("cn-212"));
    let b_bundle = fed.bundle("tw-102", Level::Township, "140212102", Some("cn-212"));
    let ta = start(&a, &a_bundle, cn.local_addr()).await;
    let tb = start(&b, &b_bundle, cn.local_addr()).await;

    // Entries go up the tree and come down it, never across.
    wait_for("the registry entries to replicate", 30, || {
        registry_ids(&county) == ["cn-212", "tw-101", "tw-102"]
            && registry_ids(&a) == ["cn-212", "tw-101"]
            && registry_ids(&b) == ["cn-212", "tw-102"]
    })
    .await;
    let before = crl_number(&cn_bundle);

    // The administrator revokes tw-102 and copies the new list to tw-101
    // alone; the county learns it from tw-101's registry entry.
    std::fs::write(a_bundle.file("crl.pem"), revoke(&fed, &b_bundle, "tw-102")).unwrap();
    wait_for("the county to install the new list", 30, || {
        crl_number(&cn_bundle) > before
    })
    .await;
    locked_out(&cn, "tw-102").await;
    assert!(
        peer(&cn, "tw-101").is_some_and(|p| p.connected),
        "the township that brought the list lost its link"
    );
    let status = cn.board().snapshot();
    assert_eq!(status.revocation_list, Some(crl_number(&cn_bundle)));
    for n in [ta, tb, cn] {
        n.shutdown().await;
    }
}

/// A free loopback address (bound, then released).
fn free_addr() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_its_county_down_a_township_syncs_with_the_city_and_the_county_catches_up_from_it() {
    let fed = Fed::new("样例市");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let city = Arc::new(
        Hall::init(
            dirs[0].path(),
            NodeId::parse("ct-02").unwrap(),
            "样例市政务服务中心",
            RegionCode::parse("1402").unwrap(),
            Level::City,
            StoreOptions::default(),
        )
        .unwrap(),
    );
    let county = county_hall(dirs[1].path());
    let town = Arc::new(support::township(dirs[2].path()));
    with_cases(&town, "T1", 3, now());
    let city_addr = free_addr();
    let ct_bundle = fed.hub(
        "ct-02",
        Level::City,
        "1402",
        None,
        Some(&city_addr.to_string()),
    );
    let ct = start(&city, &ct_bundle, None).await;
    // The county comes back at the address its township dials.
    let county_addr = free_addr();
    let cn_bundle = fed.hub(
        "cn-212",
        Level::County,
        "140212",
        Some("ct-02"),
        Some(&county_addr.to_string()),
    );
    let cn = start(&county, &cn_bundle, Some(city_addr)).await;
    let tw = start_township(&fed, &town, cn.local_addr()).await;
    wait_for(
        "the township's cases at the city, through the county",
        30,
        || cases(&city) == 3,
    )
    .await;
    wait_for("the city's registry entry at the township", 30, || {
        registry_ids(&town).contains(&"ct-02".to_string())
    })
    .await;

    // The county hub goes down for good; the township works on.
    cn.shutdown().await;
    for i in 3..8 {
        town.accept_case(
            support::new_case("T1", Some(format!("T1-{i}")), now()),
            now(),
        )
        .unwrap();
    }
    wait_for(
        "the new cases at the city, straight from the township",
        60,
        || cases(&city) == 8,
    )
    .await;
    assert!(
        peer(&tw, "ct-02").is_some_and(|p| p.role == hallsync_net::status::Role::Ancestor),
        "the township did not say it fell back on the city"
    );
    assert_eq!(cases(&county), 3, "the county was down");

    // Meanwhile the city supervises the township directly: its order comes
    // down the fallback link and the reply goes back up it.
    city.issue_order(complaint_order(&town, "T1-5"), now())
        .unwrap();
    wait_for("the city's order at the township", 60, || {
        order_state(&town, "ct-02.1") == Some(OrderState::Open)
    })
    .await;
    town.reply_order("ct-02.1", "已办结", "李四", now())
        .unwrap();
    wait_for("the township's reply at the city", 60, || {
        order_state(&city, "ct-02.1") == Some(OrderState::Replied)
    })
    .await;

    // The county comes back and gets them from the city: nothing twice.
    let cn = start(&county, &cn_bundle, Some(city_addr)).await;
    wait_for("the county to catch up from the city", 30, || {
        cases(&county) == 8
    })
    .await;
    wait_for("the city's order, replied to, at the county", 30, || {
        order_state(&county, "ct-02.1") == Some(OrderState::Replied)
    })
    .await;
    // The township goes back to its county, which takes everything it
    // sends: nothing set aside at either end.
    town.accept_case(
        support::new_case("T1", Some("T1-back".into()), now()),
        now(),
    )
    .unwrap();
    wait_for("the township's new case at the county", 90, || {
        cases(&county) == 9
    })
    .await;
    wait_for("the township linked with its county again", 90, || {
        peer(&tw, "cn-212").is_some_and(|p| p.connected)
    })
    .await;
    for (who, node) in [("county", &cn), ("township", &tw), ("city", &ct)] {
        let aside = node.board().snapshot().set_aside;
        assert!(aside.is_empty(), "set aside at the {who}: {aside:?}");
    }
    for n in [tw, cn, ct] {
        n.shutdown().await;
    }
}

/// Starts a township with `bundle` against a running county and checks it
/// gets nowhere: no data flows, the county never counts it connected.
async fn refused(county: &Arc<Hall>, cn: &NodeHandle, bundle: &Bundle) -> String {
    let dt = tempfile::tempdir().unwrap();
    let town = Arc::new(support::township(dt.path()));
    support::publish(&town, "T1", now());
    town.accept_case(support::new_case("T1", Some("X-1".into()), now()), now())
        .unwrap();
    let before = county.store().durable_seq();
    let tw = start(&town, bundle, cn.local_addr()).await;
    wait_for("the attempt to fail", 20, || {
        peer(&tw, "cn-212").is_some_and(|p| p.last_error.is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(county.store().durable_seq(), before, "data flowed");
    assert!(
        peer(cn, "tw-101").is_none_or(|p| !p.connected),
        "the county counted it connected"
    );
    let err = peer(&tw, "cn-212").unwrap().last_error.unwrap();
    tw.shutdown().await;
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_before_any_data_flows() {
    let fed = Fed::new("样例市");
    let dc = tempfile::tempdir().unwrap();
    let county = county_hall(dc.path());
    let cn_bundle = fed.bundle("cn-212", Level::County, "140212", None);
    let cn = start(&county, &cn_bundle, None).await;

    // A certificate from another CA.
    let other = Fed::new("别的市");
    let err = refused(
        &county,
        &cn,
        &other.bundle("tw-101", Level::Township, "140212101", Some("cn-212")),
    )
    .await;
    assert!(!err.is_empty());

    // An expired certificate.
    let t = now();
    let expired = fed.bundle_valid(
        "tw-101",
        Level::Township,
        "140212101",
        Some("cn-212"),
        None,
        (t.plus(-10 * 86_400), t.plus(-86_400)),
    );
    refused(&county, &cn, &expired).await;

    // No client certificate at all: a bare QUIC client.
    let provider = hallsync_net::tls::provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(fed.ca.cert_pem().as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![hallsync_net::tls::ALPN.to_vec()];
    let before = county.store().durable_seq();
    let result = raw_exchange(
        cn.local_addr().unwrap(),
        quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
        )),
        &[hello_frame("tw-101")],
    )
    .await;
    assert!(
        result.is_err(),
        "a client without a certificate got an answer"
    );
    assert_eq!(county.store().durable_seq(), before);

    // A certificate revoked while its node is connected: the link drops
    // once the county sees the new CRL, and it cannot come back.
    let dt = tempfile::tempdir().unwrap();
    let town = Arc::new(support::township(dt.path()));
    let tb = fed.bundle("tw-101", Level::Township, "140212101", Some("cn-212"));
    let tw = start(&town, &tb, cn.local_addr()).await;
    wait_for("the township to connect", 20, || {
        peer(&cn, "tw-101").is_some_and(|p| p.connected)
    })
    .await;
    std::fs::write(cn_bundle.file("crl.pem"), revoke(&fed, &tb, "tw-101")).unwrap();
    locked_out(&cn, "tw-101").await;
    tw.shutdown().await;
    cn.shutdown().await;
}

fn hello_frame(node: &str) -> Vec<u8> {
    let body = hallsync_sync::encode(&hallsync_sync::Msg::Hello(hallsync_sync::Hello {
        protocol: hallsync_sync::msg::PROTOCOL,
        node: node.into(),
        feed: 1,
        resume_feed: 0,
        resume: 0,
        head: 0,
    }))
    .unwrap();
    framed(&body)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Connects with `cfg`, writes `frames` on a new stream, finishes it, and
/// reads whatever comes back until the county closes the link.
async fn raw_exchange(
    addr: SocketAddr,
    cfg: quinn::ClientConfig,
    frames: &[Vec<u8>],
) -> Result<Vec<u8>, String> {
    let mut ep = quinn::Endpoint::client(([127, 0, 0, 1], 0).into()).unwrap();
    ep.set_default_client_config(cfg);
    let conn = ep
        .connect(
            addr,
            &hallsync_pki::dns_name(&NodeId::parse("cn-212").unwrap()),
        )
        .unwrap()
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    for f in frames {
        send.write_all(f).await.map_err(|e| e.to_string())?;
    }
    let _ = send.finish();
    let got = tokio::time::timeout(Duration::from_secs(10), recv.read_to_end(1 << 20))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    ep.close(0u32.into(), b"");
    Ok(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_truncated_messages_end_the_session() {
    let fed = Fed::new("样例市");
    let dc = tempfile::tempdir().unwrap();
    let county = county_hall(dc.path());
    let cn = start_county(&fed, &county).await;
    let tb = fed.bundle("tw-101", Level::Township, "140212101", Some("cn-212"));
    let provider = hallsync_net::tls::provider();
    let creds = hallsync_net::tls::Credentials::load(&tb).unwrap();
    let cfg = || {
        quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(creds.client(&provider).unwrap())
                .unwrap(),
        ))
    };
    let before = county.store().durable_seq();
    let oversized = ((hallsync_sync::msg::MAX_FRAME + 1) as u32)
        .to_be_bytes()
        .to_vec();
    let garbage = framed(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    let mut truncated = 1000u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[1, 2, 3]);
    let out_of_scope = framed(
        &hallsync_sync::encode(&hallsync_sync::Msg::Offer {
            batch: 1,
            after: 0,
            upto: 1,
            head: 1,
            docs: vec![hallsync_sync::msg::OfferDoc {
                id: "case:140212102:sibling".into(),
                heads: vec![[1; 32]],
            }],
        })
        .unwrap(),
    );
    let cases = [
        ("oversized", vec![hello_frame("tw-101"), oversized]),
        ("malformed", vec![hello_frame("tw-101"), garbage]),
        ("truncated", vec![hello_frame("tw-101"), truncated]),
        ("out of scope", vec![hello_frame("tw-101"), out_of_scope]),
        ("impostor", vec![hello_frame("tw-102")]),
    ];
    for (what, frames) in cases {
        let last = || peer(&cn, "tw-101").and_then(|p| p.last_error);
        let previous = last();
        let _ = raw_exchange(cn.local_addr().unwrap(), cfg(), &frames).await;
        wait_for(what, 10, || {
            peer(&cn, "tw-101").is_some_and(|p| !p.connected) && last() != previous
        })
        .await;
        let err = peer(&cn, "tw-101").unwrap().last_error.unwrap();
        eprintln!("{what}: {err}");
        assert_eq!(
            county.store().durable_seq(),
            before,
            "{what} changed stored data"
        );
    }
    cn.shutdown().await;
}
