//! `hallsync operator`: who may log in to the console, in which roles.

use std::collections::BTreeSet;
use std::io::{BufRead, Read as _};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hallsync_api::ops::operators::{AddOperator, DisableOperator, ListOperators, SetPassword};
use hallsync_hall::operators::{OperatorInfo, Role};

use crate::cli::Ctx;
use crate::output::{say, table};
use crate::parse;

#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Add an operator. The password is asked for (or read as one line from
    /// standard input when that is not a terminal).
    Add {
        /// Login name (a-z 0-9 . _ -).
        login: String,
        /// The name recorded as the handler of everything they write.
        #[arg(long)]
        name: String,
        /// A role: clerk (窗口人员), reviewer (法制审核), supervisor (电子监察,
        /// hubs only) or admin (系统管理员); repeat for more.
        #[arg(long = "role", value_parser = parse::role, required = true)]
        roles: Vec<Role>,
    },
    /// List the operators.
    List,
    /// Disable an operator: they are logged out at once and cannot log in.
    Disable {
        /// Login name.
        login: String,
    },
    /// Enable a disabled operator again.
    Enable {
        /// Login name.
        login: String,
    },
    /// Set an operator's password (asked for, or read from standard input);
    /// their sessions end.
    Passwd {
        /// Login name.
        login: String,
    },
}

/// A new password: asked for twice on a terminal, else one line of input.
fn password() -> Result<String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let first = rpassword::prompt_password("password: ").context("reading the password")?;
        let again = rpassword::prompt_password("again: ").context("reading the password")?;
        if first != again {
            bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(4096)
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn print_one(o: &OperatorInfo) {
    say!(
        "{} ({}): {}{}",
        o.login,
        o.name,
        roles(&o.roles),
        if o.disabled { ", disabled" } else { "" }
    );
}

fn roles(r: &BTreeSet<Role>) -> String {
    r.iter()
        .map(|r| format!("{r} {}", r.label()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(cmd: OperatorCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    let out = ctx.out;
    match cmd {
        OperatorCmd::Add { login, name, roles } => {
            let op = AddOperator {
                login,
                name,
                roles: roles.into_iter().collect(),
                password: password()?,
            };
            out.show(&target.call(op, ctx.now)?, print_one)
        }
        OperatorCmd::List => out.show(&target.call(ListOperators {}, ctx.now)?, |ops| {
            let mut t = table(&["login", "name", "roles", "state", "changed"]);
            for o in ops {
                t.add_row(vec![
                    o.login.clone(),
                    o.name.clone(),
                    roles(&o.roles),
                    if o.disabled { "disabled" } else { "active" }.to_string(),
                    o.changed.to_string(),
                ]);
            }
            say!("{t}");
            say!("{} operator(s)", ops.len());
        }),
        OperatorCmd::Disable { login } => {
            let op = DisableOperator {
                login,
                disabled: true,
            };
            out.show(&target.call(op, ctx.now)?, print_one)
        }
        OperatorCmd::Enable { login } => {
            let op = DisableOperator {
                login,
                disabled: false,
            };
            out.show(&target.call(op, ctx.now)?, print_one)
        }
        OperatorCmd::Passwd { login } => {
            let op = SetPassword {
                login,
                password: password()?,
            };
            out.show(&target.call(op, ctx.now)?, print_one)
        }
    }
}
