//! Registrations under session faults, against real ZooKeeper: the
//! registry must always converge to exactly the set of live listeners.

mod clients;
mod registration;
mod stop;
mod zookeeper;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use zkutil::SessionId;

use crate::support::ServerProcess;

const BASE: &str = "/go_servers";

fn server_args<'a>(zk: &'a str, session_timeout: &'a str, listen: &'a str) -> Vec<&'a str> {
    vec![
        "--zk",
        zk,
        "--base-path",
        BASE,
        "--session-timeout",
        session_timeout,
        "--listen",
        listen,
    ]
}

fn owners(snapshot: &[(String, SessionId, i64)]) -> BTreeSet<SessionId> {
    snapshot.iter().map(|(_, owner, _)| *owner).collect()
}

/// SIGTERMs `server` and returns how long it took to exit (successfully).
fn time_to_exit(server: &mut ServerProcess) -> Duration {
    let started = Instant::now();
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(60));
    let took = started.elapsed();
    assert!(status.success(), "exit {status}; log:\n{}", server.stderr());
    took
}
