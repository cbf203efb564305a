//! The federation registry: one entry per node, written by that node and
//! replicated like any record — up its ancestry (a hub knows the halls below
//! it) and down (a hall knows the hubs above it). Each entry also carries the
//! newest revocation list its node holds, so a revocation installed at any
//! node spreads to every node that checks certificates.

use crate::ids::{DocId, DocKind, IdError, Level, NodeId, RegionCode};

/// Longest revocation list an entry may carry (DER bytes): room for some
/// thousands of revoked certificates.
pub const MAX_CRL_BYTES: usize = 256 * 1024;
/// Longest hall name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest address (`host:port`), in bytes.
pub const MAX_ADDR: usize = 255;
/// Longest certificate serial, in hex digits (RFC 5280: at most 20 octets).
pub const MAX_SERIAL: usize = 40;

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
        Ok(())
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
        }
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
