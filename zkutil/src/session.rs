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

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_executor::Executor;
use futures_lite::FutureExt;
use zookeeper_client as zk;

use crate::backoff::Backoff;
use crate::error::{Error, Result, ZkError, ZkErrorKind};

/// A credential (`user:password`) that must never be printed: its `Debug`
/// and `Display` are `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    /// Accepts `user:password` with a non-empty user.
    fn from_str(s: &str) -> std::result::Result<Secret, String> {
        match s.split_once(':') {
            Some((user, _)) if !user.is_empty() => Ok(Secret(s.to_owned())),
            _ => Err("expected user:password".to_owned()),
        }
    }
}

/// The ACL of nodes created with digest auth: the creating identity may do
/// anything, everyone else may only read (and so discover). Deleting a
/// child needs DELETE on its parent, so the base path carries it too.
static CREATOR_ALL_WORLD_READ: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

/// How to reach ZooKeeper, and how long to wait for it.
///
/// Built with `with_*` methods; the defaults suit a service on a LAN.
#[derive(Clone)]
pub struct SessionConfig {
    hosts: String,
    session_timeout: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    /// `user:password` for ZooKeeper's digest scheme. Never logged.
    digest_auth: Option<Secret>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("hosts", &self.hosts)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("digest_auth", &self.digest_auth)
            .finish()
    }
}

impl SessionConfig {
    /// A configuration for the connect string `host:port[,host:port...][/chroot]`.
    ///
    /// Defaults: session timeout 10 s, connect timeout 5 s, request timeout 5 s.
    pub fn new(hosts: impl Into<String>) -> SessionConfig {
        SessionConfig {
            hosts: hosts.into(),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            digest_auth: None,
        }
    }

    /// Authenticates with ZooKeeper's digest scheme as `user:password`
    /// (kept out of every log and `Debug` output).
    ///
    /// With auth, the nodes this session creates get creator-ALL +
    /// world-READ: only this identity can delete or overwrite them, anyone
    /// can discover them. Without, they are open to all.
    /// Takes a `Secret`, or an `Option<Secret>` (`None`: no auth).
    pub fn with_digest_auth(mut self, user_password: impl Into<Option<Secret>>) -> Self {
        self.digest_auth = user_password.into();
        self
    }

    /// Whether digest auth is configured.
    pub fn has_auth(&self) -> bool {
        self.digest_auth.is_some()
    }

    /// The session timeout asked of ZooKeeper: how long after the last
    /// contact the server expires the session and deletes its ephemeral
    /// nodes. The server clamps it to its own min/max.
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long [`SessionConfig::connect`] waits for a session.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of every call on the session.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The connect string.
    pub fn hosts(&self) -> &str {
        &self.hosts
    }

    /// The session timeout asked for.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// The deadline of every call on the session.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Connects, waiting at most the connect timeout.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a malformed connect string,
    /// [`Error::ConnectTimeout`] when no server answered in time, and
    /// [`Error::Connect`] when ZooKeeper refused the session.
    pub fn connect(self) -> Result<Session> {
        Session::connect(self)
    }
}

/// The parts of a znode's `Stat` that the registry cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStat {
    version: i32,
    ephemeral_owner: i64,
    ctime_ms: i64,
    mtime_ms: i64,
    data_length: i32,
    num_children: i32,
}

impl NodeStat {
    fn from_stat(stat: &zk::Stat) -> NodeStat {
        NodeStat {
            version: stat.version,
            ephemeral_owner: stat.ephemeral_owner,
            ctime_ms: stat.ctime,
            mtime_ms: stat.mtime,
            data_length: stat.data_length,
            num_children: stat.num_children,
        }
    }

    /// The data version, for conditional writes and deletes.
    pub fn version(&self) -> i32 {
        self.version
    }

    /// The session that owns this node if it is ephemeral, else 0.
    pub fn ephemeral_owner(&self) -> i64 {
        self.ephemeral_owner
    }

    /// Creation time, milliseconds since the Unix epoch (server clock).
    pub fn ctime_ms(&self) -> i64 {
        self.ctime_ms
    }

