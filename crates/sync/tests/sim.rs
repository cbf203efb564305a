//! The protocol under a deterministic simulated network: a county and two
//! townships, every message a datagram that may be lost, duplicated,
//! delayed (so reordered) or cut off for a while, and sessions torn down and
//! restarted at random. Whatever happens, once the network heals every
//! node converges to the same heads for every document it may hold, and
//! never holds a document outside its scope.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use automerge::{transaction::Transactable, AutoCommit, ChangeHash, ReadDoc, ROOT};
use hallsync_model::scope;
use hallsync_model::{DocId, NodeId, RegionCode};
use hallsync_sync::{
    decode, encode, ApplyError, Config, Endpoint, Entry, Hash, Msg, Payload, Position, Received,
    Refusal, Replica, Session, SessionError,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// An in-memory replica with the same contract as the store-backed one.
#[derive(Default)]
struct Mem {
    region: Option<RegionCode>,
    docs: BTreeMap<DocId, AutoCommit>,
    /// seq -> (doc, origin).
    feed: BTreeMap<u64, (DocId, Option<String>)>,
    at: HashMap<DocId, u64>,
    next: u64,
    checkpoints: HashMap<NodeId, Position>,
    feed_id: u64,
    applied_docs: u64,
    /// Documents a peer sent that were set aside here: (peer, id, reason).
    set_aside: Vec<(NodeId, DocId, String)>,
    /// Documents sent from here that a peer set aside: (peer, id).
    refused_by_peer: Vec<(NodeId, DocId)>,
    /// How far this replica's wall clock is off a common one (ms).
    clock_off_ms: i64,
    /// Being rebuilt from its peers.
    restoring: bool,
}

impl Mem {
    fn new(region: &str) -> Mem {
        Mem {
            region: Some(RegionCode::parse(region).unwrap()),
            next: 1,
            feed_id: region.len() as u64 * 1000 + 7,
            ..Mem::default()
        }
    }

    fn bump(&mut self, id: &DocId, origin: Option<String>) {
        if let Some(old) = self.at.insert(id.clone(), self.next) {
            self.feed.remove(&old);
        }
        self.feed.insert(self.next, (id.clone(), origin));
        self.next += 1;
    }

    fn edit(&mut self, id: &DocId, key: &str, value: i64) {
        let doc = self.docs.entry(id.clone()).or_default();
        doc.put(ROOT, key, value).unwrap();
        doc.commit();
        self.bump(id, None);
    }

    fn heads_of(&mut self, id: &DocId) -> Option<Vec<ChangeHash>> {
        self.docs.get_mut(id).map(|d| {
            let mut h = d.get_heads();
            h.sort();
            h
        })
    }
}

impl Replica for Mem {
    fn feed(&mut self, after: u64, limit: usize) -> Result<(Vec<Entry>, u64), String> {
        let mut out = Vec::new();
        let mut scanned = self.next - 1;
        for (&seq, (id, origin)) in self.feed.range(after + 1..) {
            if out.len() == limit {
                scanned = seq - 1;
                break;
            }
            let heads = self.docs.get_mut(id).unwrap().get_heads();
            out.push(Entry {
                seq,
                id: id.clone(),
                heads: heads.iter().map(|h| h.0).collect(),
                origin: origin.clone(),
            });
        }
        Ok((out, scanned))
    }
    fn feed_head(&self) -> u64 {
        self.next - 1
    }
    fn heads(&mut self, id: &DocId) -> Result<Option<Vec<Hash>>, String> {
        Ok(self
            .docs
            .get_mut(id)
            .map(|d| d.get_heads().iter().map(|h| h.0).collect()))
    }
    fn whole(&mut self, id: &DocId) -> Result<Option<Vec<u8>>, String> {
        Ok(self.docs.get_mut(id).map(|d| d.save()))
    }
    fn changes_since(&mut self, id: &DocId, have: &[Hash]) -> Result<Vec<u8>, String> {
        let d = self.docs.get_mut(id).unwrap();
        let have: Vec<ChangeHash> = have
            .iter()
            .map(|h| ChangeHash(*h))
            .filter(|h| d.get_change_by_hash(h).is_some())
            .collect();
        Ok(d.get_changes(&have)
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect())
    }
    fn feed_id(&self) -> u64 {
        self.feed_id
    }
    fn restoring(&self) -> bool {
        self.restoring
    }
    fn wall_clock_ms(&self) -> i64 {
        1_790_000_000_000 + self.clock_off_ms
    }
    fn checkpoint(&mut self, peer: &NodeId) -> Result<Position, String> {
        Ok(self.checkpoints.get(peer).copied().unwrap_or_default())
    }
    fn apply(
        &mut self,
        peer: &Endpoint,
        docs: Vec<Received>,
        checkpoint: Option<Position>,
    ) -> Result<Vec<Refusal>, ApplyError> {
        let mut merged = Vec::new();
        let mut refused = Vec::new();
        for Received {
            id,
            payload: p,
            heads: mut theirs,
        } in docs
        {
            let region = self.region.as_ref().unwrap();
            if !scope::visible(region, &id) {
                return Err(ApplyError::Rejected(format!("{id} out of scope")));
            }
            let mut doc = self.docs.get_mut(&id).map(|d| d.fork()).unwrap_or_default();
            let bytes = match &p {
                Payload::Whole(b) | Payload::Changes(b) => b,
                Payload::Nothing => continue,
            };
            let checked = match doc.load_incremental(bytes) {
                Err(e) => Err(e.to_string()),
                Ok(_) if !doc.get_missing_deps(&[]).is_empty() => Err(format!("{id} incomplete")),
                // What this replica counts as an invalid record.
                Ok(_) if doc.get(ROOT, "poison").unwrap().is_some() => {
                    Err(format!("{id} is poisoned"))
                }
                Ok(_) => Ok(()),
            };
            if let Err(reason) = checked {
                self.set_aside
                    .push((peer.id.clone(), id.clone(), reason.clone()));
                refused.push(Refusal {
                    id,
                    heads: theirs,
                    reason,
                });
                continue;
            }
            theirs.sort();
            merged.push((id, doc, theirs));
        }
        for (id, doc, theirs) in merged {
            let before = self.heads_of(&id);
            let mut doc = doc;
            let mut after = doc.get_heads();
            after.sort();
            self.docs.insert(id.clone(), doc);
            if before.as_ref() != Some(&after) {
                self.applied_docs += 1;
                let exact = after.iter().map(|h| h.0).collect::<Vec<_>>() == theirs;
                self.bump(&id, exact.then(|| peer.id.to_string()));
            }
        }
        if let Some(c) = checkpoint {
            let e = self.checkpoints.entry(peer.id.clone()).or_default();
            if e.feed != c.feed || c.seq > e.seq {
                *e = c;
            }
        }
        Ok(refused)
    }
    fn refused_by_peer(&mut self, peer: &Endpoint, refused: Vec<Refusal>) -> Result<(), String> {
        self.refused_by_peer
            .extend(refused.into_iter().map(|r| (peer.id.clone(), r.id)));
        Ok(())
    }
}

struct Node {
    me: Endpoint,
    mem: Mem,
}

/// A link between a township (index `child`) and the county (index 0).
struct Link {
    child: usize,
    /// Bumped at every reconnect: frames of an older connection are
    /// dropped, as QUIC drops packets of a closed connection.
    generation: u64,
    up: Option<Session>,
    down: Option<Session>,
    /// The feed head of each end (township, county) when its session last
    /// looked at it (a poll or a message handled).
    seen: [u64; 2],
}

/// A frame on the wire: link, connection generation, towards the township?,
/// bytes.
type InFlight = (usize, u64, bool, Vec<u8>);

struct Net {
    rng: StdRng,
    nodes: Vec<Node>,
    links: Vec<Link>,
    /// (deliver at ms, order) -> frame in flight.
    queue: BTreeMap<(u64, u64), InFlight>,
    order: u64,
    now: u64,
    loss: f64,
    dup: f64,
    cut_until: u64,
    config: Config,
    restarts: u64,
    /// Poll every session at every step, as on a timer; otherwise only
    /// when it is due ([`Session::poll_timeout`]) or its node's feed grew
    /// while it could offer, as the QUIC driver does.
    periodic: bool,
    /// Polls made.
    polls: u64,
    /// Steps taken.
    steps: u64,
}

/// Whether a driver that is not polling on a timer polls `s` now: it is
/// due, or the feed grew past `seen` while it could offer.
fn poll_due(s: &Session, feed_head: u64, seen: u64, now: Duration) -> bool {
    s.poll_timeout().is_some_and(|t| t <= now) || (s.can_offer() && feed_head > seen)
}

/// A first hello from `node` (feed 1, nothing applied yet).
fn hello(node: &str, head: u64) -> Msg {
    Msg::Hello(hallsync_sync::Hello {
        protocol: hallsync_sync::msg::PROTOCOL,
        node: node.into(),
        feed: 1,
        resume_feed: 0,
        resume: 0,
        head,
    })
}

fn endpoint(id: &str, region: &str) -> Endpoint {
    Endpoint {
        id: NodeId::parse(id).unwrap(),
        region: RegionCode::parse(region).unwrap(),
    }
}

impl Net {
    fn new(seed: u64) -> Net {
        let nodes = vec![
            Node {
                me: endpoint("county", "330102"),
                mem: Mem::new("330102"),
            },
            Node {
                me: endpoint("town-a", "330102001"),
                mem: Mem::new("330102001"),
            },
            Node {
                me: endpoint("town-b", "330102002"),
                mem: Mem::new("330102002"),
            },
        ];
        let config = Config {
            batch_docs: 7,
            window: 3,
            part_bytes: 2_000,
            retry_after: Duration::from_millis(300),
        };
        let mut net = Net {
            rng: StdRng::seed_from_u64(seed),
            nodes,
            links: vec![],
            queue: BTreeMap::new(),
            order: 0,
            now: 0,
            loss: 0.1,
            dup: 0.05,
            cut_until: 0,
            config,
            restarts: 0,
            periodic: true,
            polls: 0,
            steps: 0,
        };
        for child in [1, 2] {
            net.links.push(Link {
                child,
                generation: 0,
                up: None,
                down: None,
                seen: [0; 2],
            });
        }
        for l in 0..net.links.len() {
            net.connect(l);
        }
        net
    }

    fn time(&self) -> Duration {
        Duration::from_millis(self.now)
    }

    fn connect(&mut self, l: usize) {
        let now = self.time();
        let child = self.links[l].child;
        let (county_me, child_me) = (self.nodes[0].me.clone(), self.nodes[child].me.clone());
        let cfg = self.config.clone();
        let up = Session::new(
            child_me.clone(),
            county_me.clone(),
            cfg.clone(),
            &mut self.nodes[child].mem,
            now,
        )
        .unwrap();
        let down = Session::new(county_me, child_me, cfg, &mut self.nodes[0].mem, now).unwrap();
        self.links[l].generation += 1;
        self.links[l].up = Some(up);
        self.links[l].down = Some(down);
    }

    /// Moves queued messages of every session onto the network.
    fn transmit(&mut self) {
        for l in 0..self.links.len() {
            for to_child in [false, true] {
                let link = &mut self.links[l];
                let generation = link.generation;
                let s = if to_child {
                    link.down.as_mut()
                } else {
                    link.up.as_mut()
                };
                let Some(s) = s else { continue };
                while let Some(m) = s.poll_transmit() {
                    let frame = encode(&m).unwrap();
                    if self.now < self.cut_until || self.rng.random_bool(self.loss) {
                        continue;
                    }
                    let copies = if self.rng.random_bool(self.dup) { 2 } else { 1 };
                    for _ in 0..copies {
                        let at = self.now + self.rng.random_range(1..40);
                        self.order += 1;
                        self.queue
                            .insert((at, self.order), (l, generation, to_child, frame.clone()));
                    }
                }
            }
        }
    }

    fn step(&mut self) {
        self.now += 5;
        self.steps += 1;
        let due: Vec<_> = self
            .queue
            .range(..(self.now + 1, 0))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            let (l, generation, to_child, frame) = self.queue.remove(&k).unwrap();
            if generation != self.links[l].generation {
                continue;
            }
            let msg = decode(&frame).unwrap();
            let now = self.time();
            let child = self.links[l].child;
            let (session, mem) = if to_child {
                (self.links[l].up.as_mut(), &mut self.nodes[child].mem)
            } else {
                (self.links[l].down.as_mut(), &mut self.nodes[0].mem)
            };
            if let Some(s) = session {
                match s.handle(mem, msg, now) {
                    Ok(()) => {}
                    Err(SessionError::Peer(r)) => panic!("honest peers faulted: {r}"),
                    Err(e) => panic!("{e}"),
                }
                self.links[l].seen[usize::from(!to_child)] = mem.feed_head();
            }
        }
        let now = self.time();
        for l in 0..self.links.len() {
            let child = self.links[l].child;
            for (end, node) in [(0, child), (1, 0)] {
                let link = &mut self.links[l];
                let session = if end == 0 {
                    link.up.as_mut()
                } else {
                    link.down.as_mut()
                };
                let Some(s) = session else { continue };
                let mem = &mut self.nodes[node].mem;
                if self.periodic || poll_due(s, mem.feed_head(), link.seen[end], now) {
                    self.polls += 1;
                    s.poll(mem, now).unwrap();
                    link.seen[end] = mem.feed_head();
                }
            }
        }
        self.transmit();
    }

    fn chaos(&mut self) {
        let r: f64 = self.rng.random();
        if r < 0.002 {
            self.cut_until = self.now + self.rng.random_range(100..2_000);
        } else if r < 0.004 {
            let l = self.rng.random_range(0..self.links.len());
            self.restarts += 1;
            self.connect(l);
        }
    }

    fn work(&mut self, round: u64) {
        let n = self.rng.random_range(0..3);
        for i in 0..n {
            let who = self.rng.random_range(0..3);
            let region = self.nodes[who].me.region.clone();
            let key = self.rng.random_range(0..12);
            let kind = if self.rng.random_bool(0.8) {
                "case"
            } else {
                "item"
            };
            let id = DocId::parse(&format!("{kind}:{region}:k{key}")).unwrap();
            self.nodes[who]
                .mem
                .edit(&id, &format!("f{who}"), (round * 10 + i) as i64);
        }
        // The county edits a township case it holds: concurrent edits at two
        // levels.
        let held: Vec<DocId> = self.nodes[0]
            .mem
            .docs
            .keys()
            .filter(|d| d.region().as_str() != "330102")
            .cloned()
            .collect();
        if !held.is_empty() && self.rng.random_bool(0.2) {
            let id = held[self.rng.random_range(0..held.len())].clone();
            self.nodes[0].mem.edit(&id, "county", round as i64);
        }
    }

    /// The first document two nodes that may hold it disagree on.
    fn divergence(&mut self) -> Option<String> {
        for a in 0..3 {
            let ids: Vec<DocId> = self.nodes[a].mem.docs.keys().cloned().collect();
            for id in ids {
                for b in 0..3 {
                    if a == b || !scope::visible(&self.nodes[b].me.region, &id) {
                        continue;
                    }
                    // Townships only talk to the county, so a township's
                    // record reaches the other township never, and the
                    // county's own catalogue reaches both.
                    if self.nodes[a].mem.heads_of(&id) != self.nodes[b].mem.heads_of(&id) {
                        let sessions: Vec<String> = self
                            .links
                            .iter()
                            .flat_map(|l| [&l.up, &l.down])
                            .flatten()
                            .map(|s| {
                                format!(
                                    "to {}: established {} checkpoint {} acked {} {:?}",
                                    s.peer().id,
                                    s.established(),
                                    s.checkpoint(),
                                    s.acked(),
                                    s.stats()
                                )
                            })
                            .collect();
                        return Some(format!(
                            "{id} differs between nodes {a} and {b}; sessions: {sessions:#?}"
                        ));
                    }
                }
            }
        }
        None
    }
}

