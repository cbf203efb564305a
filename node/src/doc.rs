//! `hallsync doc`: raw Automerge documents, for tools and for carrying a
//! document by hand when a link is down.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use hallsync_api::ops::docs::{ExportDoc, ImportDoc, Imported, ShowDoc};
use hallsync_api::Bytes;

use crate::cli::Ctx;
use crate::output::say;

#[derive(Debug, Subcommand)]
pub enum DocCmd {
    /// Write a document's raw Automerge bytes (any Automerge implementation opens them).
    Export {
        /// Document id, e.g. case:140212101:XK-20261123-0001.
        id: String,
        /// Output file (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print a document as JSON.
    Show {
        /// Document id.
        id: String,
    },
    /// Merge a document file exported by another node.
    Import {
        /// The file.
        file: PathBuf,
    },
}

pub fn run(cmd: DocCmd, ctx: &Ctx) -> Result<()> {
    let target = ctx.target()?;
    match cmd {
        DocCmd::Export { id, output } => {
            let Bytes(bytes) = target.call(ExportDoc { id }, ctx.now)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &bytes).with_context(|| path.display().to_string())?;
                    if !ctx.out.json() {
                        eprintln!("wrote {} bytes to {}", bytes.len(), path.display());
                    }
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
            Ok(())
        }
        DocCmd::Show { id } => {
            let v = target.call(ShowDoc { id }, ctx.now)?;
            say!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        DocCmd::Import { file } => {
            let meta = std::fs::metadata(&file).with_context(|| file.display().to_string())?;
            if meta.len() > hallsync_hall::MAX_DOC_BYTES as u64 {
                bail!(
                    "{}: a document file is at most {} bytes",
                    file.display(),
                    hallsync_hall::MAX_DOC_BYTES
                );
            }
            let content = Bytes(std::fs::read(&file).with_context(|| file.display().to_string())?);
            let done = target
                .call(ImportDoc { content }, ctx.now)
                .with_context(|| format!("{} was not imported", file.display()))?;
            ctx.out
                .show(&done, |d: &Imported| say!("imported {}", d.imported))
        }
    }
}