    /// Last modification time, milliseconds since the Unix epoch.
    pub fn mtime_ms(&self) -> i64 {
        self.mtime_ms
    }

    /// Length of the node's data in bytes.
    pub fn data_length(&self) -> i32 {
        self.data_length
    }

    /// Number of children.
    pub fn num_children(&self) -> i32 {
        self.num_children
    }
}

/// What happened to a session, as told to its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Connected again after a disconnection: the same session, its
    /// ephemeral nodes intact. Watches may be re-checked; nothing needs
    /// re-creating.
    Connected,
    /// The connection is lost; the session may still be alive.
    Disconnected,
    /// The session expired and was replaced by `current` (equal to
    /// `previous` when the old session could be re-attached): ephemeral
    /// nodes of `previous` may be gone and watches lost. Re-create, re-arm.
    Rebuilt {
        /// The session that expired.
        previous: i64,
        /// The session now in use.
        current: i64,
    },
    /// ZooKeeper rejected our credentials: fatal.
    AuthFailed,
}

/// A session's state as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// Connected to a server.
    Connected,
    /// Connection lost; the client is reconnecting within the session timeout.
    Disconnected,
    /// The session expired; a new one is being built.
    Rebuilding,
    /// Authentication failed; the session is unusable.
    AuthFailed,
    /// Closed by us.
    Closed,
}

/// What a one-shot watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The watched node was created.
    Created,
    /// The watched node was deleted.
    Deleted,
    /// The watched node's data changed.
    DataChanged,
    /// A child was added or removed.
    ChildrenChanged,
    /// The session ended (expired or closed): the watch is gone.
    SessionEnded,
}

/// One node's data and stat, or why it could not be read.
type NodeRead = Result<(Vec<u8>, NodeStat)>;

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

/// A signal that ends waits on the runtime: closing the channel wakes every
/// receiver at once.
#[derive(Clone)]
struct Cancel {
    sender: async_channel::Sender<()>,
    receiver: async_channel::Receiver<()>,
}

impl Cancel {
    fn new() -> Cancel {
        let (sender, receiver) = async_channel::bounded(1);
        Cancel { sender, receiver }
    }

    fn trigger(&self) {
        self.sender.close();
    }

    /// Completes when triggered.
    fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let receiver = self.receiver.clone();
        async move {
            let _ = receiver.recv().await;
        }
    }
}

impl Inner {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a state change; `Closed` is final (a supervisor still
    /// finishing a rebuild cannot reopen a closed session's state).
    fn set_state(&self, state: SessionState) -> SessionState {
        let mut current = self.state.lock().unwrap_or_else(PoisonError::into_inner);
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
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while *state == SessionState::Rebuilding && !self.closing.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            state = self
                .state_changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(state);
        match self.current().client.clone() {
            Some(client) if !self.closing.load(Ordering::SeqCst) => Ok(Some(client)),
            _ => Err(Error::Closed),
        }
    }

    fn notify(&self, event: SessionEvent) {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain_mut(|subscriber| subscriber(event));
    }
}

/// Messages to the supervisor thread.
enum Msg {
    State(u64, zk::SessionState),
    Shutdown,
}

/// One ZooKeeper session, used from any number of threads, rebuilt when it
/// expires.
///
/// Dropping it (or calling [`Session::close`]) closes the session at once,
/// so the server deletes its ephemeral nodes now rather than after the
/// session timeout.
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
        let cancel = Cancel::new();
        let client = connect_client(&runtime, &config, None, &cancel)?;
        let (messages, received) = mpsc::channel();
        spawn_forwarder(&runtime, &client, 0, messages.clone());
        let current = Current::of(client, 0);
        tracing::debug!(hosts = %config.hosts, session = %format_args!("{:#x}", current.id),
            timeout = ?current.timeout, "ZooKeeper session established");
        let inner = Arc::new(Inner {
            config,
            current: Mutex::new(current),
            state: Mutex::new(SessionState::Connected),
            state_changed: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            claims: Mutex::new(std::collections::HashSet::new()),
            closing: AtomicBool::new(false),
            cancel,
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
    pub fn id(&self) -> i64 {
        self.inner.current().id
    }

    /// The session timeout the server granted.
    pub fn negotiated_timeout(&self) -> Duration {
        self.inner.current().timeout
    }

    /// The state as last reported by the client.
    pub fn state(&self) -> SessionState {
        *self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration this session was opened with.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Calls `subscriber` on every [`SessionEvent`], from the supervisor
    /// thread, until it returns false. It must not block (send on a channel
    /// and return) and must not call the session.
    pub fn subscribe(&self, subscriber: impl FnMut(SessionEvent) -> bool + Send + 'static) {
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(subscriber));
    }

    /// Marks `path` as kept by one registration of this session; false when
    /// one keeps it already (two would delete and re-create it in turn).
    pub(crate) fn claim(&self, path: &str) -> bool {
        self.inner
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned())
    }

    /// Ends a [`Session::claim`].
    pub(crate) fn release(&self, path: &str) {
        self.inner
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path);
    }

