//! Listeners: bind every address first, then accept on each with four
//! blocking acceptor threads, which reply at once; one drain thread then
//! waits for every answered client's EOF (`drainer`).
//!
//! An idle or slow client holds only its place in the drain thread's
//! poller and never delays another client. The number of connections
//! served at once is capped (`--max-connections`): beyond it a new
//! connection gets its reply at once and is closed without draining, so
//! memory stays bounded under a flood.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zkutil::Endpoint;
use zkutil::cli::lock;

use crate::accept_failures::AcceptFailures;
use crate::drainer::Drainer;
use crate::metrics::ServerMetrics;
use crate::reply::{ReplyLimits, reply};
use crate::shutdown::Shutdown;

/// A bound listener and the endpoint it is advertised as.
#[derive(Debug)]
pub struct BoundListener {
    /// Still a blocking socket: `mio`'s type is used only for its
    /// `accept`, which asks `accept4` for a non-blocking connection (one
    /// `ioctl` less per connection than `set_nonblocking` after a blocking
    /// accept); on a blocking listener that `accept4` blocks, as the
    /// acceptor threads expect.
    listener: mio::net::TcpListener,
    local: SocketAddr,
    advertised: Endpoint,
}

impl BoundListener {
    /// Wraps a listener bound by the caller (tests bind port 0).
    ///
    /// # Errors
    ///
    /// When the listener's address cannot be read, or it listens on an
    /// unspecified address (`0.0.0.0`, `::`) and no `advertise` address says
    /// what clients should connect to.
    pub fn new(listener: TcpListener, advertise: Option<IpAddr>) -> anyhow::Result<BoundListener> {
        let local = listener
            .local_addr()
            .context("reading the listener's address")?;
        let ip = match (local.ip().is_unspecified(), advertise) {
            (_, Some(ip)) => ip,
            (false, None) => local.ip(),
            (true, None) => bail!(
                "{} cannot be registered: give --advertise with the address clients should use",
                local.ip()
            ),
        };
        if ip.is_unspecified() {
            bail!("--advertise {ip} is not an address clients can connect to");
        }
        Ok(BoundListener {
            listener: mio::net::TcpListener::from_std(listener),
            local,
            advertised: Endpoint::new(SocketAddr::new(ip, local.port())),
        })
    }

    /// The address actually bound (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Returns every `accept` blocked on this listener at once (Linux, for
    /// a stop that could not wake its acceptors by connecting); what is in
    /// the backlog is then refused rather than answered.
    pub(crate) fn interrupt_accepts(&self) {
        let _ = socket2::SockRef::from(&self.listener).shutdown(std::net::Shutdown::Read);
    }

    /// The endpoint registered for this listener.
    pub fn advertised(&self) -> Endpoint {
        self.advertised
    }
}

/// Binds every address in `listen`, or none: the first failure is the error.
///
/// # Errors
///
/// A one-line cause naming the address that could not be bound.
pub fn bind_all(
    listen: &[Endpoint],
    advertise: Option<IpAddr>,
) -> anyhow::Result<Vec<BoundListener>> {
    if listen.is_empty() {
        bail!("no address to listen on");
    }
    listen
        .iter()
        .map(|endpoint| {
            let listener = TcpListener::bind(endpoint.addr())
                .with_context(|| format!("binding {endpoint}"))?;
            BoundListener::new(listener, advertise)
                .with_context(|| format!("listening on {endpoint}"))
        })
        .collect()
}

/// Options of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Limits of each exchange.
    pub limits: ReplyLimits,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Where connections are counted (`--metrics-listen`).
    pub metrics: Option<std::sync::Arc<crate::metrics::ServerMetrics>>,
    /// An artificial delay before each reply (the hidden `--reply-delay`):
    /// a slow server for tests and benchmarks of the load-aware strategy.
    /// It holds the acceptor, so it also caps the listener's rate.
    pub reply_delay: Duration,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            limits: ReplyLimits::default(),
            max_connections: 1024,
            metrics: None,
            reply_delay: Duration::ZERO,
        }
    }
}

/// Acceptor threads per listener, blocked in `accept` on the same socket
/// (the kernel hands each connection to one): the accept and the reply of
/// one connection overlap with the next one's on another core. Four, by
/// measurement (bench section 4, several runs each, ratio to the bare
/// responder at 1 / 4 client threads): one 0.86–0.91 / 0.81–0.87, two
/// 0.72–0.96 / 0.94–1.06, three 0.96–1.09 / 0.96–1.06, four 1.01–1.18 /
/// 0.97–1.10, eight 1.17–1.20 / 0.94–1.02. Why more idle acceptors help
/// even one sequential client is not established; an idle one costs a
/// thread blocked in `accept` (its stack barely touched).
pub(crate) const ACCEPTORS: usize = 4;