fn run(seed: u64, periodic: bool) -> Net {
    let mut net = Net::new(seed);
    net.periodic = periodic;
    for round in 0..3_000 {
        if round % 10 == 0 && round < 2_000 {
            net.work(round);
        }
        if round < 2_000 {
            net.chaos();
        }
        net.step();
    }
    net.cut_until = 0;
    net.loss = 0.0;
    net.dup = 0.0;
    let mut quiet = 0;
    for _ in 0..20_000 {
        net.step();
        if net.queue.is_empty() && net.divergence().is_none() {
            quiet += 1;
            if quiet > 100 {
                break;
            }
        } else {
            quiet = 0;
        }
    }
    net
}

/// Runs 24 schedules and checks each converged honestly; returns the
/// polls made and the session steps taken (a step of each session).
fn converges(periodic: bool) -> (u64, u64) {
    let (mut restarts, mut polls, mut steps) = (0, 0, 0);
    for seed in 0..24 {
        let mut net = run(seed, periodic);
        if let Some(d) = net.divergence() {
            panic!("seed {seed} did not converge: {d}");
        }
        // Scope: a township never holds its sibling's records.
        for (me, sibling) in [(1, "330102002"), (2, "330102001")] {
            assert!(
                !net.nodes[me]
                    .mem
                    .docs
                    .keys()
                    .any(|d| d.region().as_str() == sibling),
                "seed {seed}: node {me} holds a sibling's record"
            );
        }
        // The county holds every township record.
        let total: usize = net.nodes.iter().map(|n| n.mem.docs.len()).sum();
        assert!(total > 30, "seed {seed}: too little work to mean anything");
        restarts += net.restarts;
        polls += net.polls;
        steps += net.steps * 4;
        // Every checkpoint is honest: whatever the county's feed held up to
        // a township's checkpoint of it, that township holds at least as new.
        for l in 0..2 {
            let child = net.links[l].child;
            let cp = net.nodes[child].mem.checkpoints[&net.nodes[0].me.id].seq;
            assert!(cp <= net.nodes[0].mem.feed_head());
        }
        let received: u64 = net.nodes.iter().map(|n| n.mem.applied_docs).sum();
        assert!(received > 0);
        // The county's edits to township cases came down and merged.
        assert!(
            net.nodes[1]
                .mem
                .docs
                .values()
                .any(|d| d.get(ROOT, "county").unwrap().is_some()),
            "seed {seed}: no county edit reached town-a"
        );
    }
    assert!(
        restarts > 10,
        "the schedules restarted sessions only {restarts} times"
    );
    (polls, steps)
}

