//! One replication session with one peer, both ways at once.
//!
//! Sending: from the peer's checkpoint of our feed, offer batches of feed
//! entries the peer may hold (document id + heads), at most `window`
//! unacknowledged at a time. The peer answers each offer with what it
//! needs; we send whole documents or only the missing changes, in parts of
//! bounded size. Its acknowledgement moves our send position; when nothing
//! moves for `retry_after`, we go back to the last acknowledged position
//! (lost messages on a datagram network; never on a stream).
//!
//! Receiving: each offered id is checked against the scope of both ends
//! before anything is asked for; payloads are applied through
//! [`Replica::apply`], which validates them, and our checkpoint of the
//! peer's feed advances only over contiguous fully applied ranges, in the
//! same durable commit as the documents. A document that fails its checks
//! is set aside (noted, with the reason, in that same commit) and counts as
//! applied, so one bad record never stops a link; the peer is told
//! ([`Msg::Refused`]) so both ends can show it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use hallsync_model::scope;
use hallsync_model::{DocId, NodeId, RegionCode};

use crate::msg::{
    Hash, Hello, Msg, OfferDoc, Payload, RefusedDoc, Want, MAX_DOC_BYTES, MAX_REASON_BYTES,
    MIN_PROTOCOL, PROTOCOL,
};

/// One end of a session: its node id and region (from its certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Node id.
    pub id: NodeId,
    /// Region code; decides what the node may hold.
    pub region: RegionCode,
}

/// Session tuning.
#[derive(Debug, Clone)]
pub struct Config {
    /// Documents per offer.
    pub batch_docs: usize,
    /// Offers in flight before waiting for an acknowledgement.
    pub window: usize,
    /// A data part is cut once it carries this many bytes.
    pub part_bytes: usize,
    /// With offers in flight and no progress for this long, resend from the
    /// last acknowledged position.
    pub retry_after: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            batch_docs: 256,
            window: 4,
            part_bytes: 1 << 20,
            retry_after: Duration::from_secs(30),
        }
    }
}

/// A feed entry as the session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// The document.
    pub id: DocId,
    /// Its heads.
    pub heads: Vec<Hash>,
    /// The peer this entry came from unchanged, if any: it is not offered
    /// back to that peer, which has it.
    pub origin: Option<String>,
}

/// A document received from the peer, for [`Replica::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The document.
    pub id: DocId,
    /// What was sent.
    pub payload: Payload,
    /// The peer's heads for it, as offered: if the merged document has
    /// exactly these, the new feed entry is the peer's copy (its origin).
    pub heads: Vec<Hash>,
}

/// How far one node has applied another's feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    /// The identity of the feed (0: none yet).
    pub feed: u64,
    /// The sequence number reached in it.
    pub seq: u64,
}

/// Why [`Replica::apply`] refused a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// The peer broke the protocol (not one document, the batch itself):
    /// the session ends, nothing stored.
    Rejected(String),
    /// A local failure (disk): the session ends; the peer is not to blame.
    Local(String),
}

/// A document set aside: refused by the receiving end, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The document.
    pub id: DocId,
    /// The heads of the version refused (the sender's, as offered).
    pub heads: Vec<Hash>,
    /// Why.
    pub reason: String,
}

