//! The federation registry: one entry per node, written by that node and
//! replicated like any record — up its ancestry (a hub knows the halls below
//! it) and down (a hall knows the hubs above it). Each entry also carries the
//! newest revocation list its node holds, so a revocation installed at any
//! node spreads to every node that checks certificates. And it says when
//! the node's clock was found off its parent's, so that every level can
//! flag what the node recorded meanwhile. And it lists the times the
//! node's store was rebuilt (`hallsync restore`).

use crate::ids::{DocId, DocKind, IdError, Level, NodeId, RegionCode};
use crate::time::Ts;

/// Longest revocation list an entry may carry (DER bytes): room for some
/// thousands of revoked certificates.
pub const MAX_CRL_BYTES: usize = 256 * 1024;
/// Longest hall name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest address (`host:port`), in bytes.
pub const MAX_ADDR: usize = 255;
/// Longest certificate serial, in hex digits (RFC 5280: at most 20 octets).
pub const MAX_SERIAL: usize = 40;

/// How far a node's clock may be from its parent's before what it records
/// is in doubt, in seconds.
pub const CLOCK_TOLERANCE_SECS: i64 = 5 * 60;
/// The most clock periods an entry keeps (the oldest go first).
pub const MAX_CLOCK_OFF: usize = 20;
/// The largest skew an entry may state, in seconds (ten years).
const MAX_SKEW_SECS: i64 = 10 * 366 * 86_400;

/// A period in which a node's clock was off its parent's by more than
/// [`CLOCK_TOLERANCE_SECS`], on the node's own clock (the clock its events
/// carry). It opens at the last time the clock was seen right before it
/// was seen off, and closes when it is seen right again: everything the
/// node stamped in between may carry a wrong time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockOff {
    /// The last time the clock was seen right (or, never seen right, when it
    /// was first seen off).
    pub from: Ts,
    /// When it was seen right again; `None` while it is still off.
    pub to: Option<Ts>,
    /// How far the node's clock was ahead of its parent's (negative:
    /// behind), in seconds, when it was first seen off.
    pub ahead_secs: i64,
}

impl ClockOff {
    /// Encodes periods as `from,to,ahead` (seconds; `to` empty while open)
    /// joined by `;`, as a registry entry stores them.
    pub fn encode(periods: &[ClockOff]) -> String {
        let one = |p: &ClockOff| {
            let to = p.to.map_or_else(String::new, |t| t.0.to_string());
            format!("{},{to},{}", p.from.0, p.ahead_secs)
        };
        periods.iter().map(one).collect::<Vec<_>>().join(";")
    }

    /// Reads what [`ClockOff::encode`] wrote.
    pub fn decode(s: &str) -> Result<Vec<ClockOff>, String> {
        let int = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| format!("{v:?} is not a whole number"))
        };
        s.split(';')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split(',').collect::<Vec<_>>()[..] {
                [from, to, ahead] => Ok(ClockOff {
                    from: Ts(int(from)?),
                    to: if to.is_empty() {
                        None
                    } else {
                        Some(Ts(int(to)?))
                    },
                    ahead_secs: int(ahead)?,
                }),
                _ => Err(format!("{p:?} is not from,to,ahead")),
            })
            .collect()
    }
}

/// The most restores an entry keeps (the oldest go first).
pub const MAX_RESTORED: usize = 20;

/// Where a rebuilt store's records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreSource {
    /// A backup file (`hallsync restore --from`), then what the parent
    /// held beyond it.
    Backup,
    /// The parent alone (`hallsync restore --bundle`).
    Parent,
}

impl RestoreSource {
    /// The word an entry stores.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreSource::Backup => "backup",
            RestoreSource::Parent => "parent",
        }
    }

    /// Reads [`RestoreSource::as_str`].
    pub fn parse(s: &str) -> Option<RestoreSource> {
        match s {
            "backup" => Some(RestoreSource::Backup),
            "parent" => Some(RestoreSource::Parent),
            _ => None,
        }
    }
}

/// A time the node's store was rebuilt under a new Automerge actor, noted
/// once the rebuilt node had everything its parent held for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// When the restore began, on the node's clock.
    pub at: Ts,
    /// Where the records came from.
    pub source: RestoreSource,
    /// The node it caught up from: its parent (none for a node without one).
    pub from: Option<NodeId>,
}

