//! `Session`: one ZooKeeper session behind a blocking API, kept alive.
//!
//! The ZooKeeper client (`zookeeper-client`) is async; zkutil's callers are
//! plain threads. A `Session` owns one small runtime thread (an
//! `async-executor`; the network I/O itself runs on `async-io`'s reactor)
//! and runs every call there, each **bounded by a deadline**: the client
//! has no request timeout of its own and, while disconnected, would wait up
//! to 1.4× the session timeout. Nothing ever blocks on the runtime thread,
//! which would freeze the client.
//!
//! A supervisor thread receives every state change (never a ZooKeeper call
//! inside a watcher). `Disconnected` is not fatal: the client reconnects
//! inside the session timeout, keeping the session and its ephemeral nodes,
//! and nothing is re-created. `Expired` is: the supervisor first tries to
//! re-attach the old session (the client declares expiry on its own after
//! 1.4× the timeout, even when the server still knows the session), else
//! builds a new one, with backoff, and tells every subscriber
//! ([`SessionEvent::Rebuilt`]) so that registrations re-create their nodes
//! and discoveries re-arm their watches. `AuthFailed` is fatal.
//!
//! This is the only module that names the client crate, so that the rest of
//! the library (and its users) deal in zkutil's own types and errors.
//!
//! The parts, one concept per file: [`SessionConfig`] and [`Secret`]
//! (`config`), the values a session reports (`types`), the supervisor that
//! rebuilds an expired session (`supervisor`) and the blocking bridge to
//! the async client (`runtime`).

mod config;
mod nodes;
mod probe;
mod runtime;
mod supervisor;
mod types;

use crate::sync::{lock, wait_timeout};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

pub use self::config::{CallObserver, Secret, SessionConfig};
pub use self::nodes::RecursiveWatch;
use self::probe::ConnectWatch;
pub use self::runtime::Interrupt;
use self::runtime::{Cancel, Run, Runtime, close_client, connect_client, zk_error};
use self::supervisor::{Msg, spawn_forwarder, supervise};
pub use self::types::{NodeEvent, NodeStat, SessionEvent, SessionId, SessionState, WatchEvent};
use crate::error::{Error, Result};

/// A subscriber callback; returns false to unsubscribe.
type Subscriber = Box<dyn FnMut(SessionEvent) -> bool + Send>;

/// The client in use and what we know of its session.
struct Current {
    client: Option<zk::Client>,
    info: Option<zk::SessionInfo>,
    id: i64,
    timeout: Duration,
    /// Bumped at each rebuild, so that state changes of a replaced client
    /// are ignored.
    generation: u64,
}

impl Current {
    fn of(client: zk::Client, generation: u64) -> Current {
        Current {
            id: client.session_id().0,
            info: Some(client.session().clone()),
            timeout: client.session_timeout(),
            client: Some(client),
            generation,
        }
    }
}

struct Inner {
    config: SessionConfig,
    current: Mutex<Current>,
    state: Mutex<SessionState>,
    /// Signalled on every state change: calls made while the session is
    /// being rebuilt wait on it for the new one.
    state_changed: Condvar,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Paths kept by a `Registration` of this session (see `claim`).
    claims: Mutex<std::collections::HashSet<String>>,
    /// Set (under the `current` lock) when the session is being closed.
    closing: AtomicBool,
    /// Closed when the session is: every wait on the runtime (a call in
    /// flight, a rebuild's connect) ends at once instead of at its deadline.
    cancel: Cancel,
    // Last: dropped after every client.
    runtime: Runtime,
}

