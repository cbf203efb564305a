//! `hallsync status`: the node's links, what was set aside, the registry.
//! From the running node when one runs, else from the `status.json` it
//! left.

use std::path::Path;

use anyhow::{bail, Result};
use hallsync_api::ops::node::Status;
use hallsync_model::Ts;
use hallsync_net::status::{read_file, NodeStatus, SKEW_WARN_SECS};
use serde::{Deserialize, Serialize};

use crate::cli::Ctx;
use crate::output::{clock_off, say, table};
use crate::target::Target;

/// The file a running node writes its status to every second.
pub const STATUS_FILE: &str = "status.json";

/// What `status` shows.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusOut {
    /// Whether the node is running now.
    pub running: bool,
    /// Its status (as it left it, when not running).
    pub status: NodeStatus,
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let dir = &ctx.dir;
    let shown = match Target::open_running(dir)? {
        Some(target) => StatusOut {
            running: true,
            status: target.call(Status {}, ctx.now)?,
        },
        None => StatusOut {
            running: false,
            status: last(dir)?,
        },
    };
    ctx.out.show(&shown, print)
}

/// What a stopped node left in `status.json`.
fn last(dir: &Path) -> Result<NodeStatus> {
    let path = dir.join(STATUS_FILE);
    if !path.exists() {
        if !dir.join(hallsync_hall::NODE_FILE).exists() {
            if dir.join(hallsync_hall::RESTORE_PARTIAL_DIR).exists() {
                return Err(hallsync_hall::HallError::RestoreCutShort(dir.to_path_buf()).into());
            }
            bail!(
                "no node in {}: run `hallsync init` or `hallsync run --bundle`",
                dir.display()
            );
        }
        bail!(
            "the node in {} has not run since it was made (`hallsync --data-dir {} run --bundle <dir>` starts it; if it is being restored, the same `hallsync restore` carries on)",
            dir.display(),
            dir.display()
        );
    }
    read_file(&path).map_err(anyhow::Error::msg)
}

fn print(s: &StatusOut) {
    let (st, running) = (&s.status, s.running);
    let at = |t: Option<i64>| t.map_or("never".to_string(), |t| Ts(t).to_string());
    if running {
        say!(
            "node {} running (pid {}) since {}{}; feed at {}",
            st.node,
            st.pid,
            Ts(st.started),
            st.listen
                .as_ref()
                .map(|l| format!(", listening on {l}"))
                .unwrap_or_default(),
            st.feed_head
        );
    } else {
        say!(
            "node {} is NOT running (last seen {}); the links below are as it left them",
            st.node,
            Ts(st.updated)
        );
    }
    if st.restoring {
        say!("being restored from its parent (hallsync restore): it records nothing until it holds everything its parent holds for it; the parent's backlog in below is what is left to fetch");
    }
    let mut t = table(&[
        "peer",
        "role",
        "region",
        "link",
        "last sync",
        "backlog out",
        "backlog in",
        "docs sent",
        "docs recv",
        "wire tx/rx",
        "clock",
        "last error",
    ]);
    for p in &st.peers {
        t.add_row(vec![
            p.id.clone(),
            format!("{:?}", p.role).to_lowercase(),
            p.region.clone().unwrap_or_default(),
            if p.connected && running {
                format!("up since {}", at(p.since))
            } else {
                "down".into()
            },
            at(p.last_sync),
            p.backlog_out.to_string(),
            p.backlog_in.to_string(),
            p.sent_docs.to_string(),
            p.received_docs.to_string(),
            format!("{} / {} KB", p.wire_tx / 1024, p.wire_rx / 1024),
            skew(p.clock_skew_secs),
            p.last_error.clone().unwrap_or_default(),
        ]);
    }
    say!("{t}");
    for p in &st.peers {
        if let Some(s) = p.clock_skew_secs.filter(|s| s.abs() > SKEW_WARN_SECS) {
            say!(
                "{}'s clock is {} this node's: the times either records are off by as much; set the wrong clock right (NTP)",
                p.id,
                skew(Some(s))
            );
        }
    }
    if st.peers.is_empty() {
        say!("no peers yet: no parent configured and no child has connected");
    }
    if !st.set_aside.is_empty() {
        say!("records set aside in replication (the links carry on without them):");
        let mut t = table(&["record", "way", "since", "why"]);
        for a in &st.set_aside {
            t.add_row(vec![
                a.id.clone(),
                if a.direction == "refused" {
                    format!("refused from {}", a.peer)
                } else {
                    format!("refused by {}", a.peer)
                },
                Ts(a.at).to_string(),
                a.reason.clone(),
            ]);
        }
        say!("{t}");
        say!("a record refused by a peer is sent again once it is corrected here (or the case withdrawn); one refused from a peer is replaced when the peer sends a corrected version");
    }
    if let Some(n) = st.revocation_list {
        say!("revocation list in force: number {n}");
    }
    if !st.registry.is_empty() {
        let mut r = table(&[
            "node",
            "name",
            "level",
            "region",
            "parent",
            "address",
            "revocation list",
            "clock",
        ]);
        for k in &st.registry {
            r.add_row(vec![
                k.id.clone(),
                k.name.clone(),
                k.level.clone(),
                k.region.clone(),
                k.parent.clone().unwrap_or_else(|| "—".into()),
                k.addr.clone().unwrap_or_else(|| "(dials out only)".into()),
                k.revocation_list.map_or("—".into(), |n| n.to_string()),
                match (k.clock_off, k.clock_off_periods) {
                    (Some(ahead), _) => format!("off now: {}", clock_off(ahead)),
                    (None, 0) => "ok".into(),
                    (None, n) => format!("ok (off {n} time(s) before)"),
                },
            ]);
        }
        say!("registry (nodes this one knows):\n{r}");
        for k in &st.registry {
            if let Some((at, source, from)) = &k.last_restore {
                say!(
                    "{} was last restored at {} ({}{})",
                    k.id,
                    Ts(*at),
                    if source == "backup" {
                        "from a backup"
                    } else {
                        "from its parent"
                    },
                    from.as_ref()
                        .map(|f| format!(", caught up from {f}"))
                        .unwrap_or_default()
                );
            }
        }
    }
}

/// A peer's clock against this node's, in words.
fn skew(secs: Option<i64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s.abs() < 60 => "ok".into(),
        Some(s) => format!(
            "{} min {}",
            s.abs() / 60,
            if s > 0 { "ahead of" } else { "behind" }
        ),
    }
}