impl Restored {
    /// Encodes restores as `at,source,from` (`from` empty for none) joined
    /// by `;`, as a registry entry stores them.
    pub fn encode(restores: &[Restored]) -> String {
        let one = |r: &Restored| {
            let from = r.from.as_ref().map_or("", NodeId::as_str);
            format!("{},{},{from}", r.at.0, r.source.as_str())
        };
        restores.iter().map(one).collect::<Vec<_>>().join(";")
    }

    /// Reads what [`Restored::encode`] wrote.
    pub fn decode(s: &str) -> Result<Vec<Restored>, String> {
        s.split(';')
            .filter(|r| !r.is_empty())
            .map(|r| match r.split(',').collect::<Vec<_>>()[..] {
                [at, source, from] => Ok(Restored {
                    at: Ts(at
                        .parse()
                        .map_err(|_| format!("{at:?} is not a whole number"))?),
                    source: RestoreSource::parse(source)
                        .ok_or_else(|| format!("{source:?} is neither backup nor parent"))?,
                    from: if from.is_empty() {
                        None
                    } else {
                        Some(NodeId::parse(from).map_err(|e| format!("{from:?}: {e}"))?)
                    },
                }),
                _ => Err(format!("{r:?} is not at,source,from")),
            })
            .collect()
    }
}

/// A revocation list as a registry entry carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlCopy {
    /// The CRL number the federation CA gave it.
    pub number: u64,
    /// The list, DER, signed by the federation CA.
    pub der: Vec<u8>,
}

/// One node of the federation, as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// The node.
    pub node: NodeId,
    /// Hall name.
    pub name: String,
    /// Level.
    pub level: Level,
    /// Region (canonical).
    pub region: RegionCode,
    /// The node it dials, if any.
    pub parent: Option<NodeId>,
    /// Where it listens for children (`host:port`), if it does.
    pub addr: Option<String>,
    /// Serial of its certificate (lower-case hex).
    pub serial: String,
    /// The newest revocation list it holds.
    pub crl: Option<CrlCopy>,
    /// When its clock was found off its parent's, oldest first.
    pub clock_off: Vec<ClockOff>,
    /// When its store was rebuilt, oldest first.
    pub restored: Vec<Restored>,
}

impl RegistryEntry {
    /// The document id of this entry: `node:REGION:NODE`.
    pub fn doc_id(&self) -> Result<DocId, IdError> {
        DocId::new(DocKind::Node, &self.region, self.node.as_str())
    }