/// The documents one node holds, as the protocol needs them.
pub trait Replica {
    /// Feed entries in `(after, head]`, at most `limit`, and how far the
    /// scan got (every entry up to it was seen).
    fn feed(&mut self, after: u64, limit: usize) -> Result<(Vec<Entry>, u64), String>;
    /// The newest feed sequence number that may be offered.
    fn feed_head(&self) -> u64;
    /// The identity of this replica's feed.
    fn feed_id(&self) -> u64;
    /// This node's wall clock, in Unix milliseconds (told to the peer, and
    /// what the peer's is compared with).
    fn wall_clock_ms(&self) -> i64;
    /// A document's heads; `None` if not held.
    fn heads(&mut self, id: &DocId) -> Result<Option<Vec<Hash>>, String>;
    /// A document whole, in saved form.
    fn whole(&mut self, id: &DocId) -> Result<Option<Vec<u8>>, String>;
    /// The changes of a document that are not in the history of `have`
    /// (hashes this replica does not know are ignored).
    fn changes_since(&mut self, id: &DocId, have: &[Hash]) -> Result<Vec<u8>, String>;
    /// Whether this node's store is being rebuilt from its peers
    /// (`hallsync restore`): it then asks each peer for every record it may
    /// hold, those that came from it included ([`Msg::RestoringHello`]).
    fn restoring(&self) -> bool {
        false
    }
    /// How far this node has applied `peer`'s feed.
    fn checkpoint(&mut self, peer: &NodeId) -> Result<Position, String>;
    /// Validates and stores payloads from `peer` (its identity and region
    /// from its certificate), and moves the checkpoint of its feed to
    /// `checkpoint` if given, atomically and durably. A document that fails
    /// its checks is not stored but set aside, noted in the same commit,
    /// and returned. On an error nothing is stored.
    fn apply(
        &mut self,
        peer: &Endpoint,
        docs: Vec<Received>,
        checkpoint: Option<Position>,
    ) -> Result<Vec<Refusal>, ApplyError>;
    /// Notes, durably, that `peer` refused these documents this node sent.
    fn refused_by_peer(&mut self, peer: &Endpoint, refused: Vec<Refusal>) -> Result<(), String>;
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer broke the protocol or sent invalid data.
    #[error("peer fault: {0}")]
    Peer(String),
    /// A local failure.
    #[error("local failure: {0}")]
    Local(String),
    /// The peer said goodbye.
    #[error("the peer closed the session: {0}")]
    Closed(String),
}

/// Counters, for status and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Documents offered.
    pub offered: u64,
    /// Documents sent whole.
    pub sent_whole: u64,
    /// Documents sent as changes.
    pub sent_changes: u64,
    /// Documents received (whole or changes).
    pub received: u64,
    /// Times the send position went back for lack of progress.
    pub retries: u64,
    /// Documents too large to send (over [`MAX_DOC_BYTES`]).
    pub too_large: u64,
    /// Documents the peer sent that were set aside here.
    pub refused: u64,
    /// Documents sent that the peer set aside.
    pub refused_by_peer: u64,
}

/// An offer we sent and the peer has not acknowledged.
#[derive(Debug)]
struct Outgoing {
    upto: u64,
    ids: Vec<DocId>,
}

/// An offer we answered and whose data has not all arrived.
#[derive(Debug)]
struct Incoming {
    after: u64,
    upto: u64,
    ids: Vec<DocId>,
    heads: Vec<Vec<Hash>>,
    received: usize,
}

/// A replication session (sans-IO): feed it messages, poll it when it is
/// due or the local feed grew, take the messages it wants sent.
#[derive(Debug)]
pub struct Session {
    me: Endpoint,
    peer: Endpoint,
    config: Config,
    out: VecDeque<Msg>,
    stats: Stats,
    hello_seen: bool,
    hello_sent_at: Duration,
    /// The protocol version both ends speak (known from the peer's hello).
    protocol: u16,
    /// How far the peer's wall clock is ahead of ours (ms; negative:
    /// behind), from its [`Msg::Clock`].
    clock_skew_ms: Option<i64>,
    /// The peer is rebuilding its store: what came from it is offered back.
    own_back: bool,
    // Sending our feed.
    cursor: u64,
    acked: u64,
    offered_upto: u64,
    next_batch: u64,
    inflight: BTreeMap<u64, Outgoing>,
    last_progress: Duration,
    // Receiving the peer's feed.
    checkpoint: u64,
    /// The peer feed `checkpoint` counts in.
    checkpoint_feed: u64,
    peer_head: u64,
    pending: HashMap<u64, Incoming>,
    /// Applied ranges beyond the checkpoint: `after -> upto`.
    done: BTreeMap<u64, u64>,
}

/// Offers answered and awaiting data, at most; beyond, the oldest is
/// forgotten (its data, if it ever comes, is ignored and the sender resends).
const MAX_PENDING: usize = 32;

/// Applied ranges kept beyond the checkpoint, at most; beyond, the furthest
/// is forgotten (the sender resends it; applying twice changes nothing).
const MAX_DONE: usize = 256;

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn parse_id(s: &str) -> Result<DocId, SessionError> {
    DocId::parse(s).map_err(|e| SessionError::Peer(format!("bad document id {s:?}: {e}")))
}

