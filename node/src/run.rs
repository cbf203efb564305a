//! `hallsync run`: the node at work, linked to its parent and children,
//! serving the API and the console.

use std::path::Path;

use anyhow::{bail, Context, Result};
use hallsync_hall::Hall;
use hallsync_model::Ts;
use hallsync_pki::bundle::{Bundle, RunConfig};
use hallsync_store::StoreOptions;

/// `hallsync run`: opens (or creates, from the bundle) the node and runs it
/// until SIGINT or SIGTERM, then stops within about a second and closes the
/// store (the memtable written out), so the data directory is free at once.
pub fn run(dir: &Path, bundle_dir: &Path, now: Option<Ts>) -> Result<()> {
    let bundle = Bundle::open(bundle_dir)?;
    // A broken bundle is reported before anything is created.
    let provider = hallsync_net::tls::provider();
    hallsync_net::tls::Credentials::load(&bundle)?.client(&provider)?;
    let c = &bundle.config;
    let id = c.id.clone();
    let console = c.console_addr().map_err(anyhow::Error::msg)?;
    // Beyond loopback the console is HTTPS with the bundle's certificate,
    // or the node does not start.
    let console_tls = if console.ip().is_loopback() {
        None
    } else {
        Some(hallsync_net::tls::ConsoleTls::load(
            &bundle, console, &provider,
        )?)
    };
    let hall = if dir.join("node.toml").exists() {
        Hall::open(dir, StoreOptions::default())?
    } else {
        tracing::info!("initialising {} from the bundle", dir.display());
        init_from(dir, c)?
    };
    // Beyond this PC only operators who log in are let in: a console no
    // one can log in to is a mistake, not a service.
    if console_tls.is_some() && !hall.operators()?.iter().any(|o| !o.disabled) {
        // Dropping the hall closes its store, so the data directory is free
        // for `operator add`.
        drop(hall);
        bail!(
            "console = {console} serves the console beyond this PC, where only operators who log in are let in, but {} has no operator who can: add one with `hallsync --data-dir {} operator add <login> --name <name> --role admin`, then start again",
            dir.display(),
            dir.display()
        );
    }
    if let Some(hallsync_hall::RestoreState::Fetching { since, .. }) = hall.restore_state()? {
        tracing::warn!(
            node = %id,
            "this hall is being restored (begun at {since}): it fetches everything its parent holds for it before it records anything; until then the console and the CLI refuse to record"
        );
    }
    let hall = std::sync::Arc::new(hall);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let stopping = rt.block_on({
        let (hall, id) = (hall.clone(), id.clone());
        async move {
            // Before the node starts, so that a signal during the start
            // stops it the same way.
            let mut signals = Signals::install()?;
            let options = hallsync_net::Options {
                status_file: Some(dir.join(crate::status::STATUS_FILE)),
                now,
                ..Default::default()
            };
            let node = hallsync_net::start(hall.clone(), bundle, options).await?;
            let board = node.board().clone();
            let svc = hallsync_api::Service::running(hall.clone(), Box::new(move || board.snapshot()));
            let clock: Box<dyn Fn() -> Ts + Send + Sync> = match now {
                Some(t) => Box::new(move || t),
                None => Box::new(crate::cli::clock),
            };
            let (stop_web, web_stopping) = tokio::sync::watch::channel(false);
            let auto = tokio::spawn(auto_orders(
                hall.clone(),
                id.clone(),
                now,
                web_stopping.clone(),
            ));
            let web = match hallsync_web::start(svc, console, dir, clock, console_tls, web_stopping)
                .await
            {
                Ok(web) => web,
                Err(e) => {
                    node.shutdown().await;
                    return Err(e.into());
                }
            };
            eprintln!(
                "hallsync node running{}; console and API at {}/{}; stop with Ctrl-C",
                node.local_addr()
                    .map(|a| format!(", listening on {a}"))
                    .unwrap_or_default(),
                web.url(),
                if web.local_addr().ip().is_loopback() {
                    String::new()
                } else {
                    format!(" (HTTPS on {}, for operators who log in)", web.local_addr())
                }
            );
            let failed = tokio::select! {
                signal = signals.next() => {
                    tracing::info!(
                        node = %id,
                        "stopping: {} received; ending each session after its current commit, then closing the data directory",
                        signal?
                    );
                    None
                }
                failure = store_failure(&hall) => {
                    tracing::error!(
                        node = %id,
                        "stopping: the store could not make a write durable ({failure}); what it acknowledged is on disk, what it refused is not, and stopping keeps the refused writes from being shown"
                    );
                    Some(failure)
                }
            };
            let stopping = std::time::Instant::now();
            let _ = stop_web.send(true);
            web.stopped().await;
            let _ = auto.await;
            node.shutdown().await;
            match failed {
                None => Ok::<_, anyhow::Error>(stopping),
                Some(failure) => Err(anyhow::anyhow!(
                    "the store could not make a write durable: {failure}\nhallsync stopped; free space on the disk that holds {} (or check the disk), then start it again: every acknowledged write is kept",
                    dir.display()
                )),
            }
        }
    })?;
    // A name lookup still running on a blocking thread is not waited for.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    let took = || stopping.elapsed().as_secs_f64();
    match std::sync::Arc::try_unwrap(hall) {
        Ok(hall) => {
            // Closing the store writes its memtable out to sled.
            drop(hall);
            tracing::info!(node = %id, "stopped in {:.2} s; {} is free", took(), dir.display());
        }
        Err(_) => tracing::warn!(
            node = %id,
            "stopped in {:.2} s, with a session still at work: what it acknowledged is on disk, and the write-ahead log is replayed at the next start",
            took()
        ),
    }
    Ok(())
}

