//! zkutil and Apache Curator's service discovery (the real one, 5.4 from
//! Debian, run as a JVM by `testing::CuratorPeer`) on one ZooKeeper: each
//! reads what the other writes.

mod curator_writes;
mod tls;
mod we_write;

use std::time::Duration;

use serde_json::Value;
use zkutil::Format;
use zkutil::testing::{CuratorPeer, wait_until};

use crate::support::{InProcessServer, server_config};

fn peer() -> CuratorPeer {
    CuratorPeer::get().unwrap_or_else(|err| panic!("the Curator peer: {err}"))
}

/// The JSON lines of a `list` run.
fn curator_list(peer: &CuratorPeer, hosts: &str, service: &str, spring: bool) -> Vec<Value> {
    let mut args = vec!["list", hosts, "/services", service];
    if spring {
        args.push("spring");
    }
    let out = peer
        .run(&args)
        .unwrap_or_else(|err| panic!("curator list: {err}"));
    out.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// A time-server in this process registered in `format` as `service`
/// under /services (the default root of Curator and Spring services), on
/// two listeners.
fn server(hosts: &str, format: Format, service: &str) -> InProcessServer {
    InProcessServer::start(time_server::Config {
        formats: vec![format],
        service: service.to_owned(),
        listen: vec!["127.0.0.1:0".parse().expect("a valid literal"); 2],
        ..server_config(hosts)
    })
}

/// Our time-server on two listeners, registered in Curator's format as
/// `time`, once Curator lists both.
fn curator_listed_server(hosts: &str, peer: &CuratorPeer) -> (InProcessServer, Vec<Value>) {
    let server = server(hosts, Format::Curator, "time");
    let listed = wait_until(Duration::from_secs(30), "Curator lists both", || {
        let listed = curator_list(peer, hosts, "time", false);
        (listed.len() == 2).then_some(listed)
    });
    (server, listed)
}