#[test]
fn converges_under_loss_duplication_reordering_cuts_and_restarts() {
    converges(true);
}

/// Nothing relies on polling at every step: sessions polled only when
/// their timeout comes or their node's feed grew while they could offer
/// converge under the same schedules.
#[test]
fn sessions_polled_only_when_due_or_when_the_feed_grew_converge_too() {
    let (polls, steps) = converges(false);
    eprintln!("{polls} polls in {steps} session steps");
    assert!(polls < steps / 10, "{polls} polls in {steps} session steps");
}

#[test]
fn a_resumed_session_sends_nothing_already_acknowledged() {
    let mut net = Net::new(99);
    net.loss = 0.0;
    net.dup = 0.0;
    for k in 0..100 {
        let id = DocId::parse(&format!("case:330102001:c{k}")).unwrap();
        net.nodes[1].mem.edit(&id, "v", k);
    }
    for _ in 0..2_000 {
        net.step();
        if net.nodes[0].mem.docs.len() >= 100 {
            break;
        }
    }
    let town = net.nodes[1].me.id.clone();
    let cp = net.nodes[0].mem.checkpoints[&town].seq;
    assert_eq!(cp, 100, "the county acknowledged all 100");
    // New sessions: nothing of the 100 travels again.
    net.connect(0);
    for _ in 0..200 {
        net.step();
    }
    let up = net.links[0].up.as_ref().unwrap().stats().clone();
    assert_eq!(up.offered, 0, "{up:?}");
    assert_eq!(up.sent_whole + up.sent_changes, 0, "{up:?}");
}