/// A new node in `dir` for the hall the bundle's configuration names.
pub(crate) fn init_from(dir: &Path, c: &RunConfig) -> Result<Hall> {
    Ok(Hall::init(
        dir,
        c.id.clone(),
        &c.name,
        c.region.clone(),
        c.level,
        StoreOptions::default(),
    )?)
}

/// Every minute until `stop`, the orders this hub's own published rules
/// call for (`Hall::issue_auto_orders`); nothing at a hall whose rules ask
/// for none.
async fn auto_orders(
    hall: std::sync::Arc<Hall>,
    id: hallsync_model::NodeId,
    now: Option<Ts>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let h = hall.clone();
        let at = now.unwrap_or_else(crate::cli::clock);
        match tokio::task::spawn_blocking(move || h.issue_auto_orders(at)).await {
            Ok(Ok(rows)) => {
                for r in rows {
                    let o = &r.order.header;
                    tracing::info!(
                        node = %id,
                        unit = %o.unit,
                        "issued order {} by this hub's rules: {} {} on {}, reply due {}",
                        r.id.key(),
                        o.card,
                        o.rule,
                        o.case,
                        crate::output::due(Some(o.reply_due))
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!(
                node = %id,
                "could not issue the orders this hub's rules call for ({e}); trying again in a minute"
            ),
            Err(e) => tracing::error!(node = %id, "the automatic orders failed: {e}"),
        }
    }
}

/// Waits until the store stops accepting writes; returns why.
async fn store_failure(hall: &Hall) -> String {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tick.tick().await;
        if let Some(failure) = hall.store().failure() {
            return failure;
        }
    }
}

/// The signals that stop `hallsync run`, listened for from the start.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())
                    .context("installing the SIGINT handler")?,
                terminate: signal(SignalKind::terminate())
                    .context("installing the SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for one; returns its name.
    pub(crate) async fn next(&mut self) -> Result<&'static str> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Ok("SIGINT"),
                _ = self.terminate.recv() => Ok("SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            Ok("Ctrl-C")
        }
    }
}
