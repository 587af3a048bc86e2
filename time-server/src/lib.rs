//! The time server: listeners that answer with the time, each registered in
//! ZooKeeper for as long as it serves.
//!
//! * [`listener`]: bind, accept, a thread per connection, a connection cap.
//! * [`reply`]: the wire protocol (one line, half-close, bounded drain).
//! * [`shutdown`]: the stop switch of the acceptors (signals: `zkutil::cli::on_signals`).
//!
//! [`run`] puts them together in the order that loses no request: bind
//! every listener, serve, register; on a signal deregister first, keep
//! serving for the drain period (clients that listed us just before still
//! succeed), stop accepting, finish what is in flight, close the session.

pub mod listener;
pub mod reply;
pub mod shutdown;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use zkutil::{Backoff, Endpoint, Metadata, Registration, Session, SessionConfig};

use crate::listener::{BoundListener, ServeOptions, bind_all, serve, wake};
use crate::shutdown::Shutdown;

/// Everything the server needs to know; filled from flags by `main`.
#[derive(Debug, Clone)]
pub struct Config {
    /// ZooKeeper connect string.
    pub zk_hosts: String,
    /// Digest credentials; registrations are then writable only by them.
    pub zk_auth: Option<zkutil::Secret>,
    /// Parent znode of the registrations.
    pub base_path: String,
    /// Addresses to listen on.
    pub listen: Vec<Endpoint>,
    /// Address to register when listening on an unspecified address.
    pub advertise: Option<IpAddr>,
    /// ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How long one attempt to connect to ZooKeeper may take.
    pub connect_timeout: Duration,
    /// Give up (an error) when not registered within this; `None` retries
    /// for as long as it takes.
    pub startup_timeout: Option<Duration>,
    /// How long to keep serving after deregistering.
    pub drain: Duration,
    /// Serving options.
    pub serve: ServeOptions,
}