/// Steps `net` until the township `child` holds `n` documents, at most
/// `steps` times; how many it holds then.
fn step_until_held(net: &mut Net, child: usize, n: usize, steps: usize) -> usize {
    for _ in 0..steps {
        if net.nodes[child].mem.docs.len() >= n {
            break;
        }
        net.step();
    }
    net.nodes[child].mem.docs.len()
}

#[test]
fn a_township_rebuilt_from_its_county_gets_its_own_records_back_only_when_it_says_so() {
    let mut net = Net::new(4242);
    let ids: Vec<DocId> = (0..60)
        .map(|k| DocId::parse(&format!("case:330102001:c{k}")).unwrap())
        .collect();
    for (k, id) in ids.iter().enumerate() {
        net.nodes[1].mem.edit(id, "v", k as i64);
    }
    net.loss = 0.0;
    for _ in 0..3_000 {
        if net.nodes[0].mem.docs.len() >= ids.len() {
            break;
        }
        net.step();
    }
    assert_eq!(net.nodes[0].mem.docs.len(), ids.len());
    let fresh = |feed_id, restoring| Mem {
        feed_id,
        restoring,
        ..Mem::new("330102001")
    };
    // The township's disk is lost and a new store says a plain hello: the
    // county takes it for the node that sent those records, which holds
    // them, and offers none back.
    net.nodes[1].mem = fresh(91, false);
    net.connect(0);
    assert_eq!(step_until_held(&mut net, 1, 1, 1_000), 0);
    assert!(net.links[0]
        .down
        .as_ref()
        .unwrap()
        .caught_up(&net.nodes[0].mem));
    // Rebuilt again, saying it is restoring, over a lossy link cut halfway.
    net.nodes[1].mem = fresh(92, true);
    net.loss = 0.1;
    net.connect(0);
    let half = step_until_held(&mut net, 1, ids.len() / 2, 5_000);
    assert!(half >= ids.len() / 2, "{half}");
    net.connect(0);
    assert_eq!(step_until_held(&mut net, 1, ids.len(), 10_000), ids.len());
    for id in &ids {
        let theirs = net.nodes[0].mem.heads_of(id);
        assert_eq!(net.nodes[1].mem.heads_of(id), theirs, "{id}");
    }
}