impl Inner {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        lock(&self.current)
    }

    /// Records a state change; `Closed` is final (a supervisor still
    /// finishing a rebuild cannot reopen a closed session's state).
    fn set_state(&self, state: SessionState) -> SessionState {
        let mut current = lock(&self.state);
        let previous = *current;
        if previous != SessionState::Closed {
            *current = state;
        }
        drop(current);
        self.state_changed.notify_all();
        previous
    }

    /// The client to call, once the session is not being rebuilt: waits
    /// for a rebuild to finish until `deadline`. `None` when the deadline
    /// passed first (the caller reports a timeout, which is retryable).
    fn usable_client(&self, deadline: Instant) -> Result<Option<zk::Client>> {
        let mut state = lock(&self.state);
        while *state == SessionState::Rebuilding && !self.closing.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            state = wait_timeout(&self.state_changed, state, left);
        }
        drop(state);
        match self.current().client.clone() {
            Some(client) if !self.closing.load(Ordering::SeqCst) => Ok(Some(client)),
            _ => Err(Error::Closed),
        }
    }

    fn notify(&self, event: SessionEvent) {
        lock(&self.subscribers).retain_mut(|subscriber| subscriber(event));
    }
}

/// One ZooKeeper session, used from any number of threads, rebuilt when it
/// expires.
///
/// Dropping it (or calling [`Session::close`]) closes the session at once,
/// so the server deletes its ephemeral nodes now rather than after the
/// session timeout.
///
/// # Example
///
/// ```
/// # fn main() -> zkutil::Result<()> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// use std::time::Duration;
/// use zkutil::SessionConfig;
///
/// let session = SessionConfig::new(hosts)
///     .with_session_timeout(Duration::from_secs(10))
///     .connect()?;
/// session.ensure_path("/app")?;
/// session.create_ephemeral("/app/leader", b"me")?; // gone when the session ends
/// let (data, stat) = session.get_data("/app/leader")?;
/// assert_eq!((data.as_slice(), stat.ephemeral_owner()), (&b"me"[..], session.id()));
/// assert_eq!(session.children("/app")?, ["leader"]);
/// session.close(); // its ephemeral nodes go at once, not after the timeout
/// # Ok(())
/// # }
/// ```
pub struct Session {
    inner: Arc<Inner>,
    messages: mpsc::Sender<Msg>,
    supervisor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("hosts", &self.inner.config.hosts)
            .field("session_id", &format_args!("{:#x}", self.id()))
            .finish()
    }
}

impl Session {
    fn connect(config: SessionConfig) -> Result<Session> {
        if config.hosts.trim().is_empty() {
            return Err(Error::invalid("connect string", &config.hosts, "empty"));
        }
        let runtime = Runtime::start()?;
        // The probe may end only this connect's wait: its verdict can come
        // a moment after the connect succeeded, and must never cancel the
        // calls of the session it made.
        let connecting = Cancel::new();
        let hosts = crate::admin::connect_string_hosts(&config.hosts);
        let watch = ConnectWatch::start(hosts, connecting.clone());
        let client = connect_client(
            &runtime,
            &config,
            None,
            &connecting,
            config.interrupt.as_ref(),
        )
        .map_err(|err| match watch.verdict() {
            Some(cause) => Error::Refused {
                hosts: config.hosts.clone(),
                cause,
            },
            None => err,
        })?;
        drop(watch);
        let (messages, received) = mpsc::channel();
        spawn_forwarder(&runtime, &client, 0, messages.clone());
        let current = Current::of(client, 0);
        tracing::debug!(hosts = %config.hosts, session = %format_args!("{:#x}", current.id),
            timeout = %crate::backoff::rounded(current.timeout), "ZooKeeper session established");
        let inner = Arc::new(Inner {
            config,
            current: Mutex::new(current),
            state: Mutex::new(SessionState::Connected),
            state_changed: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            claims: Mutex::new(std::collections::HashSet::new()),
            closing: AtomicBool::new(false),
            cancel: Cancel::new(),
            runtime,
        });
        let (supervised, sender) = (inner.clone(), messages.clone());
        let supervisor = std::thread::Builder::new()
            .name("zk-supervisor".into())
            .spawn(move || supervise(&supervised, &received, &sender))
            .map_err(|source| Error::Io {
                what: "starting the ZooKeeper supervisor thread",
                source,
            })?;
        Ok(Session {
            inner,
            messages,
            supervisor: Some(supervisor),
        })
    }

    /// The id of the session in use: the `ephemeralOwner` of our nodes. It
    /// changes when an expired session is rebuilt.
    pub fn id(&self) -> SessionId {
        SessionId::new(self.inner.current().id)
    }