/// Runs the server until a message arrives on `stop_requested` (or its
/// sender is dropped), then shuts down gracefully.
///
/// The listeners serve from the start, even while ZooKeeper is unreachable:
/// connecting and registering are retried with capped exponential backoff
/// (one log line per failed attempt) until they succeed, a stop is
/// requested, or `startup_timeout` (when set) passes.
///
/// # Errors
///
/// A listener that cannot be bound, no registration within the startup
/// timeout, or a registration refused for good (a malformed base path, no
/// permission): one-line causes naming the address or hosts.
pub fn run(config: &Config, stop_requested: &Receiver<i32>) -> anyhow::Result<()> {
    let listeners = bind_all(&config.listen, config.advertise)?;
    for bound in &listeners {
        tracing::info!(listen = %bound.local_addr(), advertised = %bound.advertised(), "listening");
    }
    let stop = Shutdown::new();
    let started = SystemTime::now();
    let startup = Startup::new(config, stop_requested);
    let (result, session) = std::thread::scope(|scope| {
        scope.spawn(|| serve(&listeners, &stop, &config.serve));
        let registered = startup.connect().and_then(|session| match session {
            Some(session) => Ok(startup
                .register_all(&session, &listeners, started)?
                .map(|regs| (session, regs))),
            None => Ok(None),
        });
        let (session, registrations) = match registered {
            Ok(Some(registered)) => registered,
            Ok(None) => {
                tracing::info!("stop requested during startup");
                stop.trigger();
                wake(&listeners);
                return (Ok(()), None);
            }
            Err(err) => {
                stop.trigger();
                wake(&listeners);
                return (Err(err), None);
            }
        };
        // ZooKeeper rejecting our credentials is fatal: no registration can
        // be kept. The supervisor reports it; the wait below notices.
        let auth_failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = auth_failed.clone();
        session.subscribe(move |event| {
            if event == zkutil::SessionEvent::AuthFailed {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            true
        });
        let signal = loop {
            match stop_requested.recv_timeout(Duration::from_millis(200)) {
                Ok(signal) => break Some(signal),
                Err(RecvTimeoutError::Disconnected) => break None,
                Err(RecvTimeoutError::Timeout)
                    if auth_failed.load(std::sync::atomic::Ordering::SeqCst) =>
                {
                    stop.trigger();
                    wake(&listeners);
                    drop(registrations);
                    let err = anyhow::anyhow!(
                        "ZooKeeper at {} rejected the credentials of --zk-auth",
                        config.zk_hosts
                    );
                    return (Err(err), Some(session));
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        };
        tracing::info!(?signal, "shutting down: deregistering first");
        for registration in registrations {
            let path = registration.path().to_owned();
            match registration.deregister() {
                Ok(()) => tracing::info!(%path, "deregistered"),
                Err(err) => {
                    tracing::warn!(%path, error = %err, "deregistration failed; the node goes with the session")
                }
            }
        }
        if !config.drain.is_zero() {
            tracing::info!(drain = ?config.drain, "still serving clients that listed us before");
            std::thread::sleep(config.drain);
        }
        stop.trigger();
        wake(&listeners);
        (Ok(()), Some(session))
    });
    // Last, after every connection finished: closing the session.
    drop(session);
    tracing::info!("stopped");
    result
}

/// Connecting and registering at start, retried until they work.
struct Startup<'a> {
    config: &'a Config,
    stop_requested: &'a Receiver<i32>,
    deadline: Option<Instant>,
}

impl<'a> Startup<'a> {
    fn new(config: &'a Config, stop_requested: &'a Receiver<i32>) -> Startup<'a> {
        let deadline = config
            .startup_timeout
            .map(|timeout| Instant::now() + timeout);
        Startup {
            config,
            stop_requested,
            deadline,
        }
    }

    /// A session, or `None` when a stop was requested first.
    fn connect(&self) -> anyhow::Result<Option<Arc<Session>>> {
        let mut backoff = Backoff::default();
        loop {
            let connect_timeout = match self.deadline {
                Some(deadline) => self
                    .config
                    .connect_timeout
                    .min(deadline.saturating_duration_since(Instant::now())),
                None => self.config.connect_timeout,
            };
            let attempt = SessionConfig::new(&self.config.zk_hosts)
                .with_session_timeout(self.config.session_timeout)
                .with_connect_timeout(connect_timeout.max(Duration::from_millis(100)))
                .with_digest_auth(self.config.zk_auth.clone())
                .connect();
            match attempt {
                Ok(session) => {
                    tracing::info!(zk = %self.config.zk_hosts, session = %format_args!("{:#x}", session.id()),
                        timeout = ?session.negotiated_timeout(), "connected to ZooKeeper");
                    return Ok(Some(Arc::new(session)));
                }
                Err(err) if err.is_retryable() => {
                    if !self.pause(
                        &mut backoff,
                        &err,
                        "ZooKeeper unreachable; listeners keep serving",
                    )? {
                        return Ok(None);
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// One registration per listener, or `None` when a stop was requested
    /// first (those made so far are dropped, which deregisters them).
    fn register_all(
        &self,
        session: &Arc<Session>,
        listeners: &[BoundListener],
        started: SystemTime,
    ) -> anyhow::Result<Option<Vec<Registration>>> {
        let version = env!("CARGO_PKG_VERSION");
        let base_path = &self.config.base_path;
        let mut registrations = Vec::with_capacity(listeners.len());
        for bound in listeners {
            let endpoint = bound.advertised();
            let metadata = Metadata::for_this_process(endpoint, started, version);
            let mut backoff = Backoff::default();
            let registration = loop {
                match Registration::register(session, base_path, endpoint, &metadata) {
                    Ok(registration) => break registration,
                    Err(err) if err.is_retryable() => {
                        if !self.pause(&mut backoff, &err, "cannot register yet")? {
                            return Ok(None);
                        }
                    }
                    Err(err) => {
                        return Err(anyhow::Error::new(err)
                            .context(format!("registering {endpoint} under {base_path}")));
                    }
                }
            };
            tracing::info!(listen = %bound.local_addr(), path = %registration.path(),
                outcome = ?registration.outcome(), "registered");
            registrations.push(registration);
        }
        Ok(Some(registrations))
    }

    /// Logs a failed attempt and waits the backoff delay. Returns false when
    /// a stop was requested meanwhile; an error when the startup timeout
    /// would pass.
    fn pause(
        &self,
        backoff: &mut Backoff,
        err: &zkutil::Error,
        what: &str,
    ) -> anyhow::Result<bool> {
        let delay = backoff.next_delay();
        if let (Some(deadline), Some(timeout)) = (self.deadline, self.config.startup_timeout) {
            if Instant::now() + delay >= deadline {
                return Err(anyhow::anyhow!("{err}")).with_context(|| {
                    format!(
                        "not registered within --startup-timeout {}",
                        humantime::format_duration(timeout)
                    )
                });
            }
        }
        tracing::warn!(attempt = backoff.attempts(), error = %err, retry_in = ?delay, "{what}");
        Ok(match self.stop_requested.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => true,
            Ok(_) | Err(RecvTimeoutError::Disconnected) => false,
        })
    }
}
