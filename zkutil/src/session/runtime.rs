//! The blocking bridge to the async client: one runtime thread per
//! session, every wait on it bounded by a deadline or a cancel signal, and
//! the translation of the client's connects, closes, watches and errors.
//!
//! Nothing ever blocks on the runtime thread, which would freeze the client.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_executor::Executor;
use futures_lite::FutureExt;
use zookeeper_client as zk;

use super::cancel::{Cancel, Interrupt};
use super::config::SessionConfig;
use super::types::{NodeEvent, WatchEvent};
use crate::error::{Error, Result, ZkError, ZkErrorKind};

/// Drops `client` and waits (at most `timeout`) until its session is
/// closed: the session task sends CloseSession once the last clone is gone,
/// and the server then deletes the session's ephemeral nodes at once.
pub(super) fn close_client(runtime: &Runtime, client: zk::Client, timeout: Duration) -> bool {
    let mut watcher = client.state_watcher();
    drop(client);
    let closed = async move { while !watcher.changed().await.is_terminated() {} };
    matches!(runtime.run(closed, timeout, &Cancel::new()), Run::Done(()))
}

/// Connects a client, re-attaching `session` when given; bounded by the
/// connect timeout.
pub(super) fn connect_client(
    runtime: &Runtime,
    config: &SessionConfig,
    session: Option<zk::SessionInfo>,
    cancel: &Cancel,
    interrupt: Option<&Interrupt>,
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
    let connector = match config
        .sasl_auth
        .as_ref()
        .map(|auth| auth.expose().split_once(':'))
    {
        Some(Some((user, password))) => connector.with_sasl(zk::SaslOptions::digest_md5(
            user.to_owned(),
            password.to_owned(),
        )),
        Some(None) => {
            return Err(Error::invalid(
                "SASL credentials",
                "<redacted>",
                "expected user:password",
            ));
        }
        None => connector,
    };
    // TLS to every host without a `tcp://` of its own (`secure_connect`).
    let (connector, secure) = match &config.live_tls {
        Some(certs) => (connector.with_tls(certs.options()), true),
        None => (connector, false),
    };
    let interrupted = interrupt.map(|i| i.0.triggered());
    let connecting = async move {
        let connect = async move {
            Some(match secure {
                true => connector.secure_connect(&hosts).await,
                false => connector.connect(&hosts).await,
            })
        };
        match interrupted {
            Some(interrupted) => {
                connect
                    .or(async move {
                        interrupted.await;
                        None
                    })
                    .await
            }
            None => connect.await,
        }
    };
    match runtime.run(connecting, config.connect_timeout, cancel) {
        Run::TimedOut => Err(Error::ConnectTimeout {
            hosts: config.hosts.clone(),
            waited: config.connect_timeout,
        }),
        Run::Cancelled => Err(Error::Closed),
        Run::Done(None) => Err(Error::Interrupted),
        Run::Done(Some(Err(zk::Error::BadArguments(reason)))) => {
            Err(Error::invalid("connect string", &config.hosts, *reason))
        }
        Run::Done(Some(Err(zk::Error::AuthFailed))) if config.sasl_auth.is_some() => {
            Err(Error::Connect {
                hosts: config.hosts.clone(),
                source: ZkError::new(ZkErrorKind::AuthFailed, false, SaslRefused),
            })
        }
        Run::Done(Some(Err(err))) => Err(Error::Connect {
            hosts: config.hosts.clone(),
            source: zk_error(err),
        }),
        Run::Done(Some(Ok(client))) => Ok(client),
    }
}

/// The client's "authentication failed" when SASL is what authenticates:
/// said so, since the client's words fit any kind of authentication.
#[derive(Debug, thiserror::Error)]
#[error("SASL authentication failed: wrong user name or password")]
struct SaslRefused;

/// Runs `notify` when `watcher` fires, as a task on the runtime thread (we
/// are on it: this is called from inside a client call).
pub(super) fn forward_watch(
    watcher: zk::OneshotWatcher,
    notify: impl FnOnce(WatchEvent) + Send + 'static,
) {
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

/// Runs `notify` for each node event of a persistent recursive `watcher`,
/// as a task on the runtime thread (we are on it: this is called from
/// inside a client call), until `stop` is triggered or the session ends
/// (then `SessionEnded` is the last event). Dropping the watcher at the end
/// removes the watch.
pub(super) fn forward_recursive(
    mut watcher: zk::PersistentWatcher,
    stop: &Cancel,
    mut notify: impl FnMut(NodeEvent) + Send + 'static,
) {
    let stopped = stop.triggered();
    drop(spawns_core::spawn(async move {
        let forwarding = async move {
            loop {
                let event = watcher.changed().await;
                let kind = match event.event_type {
                    zk::EventType::NodeCreated => WatchEvent::Created,
                    zk::EventType::NodeDeleted => WatchEvent::Deleted,
                    zk::EventType::NodeDataChanged => WatchEvent::DataChanged,
                    zk::EventType::NodeChildrenChanged => WatchEvent::ChildrenChanged,
                    // After a terminal state the watcher must not be polled.
                    zk::EventType::Session if event.session_state.is_terminated() => {
                        notify(NodeEvent {
                            kind: WatchEvent::SessionEnded,
                            path: String::new(),
                        });
                        return;
                    }
                    zk::EventType::Session => continue,
                };
                notify(NodeEvent {
                    kind,
                    path: event.path,
                });
            }
        };
        forwarding.or(stopped).await;
    }));
}

pub(super) fn zk_error(err: zk::Error) -> ZkError {
    use zk::Error as E;
    let kind = match err {
        E::NoNode => ZkErrorKind::NoNode,
        E::NodeExists => ZkErrorKind::NodeExists,
        E::Unimplemented => ZkErrorKind::Unimplemented,
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
pub(super) struct Runtime {
    pub(super) executor: Arc<Executor<'static>>,
    stop: async_channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

/// How a [`Runtime::run`] ended.
pub(super) enum Run<T> {
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
    pub(super) fn start() -> Result<Runtime> {
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
    pub(super) fn run<T: Send + 'static>(
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