    /// Creates `path` and its missing ancestors as persistent nodes (with
    /// this session's ACL). Nodes that exist already are fine, including
    /// ones created concurrently by another client. A missing chroot (the
    /// `/app` of `host:port/app`) is created too.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path.
    pub fn ensure_path(&self, path: &str) -> Result<()> {
        match self.mkdir(path) {
            Err(err) if err.is_no_node() => match split_chroot(&self.inner.config.hosts) {
                (hosts, Some(chroot)) => {
                    tracing::info!(chroot, "creating the missing chroot");
                    let config = SessionConfig {
                        hosts: hosts.to_owned(),
                        ..self.inner.config.clone()
                    };
                    Session::connect(config)?.mkdir(chroot)?;
                    self.mkdir(path)
                }
                (_, None) => Err(err),
            },
            other => other,
        }
    }

    fn mkdir(&self, path: &str) -> Result<()> {
        let (owned, acls) = (path.to_owned(), self.acls());
        self.call("create", path, move |client| async move {
            let options = zk::CreateMode::Persistent.with_acls(acls);
            client.mkdir(&owned, &options).await
        })
    }

    /// Creates an EPHEMERAL node owned by this session.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_node_exists`] when the node exists
    /// (perhaps created by this very call before a lost connection: callers
    /// check the owner), [`Error::is_no_node`] when the parent is missing.
    pub fn create_ephemeral(&self, path: &str, data: &[u8]) -> Result<NodeStat> {
        let (owned, data, acls) = (path.to_owned(), data.to_vec(), self.acls());
        self.call("create", path, move |client| async move {
            let options = zk::CreateMode::Ephemeral.with_acls(acls);
            client
                .create(&owned, &data, &options)
                .await
                .map(|(stat, _)| NodeStat::from_stat(&stat))
        })
    }

    /// Replaces a node's data, only if its version is still `version` when
    /// given.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`]: no node, a version mismatch, or no permission.
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<NodeStat> {
        let (owned, data) = (path.to_owned(), data.to_vec());
        self.call("write", path, move |client| async move {
            client
                .set_data(&owned, &data, version)
                .await
                .map(|stat| NodeStat::from_stat(&stat))
        })
    }

