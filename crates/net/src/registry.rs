//! A running node's part in the federation registry: it publishes its own
//! entry (from its bundle) carrying the newest revocation list it holds, and
//! installs a newer list that another node's entry brings. So an
//! administrator who revokes a node copies the new `crl.pem` to any one
//! node, and the list spreads up and down the tree to every node that may
//! meet the revoked one.

use hallsync_hall::Hall;
use hallsync_model::registry::{newest_crl, CrlCopy, RegistryEntry};
use hallsync_model::NodeId;
use hallsync_pki::bundle::{Bundle, ParentConfig, NODE_CERT};
use hallsync_pki::{CheckedCrl, CA_CERT, CRL};

/// What one pass of [`refresh`] found and did.
#[derive(Debug)]
pub(crate) struct Refreshed {
    /// A newer list from the registry replaced the bundle's: its number
    /// and the node whose entry brought it.
    pub(crate) installed: Option<(u64, String)>,
    /// The number of the list now in force.
    pub(crate) in_force: u64,
    /// Every registry entry held, this node's own included.
    pub(crate) known: Vec<RegistryEntry>,
}

/// Makes `hall` refuse registry entries carrying a revocation list the
/// federation CA did not sign.
pub(crate) fn install_check(hall: &Hall, bundle: &Bundle) -> Result<(), String> {
    let ca = bundle.read(CA_CERT).map_err(|e| e.to_string())?;
    hall.set_crl_check(Box::new(move |der| {
        hallsync_pki::check_crl(&ca, der)
            .map(|c| c.number)
            .map_err(|e| e.to_string())
    }));
    Ok(())
}

/// This node's registry entry, from its bundle.
fn own_entry(bundle: &Bundle, crl: &CheckedCrl) -> Result<RegistryEntry, String> {
    let c = &bundle.config;
    let serial = bundle
        .read(NODE_CERT)
        .and_then(|pem| hallsync_pki::serial_of_pem(&pem))
        .map_err(|e| e.to_string())?;
    // The topology entry holds the address children are told to dial; a
    // bundle without one still has a usable entry.
    let addr = bundle.entry().ok().and_then(|e| e.addr);
    Ok(RegistryEntry {
        node: c.id.clone(),
        name: c.name.clone(),
        level: c.level,
        region: c.region.clone(),
        parent: c.parent.as_ref().map(|p| p.id.clone()),
        addr,
        serial,
        crl: Some(CrlCopy {
            number: crl.number,
            der: crl.der.clone(),
        }),
        clock_off: Vec::new(),
        restored: Vec::new(),
    })
}

/// Compares the bundle's revocation list with the newest any registry entry
/// carries, installs the newer one into the bundle, and publishes this
/// node's entry with the list it now holds. Blocking (store writes).
pub(crate) fn refresh(hall: &Hall, bundle: &Bundle) -> Result<Refreshed, String> {
    let ca = bundle.read(CA_CERT).map_err(|e| e.to_string())?;
    let held = bundle
        .read(CRL)
        .map_err(|e| e.to_string())
        .and_then(|pem| hallsync_pki::check_crl_pem(&ca, &pem).map_err(|e| e.to_string()))
        .map_err(|e| format!("the bundle's revocation list: {e}"))?;
    let entries = hall.registry().map_err(|e| e.to_string())?;
    let newer = newest_crl(&entries)
        .filter(|c| c.number > held.number)
        .map(|c| {
            let from = entries
                .iter()
                .find(|e| e.crl.as_ref() == Some(c))
                .map_or_else(String::new, |e| e.node.to_string());
            (c, from)
        });
    let (held, installed) = match newer {
        Some((c, from)) => {
            // Checked when it was stored; checked again before it guards
            // the links.
            let checked = hallsync_pki::check_crl(&ca, &c.der)
                .map_err(|e| format!("the list in the entry of {from}: {e}"))?;
            bundle
                .replace_crl(&checked.der)
                .map_err(|e| format!("installing it: {e}"))?;
            let number = checked.number;
            (checked, Some((number, from)))
        }
        None => (held, None),
    };
    let own = own_entry(bundle, &held)?;
    hall.publish_registry_entry(&own)
        .map_err(|e| format!("publishing this node's registry entry: {e}"))?;
    // As stored: with the clock periods and restores the hall keeps.
    let own = hall
        .registry()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|e| e.node == own.node)
        .unwrap_or(own);
    let mut known: Vec<RegistryEntry> =
        entries.into_iter().filter(|e| e.node != own.node).collect();
    known.push(own);
    Ok(Refreshed {
        installed,
        in_force: held.number,
        known,
    })
}

/// The hubs above this node, other than its parent, that say where they
/// listen: where to sync while the parent cannot be reached. Nearest first.
pub(crate) fn fallbacks(hall: &Hall, parent: &NodeId) -> Result<Vec<ParentConfig>, String> {
    let me = &hall.node().region;
    let mut above: Vec<RegistryEntry> = hall
        .registry()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|e| e.region.is_ancestor_of(me) && e.node != *parent && e.addr.is_some())
        .collect();
    above.sort_by_key(|e| std::cmp::Reverse(e.level.digits()));
    Ok(above
        .into_iter()
        .filter_map(|e| {
            Some(ParentConfig {
                addr: e.addr?,
                id: e.node,
            })
        })
        .collect())
}
