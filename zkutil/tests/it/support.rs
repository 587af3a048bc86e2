//! Helpers shared by the integration tests.

use std::sync::Arc;
use std::time::Duration;

use zkutil::testing::ZkServer;
use zkutil::{Session, SessionConfig};

pub use zkutil::testing::zookeeper;

/// A session on `zk` with a short session timeout.
pub fn session(zk: &ZkServer) -> Arc<Session> {
    SessionConfig::new(zk.connect_string())
        .with_session_timeout(Duration::from_secs(2))
        .connect()
        .map(Arc::new)
        .unwrap_or_else(|e| {
            panic!(
                "connecting to {}: {e}; zk log:\n{}",
                zk.connect_string(),
                zk.log_tail()
            )
        })
}
