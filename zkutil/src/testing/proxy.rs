//! [`DelayProxy`]: a TCP proxy (on loopback, or on any address with
//! [`DelayProxy::start_on`]: a relay in the network lab) that delays every
//! answer of the server by a fixed time, give or take a random jitter, so
//! that a test can tell one round trip from
//! many (sequential requests pay the delay each; pipelined ones once), and
//! that can cut every connection (a network blip: the client reconnects,
//! its session intact), or hold the link down for a while (every
//! connection cut and every new one refused until released). The delay can
//! change while connections are open ([`DelayProxy::set_delay`]): a link
//! that turns slow.

use crate::sync::lock;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

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
    clients: Arc<Mutex<Clients>>,
    lag: Arc<Mutex<Lag>>,
    /// When the last connection was let through.
    last_connected: Arc<Mutex<Option<SystemTime>>>,
    /// The network namespace it listens in, when not this thread's (a
    /// relay of the lab): the drop wakes its acceptor from there.
    namespace: Option<String>,
}

/// The connections open through a proxy, by number, to cut them all; each
/// leaves the list when it ends.
#[derive(Debug, Default)]
struct Clients {
    next: u64,
    open: Vec<(u64, TcpStream)>,
}

impl Clients {
    /// Closes every connection open so far.
    fn cut(&mut self) {
        for (_, client) in self.open.drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

/// How long the proxy waits for the target to accept a connection: a
/// target cut off must not hold up the proxy (the client's connection is
/// closed, as a connect that failed). Shorter than a ZooKeeper client's own
/// connection timeout (2/5 of a 4 s session: 1.6 s), so that a client never
/// gives up a connection that the proxy then completes, handing the target
/// a connect request nobody waits for (a real network delivers none).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

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
        let lag = Arc::new(Mutex::new(Lag { delay, jitter }));
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(Mutex::new(Clients::default()));
        let last_connected = Arc::new(Mutex::new(None));
        let (stopped, holding, open, lagging, connected) = (
            stop.clone(),
            held.clone(),
            clients.clone(),
            lag.clone(),
            last_connected.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let id = {
                    let mut clients = lock(&open);
                    // Read under the list's lock, which `hold` takes to set
                    // it: a connection is either refused or listed before
                    // the hold's cut, never let through after it.
                    if holding.load(Ordering::SeqCst) {
                        // The link is down: closed at once, as a refused connect.
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    }
                    clients.next += 1;
                    if let Ok(copy) = client.try_clone() {
                        let id = clients.next;
                        clients.open.push((id, copy));
                    }
                    // Stamped once listed, under the list's lock: a test
                    // that sees the stamp and cuts at once cuts this one
                    // too (stamped before, a cut could miss it).
                    *lock(&connected) = Some(SystemTime::now());
                    clients.next
                };
                let (lag, open) = (lagging.clone(), open.clone());
                // Connected on its own thread: a target that does not
                // answer holds up this client only, not the next accept.
                std::thread::spawn(move || {
                    if let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
                        forward(client, server, lag);
                    } else {
                        let _ = client.shutdown(Shutdown::Both);
                    }
                    lock(&open).open.retain(|(open, _)| *open != id);
                });
            }
        });
        Ok(DelayProxy {
            addr,
            stop,
            held,
            clients,
            lag,
            last_connected,
            namespace: None,
        })
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the link down until [`DelayProxy::release`]: every connection
    /// is cut and every new one closed at once.
    pub fn hold(&self) {
        let mut clients = lock(&self.clients);
        self.held.store(true, Ordering::SeqCst);
        clients.cut();
    }

    /// Brings the link back up after [`DelayProxy::hold`].
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }

    /// Closes every connection made so far, as a network blip would.
    pub fn cut(&self) {
        lock(&self.clients).cut();
    }

    /// When the last connection was let through (wall clock, to compare
    /// with another process's): a client's reconnect, for a benchmark.
    pub fn last_connected(&self) -> Option<SystemTime> {
        *lock(&self.last_connected)
    }

    /// Marks the proxy as listening in the network namespace at `path`.
    pub(super) fn in_namespace(mut self, path: String) -> DelayProxy {
        self.namespace = Some(path);
        self
    }

    /// From now on, each answer is `delay` late give or take `jitter`, on
    /// the open connections too (what is already held back keeps its
    /// time): a link that turns slow, or fast again.
    pub fn set_delay(&self, delay: Duration, jitter: Duration) {
        *lock(&self.lag) = Lag { delay, jitter };
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let addr = self.addr;
        let wake = move || {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        };
        match self.namespace.clone() {
            None => wake(),
            Some(path) => {
                let _ = std::thread::spawn(move || {
                    if super::netns::enter(&path).is_ok() {
                        wake();
                    }
                })
                .join();
            }
        }
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

/// How long the target may take to end its side once the client ended
/// its own: a target cut off never does, and its reader must not wait
/// forever.
const LINGER: Duration = Duration::from_secs(5);

/// Client to server at once; server to client `lag` late. Returns when
/// the connection is over.
fn forward(client: TcpStream, server: TcpStream, lag: Arc<Mutex<Lag>>) {
    // A link adds no Nagle wait of its own: small writes leave at once,
    // as the endpoints' own sockets (ZooKeeper's quorum links set it) ask.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        if std::io::copy(&mut client_in, &mut server_out).is_ok() {
            // The client is done: the target's last answers still reach it.
            let _ = server_out.shutdown(Shutdown::Write);
            // The socket's option: the reader's clone below times out too.
            let _ = server_out.set_read_timeout(Some(LINGER));
        } else {
            // The target's side failed (a route cut): so does the client's.
            let _ = server_out.shutdown(Shutdown::Both);
            let _ = client_in.shutdown(Shutdown::Both);
        }
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
    let mut previous = Instant::now();
    for (at, chunk) in chunks {
        // The injected latency itself: each chunk waits out its delay.
        let delay = *lock(&lag);
        previous = delay.due(at, previous);
        std::thread::sleep(previous.saturating_duration_since(Instant::now()));
        if client_out.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = client_out.shutdown(Shutdown::Both);
}