    /// Checks the fields against their bounds; `Err` names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_NAME {
            return Err(("name", format!("must be 1 to {MAX_NAME} characters")));
        }
        if let Some(a) = &self.addr {
            let ok = !a.is_empty()
                && a.len() <= MAX_ADDR
                && a.rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(("addr", format!("{a:?} is not host:port")));
            }
        }
        let hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if self.serial.is_empty() || self.serial.len() > MAX_SERIAL || !hex(&self.serial) {
            return Err((
                "serial",
                format!("must be 1 to {MAX_SERIAL} lower-case hex digits"),
            ));
        }
        if let Some(c) = &self.crl {
            if c.der.is_empty() || c.der.len() > MAX_CRL_BYTES {
                return Err(("crl", format!("must be 1 to {MAX_CRL_BYTES} bytes")));
            }
        }
        if self.region.level() != self.level {
            return Err((
                "level",
                format!(
                    "{} does not match the region {} ({})",
                    self.level,
                    self.region,
                    self.region.level()
                ),
            ));
        }
        if self.parent.as_ref() == Some(&self.node) {
            return Err(("parent", "a node cannot be its own parent".into()));
        }
        if self.clock_off.len() > MAX_CLOCK_OFF {
            return Err((
                "clock_off",
                format!("holds more than {MAX_CLOCK_OFF} periods"),
            ));
        }
        for p in &self.clock_off {
            // From 1970, not from `EARLIEST` as event times are: a PC whose
            // clock reset to 1970 is just what these periods record.
            let in_range = |t: Ts| (0..=crate::time::LATEST.0).contains(&t.0);
            if !in_range(p.from)
                || p.to.is_some_and(|to| !in_range(to) || to < p.from)
                || p.ahead_secs.abs() > MAX_SKEW_SECS
            {
                return Err((
                    "clock_off",
                    format!(
                        "{} is not a period (from, to, skew)",
                        ClockOff::encode(std::slice::from_ref(p))
                    ),
                ));
            }
        }
        if self.restored.len() > MAX_RESTORED {
            return Err((
                "restored",
                format!("holds more than {MAX_RESTORED} restores"),
            ));
        }
        if let Some(r) = self
            .restored
            .iter()
            .find(|r| !(crate::time::EARLIEST.0..=crate::time::LATEST.0).contains(&r.at.0))
        {
            return Err((
                "restored",
                format!(
                    "{} is not a time a node can have been restored at",
                    Restored::encode(std::slice::from_ref(r))
                ),
            ));
        }
        Ok(())
    }

    /// Adds a restore, unless one that began at the same time is there
    /// already (a restore noted twice); the oldest goes beyond
    /// [`MAX_RESTORED`]. Returns whether the entry changed.
    pub fn note_restored(&mut self, restored: Restored) -> bool {
        if self.restored.iter().any(|r| r.at == restored.at) {
            return false;
        }
        if self.restored.len() == MAX_RESTORED {
            self.restored.remove(0);
        }
        self.restored.push(restored);
        true
    }

    /// Notes what a session with the node's parent found at `now` (the
    /// node's clock): its clock `ahead_secs` ahead of the parent's; it was
    /// last seen right at `last_right`. Opens a period when the clock is
    /// off and none is open, closes the open one when it is right again.
    /// Returns whether the entry changed.
    pub fn note_clock(&mut self, ahead_secs: i64, now: Ts, last_right: Option<Ts>) -> bool {
        let off = ahead_secs.abs() > CLOCK_TOLERANCE_SECS;
        let open = self.clock_off.last_mut().filter(|p| p.to.is_none());
        match (open, off) {
            (Some(_), true) | (None, false) => false,
            (Some(p), false) => {
                p.to = Some(now.max(p.from));
                true
            }
            (None, true) => {
                if self.clock_off.len() == MAX_CLOCK_OFF {
                    self.clock_off.remove(0);
                }
                self.clock_off.push(ClockOff {
                    from: last_right.map_or(now, |t| t.min(now)),
                    to: None,
                    ahead_secs: ahead_secs.clamp(-MAX_SKEW_SECS, MAX_SKEW_SECS),
                });
                true
            }
        }
    }

    /// The period in which the node stamped `at` while its clock was off,
    /// if any.
    pub fn clock_off_at(&self, at: Ts) -> Option<&ClockOff> {
        self.clock_off
            .iter()
            .find(|p| p.from <= at && p.to.is_none_or(|to| at <= to))
    }
}

