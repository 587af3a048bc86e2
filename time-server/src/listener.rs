//! Listeners: bind every address first, then accept on each in its own
//! thread, one thread per connection.
//!
//! Each connection gets its own thread, so an idle or slow client holds
//! only that thread and never delays another client. The number of
//! connections served at once is capped (`--max-connections`): beyond it a
//! new connection gets its reply at once and is closed without draining,
//! so threads and memory stay bounded under a flood.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use zkutil::Endpoint;

use crate::reply::{ReplyLimits, reply_line, serve_connection};
use crate::shutdown::Shutdown;

/// A bound listener and the endpoint it is advertised as.
#[derive(Debug)]
pub struct BoundListener {
    listener: TcpListener,
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
            listener,
            local,
            advertised: Endpoint::new(SocketAddr::new(ip, local.port())),
        })
    }

    /// The address actually bound (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
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
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Limits of each exchange.
    pub limits: ReplyLimits,
    /// Most connections served at once.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            limits: ReplyLimits::default(),
            max_connections: 1024,
        }
    }
}

/// Serves every listener until `stop` is triggered (and [`wake`] called),
/// then waits for the connections in flight to finish (each is bounded by
/// its limits). All threads are joined before it returns.
pub fn serve(listeners: &[BoundListener], stop: &Shutdown, options: &ServeOptions) {
    let active = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for bound in listeners {
            let active = &active;
            let spawned = std::thread::Builder::new()
                .name(format!("accept {}", bound.local))
                .spawn_scoped(scope, move || {
                    accept_loop(scope, bound, stop, options, active)
                });
            if let Err(err) = spawned {
                tracing::error!(listener = %bound.local, error = %err, "cannot start acceptor thread");
            }
        }
    });
}

fn accept_loop<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    bound: &'scope BoundListener,
    stop: &'scope Shutdown,
    options: &'scope ServeOptions,
    active: &'scope AtomicUsize,
) {
    loop {
        let accepted = bound.listener.accept();
        if stop.is_triggered() {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(listener = %bound.local, error = %err, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= options.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!(%peer, "too many connections: replying without drain");
            reply_and_close(stream, bound.advertised);
            continue;
        }
        let endpoint = bound.advertised;
        let spawned = std::thread::Builder::new()
            .name(format!("conn {peer}"))
            .stack_size(CONNECTION_STACK)
            .spawn_scoped(scope, move || {
                if let Err(err) = serve_connection(stream, endpoint, &options.limits) {
                    tracing::debug!(%peer, error = %err, "connection ended early");
                }
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%peer, error = %err, "cannot start connection thread");
        }
    }
}

/// The overload path: a reply without waiting for the request. What the
/// client already sent is read without waiting, so that closing does not
/// reset the connection (which would destroy the reply in flight).
fn reply_and_close(mut stream: TcpStream, endpoint: Endpoint) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(reply_line(endpoint, SystemTime::now()).as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            if !matches!(stream.read(&mut buf), Ok(n) if n > 0) {
                break;
            }
        }
    }
}

/// Stack of a connection thread: the exchange needs a few KiB, and a
/// small stack keeps a thousand idle connections cheap.
const CONNECTION_STACK: usize = 64 * 1024;

/// Wakes every acceptor blocked in `accept()` by connecting to it once;
/// call after [`Shutdown::trigger`].
pub fn wake(listeners: &[BoundListener]) {
    for bound in listeners {
        let mut addr = bound.local;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        if let Err(err) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            tracing::warn!(listener = %addr, error = %err, "could not wake acceptor");
        }
    }
}