#[test]
fn an_offer_outside_the_peer_scope_ends_the_session_and_stores_nothing() {
    let county = endpoint("county", "330102");
    let town = endpoint("town-a", "330102001");
    let mut mem = Mem::new("330102");
    let mut s = Session::new(
        county,
        town.clone(),
        Config::default(),
        &mut mem,
        Duration::ZERO,
    )
    .unwrap();
    s.handle(&mut mem, hello("town-a", 1), Duration::ZERO)
        .unwrap();
    let err = s
        .handle(
            &mut mem,
            Msg::Offer {
                batch: 1,
                after: 0,
                upto: 1,
                head: 1,
                docs: vec![hallsync_sync::msg::OfferDoc {
                    id: "case:330102002:x".into(),
                    heads: vec![[0; 32]],
                }],
            },
            Duration::ZERO,
        )
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Peer(ref r) if r.contains("330102002")),
        "{err}"
    );
    assert!(mem.docs.is_empty());
    // A hello naming someone else is refused too.
    let mut s = Session::new(
        endpoint("county", "330102"),
        town,
        Config::default(),
        &mut mem,
        Duration::ZERO,
    )
    .unwrap();
    let err = s
        .handle(&mut mem, hello("town-b", 0), Duration::ZERO)
        .unwrap_err();
    assert!(matches!(err, SessionError::Peer(_)));
}