    /// The ACL of the nodes this session creates.
    fn acls(&self) -> zk::Acls<'static> {
        if self.inner.config.digest_auth.is_some() {
            zk::Acls::new(&CREATOR_ALL_WORLD_READ)
        } else {
            zk::Acls::anyone_all()
        }
    }

    /// Deletes a node, only if its version is still `version` when given.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when it does not exist.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.delete_by(path, version, self.default_deadline())
    }

    /// [`Session::delete`] with its own deadline.
    pub(crate) fn delete_by(
        &self,
        path: &str,
        version: Option<i32>,
        deadline: Instant,
    ) -> Result<()> {
        let owned = path.to_owned();
        self.call_by("delete", path, deadline, move |client| async move {
            client.delete(&owned, version).await
        })
    }

    /// Reads a node's data and stat.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when it does not exist.
    pub fn get_data(&self, path: &str) -> Result<(Vec<u8>, NodeStat)> {
        let owned = path.to_owned();
        self.call("read", path, move |client| async move {
            client
                .get_data(&owned)
                .await
                .map(|(data, stat)| (data, NodeStat::from_stat(&stat)))
        })
    }

    /// Reads the data of many nodes at once, each with its own result (in
    /// the order of `paths`). The requests are pipelined on the connection,
    /// so N reads cost about one round trip, not N; the whole batch is
    /// bounded by one request timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] (naming the first path) when the batch does not
    /// complete in time; per-path errors are in the inner results.
    pub fn get_data_many(&self, paths: &[String]) -> Result<Vec<NodeRead>> {
        let Some(first) = paths.first() else {
            return Ok(Vec::new());
        };
        let owned = paths.to_vec();
        let results = self.call("read", first, move |client| async move {
            // Each request is sent when its future is made: all go out now.
            let pending: Vec<_> = owned.iter().map(|path| client.get_data(path)).collect();
            let mut results = Vec::with_capacity(pending.len());
            for read in pending {
                results.push(read.await);
            }
            Ok(results)
        })?;
        Ok(results
            .into_iter()
            .zip(paths)
            .map(|(result, path)| {
                result
                    .map(|(data, stat)| (data, NodeStat::from_stat(&stat)))
                    .map_err(|err| Error::Zk {
                        op: "read",
                        path: path.clone(),
                        source: zk_error(err),
                    })
            })
            .collect())
    }

    /// A node's stat, or `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path.
    pub fn stat(&self, path: &str) -> Result<Option<NodeStat>> {
        self.stat_by(path, self.default_deadline())
    }

    /// [`Session::stat`] with its own deadline.
    pub(crate) fn stat_by(&self, path: &str, deadline: Instant) -> Result<Option<NodeStat>> {
        let owned = path.to_owned();
        self.call_by("stat", path, deadline, move |client| async move {
            client
                .check_stat(&owned)
                .await
                .map(|stat| stat.as_ref().map(NodeStat::from_stat))
        })
    }

    /// A node's stat (or `None`), and a one-shot watch on it: `notify` is
    /// called once, on the runtime thread, when the node is created,
    /// deleted or changed, or the session ends. It must not block.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path; no watch is set.
    pub fn stat_and_watch(
        &self,
        path: &str,
        notify: impl FnOnce(WatchEvent) + Send + 'static,
    ) -> Result<Option<NodeStat>> {
        let owned = path.to_owned();
        self.call("watch", path, move |client| async move {
            let (stat, watcher) = client.check_and_watch_stat(&owned).await?;
            forward_watch(watcher, notify);
            Ok(stat.as_ref().map(NodeStat::from_stat))
        })
    }

    /// The names of a node's children, in no particular order.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when the node does not exist.
    pub fn children(&self, path: &str) -> Result<Vec<String>> {
        let owned = path.to_owned();
        self.call("list", path, move |client| async move {
            client.list_children(&owned).await
        })
    }

    /// A node's children and a one-shot watch on them: `notify` is called
    /// once, on the runtime thread, when a child is added or removed, the
    /// node is deleted, or the session ends. It must not block.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when the node does not
    /// exist (no watch is set then).
    pub fn children_and_watch(
        &self,
        path: &str,
        notify: impl FnOnce(WatchEvent) + Send + 'static,
    ) -> Result<Vec<String>> {
        let owned = path.to_owned();
        self.call("list", path, move |client| async move {
            let (children, watcher) = client.list_and_watch_children(&owned).await?;
            forward_watch(watcher, notify);
            Ok(children)
        })
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
        let Some(client) = self.inner.usable_client(deadline)? else {
            return Err(timed_out());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match self.inner.runtime.run(f(client), left, &self.inner.cancel) {
            Run::TimedOut => Err(timed_out()),
            Run::Cancelled => Err(Error::Closed),
            Run::Done(Ok(value)) => Ok(value),
            Run::Done(Err(_)) if self.inner.closing.load(Ordering::SeqCst) => Err(Error::Closed),
            Run::Done(Err(err)) => Err(Error::Zk {
                op,
                path: path.to_owned(),
                source: zk_error(err),
            }),
        }
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
        match connect_client(&runtime, config, Some(info.clone()), &cancel) {
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

/// Drops `client` and waits (at most `timeout`) until its session is
/// closed: the session task sends CloseSession once the last clone is gone,
/// and the server then deletes the session's ephemeral nodes at once.
fn close_client(runtime: &Runtime, client: zk::Client, timeout: Duration) -> bool {
    let mut watcher = client.state_watcher();
    drop(client);
    let closed = async move { while !watcher.changed().await.is_terminated() {} };
    matches!(runtime.run(closed, timeout, &Cancel::new()), Run::Done(()))
}

/// `timeout` from now; far in the future when that cannot be represented
/// (durations are checked at parse time, this is the last guard).
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

/// Connects a client, re-attaching `session` when given; bounded by the
/// connect timeout.
fn connect_client(
    runtime: &Runtime,
    config: &SessionConfig,
    session: Option<zk::SessionInfo>,
    cancel: &Cancel,
) -> Result<zk::Client> {
    let hosts = config.hosts.clone();
    let connector = zk::Client::connector().with_session_timeout(config.session_timeout);
    let connector = match session {
        Some(info) => connector.with_session(info),
        None => connector,
    };
    let connector = match &config.digest_auth {
        Some(auth) => connector.with_auth("digest", auth.expose().as_bytes()),
        None => connector,
    };
    let connecting = async move { connector.connect(&hosts).await };
    match runtime.run(connecting, config.connect_timeout, cancel) {
        Run::TimedOut => Err(Error::ConnectTimeout {
            hosts: config.hosts.clone(),
            waited: config.connect_timeout,
        }),
        Run::Cancelled => Err(Error::Closed),
        Run::Done(Err(zk::Error::BadArguments(reason))) => {
            Err(Error::invalid("connect string", &config.hosts, *reason))
        }
        Run::Done(Err(err)) => Err(Error::Connect {
            hosts: config.hosts.clone(),
            source: zk_error(err),
        }),
        Run::Done(Ok(client)) => Ok(client),
    }
}

/// Forwards every state change of `client` to the supervisor, tagged with
/// the client's generation. Runs on the runtime thread; only sends.
fn spawn_forwarder(
    runtime: &Runtime,
    client: &zk::Client,
    generation: u64,
    messages: mpsc::Sender<Msg>,
) {
    let mut watcher = client.state_watcher();
    runtime
        .executor
        .spawn(async move {
            loop {
                let state = watcher.changed().await;
                if messages.send(Msg::State(generation, state)).is_err() || state.is_terminated() {
                    break;
                }
            }
        })
        .detach();
}

/// Runs `notify` when `watcher` fires, as a task on the runtime thread (we
/// are on it: this is called from inside a client call).
fn forward_watch(watcher: zk::OneshotWatcher, notify: impl FnOnce(WatchEvent) + Send + 'static) {
    // Spawned through the runtime's thread-local spawner, so the task holds
    // no reference to the executor that owns it.
    drop(spawns_core::spawn(async move {
        let event = watcher.changed().await;
        notify(match event.event_type {
            zk::EventType::NodeCreated => WatchEvent::Created,
            zk::EventType::NodeDeleted => WatchEvent::Deleted,
            zk::EventType::NodeDataChanged => WatchEvent::DataChanged,
            zk::EventType::NodeChildrenChanged => WatchEvent::ChildrenChanged,
            zk::EventType::Session => WatchEvent::SessionEnded,
        });
    }));
}

/// The supervisor: turns state changes into [`SessionEvent`]s and rebuilds
/// an expired session. Never runs a ZooKeeper call on the runtime thread.
fn supervise(inner: &Inner, received: &mpsc::Receiver<Msg>, messages: &mpsc::Sender<Msg>) {
    while let Ok(Msg::State(generation, state)) = received.recv() {
        if inner.closing.load(Ordering::SeqCst) || generation != inner.current().generation {
            continue;
        }
        match state {
            zk::SessionState::Disconnected => {
                inner.set_state(SessionState::Disconnected);
                tracing::warn!(hosts = %inner.config.hosts, "disconnected from ZooKeeper; reconnecting within the session timeout");
                inner.notify(SessionEvent::Disconnected);
            }
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                if inner.set_state(SessionState::Connected) != SessionState::Connected {
                    tracing::info!(session = %format_args!("{:#x}", inner.current().id), "reconnected to ZooKeeper");
                    inner.notify(SessionEvent::Connected);
                }
            }
            zk::SessionState::AuthFailed => {
                inner.set_state(SessionState::AuthFailed);
                tracing::error!(hosts = %inner.config.hosts, "ZooKeeper authentication failed");
                inner.notify(SessionEvent::AuthFailed);
            }
            zk::SessionState::Expired | zk::SessionState::Closed => {
                if !rebuild(inner, received, messages) {
                    return;
                }
            }
        }
    }
}

/// Replaces an expired session: re-attach it if the server still knows it,
/// else open a new one; with backoff, until it works. Returns false when the
/// session was closed meanwhile (a `Shutdown` arrived during a backoff, or
/// the close cancelled the connect).
///
/// The client declares `Expired` on its own after 1.4× the session timeout
/// without contact, while the server may still hold the session (a
/// restarted ZooKeeper restores sessions from its log, with a fresh
/// timeout). So re-attaching is tried for as long as ZooKeeper cannot be
/// reached: when it returns, either the old session resumes (same owner,
/// nothing deleted or re-created, no flap seen by watchers) or the server
/// answers that it expired, and only then is a new session opened.
fn rebuild(inner: &Inner, received: &mpsc::Receiver<Msg>, messages: &mpsc::Sender<Msg>) -> bool {
    inner.set_state(SessionState::Rebuilding);
    let (previous, mut reattach) = {
        let current = inner.current();
        (current.id, current.info.clone())
    };
    tracing::warn!(session = %format_args!("{previous:#x}"), "ZooKeeper session expired (as far as the client can tell); re-attaching or rebuilding it");
    // Short attempts, short pauses: the client backs off on its own inside
    // one connect attempt (doubling past seconds while every host refuses),
    // so a long attempt would still be asleep when ZooKeeper returns. A
    // fresh attempt starts its own backoff from zero; ours is capped at 1 s.
    // Together they bound the time from ZooKeeper's return to the session
    // being back (measured in the chaos soak).
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let attempt = SessionConfig {
        connect_timeout: inner
            .config
            .connect_timeout
            .min((inner.config.session_timeout / 2).max(Duration::from_secs(2))),
        ..inner.config.clone()
    };
    while !inner.closing.load(Ordering::SeqCst) {
        match connect_client(&inner.runtime, &attempt, reattach.clone(), &inner.cancel) {
            Ok(client) => {
                let current = client.session_id().0;
                {
                    let mut slot = inner.current();
                    if inner.closing.load(Ordering::SeqCst) {
                        // Closed while connecting: this session must not
                        // outlive the close (its nodes would linger).
                        drop(slot);
                        close_client(&inner.runtime, client, inner.config.request_timeout);
                        return false;
                    }
                    let generation = slot.generation + 1;
                    spawn_forwarder(&inner.runtime, &client, generation, messages.clone());
                    *slot = Current::of(client, generation);
                }
                inner.set_state(SessionState::Connected);
                if current == previous {
                    tracing::info!(session = %format_args!("{current:#x}"), "ZooKeeper session re-attached");
                } else {
                    tracing::warn!(old = %format_args!("{previous:#x}"), new = %format_args!("{current:#x}"),
                        "ZooKeeper session expired and was replaced");
                }
                inner.notify(SessionEvent::Rebuilt { previous, current });
                return true;
            }
            Err(Error::Closed) => return false,
            Err(err) if reattach.is_some() && (err.is_session_expired() || !err.is_retryable()) => {
                // The server says the old session is gone (or refuses it):
                // a new one, at once. Owner-aware registration replaces
                // whatever the old one left.
                tracing::info!(session = %format_args!("{previous:#x}"), error = %err.chain(),
                    "cannot re-attach the expired session; opening a new one");
                reattach = None;
            }
            Err(err) => {
                let delay = backoff.next_delay();
                let what = if reattach.is_some() {
                    "ZooKeeper unreachable; will re-attach the session when it answers"
                } else {
                    "cannot rebuild the ZooKeeper session"
                };
                tracing::warn!(attempt = backoff.attempts(), error = %err.chain(), retry_in = %crate::backoff::rounded(delay), "{what}");
                if !wait_unless_shutdown(received, delay) {
                    return false;
                }
            }
        }
    }
    false
}

/// Waits out a backoff `delay` on the supervisor's channel: false as soon
/// as `Shutdown` arrives. State changes of the expired client that arrive
/// meanwhile are stale and dropped.
fn wait_unless_shutdown(received: &mpsc::Receiver<Msg>, delay: Duration) -> bool {
    let until = deadline_after(delay);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(Msg::State(..)) => {}
            Ok(Msg::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            Err(mpsc::RecvTimeoutError::Timeout) => return true,
        }
    }
}

fn zk_error(err: zk::Error) -> ZkError {
    use zk::Error as E;
    let kind = match err {
        E::NoNode => ZkErrorKind::NoNode,
        E::NodeExists => ZkErrorKind::NodeExists,
        E::BadVersion => ZkErrorKind::BadVersion,
        E::NotEmpty => ZkErrorKind::NotEmpty,
        E::NoAuth => ZkErrorKind::NoAuth,
        E::AuthFailed => ZkErrorKind::AuthFailed,
        E::SessionExpired => ZkErrorKind::SessionExpired,
        E::ConnectionLoss => ZkErrorKind::ConnectionLoss,
        E::ClientClosed => ZkErrorKind::Closed,
        _ => ZkErrorKind::Other,
    };
    // The client's hang detection surfaces as `Custom`: as retryable as a
    // lost connection (DESIGN.md). An expired session is retryable too: the
    // supervisor rebuilds it, and the same call then runs on the new one.
    let retryable = matches!(
        err,
        E::ConnectionLoss
            | E::Timeout
            | E::Custom(_)
            | E::NoHosts
            | E::Throttled
            | E::SessionExpired
            | E::ClientClosed
    );
    ZkError::new(kind, retryable, err)
}

/// The runtime thread of one session.
///
/// `zookeeper-client` spawns its session task through `spawns-core`, whose
/// spawner is thread-local: the runtime thread enters our spawner, and every
/// client future runs on that thread.
struct Runtime {
    executor: Arc<Executor<'static>>,
    stop: async_channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// How a [`Runtime::run`] ended.
enum Run<T> {
    Done(T),
    TimedOut,
    Cancelled,
}

struct Spawner(Arc<Executor<'static>>);

impl spawns_core::Spawn for Spawner {
    fn spawn(&self, task: spawns_core::Task) {
        self.0.spawn(Box::into_pin(task.future)).detach();
    }
}

impl Runtime {
    fn start() -> Result<Runtime> {
        let executor = Arc::new(Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let inner = executor.clone();
        let thread = std::thread::Builder::new()
            .name("zk-runtime".into())
            .spawn(move || {
                let spawner = Spawner(inner.clone());
                let _scope = spawns_core::enter(&spawner);
                futures_lite::future::block_on(inner.run(async move {
                    let _ = stopped.recv().await;
                }));
            })
            .map_err(|source| Error::Io {
                what: "starting the ZooKeeper runtime thread",
                source,
            })?;
        Ok(Runtime {
            executor,
            stop,
            thread: Some(thread),
        })
    }

    /// Runs `fut` on the runtime thread until it completes, `timeout`
    /// passes or `cancel` is triggered. Must not be called from the runtime
    /// thread itself.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
        timeout: Duration,
        cancel: &Cancel,
    ) -> Run<T> {
        let cancelled = cancel.triggered();
        let bounded = async move { Run::Done(fut.await) }
            .or(async move {
                cancelled.await;
                Run::Cancelled
            })
            .or(async move {
                async_io::Timer::after(timeout).await;
                Run::TimedOut
            });
        futures_lite::future::block_on(self.executor.spawn(bounded))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
