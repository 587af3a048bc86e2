//! `Session`: the handle every caller holds. Opening a session, the one
//! bounded call every operation goes through, and closing it. The
//! operations themselves are in `read`, `write`, `watch` and `acl`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use super::cancel::Cancel;
use super::config::SessionConfig;
use super::deadline::deadline_after;
use super::probe::{ConnectWatch, Verdict};
use super::runtime::{Run, Runtime, close_client, connect_client, zk_error};
use super::state::{Current, Inner};
use super::supervisor::{Msg, spawn_forwarder, supervise};
use super::types::{SessionEvent, SessionId, SessionState};
use crate::backoff::rounded;
use crate::connect_string::connect_string_hosts;
use crate::error::{Error, Result};
use crate::sync::lock;

impl SessionConfig {
    /// Connects, waiting at most the connect timeout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a malformed connect string,
    /// [`Error::Refused`](crate::Error::Refused) as soon as every host has refused the connection
    /// or failed to resolve, [`Error::Tls`](crate::Error::Tls) as soon as every host has failed
    /// and one of them in its TLS (a certificate, TLS on one side only),
    /// [`Error::Interrupted`](crate::Error::Interrupted) when the
    /// [`Interrupt`](crate::Interrupt) was triggered,
    /// [`Error::ConnectTimeout`](crate::Error::ConnectTimeout) when no server answered in time, and
    /// [`Error::Connect`](crate::Error::Connect) when ZooKeeper refused the session.
    pub fn connect(self) -> Result<Session> {
        Session::connect(self)
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
    pub(super) inner: Arc<Inner>,
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
    pub(super) fn connect(mut config: SessionConfig) -> Result<Session> {
        if config.hosts.trim().is_empty() {
            return Err(Error::invalid("connect string", &config.hosts, "empty"));
        }
        // The client crate reads `tcp://host` as plaintext even when TLS is
        // configured: a secret would then cross the network in the clear.
        // One convention only: hosts are `host:port`, TLS is `with_tls`.
        if config.hosts.contains("://") {
            return Err(Error::invalid(
                "connect string",
                &config.hosts,
                "a scheme such as tcp:// or tcp+tls:// is not read here: give host:port[,host:port][/chroot], \
                 and TLS with SessionConfig::with_tls (--zk-tls-ca)",
            ));
        }
        config.load_tls()?;
        let runtime = Runtime::start()?;
        // The probe may end only this connect's wait: its verdict can come
        // a moment after the connect succeeded, and must never cancel the
        // calls of the session it made.
        let connecting = Cancel::new();
        let hosts = connect_string_hosts(&config.hosts);
        let watch = ConnectWatch::start(hosts, config.tls.clone(), connecting.clone());
        let client = connect_client(
            &runtime,
            &config,
            None,
            &connecting,
            config.interrupt.as_ref(),
        )
        .map_err(|err| match watch.verdict() {
            Some(Verdict::Refused(cause)) => Error::Refused {
                hosts: config.hosts.clone(),
                cause,
            },
            Some(Verdict::Rejected(cause)) => Error::Tls {
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
            timeout = %rounded(current.timeout), "ZooKeeper session established");
        let inner = Arc::new(Inner {
            config,
            current: Mutex::new(current),
            state: Mutex::new(SessionState::Connected),
            state_changed: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            claims: Mutex::new(std::collections::HashSet::new()),
            closing: AtomicBool::new(false),
            cancel: Cancel::new(),
            no_multi_read: AtomicBool::new(false),
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
            tracing::warn!(session = %format_args!("{id:#x}"), waited = %rounded(timeout),
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
    pub(super) fn call<T, F, Fut>(&self, op: &'static str, path: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(zk::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zk::Error>> + Send + 'static,
    {
        self.call_by(op, path, self.default_deadline(), f)
    }

    pub(super) fn default_deadline(&self) -> Instant {
        deadline_after(self.inner.config.request_timeout)
    }

    /// [`Session::call`] with its own deadline.
    pub(super) fn call_by<T, F, Fut>(
        &self,
        op: &'static str,
        path: &str,
        deadline: Instant,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(zk::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zk::Error>> + Send + 'static,
    {
        self.call_long(op, path, deadline, deadline, f)
    }

    /// [`Session::call_by`] for a call whose future bounds its own waits
    /// (a long batch of reads): a connected client is waited for until
    /// `connected_by`, the call until `deadline`.
    pub(super) fn call_long<T, F, Fut>(
        &self,
        op: &'static str,
        path: &str,
        connected_by: Instant,
        deadline: Instant,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(zk::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zk::Error>> + Send + 'static,
    {
        let begun = Instant::now();
        // What was allowed: until `connected_by` for a client, `deadline`
        // for the call.
        let timed_out = |by: Instant| Error::Timeout {
            op,
            path: path.to_owned(),
            waited: Duration::from_millis(
                (by.saturating_duration_since(begun).as_millis() as u64).div_ceil(10) * 10,
            ),
        };
        let started = Instant::now();
        let result = (|| {
            let Some(client) = self.inner.usable_client(connected_by)? else {
                return Err(timed_out(connected_by));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inner.runtime.run(f(client), left, &self.inner.cancel) {
                Run::TimedOut => Err(timed_out(deadline)),
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
