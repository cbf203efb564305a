//! A UDP relay between a child and its parent, for fault tests, benchmarks
//! and rehearsals: it forwards datagrams both ways and can be told to pass
//! everything, drop everything (a dead link), or cap the rate (a slow
//! link). Not used by a running node.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
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
    bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts a relay on a loopback port towards `target`; `bytes_per_sec`
    /// caps each direction (0: no cap).
    pub async fn start(target: SocketAddr, bytes_per_sec: u64) -> std::io::Result<Relay> {
        let sock = Arc::new(UdpSocket::bind(("127.0.0.1", 0)).await?);
        let addr = sock.local_addr()?;
        let mode = Arc::new(AtomicU8::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(forward(
            sock,
            target,
            mode.clone(),
            bytes.clone(),
            bytes_per_sec,
        ));
        Ok(Relay {
            addr,
            mode,
            bytes,
            task,
        })
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

    /// UDP payload bytes forwarded so far, both ways.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A token bucket per direction.
struct Pace {
    rate: u64,
    next: Instant,
}

impl Pace {
    fn delay(&mut self, len: usize) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        let now = Instant::now();
        if self.next < now {
            self.next = now;
        }
        let wait = self.next - now;
        self.next += Duration::from_secs_f64(len as f64 / self.rate as f64);
        // A queue longer than a second is a full router buffer: drop.
        (wait < Duration::from_secs(1)).then_some(wait)
    }
}

async fn forward(
    sock: Arc<UdpSocket>,
    target: SocketAddr,
    mode: Arc<AtomicU8>,
    bytes: Arc<AtomicU64>,
    rate: u64,
) {
    let upstream = match UdpSocket::bind(("127.0.0.1", 0)).await {
        Ok(s) => Arc::new(s),
        Err(_) => return,
    };
    let client: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    let down = {
        let (sock, upstream, client, mode, bytes) = (
            sock.clone(),
            upstream.clone(),
            client.clone(),
            mode.clone(),
            bytes.clone(),
        );
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            let mut pace = Pace {
                rate,
                next: Instant::now(),
            };
            while let Ok(n) = upstream.recv(&mut buf).await {
                let to = client.lock().ok().and_then(|c| *c);
                if let Some(to) = to.filter(|_| mode.load(Ordering::SeqCst) == 0) {
                    send_paced(&sock, &buf[..n], to, &mut pace, &bytes).await;
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
            send_paced(&upstream, &buf[..n], target, &mut pace, &bytes).await;
        }
    }
    down.abort();
}

async fn send_paced(
    sock: &UdpSocket,
    data: &[u8],
    to: SocketAddr,
    pace: &mut Pace,
    bytes: &AtomicU64,
) {
    match pace.delay(data.len()) {
        None => {}
        Some(d) if d.is_zero() => {}
        Some(d) => tokio::time::sleep(d).await,
    }
    if pace.rate > 0 && pace.next > Instant::now() + Duration::from_secs(1) {
        return;
    }
    bytes.fetch_add(data.len() as u64, Ordering::SeqCst);
    let _ = sock.send_to(data, to).await;
}
