//! Helpers: a time-server child process that is killed on drop, and an
//! in-process server on port 0.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use time_server::listener::Serving;
use zkutil::Session;
use zkutil::testing::{TestProcess, ZkServer};

pub use zkutil::testing::zookeeper;

/// The zkutil binary, beside time-server's (`cargo test --workspace`
/// builds it).
pub fn zkutil_binary() -> std::path::PathBuf {
    let zkutil = std::path::Path::new(env!("CARGO_BIN_EXE_time-server")).with_file_name("zkutil");
    assert!(
        zkutil.exists(),
        "{} is missing: run `cargo build -p zkutil-cli` first (cargo test --workspace builds it)",
        zkutil.display()
    );
    zkutil
}

/// An observer session on `zk`.
pub fn observer(zk: &ZkServer) -> Arc<Session> {
    zkutil::testing::connect(zk, Duration::from_secs(10))
}

/// The sorted children of `path`, or empty when it does not exist.
pub fn children(session: &Session, path: &str) -> Vec<String> {
    let mut names = match session.children(path) {
        Ok(names) => names,
        Err(err) if err.is_no_node() => Vec::new(),
        Err(err) => panic!("listing {path}: {err}"),
    };
    names.sort();
    names
}

/// A `time-server` process (a [`TestProcess`] that knows its registrations).
pub struct ServerProcess(TestProcess);

impl std::ops::Deref for ServerProcess {
    type Target = TestProcess;
    fn deref(&self) -> &TestProcess {
        &self.0
    }
}

impl std::ops::DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut TestProcess {
        &mut self.0
    }
}

impl ServerProcess {
    /// Starts the binary with `args` and `RUST_LOG=info`.
    pub fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_with_log_filter(args, "info")
    }

    /// Starts the binary with `args` and `RUST_LOG=filter`.
    pub fn start_with_log_filter(args: &[&str], filter: &str) -> ServerProcess {
        ServerProcess(TestProcess::start(
            env!("CARGO_BIN_EXE_time-server"),
            args,
            &[("RUST_LOG", filter)],
        ))
    }

    /// Starts the binary with `args` and `limit` open files at most (soft
    /// and hard), through `prlimit`, which execs it: the PID is the
    /// server's.
    pub fn start_with_open_file_limit(limit: u64, args: &[&str]) -> ServerProcess {
        let nofile = format!("--nofile={limit}:{limit}");
        let mut all = vec![nofile.as_str(), "--", env!("CARGO_BIN_EXE_time-server")];
        all.extend_from_slice(args);
        ServerProcess(TestProcess::start("prlimit", &all, &[("RUST_LOG", "info")]))
    }

    /// Everything it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.0.stderr_text()
    }

    /// The endpoints it said it listens on (advertised), from its log.
    pub fn listening(&self) -> std::collections::BTreeSet<String> {
        self.0
            .stderr()
            .lines()
            .iter()
            .filter_map(|(_, line)| line.split("advertised=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// Waits until it has logged `count` registrations; returns their endpoints.
    pub fn registered(&self, count: usize) -> Vec<String> {
        self.0.stderr().wait_until(
            Duration::from_secs(30),
            "the server registers its listeners",
            |lines| {
                let names: Vec<String> = lines
                    .iter()
                    .filter(|(_, l)| l.contains("registered") && !l.contains("deregistered"))
                    .filter_map(|(_, l)| l.split("path=").nth(1))
                    .filter_map(|rest| rest.split_whitespace().next())
                    .filter_map(|path| path.rsplit('/').next())
                    .map(str::to_owned)
                    .collect();
                (names.len() >= count).then_some(names)
            },
        )
    }
}

/// A time-server serving `n` port-0 listeners in this process until dropped.
pub fn in_process_server(n: usize) -> Serving {
    Serving::on_free_ports(n).expect("listeners start")
}

/// Each child of `base`: (name, owner session, creation time).
pub fn snapshot(session: &Session, base: &str) -> Vec<(String, zkutil::SessionId, i64)> {
    children(session, base)
        .into_iter()
        .filter_map(|name| {
            let stat = session.stat(&format!("{base}/{name}")).ok().flatten()?;
            Some((name, stat.ephemeral_owner(), stat.ctime_ms()))
        })
        .collect()
}

/// `n` distinct free loopback ports (bound, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    zkutil::testing::free_ports(n).expect("free ports")
}

/// Asks `addr` for the time; the reply, or the error.
pub fn ask(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}