    /// The session timeout the server granted.
    pub fn negotiated_timeout(&self) -> Duration {
        self.inner.current().timeout
    }

    /// The state as last reported by the client.
    pub fn state(&self) -> SessionState {
        *lock(&self.inner.state)
    }

    /// The configuration this session was opened with.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Calls `subscriber` on every [`SessionEvent`], from the supervisor
    /// thread, until it returns false. It must not block (send on a channel
    /// and return) and must not call the session.
    ///
    /// # Example
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let zk = zkutil::testing::zookeeper();
    /// # let hosts = zk.connect_string();
    /// use std::time::Duration;
    /// use zkutil::{SessionConfig, SessionEvent, SessionState};
    ///
    /// let session = SessionConfig::new(hosts).with_session_timeout(Duration::from_secs(2)).connect()?;
    /// assert_eq!(session.state(), SessionState::Connected);
    /// let (tx, events) = std::sync::mpsc::channel();
    /// session.subscribe(move |event| tx.send(event).is_ok()); // false: unsubscribe
    /// let old = session.id();
    /// session.expire_for_testing()?; // as a frozen process would see it
    /// loop {
    ///     // Disconnected first, then the new session.
    ///     if let SessionEvent::Rebuilt { previous, current } = events.recv_timeout(Duration::from_secs(30))? {
    ///         assert!(previous == old && current != old);
    ///         break;
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe(&self, subscriber: impl FnMut(SessionEvent) -> bool + Send + 'static) {
        lock(&self.inner.subscribers).push(Box::new(subscriber));
    }

    /// Marks `path` as kept by one registration of this session; false when
    /// one keeps it already (two would delete and re-create it in turn).
    pub(crate) fn claim(&self, path: &str) -> bool {
        lock(&self.inner.claims).insert(path.to_owned())
    }

    /// Ends a [`Session::claim`].
    pub(crate) fn release(&self, path: &str) {
        lock(&self.inner.claims).remove(path);
    }

    /// Closes the session now, so that its ephemeral nodes go at once.
    ///
    /// Waits (bounded by the request timeout) until the client reports the
    /// session closed.
    pub fn close(self) {
        // Drop does the work; this method exists to say so at call sites.
        drop(self);
    }

    /// Closes the session, waiting at most `timeout` for the server to
    /// confirm; returns whether it did (or there was nothing to close).
    ///
    /// Calls in flight and a rebuild in progress end at once with
    /// [`Error::Closed`]. A session that already expired or failed
    /// authentication is gone on the server: that returns at once. While
    /// disconnected, the close waits for a reconnect until `timeout`; if it
    /// does not come, the server deletes the ephemeral nodes after the
    /// session timeout. Later calls (and `Drop`) do nothing.
    pub fn close_within(&self, timeout: Duration) -> bool {
        let client = {
            let mut current = self.inner.current();
            if self.inner.closing.swap(true, Ordering::SeqCst) {
                return true;
            }
            current.client.take()
        };
        self.inner.cancel.trigger();
        let previous = self.inner.set_state(SessionState::Closed);
        let Some(client) = client else { return true };
        let id = client.session_id().0;
        let live = matches!(
            previous,
            SessionState::Connected | SessionState::Disconnected
        ) && !client.state().is_terminated();
        if !live {
            // Expired or rejected: the server holds nothing of it.
            drop(client);
            return true;
        }
        let confirmed = close_client(&self.inner.runtime, client, timeout);
        if !confirmed {
            tracing::warn!(session = %format_args!("{id:#x}"), waited = %crate::backoff::rounded(timeout),
                "ZooKeeper did not confirm the session close; its nodes go after the session timeout");
        }
        confirmed
    }

