//! The `hallsync` binary: command-line parsing and output. Wiring only; the
//! work is done by `hallsync-hall` over `hallsync-store`, and by
//! `hallsync-net` and `hallsync-pki` for the federation.

mod cli;
mod fed;
mod output;

use std::process::ExitCode;

use clap::Parser;

/// Automerge allocates and frees many small objects for every document it
/// loads or saves; mimalloc serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    // A running node reports its links at info level; one-shot commands
    // only warn.
    let default = if args.is_run() { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HALLSYNC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
