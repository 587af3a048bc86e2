//! [`ZkServer`]: a standalone ZooKeeper, an ensemble of one.

use std::path::Path;

use super::node::StartError;
use super::zookeeper::ZkEnsemble;

/// A standalone ZooKeeper server: an ensemble of one.
#[derive(Debug)]
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let mut zk = zkutil::testing::ZkServer::start().expect("ZooKeeper is installed");
/// let session = zkutil::testing::connect(&zk, Duration::from_secs(10));
/// session.ensure_path("/x").expect("serves");
/// zk.restart().expect("restarts"); // sessions survive a restart
/// assert!(session.children("/x").expect("the same session").is_empty());
/// // Killed and its directory removed on drop.
/// ```
pub struct ZkServer(pub(super) ZkEnsemble);

impl ZkServer {
    /// Starts a standalone server on a free loopback port and waits until
    /// it serves.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the log tail.
    pub fn start() -> Result<ZkServer, StartError> {
        ZkEnsemble::start(1).map(ZkServer)
    }

    /// `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        self.0.connect_string()
    }

    /// See [`ZkEnsemble::plaintext_connect_string`].
    pub fn plaintext_connect_string(&self) -> Option<String> {
        self.0.plaintext_connect_string()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.0.port(0)
    }

    /// The JVM's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0.pid(0)
    }

    /// Kills the server with SIGKILL; port and data stay for [`ZkServer::restart`].
    pub fn kill(&mut self) {
        self.0.kill(0);
    }

    /// Starts it again on the same port and data.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the log tail.
    pub fn restart(&mut self) -> Result<(), StartError> {
        self.0.restart(0)
    }

    /// Freezes the server (SIGSTOP).
    pub fn pause(&mut self) {
        self.0.pause(0);
    }

    /// Thaws the server (SIGCONT).
    pub fn resume(&mut self) {
        self.0.resume(0);
    }

    /// Whether it answers `srvr`.
    pub fn is_serving(&self) -> bool {
        self.0.mode(0).is_some()
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        self.0.log_tail(0)
    }

    /// The temp dir holding its config, data and log.
    pub fn dir(&self) -> &Path {
        self.0.dir()
    }
}