#[test]
fn each_end_learns_how_far_the_others_clock_is_off_and_an_older_peer_is_not_told() {
    let (county, town) = (
        endpoint("county", "330102"),
        endpoint("town-a", "330102001"),
    );
    let mut cm = Mem::new("330102");
    let mut tm = Mem::new("330102001");
    tm.clock_off_ms = 10 * 60 * 1000;
    let t0 = Duration::ZERO;
    let mut up =
        Session::new(town.clone(), county.clone(), Config::default(), &mut tm, t0).unwrap();
    let mut down =
        Session::new(county.clone(), town.clone(), Config::default(), &mut cm, t0).unwrap();
    for _ in 0..4 {
        while let Some(m) = up.poll_transmit() {
            down.handle(&mut cm, m, t0).unwrap();
        }
        while let Some(m) = down.poll_transmit() {
            up.handle(&mut tm, m, t0).unwrap();
        }
    }
    assert_eq!(down.clock_skew_ms(), Some(600_000));
    assert_eq!(up.clock_skew_ms(), Some(-600_000));
    // A peer speaking protocol 2 would not understand the clock: not sent.
    let mut s = Session::new(county, town, Config::default(), &mut cm, t0).unwrap();
    while s.poll_transmit().is_some() {}
    let mut old = hello("town-a", 0);
    if let Msg::Hello(h) = &mut old {
        h.protocol = 2;
    }
    s.handle(&mut cm, old, t0).unwrap();
    let sent: Vec<Msg> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert!(
        !sent.iter().any(|m| matches!(m, Msg::Clock { .. })),
        "{sent:?}"
    );
    assert_eq!(s.clock_skew_ms(), None);
}