    /// Runs one client call on the runtime, bounded by the request timeout
    /// (time spent waiting for a session rebuild included).
    ///
    /// While the session is being rebuilt the call waits for the new
    /// session; a session lost under the call is reported as a retryable
    /// error, never as a terminal expiry: the caller simply tries again.
    fn call<T, F, Fut>(&self, op: &'static str, path: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(zk::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zk::Error>> + Send + 'static,
    {
        self.call_by(op, path, self.default_deadline(), f)
    }

    fn default_deadline(&self) -> Instant {
        deadline_after(self.inner.config.request_timeout)
    }

    /// [`Session::call`] with its own deadline.
    fn call_by<T, F, Fut>(&self, op: &'static str, path: &str, deadline: Instant, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(zk::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zk::Error>> + Send + 'static,
    {
        let allowed = deadline.saturating_duration_since(Instant::now());
        let timed_out = || Error::Timeout {
            op,
            path: path.to_owned(),
            waited: Duration::from_millis((allowed.as_millis() as u64).div_ceil(10) * 10),
        };
        let started = Instant::now();
        let result = (|| {
            let Some(client) = self.inner.usable_client(deadline)? else {
                return Err(timed_out());
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inner.runtime.run(f(client), left, &self.inner.cancel) {
                Run::TimedOut => Err(timed_out()),
                Run::Cancelled => Err(Error::Closed),
                Run::Done(Ok(value)) => Ok(value),
                Run::Done(Err(_)) if self.inner.closing.load(Ordering::SeqCst) => {
                    Err(Error::Closed)
                }
                Run::Done(Err(err)) => Err(Error::Zk {
                    op,
                    path: path.to_owned(),
                    source: zk_error(err),
                }),
            }
        })();
        if let Some(observer) = &self.inner.config.observer {
            observer(op, started.elapsed(), result.as_ref().err());
        }
        result
    }

    /// Makes the server expire this session now, as if the process had
    /// been frozen past the session timeout: this session's runtime is
    /// frozen (so that its client cannot reconnect and take the session
    /// back, which made the two clients kick each other off under load),
    /// a second client attaches to the same session and closes it, then the
    /// runtime thaws and the client finds its session gone. For fault tests.
    #[cfg(feature = "testing")]
    pub fn expire_for_testing(&self) -> Result<()> {
        let info = self.inner.current().info.clone().ok_or(Error::Closed)?;
        let (frozen_tx, frozen) = mpsc::channel::<()>();
        let (thaw, thawed) = mpsc::channel::<()>();
        // Deliberately blocks the runtime thread until `thaw` is dropped.
        self.inner
            .runtime
            .executor
            .spawn(async move {
                let _ = frozen_tx.send(());
                let _ = thawed.recv();
            })
            .detach();
        let _ = frozen.recv_timeout(self.inner.config.request_timeout);
        let result = close_session_elsewhere(&self.inner.config, info);
        drop(thaw);
        result
    }
}

/// Attaches a second client to the session `info` and closes it: the
/// server then expires the session.
#[cfg(feature = "testing")]
fn close_session_elsewhere(config: &SessionConfig, info: zk::SessionInfo) -> Result<()> {
    let runtime = Runtime::start()?;
    let mut attempts = 0;
    let cancel = Cancel::new();
    let client = loop {
        match connect_client(&runtime, config, Some(info.clone()), &cancel, None) {
            Ok(client) => break client,
            Err(err) if attempts < 10 && err.is_retryable() => attempts += 1,
            Err(err) => return Err(err),
        }
    };
    close_client(&runtime, client, config.request_timeout)
        .then_some(())
        .ok_or(Error::Timeout {
            op: "expire",
            path: "(session)".into(),
            waited: config.request_timeout,
        })
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close_within(self.inner.config.request_timeout);
        let _ = self.messages.send(Msg::Shutdown);
        if let Some(supervisor) = self.supervisor.take() {
            let _ = supervisor.join();
        }
    }
}

/// Splits a connect string into its hosts and its chroot, if any:
/// `"h1:p1,h2:p2/app"` → `("h1:p1,h2:p2", Some("/app"))`.
pub(crate) fn split_chroot(hosts: &str) -> (&str, Option<&str>) {
    match hosts.find('/') {
        Some(slash) => {
            let chroot = hosts[slash..].trim_end_matches('/');
            (&hosts[..slash], (!chroot.is_empty()).then_some(chroot))
        }
        None => (hosts, None),
    }
}

/// `timeout` from now; far in the future when that cannot be represented
/// (durations are checked at parse time, this is the last guard).
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}
