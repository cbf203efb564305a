//! Serving the router on a listener, over plain HTTP (loopback) or HTTPS
//! (anywhere else), within bounds a hostile client cannot push past: at
//! most [`MAX_CONNECTIONS`] connections, [`MAX_PER_ADDRESS`] from one
//! address beyond this machine, a TLS handshake within [`HANDSHAKE`] and
//! each request's headers within [`HEADERS`] (idle keep-alive connections
//! included). On the stop signal, connections finish the request they are
//! answering, for at most [`DRAIN`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hallsync_net::tls::ConsoleTls;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// Most connections open at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most connections open at once from one address other than this
/// machine's own.
pub const MAX_PER_ADDRESS: usize = 64;
/// Longest a TLS handshake may take.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// Longest a client may take to send a request's headers, or to start its
/// next request on a kept-alive connection.
pub const HEADERS: Duration = Duration::from_secs(30);
/// Longest the requests being answered at the stop signal are waited for.
pub const DRAIN: Duration = Duration::from_millis(800);

/// The connections open, in all and per address.
#[derive(Debug, Default)]
struct Slots {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One connection's place among the open ones, given back when dropped.
#[derive(Debug)]
struct Slot {
    slots: Arc<Slots>,
    from: IpAddr,
}

impl Slots {
    fn take(self: &Arc<Self>, from: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per) = &mut *open;
        let mine = per.get(&from).copied().unwrap_or(0);
        if *total >= MAX_CONNECTIONS || (!from.is_loopback() && mine >= MAX_PER_ADDRESS) {
            return None;
        }
        *total += 1;
        per.insert(from, mine + 1);
        Some(Slot {
            slots: self.clone(),
            from,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = per.get_mut(&self.from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.from);
            }
        }
    }
}

/// Waits for the stop signal (or for its sender to go).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Serves `router` on `listener` until `shutdown` turns true; with `tls`,
/// every connection is a TLS one.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<ConsoleTls>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Slots::default());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, from)) => {
                    let Some(slot) = slots.take(from.ip()) else {
                        tracing::debug!(%from, "a connection over the limit, closed");
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(
                        tcp,
                        from,
                        tls.clone(),
                        router.clone(),
                        slot,
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: let others
                    // close before trying again.
                    tracing::warn!("the console could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "the console stopped with requests still being answered; what they wrote is durable or not acknowledged"
        );
        connections.abort_all();
    }
}

async fn connection(
    tcp: tokio::net::TcpStream,
    from: SocketAddr,
    tls: Option<ConsoleTls>,
    router: Router,
    slot: Slot,
    mut shutdown: watch::Receiver<bool>,
) {
    let _slot = slot;
    match tls {
        None => http(tcp, from, router, shutdown).await,
        Some(tls) => {
            let handshake = tokio::time::timeout(HANDSHAKE, tls.accept(tcp));
            let stream = tokio::select! {
                () = stopped(&mut shutdown) => return,
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(%from, "a TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%from, "a TLS handshake took too long");
                        return;
                    }
                },
            };
            http(stream, from, router, shutdown).await;
        }
    }
}

/// HTTP/1.1 on one connection; each request carries the client's address.
async fn http<I>(io: I, from: SocketAddr, router: Router, mut shutdown: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(from));
        router.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADERS);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        done = conn.as_mut() => {
            if let Err(e) = done {
                tracing::debug!(%from, "a connection ended: {e}");
            }
        }
        () = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_bounded_per_address_and_given_back() {
        let slots = Arc::new(Slots::default());
        let far: IpAddr = "192.0.2.7".parse().unwrap();
        let held: Vec<Slot> = (0..MAX_PER_ADDRESS)
            .map(|_| slots.take(far).unwrap())
            .collect();
        assert!(slots.take(far).is_none(), "one address is bounded");
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(slots.take(other).is_some(), "others are not");
        drop(held);
        let again = slots.take(far);
        assert!(again.is_some(), "closed connections give their place back");
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let many: Vec<Slot> = (0..MAX_PER_ADDRESS * 2)
            .map(|_| slots.take(here).unwrap())
            .collect();
        assert_eq!(
            many.len(),
            MAX_PER_ADDRESS * 2,
            "this machine is bounded in all only"
        );
        assert_eq!(slots.open.lock().unwrap().1.len(), 2);
        drop((again, many));
        assert_eq!(*slots.open.lock().unwrap(), (0, HashMap::new()));
    }
}
