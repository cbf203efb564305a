//! `hallsync ca`: the federation's certificate authority.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args as ClapArgs, Subcommand};
use hallsync_model::Ts;
use hallsync_pki::Ca;
use serde::Serialize;

use crate::output::{say, Out};

/// Where the federation's files are.
#[derive(Debug, ClapArgs)]
pub struct FedPaths {
    /// Directory of the federation CA.
    #[arg(
        long,
        env = "HALLSYNC_CERTS",
        default_value = "certs",
        value_name = "DIR"
    )]
    pub certs_dir: PathBuf,
    /// The federation's topology file.
    #[arg(
        long,
        env = "HALLSYNC_TOPOLOGY",
        default_value = "topology/federation.toml",
        value_name = "FILE"
    )]
    pub topology: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Create the federation CA (certificate, key with mode 0600, empty
    /// revocation list).
    Init {
        /// Federation name, e.g. 样例市政务服务.
        #[arg(long)]
        name: String,
        /// Days the CA certificate is valid.
        #[arg(long, default_value_t = 3650)]
        days: i64,
        #[command(flatten)]
        paths: FedPaths,
    },
}

/// A CA made.
#[derive(Debug, Serialize)]
pub struct CaCreated {
    /// Its directory.
    pub ca: PathBuf,
    /// The federation's name.
    pub name: String,
}

pub fn ca(cmd: CaCmd, now: Ts, out: &Out) -> Result<()> {
    match cmd {
        CaCmd::Init { name, days, paths } => {
            if !(1..=36_500).contains(&days) {
                bail!("--days must be 1-36500");
            }
            let ca = Ca::init(&paths.certs_dir, &name, now, days)?;
            let made = CaCreated {
                ca: paths.certs_dir,
                name: ca.name().to_string(),
            };
            out.show(&made, |m| {
                say!(
                    "created the federation CA '{}' in {} (ca.crt, ca.key [0600, never commit it], crl.pem)",
                    m.name,
                    m.ca.display()
                );
            })
        }
    }
}