/// The descriptors that serving `listeners` listeners holds besides the
/// connections: each listening socket; one for each acceptor, since Linux's
/// `accept` takes its descriptor before it blocks, so an idle acceptor
/// holds one all the time; and the drain thread's poller and waker. What
/// [`crate::fdlimit::fit`] keeps the connection cap clear of.
pub fn descriptors_held(listeners: usize) -> usize {
    listeners * (1 + ACCEPTORS) + 2
}

/// Serves every listener until `stop` is triggered (and its acceptors woken),
/// then waits for the connections in flight to finish (each is bounded by
/// its limits). All threads are joined before it returns.
pub fn serve(listeners: &[BoundListener], stop: &Shutdown, options: &ServeOptions) {
    let active = Arc::new(AtomicUsize::new(0));
    let drainer = Drainer::new(
        listeners.len() * ACCEPTORS,
        options.limits,
        active.clone(),
        options.metrics.clone(),
    );
    let (drainer, poll) = match drainer {
        Ok((drainer, poll)) => (Some(drainer), Some(poll)),
        Err(err) => {
            tracing::error!(error = %err, "cannot start the drain poller: connections are closed right after their reply");
            (None, None)
        }
    };
    // One for the whole server: out of descriptors, every acceptor fails.
    let failures = Mutex::new(AcceptFailures::default());
    // Acceptors still running, per listener.
    let running: Vec<AtomicUsize> = listeners
        .iter()
        .map(|_| AtomicUsize::new(ACCEPTORS))
        .collect();
    std::thread::scope(|scope| {
        // Without its thread, a drainer would hold every connection
        // handed to it (and its place under the cap) until the server
        // stops: the acceptors then close right after the reply instead.
        let drainer = match (&drainer, poll) {
            (Some(drainer), Some(poll)) => match std::thread::Builder::new()
                .name("drain".into())
                .spawn_scoped(scope, move || drainer.run(poll))
            {
                Ok(_) => Some(drainer),
                Err(err) => {
                    tracing::error!(error = %err, "cannot start the drain thread: connections are closed right after their reply");
                    None
                }
            },
            _ => None,
        };
        for (bound, running) in listeners.iter().zip(&running) {
            // The last acceptor of a listener to stop answers what is left
            // in its backlog and shuts it.
            for _ in 0..ACCEPTORS {
                let (active, failures) = (&*active, &failures);
                let spawned = std::thread::Builder::new()
                    .name(format!("accept {}", bound.local))
                    .spawn_scoped(scope, move || {
                        accept_loop(bound, stop, options, active, drainer, failures);
                        if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                            close_listener(bound, stop, options.metrics.as_deref());
                        }
                        if let Some(drainer) = drainer {
                            drainer.acceptor_done();
                        }
                    });
                if let Err(err) = spawned {
                    tracing::error!(listener = %bound.local, error = %err, "cannot start acceptor thread");
                    if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                        close_listener(bound, stop, options.metrics.as_deref());
                    }
                    if let Some(drainer) = drainer {
                        drainer.acceptor_done();
                    }
                }
            }
        }
    });
}

