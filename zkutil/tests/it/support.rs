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

/// A time-server running in this process (the real server code), until
/// [`InProcessServer::stop`].
pub struct InProcessServer {
    stop: std::sync::mpsc::Sender<i32>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl InProcessServer {
    /// Runs `config`; a test's defaults come from [`server_config`].
    pub fn start(config: time_server::Config) -> InProcessServer {
        let (stop, stop_requested) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || time_server::run(&config, stop_requested));
        InProcessServer { stop, thread }
    }

    /// Stops it as SIGTERM would and waits until it has stopped cleanly.
    pub fn stop(self) {
        let _ = self.stop.send(15);
        self.thread
            .join()
            .unwrap_or_else(|_| panic!("server panicked"))
            .expect("the server runs");
    }
}

/// A test's server configuration for `hosts`: one listener on port 0, at
/// most 30 s to register, no drain.
pub fn server_config(hosts: &str) -> time_server::Config {
    time_server::Config {
        listen: vec!["127.0.0.1:0".parse().expect("a valid literal")],
        startup_timeout: Some(Duration::from_secs(30)),
        drain: Duration::ZERO,
        ..time_server::Config::new(hosts)
    }
}

/// A proxy to `zk` that delays its answers by `delay` and can cut the
/// connections through it.
pub fn proxy_to(zk: &ZkServer, delay: Duration) -> zkutil::testing::DelayProxy {
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
    zkutil::testing::DelayProxy::start(target, delay).expect("a proxy")
}

/// A session through `proxy` with `session_timeout`.
pub fn session_through(
    proxy: &zkutil::testing::DelayProxy,
    session_timeout: Duration,
) -> Arc<Session> {
    zkutil::SessionConfig::new(proxy.addr().to_string())
        .with_session_timeout(session_timeout)
        .connect()
        .map(Arc::new)
        .expect("a session through the proxy")
}

/// The `zkutil` binary (the zkutil-cli package's), beside this test's
/// folder: `cargo test --workspace` builds it.
pub fn zkutil_binary() -> std::path::PathBuf {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("zkutil")))
        .unwrap_or_else(|| std::path::PathBuf::from("zkutil"));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p zkutil-cli` first (cargo test --workspace does)",
        binary.display()
    );
    binary
}
