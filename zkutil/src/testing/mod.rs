//! `testing`: a REAL ZooKeeper for tests, never a mock.
//!
//! [`ZkServer`] (standalone) and [`ZkEnsemble`] (3 or 5 nodes) start Apache
//! ZooKeeper as plain child JVMs (`java … QuorumPeerMain zoo.cfg`, the same
//! launch as `scripts/zk.sh`) on free loopback ports, in a temp dir, and wait
//! until each node answers `srvr` with a `Mode:` (an ensemble: until exactly
//! one node leads). Dropping the fixture kills exactly the processes it
//! started and removes the dir; it never panics. Like Curator's
//! `TestingServer` / `TestingCluster`.
//!
//! The configuration suits fault tests: `tickTime` 200 ms and a minimum
//! session timeout of 400 ms, so expiry takes seconds; `forceSync=no`.
//!
//! The launcher can be overridden with `ZK_JAVA` (the `java` binary) and
//! `ZK_CLASSPATH`; by default it uses the Debian package's jars in
//! `/usr/share/java` (`scripts/zk.sh install` puts them there).
//!
//! What a user's tests get:
//!
//! * `zookeeper`: [`ZkServer`], [`ZkEnsemble`], and breaking them (kill,
//!   restart, pause).
//! * `node`: one ZooKeeper process, its config and launch; [`StartError`].
//! * `security`: TLS-only and SASL fixtures ([`ZkOptions`], [`TlsMode`]):
//!   their zoo.cfg, JVM flags and classpath; `certs`: their CA and
//!   certificates, made in the test; `secured`: starting them and
//!   connecting to them.
//! * `inspect`: four-letter words ([`four_letter_word`], [`mntr_value`],
//!   [`sessions_on`]), to check what the server itself sees.
//! * `wait`: [`wait_until`], [`poll_until`], for what no watch announces.
//!
//! The workspace's own tests need more: stand-in peers (a time-server
//! responder, Curator as a JVM, Prometheus, a delaying proxy, the seed Go
//! programs), a process harness and a network lab in Linux network
//! namespaces (`testing::lab`). Those are behind the `testing-peers`
//! feature, off by default and hidden from these docs: they run programs a
//! user's machine may not have, and their API follows the workspace's
//! tests, not a stability promise.

mod certs;
mod inspect;
mod node;
mod secured;
mod security;
mod standalone;
mod wait;
mod zookeeper;

#[cfg(feature = "testing-peers")]
mod http;
#[cfg(feature = "testing-peers")]
#[doc(hidden)]
pub mod lab;
#[cfg(feature = "testing-peers")]
mod netns;
#[cfg(feature = "testing-peers")]
mod peer;
#[cfg(feature = "testing-peers")]
mod process;
#[cfg(feature = "testing-peers")]
mod prometheus;
#[cfg(feature = "testing-peers")]
mod proxy;
#[cfg(feature = "testing-peers")]
mod responder;
#[cfg(feature = "testing-peers")]
mod seed;

use std::time::Duration;

pub use self::certs::{CLIENT_NAMES, EXPIRED_CLIENT};
pub use self::inspect::{four_letter_word, mntr_value, sessions_on};
pub use self::node::{DEFAULT_CLASSPATH, StartError};
pub use self::security::{TlsMode, ZkOptions};
pub use self::standalone::ZkServer;
pub use self::wait::{poll_until, wait_until};
pub use self::zookeeper::ZkEnsemble;

#[cfg(feature = "testing-peers")]
#[doc(hidden)]
pub use self::{
    http::{http_get, http_request, metric_value},
    inspect::zk_cli,
    peer::CuratorPeer,
    process::{LineRecorder, TestProcess},
    prometheus::Prometheus,
    proxy::DelayProxy,
    responder::{Behaviour, Responder},
    seed::SeedGo,
    wait::{free_ports, log_tail, proc_status, send_signal},
};

/// Installs a `tracing` subscriber that writes through the test harness's
/// capture; a second call in the same process does nothing.
pub fn init_test_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,zookeeper_client=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A session on `zk` (over TLS for a TLS fixture, without a client
/// certificate), or a panic naming the connect string and the log.
pub fn connect(zk: &ZkServer, session_timeout: Duration) -> std::sync::Arc<crate::Session> {
    zk.session_config(None)
        .with_session_timeout(session_timeout)
        .connect()
        .map(std::sync::Arc::new)
        .unwrap_or_else(|e| {
            panic!(
                "connecting to {}: {e}; zk log:\n{}",
                zk.connect_string(),
                zk.log_tail()
            )
        })
}

/// A standalone ZooKeeper for a test, with test logging set up.
///
/// # Panics
///
/// When it cannot start, with the reason and the log tail.
#[track_caller]
pub fn zookeeper() -> ZkServer {
    init_test_logging();
    ZkServer::start().unwrap_or_else(|e| panic!("starting ZooKeeper: {e}"))
}
