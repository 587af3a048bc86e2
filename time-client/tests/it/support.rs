//! Helpers: time-servers served in this process and registered in a real
//! ZooKeeper, and the client binary.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use time_server::listener::Serving;
use zkutil::testing::{TestProcess, ZkServer};
use zkutil::{BasePath, Endpoint, Metadata, Registration, Session};

pub use zkutil::testing::zookeeper;

/// `n` time-server listeners on port 0, registered under `base_path` over
/// their own session; deregistered, then stopped, on drop.
pub struct Servers {
    // Declared first: dropped (deregistered) before the listeners stop.
    registrations: Vec<Registration>,
    _serving: Serving,
    _session: Arc<Session>,
}

impl Servers {
    pub fn start(zk: &ZkServer, base_path: &str, n: usize) -> Servers {
        Servers::weighted(zk, base_path, &vec![None; n])
    }

    /// One listener per entry of `weights`, each registered with that weight.
    pub fn weighted(zk: &ZkServer, base_path: &str, weights: &[Option<u32>]) -> Servers {
        let n = weights.len();
        let base_path = BasePath::new(base_path).expect("a valid base path");
        let session = zkutil::testing::connect(zk, Duration::from_secs(10));
        let serving = Serving::on_free_ports(n).expect("listeners start");
        let registrations = serving
            .listeners()
            .iter()
            .enumerate()
            .map(|(i, bound)| {
                let endpoint = bound.advertised();
                let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test")
                    .with_weight(weights[i]);
                Registration::register(&session, &base_path, endpoint, &metadata)
                    .expect("registers")
            })
            .collect();
        Servers {
            registrations,
            _serving: serving,
            _session: session,
        }
    }

    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.registrations
            .iter()
            .map(Registration::endpoint)
            .collect()
    }
}

/// Runs the client binary to completion (it stops by itself: `--count`).
pub fn run_client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_time-client"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("ZK_HOSTS")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running time-client: {e}"))
}

/// A generous bound for a client run in tests.
pub const RUN_DEADLINE: Duration = Duration::from_secs(60);

impl Servers {
    /// Deletes the registrations but keeps serving, as a stopping server
    /// does during its drain period.
    pub fn deregister(&mut self) {
        for registration in self.registrations.drain(..) {
            registration.deregister().expect("deregisters");
        }
    }
}

/// The client binary as a process whose output is recorded as it comes.
pub fn client_process(args: &[&str]) -> zkutil::testing::TestProcess {
    zkutil::testing::TestProcess::start(
        env!("CARGO_BIN_EXE_time-client"),
        args,
        &[("RUST_LOG", "info")],
    )
}

/// Registers each of `endpoints` under `base_path` over `session` (metadata
/// naming this process, `version`); deregistered on drop.
pub fn register_all(
    session: &Arc<Session>,
    base_path: &str,
    endpoints: impl IntoIterator<Item = Endpoint>,
    version: &str,
) -> Vec<Registration> {
    let base_path = BasePath::new(base_path).expect("a valid base path");
    endpoints
        .into_iter()
        .map(|endpoint| {
            let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), version);
            Registration::register(session, &base_path, endpoint, &metadata).expect("registers")
        })
        .collect()
}

/// `[ 37/600] 127.0.0.1:41234 0.31ms 127.0.0.1:41234: 2026-…`: the request
/// number and the server, or `None` for a FAILED line.
pub fn answered(line: &str) -> Option<(u64, Endpoint)> {
    let (seq, rest) = line.trim_start_matches('[').split_once('/')?;
    let server = rest.split_once("] ")?.1.split_whitespace().next()?;
    Some((seq.trim().parse().ok()?, server.parse().ok()?))
}

/// The `from_request` of the client's first stderr line after `after`
/// lines that `matches`, that line's index, and when it was logged.
pub fn logged_from(
    client: &TestProcess,
    after: usize,
    what: &str,
    matches: impl Fn(&str) -> bool,
) -> (usize, u64, Instant) {
    client
        .stderr()
        .wait_for(Duration::from_secs(30), |lines, _| {
            lines
                .iter()
                .enumerate()
                .skip(after)
                .filter(|(_, (_, line))| matches(line))
                .find_map(|(at, (when, line))| {
                    let seq = line
                        .split("from_request=")
                        .nth(1)?
                        .split_whitespace()
                        .next()?;
                    Some((at, seq.parse().ok()?, *when))
                })
        })
        .unwrap_or_else(|| {
            panic!(
                "no {what} line:
{}",
                client.stderr_text()
            )
        })
}

/// The `from_request` of the client's first "server list changed" line
/// after `after` lines whose out-of-service list is `out` (empty: none),
/// that line's index, and when it was logged.
pub fn change_logged(client: &TestProcess, after: usize, out: &str) -> (usize, u64, Instant) {
    let want = format!("out_of_service={out}");
    logged_from(client, after, &format!("{want:?} change"), |line| {
        line.contains("server list changed") && line.split_whitespace().any(|field| field == want)
    })
}
