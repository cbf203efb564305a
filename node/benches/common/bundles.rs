//! What the node benchmarks share: a node's bundle from a test CA.

use std::path::Path;

use hallsync_model::Ts;
use hallsync_pki::bundle::{Bundle, ParentConfig};
use hallsync_pki::topology::NodeEntry;
use hallsync_pki::{Ca, Identity};

/// A bundle for `who`, valid for a day, its console on any loopback port.
pub fn bundle(
    ca: &Ca,
    dir: &Path,
    who: Identity,
    listen: Option<String>,
    parent: Option<ParentConfig>,
) -> Bundle {
    let now = Ts(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64);
    let issued = ca.issue(&who, now.plus(-600), now.plus(86_400)).unwrap();
    let entry = NodeEntry {
        id: who.id.clone(),
        name: format!("{} hall", who.id),
        level: who.level,
        region: who.region.clone(),
        parent: parent.as_ref().map(|p| p.id.clone()),
        addr: listen.clone(),
        serial: issued.serial.clone(),
        issued: now.to_string(),
        expires: now.plus(86_400).to_string(),
        revoked: None,
    };
    Bundle::write(
        &dir.join(who.id.as_str()),
        ca,
        &entry,
        &issued,
        listen,
        parent,
        Some("127.0.0.1:0".into()),
    )
    .unwrap()
}
