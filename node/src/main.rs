//! The `hallsync` binary: command-line parsing and output. Wiring only; the
//! work is done by `hallsync-hall` over `hallsync-store`, and by
//! `hallsync-net` and `hallsync-pki` for the federation.

mod ca;
mod calendar;
mod case;
mod cli;
mod doc;
mod item;
mod nodes;
mod operator;
mod order;
mod output;
mod parse;
mod report;
mod restore;
mod rules;
mod run;
mod stats;
mod status;
mod target;
mod warning;

use std::process::ExitCode;

use clap::Parser;

/// Automerge allocates and frees many small objects for every document it
/// loads or saves; mimalloc serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HALLSYNC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(args.log_filter())),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error as the administrator reads it: what failed, then each cause on
/// a line of its own, skipping any whose text is already said.
fn report(e: &anyhow::Error) -> String {
    let mut out = format!("error: {e}");
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str("\n  because: ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_gives_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::IsADirectory);
        let text = io.to_string();
        let e = anyhow::Error::new(io).context(format!("/tmp/x: {text}"));
        assert_eq!(report(&e), format!("error: /tmp/x: {text}"));
        let e = anyhow::anyhow!("disk full").context("cannot accept the case");
        assert_eq!(
            report(&e),
            "error: cannot accept the case\n  because: disk full"
        );
    }
}
