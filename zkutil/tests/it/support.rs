//! Helpers shared by the integration tests.

use std::sync::Arc;
use std::time::Duration;

use zkutil::Session;
use zkutil::testing::ZkServer;

pub use zkutil::testing::zookeeper;

/// A session on `zk` with a short session timeout.
pub fn session(zk: &ZkServer) -> Arc<Session> {
    zkutil::testing::connect(zk, Duration::from_secs(2))
}