/// The newest revocation list among `entries`, by CRL number.
pub fn newest_crl<'a>(entries: impl IntoIterator<Item = &'a RegistryEntry>) -> Option<&'a CrlCopy> {
    entries
        .into_iter()
        .filter_map(|e| e.crl.as_ref())
        .max_by_key(|c| c.number)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry() -> RegistryEntry {
        RegistryEntry {
            node: NodeId::parse("tw-101").unwrap(),
            name: "示例镇便民服务中心".into(),
            level: Level::Township,
            region: RegionCode::parse("140212101").unwrap(),
            parent: Some(NodeId::parse("cn-212").unwrap()),
            addr: None,
            serial: "1a2b".into(),
            crl: Some(CrlCopy {
                number: 3,
                der: vec![0x30, 0x03, 1, 2, 3],
            }),
            clock_off: Vec::new(),
            restored: Vec::new(),
        }
    }

    #[test]
    fn restores_are_noted_once_each_and_read_back_as_written() {
        let mut e = entry();
        let r = |at: i64, source, from: Option<&str>| Restored {
            at: Ts(at),
            source,
            from: from.map(|f| NodeId::parse(f).unwrap()),
        };
        assert!(e.note_restored(r(1_795_000_000, RestoreSource::Parent, Some("cn-212"))));
        assert!(!e.note_restored(r(1_795_000_000, RestoreSource::Parent, Some("cn-212"))));
        assert!(e.note_restored(r(1_796_000_000, RestoreSource::Backup, None)));
        let text = Restored::encode(&e.restored);
        assert_eq!(text, "1795000000,parent,cn-212;1796000000,backup,");
        assert_eq!(Restored::decode(&text).unwrap(), e.restored);
        assert!(e.validate().is_ok());
        for at in 0..30 {
            e.note_restored(r(1_797_000_000 + at, RestoreSource::Backup, None));
        }
        assert_eq!(e.restored.len(), MAX_RESTORED);
        assert_eq!(e.restored[0].at, Ts(1_797_000_010));
        assert!(Restored::decode("1,disk,").is_err());
        assert!(Restored::decode("1,parent,NOT AN ID").is_err());
        assert!(Restored::decode("1,parent").is_err());
        e.restored[0].at = Ts(-5);
        assert_eq!(e.validate().unwrap_err().0, "restored");
    }

    #[test]
    fn a_clock_off_its_parents_opens_a_period_from_when_it_was_last_right_until_right_again() {
        let mut e = entry();
        let t = |h: i64| Ts(1_795_000_000 + h * 3600);
        assert!(!e.note_clock(30, t(0), None));
        assert!(e.note_clock(-600, t(10), Some(t(2))));
        assert!(!e.note_clock(-590, t(11), Some(t(2))));
        assert_eq!(e.clock_off_at(t(1)), None);
        assert_eq!(e.clock_off_at(t(2)).unwrap().ahead_secs, -600);
        assert!(e.clock_off_at(t(500)).is_some(), "open while still off");
        assert!(e.note_clock(4, t(12), Some(t(2))));
        assert!(e.clock_off_at(t(12)).is_some());
        assert_eq!(e.clock_off_at(t(13)), None);
        let text = ClockOff::encode(&e.clock_off);
        assert_eq!(ClockOff::decode(&text).unwrap(), e.clock_off);
        assert!(e.validate().is_ok());
        // Never seen right: from the first time it was seen off.
        assert!(e.note_clock(900, t(20), None));
        assert_eq!(e.clock_off.last().unwrap().from, t(20));
        for i in 0..30 {
            e.note_clock(900, t(30 + 2 * i), None);
            e.note_clock(0, t(31 + 2 * i), None);
        }
        assert_eq!(e.clock_off.len(), MAX_CLOCK_OFF);
        assert!(e.validate().is_ok());
        assert!(ClockOff::decode("1,x,3").is_err());
        assert!(ClockOff::decode("1,2").is_err());
        e.clock_off[0].to = Some(Ts(e.clock_off[0].from.0 - 1));
        assert_eq!(e.validate().unwrap_err().0, "clock_off");
    }

    #[test]
    fn bounds_are_checked_and_name_the_field() {
        assert!(entry().validate().is_ok());
        let bad = |f: fn(&mut RegistryEntry)| {
            let mut e = entry();
            f(&mut e);
            e.validate().unwrap_err().0
        };
        assert_eq!(bad(|e| e.name = " ".into()), "name");
        assert_eq!(bad(|e| e.addr = Some("no-port".into())), "addr");
        assert_eq!(bad(|e| e.serial = "XYZ".into()), "serial");
        assert_eq!(
            bad(|e| e.crl = Some(CrlCopy {
                number: 1,
                der: vec![0; MAX_CRL_BYTES + 1]
            })),
            "crl"
        );
        assert_eq!(bad(|e| e.parent = Some(e.node.clone())), "parent");
        assert_eq!(bad(|e| e.level = Level::County), "level");
    }

    #[test]
    fn the_newest_list_wins() {
        let a = entry();
        let mut b = entry();
        b.crl = Some(CrlCopy {
            number: 7,
            der: vec![1],
        });
        let mut c = entry();
        c.crl = None;
        assert_eq!(newest_crl([&a, &b, &c]).unwrap().number, 7);
        assert_eq!(newest_crl([&c]), None);
        assert_eq!(a.doc_id().unwrap().as_str(), "node:140212101:tw-101");
    }
}
