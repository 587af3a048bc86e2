//! [`DelayProxy`]: a TCP proxy (on loopback, or on any address with
//! [`DelayProxy::start_on`]: a relay in the network lab) that delays every
//! answer of the server by a fixed time, give or take a random jitter, so
//! that a test can tell one round trip from
//! many (sequential requests pay the delay each; pipelined ones once), and
//! that can cut every connection (a network blip: the client reconnects,
//! its session intact), or hold the link down for a while (every
//! connection cut and every new one refused until released).

use crate::sync::lock;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Forwards connections to a target; bytes from the target reach the
/// client `delay` after they left the target, in order. Stops accepting
/// when dropped (connections in flight end with their peers).
#[derive(Debug)]
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// let zk = zkutil::testing::zookeeper();
/// let target = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
/// let proxy = zkutil::testing::DelayProxy::start(target, Duration::from_millis(50)).expect("a proxy");
/// let session = zkutil::SessionConfig::new(proxy.addr().to_string()).connect().expect("through it");
/// let started = Instant::now();
/// session.children("/").expect("answered");
/// assert!(started.elapsed() >= Duration::from_millis(50), "every answer is late");
/// proxy.cut(); // every connection through it drops; the session reconnects
/// ```
pub struct DelayProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    clients: Arc<Mutex<Vec<TcpStream>>>,
}

impl DelayProxy {
    /// A proxy on a free loopback port to `target`.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub fn start(target: SocketAddr, delay: Duration) -> std::io::Result<DelayProxy> {
        DelayProxy::start_on(([127, 0, 0, 1], 0).into(), target, delay, Duration::ZERO)
    }

    /// A proxy listening on `bind` (port 0: a free one) to `target`, each
    /// answer `delay` late give or take up to `jitter` (uniformly, and
    /// never ahead of the answer before it: a TCP stream stays in order).
    /// A slow link is a relay in its path from the start: the client is
    /// given the proxy's address instead of the target's.
    ///
    /// # Errors
    ///
    /// When `bind` cannot be bound.
    pub fn start_on(
        bind: SocketAddr,
        target: SocketAddr,
        delay: Duration,
        jitter: Duration,
    ) -> std::io::Result<DelayProxy> {
        let delay = Lag { delay, jitter };
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(Mutex::new(Vec::new()));
        let (stopped, holding, open) = (stop.clone(), held.clone(), clients.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if holding.load(Ordering::SeqCst) {
                    // The link is down: closed at once, as a refused connect.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                if let Ok(copy) = client.try_clone() {
                    lock(&open).push(copy);
                }
                forward(client, server, delay);
            }
        });
        Ok(DelayProxy {
            addr,
            stop,
            held,
            clients,
        })
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the link down until [`DelayProxy::release`]: every connection
    /// is cut and every new one closed at once.
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
        self.cut();
    }

    /// Brings the link back up after [`DelayProxy::hold`].
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }

    /// Closes every connection made so far, as a network blip would.
    pub fn cut(&self) {
        for client in lock(&self.clients).drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// How late each answer is: `delay`, give or take up to `jitter`.
#[derive(Debug, Clone, Copy)]
struct Lag {
    delay: Duration,
    jitter: Duration,
}

impl Lag {
    /// When a chunk read at `at` leaves, never before `previous` left.
    fn due(self, at: Instant, previous: Instant) -> Instant {
        let span = self.jitter * 2;
        let lag = if span.is_zero() {
            self.delay
        } else {
            (self.delay + rand::random_range(Duration::ZERO..=span)).saturating_sub(self.jitter)
        };
        (at + lag).max(previous)
    }
}

/// Client to server at once; server to client `delay` late.
fn forward(client: TcpStream, server: TcpStream, delay: Lag) {
    let (Ok(mut client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let (chunks_tx, chunks) = mpsc::channel::<(Instant, Vec<u8>)>();
    let mut server_in = server;
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = server_in.read(&mut buf) {
            if n == 0 || chunks_tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let mut client_out = client;
    std::thread::spawn(move || {
        let mut previous = Instant::now();
        for (at, chunk) in chunks {
            // The injected latency itself: each chunk waits out its delay.
            previous = delay.due(at, previous);
            std::thread::sleep(previous.saturating_duration_since(Instant::now()));
            if client_out.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = client_out.shutdown(Shutdown::Both);
    });
}