impl Session {
    /// Starts a session; the first message to send is our hello.
    pub fn new(
        me: Endpoint,
        peer: Endpoint,
        config: Config,
        replica: &mut dyn Replica,
        now: Duration,
    ) -> Result<Session, SessionError> {
        let position = replica.checkpoint(&peer.id).map_err(SessionError::Local)?;
        let checkpoint = position.seq;
        let mut s = Session {
            me,
            peer,
            config,
            out: VecDeque::new(),
            stats: Stats::default(),
            hello_seen: false,
            hello_sent_at: now,
            protocol: MIN_PROTOCOL,
            clock_skew_ms: None,
            own_back: false,
            cursor: 0,
            acked: 0,
            offered_upto: 0,
            next_batch: 1,
            inflight: BTreeMap::new(),
            last_progress: now,
            checkpoint,
            checkpoint_feed: position.feed,
            peer_head: checkpoint,
            pending: HashMap::new(),
            done: BTreeMap::new(),
        };
        s.send_hello(replica);
        Ok(s)
    }

    fn send_hello(&mut self, replica: &dyn Replica) {
        let hello = Hello {
            protocol: PROTOCOL,
            node: self.me.id.to_string(),
            feed: replica.feed_id(),
            resume_feed: self.checkpoint_feed,
            resume: self.checkpoint,
            head: replica.feed_head(),
        };
        self.out.push_back(if replica.restoring() {
            Msg::RestoringHello(hello)
        } else {
            Msg::Hello(hello)
        });
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Msg> {
        self.out.pop_front()
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The peer.
    pub fn peer(&self) -> &Endpoint {
        &self.peer
    }

    /// How far the peer's wall clock is ahead of this node's, in
    /// milliseconds (negative: behind), once it has told it (protocol 3);
    /// the time its message took on the way counts as skew.
    pub fn clock_skew_ms(&self) -> Option<i64> {
        self.clock_skew_ms
    }

    /// Whether the peer said its store is being rebuilt
    /// ([`Msg::RestoringHello`]).
    pub fn peer_restoring(&self) -> bool {
        self.own_back
    }

    /// Whether the peer's hello has arrived.
    pub fn established(&self) -> bool {
        self.hello_seen
    }

    /// How far we have applied the peer's feed.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// How far the peer has acknowledged our feed.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Feed entries the peer has not acknowledged (an upper bound: some may
    /// be outside its scope).
    pub fn backlog_out(&self, replica: &dyn Replica) -> u64 {
        replica.feed_head().saturating_sub(self.acked)
    }

    /// Peer feed entries we have not applied (as of its last report).
    pub fn backlog_in(&self) -> u64 {
        self.peer_head.saturating_sub(self.checkpoint)
    }

    /// Whether both directions are caught up as far as this end knows.
    pub fn caught_up(&self, replica: &dyn Replica) -> bool {
        self.hello_seen && self.backlog_out(replica) == 0 && self.backlog_in() == 0
    }

    /// Handles a message from the peer.
    pub fn handle(
        &mut self,
        replica: &mut dyn Replica,
        msg: Msg,
        now: Duration,
    ) -> Result<(), SessionError> {
        match msg {
            Msg::Hello(hello) => self.on_hello(replica, hello, now)?,
            Msg::RestoringHello(hello) => {
                self.own_back = true;
                self.on_hello(replica, hello, now)?;
            }
            Msg::Offer {
                batch,
                after,
                upto,
                head,
                docs,
            } => self.on_offer(replica, batch, after, upto, head, docs)?,
            Msg::Want { batch, wants } => self.on_want(replica, batch, wants)?,
            Msg::Data {
                batch,
                start,
                last,
                docs,
            } => self.on_data(replica, batch, start, last, docs)?,
            Msg::Ack { upto } => self.on_ack(upto, now)?,
            Msg::Bye { reason } => return Err(SessionError::Closed(reason)),
            Msg::Refused { docs } => self.on_refused(replica, docs)?,
            Msg::Clock { at_ms } => {
                self.clock_skew_ms = Some(at_ms.saturating_sub(replica.wall_clock_ms()));
            }
        }
        self.pump(replica, now)
    }

    /// Call at [`Session::poll_timeout`] and whenever the local feed may have
    /// grown while [`Session::can_offer`]: offers new entries (live push),
    /// resends the hello until the peer's arrives, and goes back to the last
    /// acknowledgement when nothing moved for `retry_after`. Calling it more
    /// often is harmless.
    pub fn poll(&mut self, replica: &mut dyn Replica, now: Duration) -> Result<(), SessionError> {
        if !self.hello_seen {
            if now.saturating_sub(self.hello_sent_at) >= self.config.retry_after {
                self.hello_sent_at = now;
                self.send_hello(replica);
            }
            return Ok(());
        }
        if !self.inflight.is_empty()
            && now.saturating_sub(self.last_progress) >= self.config.retry_after
        {
            self.stats.retries += 1;
            self.inflight.clear();
            self.cursor = self.acked;
            self.last_progress = now;
        }
        self.pump(replica, now)
    }

    /// When [`Session::poll`] must next be called for the session's own
    /// sake, on the clock `now` is given in; `None` if nothing is due, and
    /// only a message or the local feed growing can give it work.
    ///
    /// As with quinn-proto's `Connection::poll_timeout`, the value may
    /// change after every [`Session::handle`] and [`Session::poll`], so a
    /// driver asks again after each, and a time already past means "now".
    /// It covers the hello's resend before the peer's arrives and the retry
    /// after `retry_after` without progress while offers are in flight; it
    /// does not cover new feed entries, for which the driver polls when the
    /// feed grows (see [`Session::can_offer`]).
    pub fn poll_timeout(&self) -> Option<Duration> {
        if !self.hello_seen {
            return Some(self.hello_sent_at.saturating_add(self.config.retry_after));
        }
        (!self.inflight.is_empty())
            .then(|| self.last_progress.saturating_add(self.config.retry_after))
    }

    /// Whether a feed entry added now would be offered at the next
    /// [`Session::poll`]: the peer's hello has arrived and fewer than
    /// `window` offers are unacknowledged. While it is false the feed
    /// growing needs no poll: what ends it (the hello, an acknowledgement,
    /// a retry at [`Session::poll_timeout`]) offers the new entries then.
    pub fn can_offer(&self) -> bool {
        self.hello_seen && self.inflight.len() < self.config.window
    }

    /// Ends the session politely: queues a goodbye with the reason.
    pub fn close(&mut self, reason: &str) {
        self.out.push_back(Msg::Bye {
            reason: reason.chars().take(200).collect(),
        });
    }

    fn on_hello(
        &mut self,
        replica: &mut dyn Replica,
        hello: Hello,
        now: Duration,
    ) -> Result<(), SessionError> {
        let Hello {
            protocol,
            node,
            feed,
            resume_feed,
            resume,
            head,
        } = hello;
        let again = self.hello_seen;
        // A checkpoint counted in another incarnation of a feed
        // means nothing: start that direction over.
        let resume = if resume_feed == replica.feed_id() {
            resume
        } else {
            0
        };
        if feed != self.checkpoint_feed {
            self.checkpoint_feed = feed;
            self.checkpoint = 0;
            self.peer_head = 0;
            self.done.clear();
            self.pending.clear();
        }
        self.accept_hello(protocol, &node, resume, head, now)?;
        if !again && self.protocol >= 3 {
            self.out.push_back(Msg::Clock {
                at_ms: replica.wall_clock_ms(),
            });
        }
        if again {
            // The peer is still sending hellos, so it has not seen
            // ours (lost on a datagram network): send it again.
            self.send_hello(replica);
        }
        Ok(())
    }

    fn accept_hello(
        &mut self,
        protocol: u16,
        node: &str,
        resume: u64,
        head: u64,
        now: Duration,
    ) -> Result<(), SessionError> {
        if protocol < MIN_PROTOCOL {
            return Err(SessionError::Peer(format!(
                "speaks protocol {protocol}; this node speaks {MIN_PROTOCOL} to {PROTOCOL}: upgrade the older node"
            )));
        }
        self.protocol = protocol.min(PROTOCOL);
        if node != self.peer.id.as_str() {
            return Err(SessionError::Peer(format!(
                "says it is {node:?} but its certificate names {}",
                self.peer.id
            )));
        }
        self.peer_head = self.peer_head.max(head);
        if !self.hello_seen {
            self.hello_seen = true;
            self.cursor = resume;
            self.acked = resume;
            self.offered_upto = resume;
            self.last_progress = now;
        } else if resume > self.acked {
            self.acked = resume;
        }
        Ok(())
    }

    fn pump(&mut self, replica: &mut dyn Replica, now: Duration) -> Result<(), SessionError> {
        if !self.hello_seen {
            return Ok(());
        }
        while self.inflight.len() < self.config.window && self.cursor < replica.feed_head() {
            let (entries, scanned) = replica
                .feed(self.cursor, self.config.batch_docs)
                .map_err(SessionError::Local)?;
            let upto = scanned.max(entries.last().map_or(0, |e| e.seq));
            if upto <= self.cursor {
                break;
            }
            let peer = self.peer.id.as_str();
            let entries: Vec<Entry> = entries
                .into_iter()
                .filter(|e| {
                    scope::visible(&self.peer.region, &e.id)
                        && (self.own_back || e.origin.as_deref() != Some(peer))
                })
                .collect();
            let batch = self.next_batch;
            self.next_batch += 1;
            self.stats.offered += entries.len() as u64;
            self.out.push_back(Msg::Offer {
                batch,
                after: self.cursor,
                upto,
                head: replica.feed_head(),
                docs: entries
                    .iter()
                    .map(|e| OfferDoc {
                        id: e.id.to_string(),
                        heads: e.heads.clone(),
                    })
                    .collect(),
            });
            if self.inflight.is_empty() {
                self.last_progress = now;
            }
            self.inflight.insert(
                batch,
                Outgoing {
                    upto,
                    ids: entries.into_iter().map(|e| e.id).collect(),
                },
            );
            self.cursor = upto;
            self.offered_upto = self.offered_upto.max(upto);
        }
        Ok(())
    }

    fn on_offer(
        &mut self,
        replica: &mut dyn Replica,
        batch: u64,
        after: u64,
        upto: u64,
        head: u64,
        docs: Vec<OfferDoc>,
    ) -> Result<(), SessionError> {
        if !self.hello_seen {
            // Only on a datagram network; the sender will offer it again.
            return Ok(());
        }
        self.peer_head = self.peer_head.max(head).max(upto);
        let mut ids = Vec::with_capacity(docs.len());
        let mut offered = Vec::with_capacity(docs.len());
        let mut wants = Vec::with_capacity(docs.len());
        for d in docs {
            let id = parse_id(&d.id)?;
            for (who, region) in [
                ("the peer", &self.peer.region),
                ("this node", &self.me.region),
            ] {
                scope::check(region, &id).map_err(|e| {
                    SessionError::Peer(format!(
                        "offered {id}, which {who} ({region}) may not hold: {}",
                        e.reason()
                    ))
                })?;
            }
            let mut theirs = d.heads;
            theirs.sort_unstable();
            let want = match replica.heads(&id).map_err(SessionError::Local)? {
                None => Want::Whole,
                Some(mut mine) => {
                    mine.sort_unstable();
                    if mine == theirs {
                        Want::Nothing
                    } else {
                        Want::Since(mine)
                    }
                }
            };
            ids.push(id);
            offered.push(theirs);
            wants.push(want);
        }
        if upto <= self.checkpoint && wants.iter().all(|w| *w == Want::Nothing) {
            // Already applied (a resend): just say so again.
            self.out.push_back(Msg::Ack {
                upto: self.checkpoint,
            });
            return Ok(());
        }
        self.out.push_back(Msg::Want { batch, wants });
        self.pending.insert(
            batch,
            Incoming {
                after,
                upto,
                ids,
                heads: offered,
                received: 0,
            },
        );
        while self.pending.len() > MAX_PENDING {
            let Some(&oldest) = self.pending.keys().min() else {
                break;
            };
            self.pending.remove(&oldest);
        }
        Ok(())
    }

    fn on_want(
        &mut self,
        replica: &mut dyn Replica,
        batch: u64,
        wants: Vec<Want>,
    ) -> Result<(), SessionError> {
        let Some(sent) = self.inflight.get(&batch) else {
            // An answer to an offer we have since given up on.
            return Ok(());
        };
        if wants.len() != sent.ids.len() {
            return Err(SessionError::Peer(format!(
                "answered offer {batch} of {} documents with {} wants",
                sent.ids.len(),
                wants.len()
            )));
        }
        let ids = sent.ids.clone();
        let mut part = Vec::new();
        let mut part_bytes = 0;
        let mut start = 0u32;
        let count = ids.len();
        for (i, (id, want)) in ids.iter().zip(wants).enumerate() {
            let payload = match want {
                Want::Nothing => Payload::Nothing,
                Want::Whole => match replica.whole(id).map_err(SessionError::Local)? {
                    Some(b) => Payload::Whole(b),
                    None => Payload::Nothing,
                },
                Want::Since(have) => {
                    let b = replica
                        .changes_since(id, &have)
                        .map_err(SessionError::Local)?;
                    if b.is_empty() {
                        Payload::Nothing
                    } else {
                        Payload::Changes(b)
                    }
                }
            };
            let payload = if payload.len() > MAX_DOC_BYTES {
                self.stats.too_large += 1;
                Payload::Nothing
            } else {
                payload
            };
            match &payload {
                Payload::Nothing => {}
                Payload::Whole(_) => self.stats.sent_whole += 1,
                Payload::Changes(_) => self.stats.sent_changes += 1,
            }
            part_bytes += payload.len();
            part.push(payload);
            let last = i + 1 == count;
            if last || part_bytes >= self.config.part_bytes {
                let n = part.len() as u32;
                self.out.push_back(Msg::Data {
                    batch,
                    start,
                    last,
                    docs: std::mem::take(&mut part),
                });
                start += n;
                part_bytes = 0;
            }
        }
        if count == 0 {
            self.out.push_back(Msg::Data {
                batch,
                start: 0,
                last: true,
                docs: Vec::new(),
            });
        }
        Ok(())
    }

    fn on_data(
        &mut self,
        replica: &mut dyn Replica,
        batch: u64,
        start: u32,
        last: bool,
        docs: Vec<Payload>,
    ) -> Result<(), SessionError> {
        let Some(inc) = self.pending.get_mut(&batch) else {
            // Data for an offer we no longer wait on (a duplicate).
            return Ok(());
        };
        if start as usize != inc.received {
            // A part out of order (only on a datagram network): give up on
            // the batch; the sender resends from its acknowledged position.
            self.pending.remove(&batch);
            return Ok(());
        }
        let end = inc.received + docs.len();
        if end > inc.ids.len() || (last && end != inc.ids.len()) {
            return Err(SessionError::Peer(format!(
                "data for offer {batch} does not match its {} documents",
                inc.ids.len()
            )));
        }
        let mut apply = Vec::new();
        for ((id, heads), p) in inc.ids[inc.received..end]
            .iter()
            .zip(&inc.heads[inc.received..end])
            .zip(docs)
        {
            if !p.is_empty() {
                self.stats.received += 1;
                apply.push(Received {
                    id: id.clone(),
                    payload: p,
                    heads: heads.clone(),
                });
            }
        }
        inc.received = end;
        let (after, upto) = (inc.after, inc.upto);
        let checkpoint = if last {
            self.pending.remove(&batch);
            self.done
                .entry(after)
                .and_modify(|u| *u = (*u).max(upto))
                .or_insert(upto);
            let mut next = self.checkpoint;
            while let Some((&a, &u)) = self.done.first_key_value() {
                if a > next {
                    break;
                }
                next = next.max(u);
                self.done.remove(&a);
            }
            while self.done.len() > MAX_DONE {
                self.done.pop_last();
            }
            (next > self.checkpoint).then_some(next)
        } else {
            None
        };
        if apply.is_empty() && checkpoint.is_none() {
            if last {
                self.out.push_back(Msg::Ack {
                    upto: self.checkpoint,
                });
            }
            return Ok(());
        }
        let position = checkpoint.map(|seq| Position {
            feed: self.checkpoint_feed,
            seq,
        });
        let refused = replica
            .apply(&self.peer, apply, position)
            .map_err(|e| match e {
                ApplyError::Rejected(r) => SessionError::Peer(r),
                ApplyError::Local(r) => SessionError::Local(r),
            })?;
        if let Some(c) = checkpoint {
            self.checkpoint = c;
        }
        if !refused.is_empty() {
            self.stats.refused += refused.len() as u64;
            if self.protocol >= 2 {
                self.out.push_back(Msg::Refused {
                    docs: refused
                        .into_iter()
                        .map(|r| RefusedDoc {
                            id: r.id.to_string(),
                            heads: r.heads,
                            reason: clip(&r.reason, MAX_REASON_BYTES),
                        })
                        .collect(),
                });
            }
        }
        if last {
            self.out.push_back(Msg::Ack {
                upto: self.checkpoint,
            });
        }
        Ok(())
    }

    fn on_refused(
        &mut self,
        replica: &mut dyn Replica,
        docs: Vec<RefusedDoc>,
    ) -> Result<(), SessionError> {
        let mut refused = Vec::with_capacity(docs.len());
        for d in docs {
            let id = parse_id(&d.id)?;
            if !scope::visible(&self.peer.region, &id) {
                return Err(SessionError::Peer(format!(
                    "says it refused {id}, which it may not hold and was never offered"
                )));
            }
            refused.push(Refusal {
                id,
                heads: d.heads,
                reason: d.reason,
            });
        }
        self.stats.refused_by_peer += refused.len() as u64;
        replica
            .refused_by_peer(&self.peer, refused)
            .map_err(SessionError::Local)
    }

    fn on_ack(&mut self, upto: u64, now: Duration) -> Result<(), SessionError> {
        if upto > self.offered_upto {
            return Err(SessionError::Peer(format!(
                "acknowledged feed entry {upto}, beyond the {} offered",
                self.offered_upto
            )));
        }
        if upto > self.acked {
            self.acked = upto;
            self.last_progress = now;
        }
        self.inflight.retain(|_, o| o.upto > upto);
        if self.cursor < self.acked {
            self.cursor = self.acked;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica holding only a feed: enough to offer from.
    struct Feed(Vec<Entry>);

    impl Feed {
        /// `n` cases of the township, seq 1 to `n`.
        fn of(n: u64) -> Feed {
            Feed(
                (1..=n)
                    .map(|seq| Entry {
                        seq,
                        id: DocId::parse(&format!("case:330102001:k{seq}")).unwrap(),
                        heads: vec![[seq as u8; 32]],
                        origin: None,
                    })
                    .collect(),
            )
        }
    }

    impl Replica for Feed {
        fn feed(&mut self, after: u64, limit: usize) -> Result<(Vec<Entry>, u64), String> {
            let out: Vec<Entry> = self
                .0
                .iter()
                .filter(|e| e.seq > after)
                .take(limit)
                .cloned()
                .collect();
            let scanned = out.last().map_or(self.feed_head(), |e| e.seq);
            Ok((out, scanned))
        }
        fn feed_head(&self) -> u64 {
            self.0.last().map_or(0, |e| e.seq)
        }
        fn feed_id(&self) -> u64 {
            7
        }
        fn wall_clock_ms(&self) -> i64 {
            1_790_000_000_000
        }
        fn heads(&mut self, _: &DocId) -> Result<Option<Vec<Hash>>, String> {
            Ok(None)
        }
        fn whole(&mut self, _: &DocId) -> Result<Option<Vec<u8>>, String> {
            Ok(None)
        }
        fn changes_since(&mut self, _: &DocId, _: &[Hash]) -> Result<Vec<u8>, String> {
            Ok(Vec::new())
        }
        fn checkpoint(&mut self, _: &NodeId) -> Result<Position, String> {
            Ok(Position::default())
        }
        fn apply(
            &mut self,
            _: &Endpoint,
            _: Vec<Received>,
            _: Option<Position>,
        ) -> Result<Vec<Refusal>, ApplyError> {
            Ok(Vec::new())
        }
        fn refused_by_peer(&mut self, _: &Endpoint, _: Vec<Refusal>) -> Result<(), String> {
            Ok(())
        }
    }

    const RETRY: Duration = Duration::from_secs(30);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The township's end of a link to the county, started at `at`, with
    /// one document per offer and two offers in flight at most.
    fn township(feed: &mut Feed, at: Duration) -> Session {
        let end = |id: &str, region: &str| Endpoint {
            id: NodeId::parse(id).unwrap(),
            region: RegionCode::parse(region).unwrap(),
        };
        let config = Config {
            batch_docs: 1,
            window: 2,
            retry_after: RETRY,
            ..Config::default()
        };
        Session::new(
            end("town", "330102001"),
            end("county", "330102"),
            config,
            feed,
            at,
        )
        .unwrap()
    }

    /// The county's hello: it has applied nothing of the township's feed.
    fn hello() -> Msg {
        Msg::Hello(Hello {
            protocol: PROTOCOL,
            node: "county".into(),
            feed: 9,
            resume_feed: 7,
            resume: 0,
            head: 0,
        })
    }

    fn sent(s: &mut Session) -> Vec<Msg> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    fn offered(msgs: &[Msg]) -> Vec<(u64, u64)> {
        msgs.iter()
            .filter_map(|m| match m {
                Msg::Offer { after, upto, .. } => Some((*after, *upto)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn until_the_peer_answers_the_timeout_is_the_next_hello() {
        let mut feed = Feed::of(3);
        let mut s = township(&mut feed, ms(1_000));
        assert!(matches!(sent(&mut s)[..], [Msg::Hello(_)]));
        assert_eq!(s.poll_timeout(), Some(ms(1_000) + RETRY));
        assert!(!s.can_offer(), "nothing is offered before the hello");
        // Polled early (the feed grew): nothing, and the same timeout.
        s.poll(&mut feed, ms(2_000)).unwrap();
        assert!(sent(&mut s).is_empty());
        assert_eq!(s.poll_timeout(), Some(ms(1_000) + RETRY));
        // Polled at the timeout: the hello again, and the next one due.
        s.poll(&mut feed, ms(1_000) + RETRY).unwrap();
        assert!(matches!(sent(&mut s)[..], [Msg::Hello(_)]));
        assert_eq!(s.poll_timeout(), Some(ms(1_000) + RETRY + RETRY));
    }

    #[test]
    fn with_offers_in_flight_the_timeout_is_the_retry_and_an_ack_clears_it() {
        let mut feed = Feed::of(3);
        let mut s = township(&mut feed, ms(0));
        sent(&mut s);
        s.handle(&mut feed, hello(), ms(500)).unwrap();
        // The window is full: two offers of one document each.
        assert_eq!(offered(&sent(&mut s)), [(0, 1), (1, 2)]);
        assert!(!s.can_offer());
        assert_eq!(s.poll_timeout(), Some(ms(500) + RETRY));
        // The first is acknowledged: progress moves the deadline, and the
        // room made is filled at once.
        s.handle(&mut feed, Msg::Ack { upto: 1 }, ms(800)).unwrap();
        assert_eq!(offered(&sent(&mut s)), [(2, 3)]);
        assert_eq!(s.poll_timeout(), Some(ms(800) + RETRY));
        // Everything acknowledged: nothing pending, nothing to wait for but
        // a message or the feed growing.
        s.handle(&mut feed, Msg::Ack { upto: 3 }, ms(900)).unwrap();
        assert!(sent(&mut s).is_empty());
        assert_eq!(s.poll_timeout(), None);
        assert!(s.can_offer());
        // The feed grows: the poll that tells of it offers the entry.
        feed = Feed::of(4);
        s.poll(&mut feed, ms(1_000)).unwrap();
        assert_eq!(offered(&sent(&mut s)), [(3, 4)]);
        assert_eq!(s.poll_timeout(), Some(ms(1_000) + RETRY));
    }

    #[test]
    fn at_the_timeout_without_progress_the_offers_are_made_again() {
        let mut feed = Feed::of(2);
        let mut s = township(&mut feed, ms(0));
        sent(&mut s);
        s.handle(&mut feed, hello(), ms(0)).unwrap();
        assert_eq!(offered(&sent(&mut s)), [(0, 1), (1, 2)]);
        let due = s.poll_timeout().unwrap();
        assert_eq!(due, RETRY);
        // Polled just before: nothing yet.
        s.poll(&mut feed, due - ms(1)).unwrap();
        assert!(sent(&mut s).is_empty());
        assert_eq!(s.poll_timeout(), Some(due));
        // At it: resent from the last acknowledgement.
        s.poll(&mut feed, due).unwrap();
        assert_eq!(offered(&sent(&mut s)), [(0, 1), (1, 2)]);
        assert_eq!(s.stats().retries, 1);
        assert_eq!(s.poll_timeout(), Some(due + RETRY));
    }
}