fn accept_loop(
    bound: &BoundListener,
    stop: &Shutdown,
    options: &ServeOptions,
    active: &AtomicUsize,
    drainer: Option<&Drainer>,
    failures: &Mutex<AcceptFailures>,
) {
    let metrics = options.metrics.as_deref();
    loop {
        let accepted = bound.listener.accept();
        if stop.is_triggered() {
            // Accepted is accepted: the client (or the waker) gets its reply.
            if let Ok((stream, peer)) = accepted {
                let stream = TcpStream::from(std::os::fd::OwnedFd::from(stream));
                answer_and_close(stream, peer, bound, stop, metrics);
            }
            return;
        }
        let (mut stream, peer) = match accepted {
            Ok((stream, peer)) => (TcpStream::from(std::os::fd::OwnedFd::from(stream)), peer),
            Err(err) => {
                // EMFILE and friends: back off instead of spinning, and say
                // so once in a while rather than per failure.
                lock(failures).note(bound.local, &err);
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let accepted_at = Instant::now();
        if let Some(m) = metrics {
            m.accepted.inc();
        }
        if !options.reply_delay.is_zero() {
            // The slowness asked for (tests, benchmarks), not a wait.
            std::thread::sleep(options.reply_delay);
        }
        // The reply goes out from here, at once: the socket is
        // non-blocking from `accept4` on, and the line is far smaller than
        // a new socket's send buffer, so the write completes at once (were
        // it ever refused, the connection would end here as failed). The
        // drain thread only waits for the client to finish. Nothing else
        // comes before the reply: it is what the client waits for.
        let replied = reply(&mut stream, bound.advertised);
        if let Err(err) = replied {
            tracing::debug!(%peer, error = %err, "connection ended early");
            if let Some(m) = metrics {
                m.failed.inc();
            }
            continue;
        }
        if let Some(m) = metrics {
            m.answered_in(accepted_at.elapsed());
        }
        let Some(drainer) = drainer else {
            close_without_drain(stream);
            continue;
        };
        if active.fetch_add(1, Ordering::SeqCst) >= options.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!(%peer, "too many connections: closing without drain");
            if let Some(m) = metrics {
                m.over_cap.inc();
            }
            close_without_drain(stream);
            continue;
        }
        if let Some(m) = metrics {
            m.in_flight.inc();
        }
        // No system call: the drain thread reads it within a millisecond.
        drainer.add(stream);
    }
}

/// After the last acceptor of `bound` stopped: the connections the kernel
/// completed meanwhile (still in the backlog) get their reply now, and the
/// listening socket is shut, so that later ones are refused at once rather
/// than wait unanswered until the process exits.
fn close_listener(bound: &BoundListener, stop: &Shutdown, metrics: Option<&ServerMetrics>) {
    let socket = socket2::SockRef::from(&bound.listener);
    if socket.set_nonblocking(true).is_ok() {
        for _ in 0..4096 {
            match bound.listener.accept() {
                Ok((stream, peer)) => {
                    let stream = TcpStream::from(std::os::fd::OwnedFd::from(stream));
                    answer_and_close(stream, peer, bound, stop, metrics);
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let _ = socket.shutdown(std::net::Shutdown::Both);
}

/// The reply to a connection accepted while stopping, closed without a
/// drain (nobody waits for its EOF any more); counted like any other,
/// unless it is one of the server's own wake-ups.
fn answer_and_close(
    mut stream: TcpStream,
    peer: SocketAddr,
    bound: &BoundListener,
    stop: &Shutdown,
    metrics: Option<&ServerMetrics>,
) {
    let accepted_at = Instant::now();
    let metrics = metrics.filter(|_| !stop.is_waker(peer));
    if let Some(m) = metrics {
        m.accepted.inc();
    }
    let _ = stream.set_nonblocking(true);
    match reply(&mut stream, bound.advertised) {
        Ok(()) => {
            if let Some(m) = metrics {
                m.answered_in(accepted_at.elapsed());
            }
            close_without_drain(stream);
        }
        Err(_) => {
            if let Some(m) = metrics {
                m.failed.inc();
            }
        }
    }
}

/// The overload path, after the reply: what the client already sent is
/// read without waiting, so that closing does not reset the connection
/// (which would destroy the reply in flight); no thread waits for more.
fn close_without_drain(mut stream: TcpStream) {
    // Non-blocking since the reply.
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        if !matches!(stream.read(&mut buf), Ok(n) if n > 0) {
            break;
        }
    }
}

/// Listeners served on a background thread until stopped or dropped: for
/// tests, benchmarks and programs that embed the time service. [`crate::run`]
/// uses [`serve`] directly, in a scope.
#[derive(Debug)]
pub struct Serving {
    stop: std::sync::Arc<Shutdown>,
    listeners: std::sync::Arc<Vec<BoundListener>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Serving {
    /// Serves `listeners` with `options` from now on.
    pub fn start(listeners: Vec<BoundListener>, options: ServeOptions) -> Serving {
        let listeners = std::sync::Arc::new(listeners);
        let stop = std::sync::Arc::new(Shutdown::new());
        let (served, switch) = (listeners.clone(), stop.clone());
        let thread = std::thread::spawn(move || serve(&served, &switch, &options));
        Serving {
            stop,
            listeners,
            thread: Some(thread),
        }
    }

    /// `n` listeners on 127.0.0.1 with free ports, served with the defaults.
    ///
    /// # Errors
    ///
    /// When a port cannot be bound.
    pub fn on_free_ports(n: usize) -> anyhow::Result<Serving> {
        let any: Endpoint = Endpoint::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        Ok(Serving::start(
            bind_all(&vec![any; n], None)?,
            ServeOptions::default(),
        ))
    }

    /// The listeners served.
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }

    /// The addresses actually bound.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(BoundListener::local_addr)
            .collect()
    }
}

impl Drop for Serving {
    /// Stops accepting and waits for the connections in flight (each bounded
    /// by its limits).
    fn drop(&mut self) {
        self.stop.stop(&self.listeners);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