#[test]
fn offers_flooding_without_data_are_bounded() {
    let county = endpoint("county", "330102");
    let town = endpoint("town-a", "330102001");
    let mut mem = Mem::new("330102");
    let mut s = Session::new(county, town, Config::default(), &mut mem, Duration::ZERO).unwrap();
    s.handle(&mut mem, hello("town-a", 1_000), Duration::ZERO)
        .unwrap();
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "v", 1).unwrap();
    let bytes = doc.save();
    let heads = vec![doc.get_heads()[0].0];
    for batch in 1..=100u64 {
        let offer = Msg::Offer {
            batch,
            after: batch - 1,
            upto: batch,
            head: 1_000,
            docs: vec![hallsync_sync::msg::OfferDoc {
                id: format!("case:330102001:k{batch}"),
                heads: heads.clone(),
            }],
        };
        s.handle(&mut mem, offer, Duration::ZERO).unwrap();
    }
    let data = |batch| Msg::Data {
        batch,
        start: 0,
        last: true,
        docs: vec![Payload::Whole(bytes.clone())],
    };
    // The oldest offers were forgotten: their data changes nothing.
    s.handle(&mut mem, data(1), Duration::ZERO).unwrap();
    assert!(mem.docs.is_empty());
    // A recent one is still answered.
    s.handle(&mut mem, data(100), Duration::ZERO).unwrap();
    assert_eq!(mem.docs.len(), 1);
}

#[test]
fn a_record_the_peer_refuses_is_set_aside_and_the_link_carries_on() {
    let mut net = Net::new(7);
    net.loss = 0.0;
    net.dup = 0.0;
    let poisoned = DocId::parse("case:330102001:c13").unwrap();
    for k in 0..40 {
        let id = DocId::parse(&format!("case:330102001:c{k}")).unwrap();
        net.nodes[1].mem.edit(&id, "v", k);
        if id == poisoned {
            net.nodes[1].mem.edit(&id, "poison", 1);
        }
    }
    for _ in 0..2_000 {
        net.step();
    }
    let county = &net.nodes[0].mem;
    assert_eq!(county.docs.len(), 39, "every other record arrived");
    assert!(!county.docs.contains_key(&poisoned));
    let town = net.nodes[1].me.id.clone();
    assert_eq!(
        county.checkpoints[&town].seq,
        net.nodes[1].mem.feed_head(),
        "the county acknowledged the whole feed, the refused record too"
    );
    assert_eq!(county.set_aside.len(), 1);
    assert_eq!(county.set_aside[0].1, poisoned);
    assert!(county.set_aside[0].2.contains("poisoned"));
    assert_eq!(
        net.nodes[1].mem.refused_by_peer,
        vec![(net.nodes[0].me.id.clone(), poisoned.clone())],
        "the township was told"
    );
    let up = net.links[0].up.as_ref().unwrap();
    assert_eq!(up.stats().refused_by_peer, 1);
    assert!(up.established());
    // Later records still flow on the same link.
    let later = DocId::parse("case:330102001:later").unwrap();
    net.nodes[1].mem.edit(&later, "v", 1);
    for _ in 0..200 {
        net.step();
    }
    assert!(net.nodes[0].mem.docs.contains_key(&later));
}
