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
//! * `zookeeper`: [`ZkServer`], [`ZkEnsemble`], and breaking them.
//! * `node`: one ZooKeeper process, its config and launch; [`StartError`].
//! * `inspect`: four-letter words, [`zk_cli`], [`sessions_on`].
//! * `process`: [`TestProcess`], [`LineRecorder`].
//! * `peer`: [`CuratorPeer`], Apache Curator's service discovery as a JVM.
//! * `prometheus`: [`Prometheus`], a real Prometheus with a test's configuration.
//! * `proxy`: [`DelayProxy`], latency injected between a client and ZooKeeper.
//! * `seed`: [`SeedGo`], the post's own Go server and client.
//! * `responder`: [`Responder`], a stand-in time server, well-behaved or not.
//! * `http`: [`http_get`], [`metric_value`], for metrics and health endpoints.
//! * `wait`: [`wait_until`], [`poll_until`], `/proc` helpers, free ports.

mod http;
mod inspect;
mod node;
mod peer;
mod process;
mod prometheus;
mod proxy;
mod responder;
mod seed;
mod wait;
mod zookeeper;

use std::time::Duration;

pub use self::http::{http_get, metric_value};
pub use self::inspect::{four_letter_word, mntr_value, sessions_on, zk_cli};
pub use self::node::{DEFAULT_CLASSPATH, StartError};
pub use self::peer::CuratorPeer;
pub use self::process::{LineRecorder, TestProcess};
pub use self::prometheus::Prometheus;
pub use self::proxy::DelayProxy;
pub use self::responder::{Behaviour, Responder};
pub use self::seed::SeedGo;
pub use self::wait::{free_ports, log_tail, poll_until, proc_status, send_signal, wait_until};
pub use self::zookeeper::{ZkEnsemble, ZkServer};

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

/// A session on `zk`, or a panic naming the connect string and the log.
pub fn connect(zk: &ZkServer, session_timeout: Duration) -> std::sync::Arc<crate::Session> {
    crate::SessionConfig::new(zk.connect_string())
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
