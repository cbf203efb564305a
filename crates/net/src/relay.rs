//! A UDP relay between a child and its parent, for fault tests, benchmarks
//! and rehearsals: it forwards datagrams both ways and can be told to pass
//! everything, drop everything (a dead link), or cap the rate (a slow
//! link). Not used by a running node.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

/// What the relay does with datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Drop everything, both ways.
    Blackhole,
}

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts a relay on a loopback port towards `target`; `bytes_per_sec`
    /// caps each direction (0: no cap).
    pub async fn start(target: SocketAddr, bytes_per_sec: u64) -> std::io::Result<Relay> {
        let sock = Arc::new(UdpSocket::bind(("127.0.0.1", 0)).await?);
        let addr = sock.local_addr()?;
        let mode = Arc::new(AtomicU8::new(0));
        let task = tokio::spawn(forward(sock, target, mode.clone(), bytes_per_sec));
        Ok(Relay { addr, mode, task })
    }

    /// Where the child should dial.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes what the relay does.
    pub fn set(&self, mode: Mode) {
        self.mode
            .store(matches!(mode, Mode::Blackhole) as u8, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Pacing for one direction: datagrams leave no faster than `rate` bytes
/// per second (0: no limit).
struct Pace {
    rate: u64,
    next: Instant,
}

impl Pace {
    /// How long to hold a datagram of `len` bytes before sending it, or
    /// `None` to drop it: a queue a second long is a full router buffer.
    fn admit(&mut self, len: usize) -> Option<Duration> {
        if self.rate == 0 {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        self.next = self.next.max(now);
        let wait = self.next - now;
        if wait >= Duration::from_secs(1) {
            return None;
        }
        self.next += Duration::from_secs_f64(len as f64 / self.rate as f64);
        Some(wait)
    }
}

async fn forward(sock: Arc<UdpSocket>, target: SocketAddr, mode: Arc<AtomicU8>, rate: u64) {
    let upstream = match UdpSocket::bind(("127.0.0.1", 0)).await {
        Ok(s) => Arc::new(s),
        Err(_) => return,
    };
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    let down = {
        let (sock, upstream, client, mode) =
            (sock.clone(), upstream.clone(), client.clone(), mode.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            let mut pace = Pace {
                rate,
                next: Instant::now(),
            };
            while let Ok(n) = upstream.recv(&mut buf).await {
                let to = client.lock().ok().and_then(|c| *c);
                if let Some(to) = to.filter(|_| mode.load(Ordering::SeqCst) == 0) {
                    send_paced(&sock, &buf[..n], to, &mut pace).await;
                }
            }
        })
    };
    let mut buf = vec![0u8; 65_536];
    let mut pace = Pace {
        rate,
        next: Instant::now(),
    };
    while let Ok((n, from)) = sock.recv_from(&mut buf).await {
        if let Ok(mut c) = client.lock() {
            *c = Some(from);
        }
        if mode.load(Ordering::SeqCst) == 0 {
            send_paced(&upstream, &buf[..n], target, &mut pace).await;
        }
    }
    down.abort();
}

async fn send_paced(sock: &UdpSocket, data: &[u8], to: SocketAddr, pace: &mut Pace) {
    let Some(wait) = pace.admit(data.len()) else {
        return;
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let _ = sock.send_to(data, to).await;
}
