//! `Session`: one ZooKeeper session behind a blocking API.
//!
//! The ZooKeeper client (`zookeeper-client`) is async; zkutil's callers are
//! plain threads. A `Session` owns one small runtime thread (an
//! `async-executor`; the network I/O itself runs on `async-io`'s reactor)
//! and runs every call there, each **bounded by a deadline**: the client
//! has no request timeout of its own and, while disconnected, would wait up
//! to 1.4× the session timeout. Nothing ever blocks on the runtime thread,
//! which would freeze the client.
//!
//! This is the only module that names the client crate, so that the rest of
//! the library (and its users) deal in zkutil's own types and errors.
//!
//! `Disconnected` is not fatal: the client reconnects inside the session
//! timeout, keeping the session and its ephemeral nodes. A call made
//! meanwhile fails with a retryable error once its deadline passes.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use async_executor::Executor;
use futures_lite::FutureExt;
use zookeeper_client as zk;

use crate::error::{Error, Result, ZkError, ZkErrorKind};

/// How to reach ZooKeeper, and how long to wait for it.
///
/// Built with `with_*` methods; the defaults suit a service on a LAN.
#[derive(Clone)]
pub struct SessionConfig {
    hosts: String,
    session_timeout: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("hosts", &self.hosts)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
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
        }
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

/// One ZooKeeper session, used from any number of threads.
///
/// Dropping it (or calling [`Session::close`]) closes the session at once,
/// so the server deletes its ephemeral nodes now rather than after the
/// session timeout.
pub struct Session {
    config: SessionConfig,
    client: Mutex<Option<zk::Client>>,
    session_id: i64,
    negotiated_timeout: Duration,
    // Declared last: dropped after the client, so the client's close
    // request can still be sent.
    runtime: Runtime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("hosts", &self.config.hosts)
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .finish()
    }
}

impl Session {
    fn connect(config: SessionConfig) -> Result<Session> {
        if config.hosts.trim().is_empty() {
            return Err(Error::invalid("connect string", &config.hosts, "empty"));
        }
        let runtime = Runtime::start()?;
        let hosts = config.hosts.clone();
        let session_timeout = config.session_timeout;
        let connecting = async move {
            zk::Client::connector()
                .with_session_timeout(session_timeout)
                .connect(&hosts)
                .await
        };
        let client = match runtime.run(connecting, config.connect_timeout) {
            None => {
                return Err(Error::ConnectTimeout {
                    hosts: config.hosts,
                    waited: config.connect_timeout,
                });
            }
            Some(Err(zk::Error::BadArguments(reason))) => {
                return Err(Error::invalid("connect string", &config.hosts, *reason));
            }
            Some(Err(err)) => {
                return Err(Error::Connect {
                    hosts: config.hosts,
                    source: zk_error(err),
                });
            }
            Some(Ok(client)) => client,
        };
        let session_id = client.session_id().0;
        let negotiated_timeout = client.session_timeout();
        tracing::debug!(hosts = %config.hosts, session = %format_args!("{session_id:#x}"),
            timeout = ?negotiated_timeout, "ZooKeeper session established");
        Ok(Session {
            config,
            client: Mutex::new(Some(client)),
            session_id,
            negotiated_timeout,
            runtime,
        })
    }

    /// The session id ZooKeeper gave us: the `ephemeralOwner` of our nodes.
    pub fn id(&self) -> i64 {
        self.session_id
    }

    /// The session timeout the server granted.
    pub fn negotiated_timeout(&self) -> Duration {
        self.negotiated_timeout
    }

    /// The configuration this session was opened with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Creates `path` and its missing ancestors as persistent nodes with an
    /// open ACL. Nodes that exist already are fine, including ones created
    /// concurrently by another client.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path.
    pub fn ensure_path(&self, path: &str) -> Result<()> {
        let owned = path.to_owned();
        self.call("create", path, move |client| async move {
            let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
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
        let (owned, data) = (path.to_owned(), data.to_vec());
        self.call("create", path, move |client| async move {
            let options = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
            client
                .create(&owned, &data, &options)
                .await
                .map(|(stat, _)| NodeStat::from_stat(&stat))
        })
    }

    /// Deletes a node, only if its version is still `version` when given.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when it does not exist.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        let owned = path.to_owned();
        self.call("delete", path, move |client| async move {
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

    /// A node's stat, or `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path.
    pub fn stat(&self, path: &str) -> Result<Option<NodeStat>> {
        let owned = path.to_owned();
        self.call("stat", path, move |client| async move {
            client
                .check_stat(&owned)
                .await
                .map(|stat| stat.as_ref().map(NodeStat::from_stat))
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

    /// Closes the session now, so that its ephemeral nodes go at once.
    ///
    /// Waits (bounded by the request timeout) until the client reports the
    /// session closed.
    pub fn close(self) {
        // Drop does the work; this method exists to say so at call sites.
        drop(self);
    }

    fn shutdown(&self) {
        let Some(client) = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let mut watcher = client.state_watcher();
        drop(client);
        // The session task sends CloseSession once the last client clone is
        // gone; the watcher then sees `Closed`.
        let closed = async move {
            loop {
                if watcher.changed().await.is_terminated() {
                    break;
                }
            }
        };
        if self
            .runtime
            .run(closed, self.config.request_timeout)
            .is_none()
        {
            tracing::warn!(session = %format_args!("{:#x}", self.session_id),
                "ZooKeeper session did not confirm close; its nodes go after the session timeout");
        }
    }

    /// Runs one client call on the runtime, bounded by the request timeout.
    fn call<T, F, Fut>(&self, op: &'static str, path: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(zk::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zk::Error>> + Send + 'static,
    {
        let client = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)?;
        match self.runtime.run(f(client), self.config.request_timeout) {
            None => Err(Error::Timeout {
                op,
                path: path.to_owned(),
                waited: self.config.request_timeout,
            }),
            Some(Ok(value)) => Ok(value),
            Some(Err(err)) => Err(Error::Zk {
                op,
                path: path.to_owned(),
                source: zk_error(err),
            }),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
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
    // lost connection (DESIGN.md).
    let retryable = matches!(
        err,
        E::ConnectionLoss | E::Timeout | E::Custom(_) | E::NoHosts | E::Throttled
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

    /// Runs `fut` on the runtime thread; `None` when `timeout` passed first.
    /// Must not be called from the runtime thread itself.
    fn run<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
        timeout: Duration,
    ) -> Option<T> {
        let bounded = async move { Some(fut.await) }.or(async move {
            async_io::Timer::after(timeout).await;
            None
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
