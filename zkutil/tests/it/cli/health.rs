//! `check` and `status`: the health of the registered instances and of
//! the ensemble, in the exit code and the output.

use std::net::TcpListener;

use serde_json::Value;
use zkutil::Endpoint;
use zkutil::testing::{Responder, ZkEnsemble};

use crate::support::{session, zookeeper};

use super::{register, text, zkutil};

#[test]
fn check_fails_when_a_registered_instance_is_down() {
    let zk = zookeeper();
    let s = session(&zk);
    let responder = Responder::time().expect("a responder");
    let _up = register(&s, Endpoint::new(responder.addr()));
    let dead_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let dead: Endpoint = format!("127.0.0.1:{dead_port}")
        .parse()
        .expect("a valid literal");
    let _down = register(&s, dead);
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "check", "--timeout", "500ms"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("{} reachable", responder.addr())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{dead} unreachable")), "{stdout}");
    drop(_down);
    let output = zkutil(&["--zk", &hosts, "check", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    let line: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(line["reachable"], true);
    assert!(
        line["reply"]
            .as_str()
            .is_some_and(|reply| reply.starts_with(&responder.addr().to_string())),
        "{line}"
    );
}

#[test]
fn check_reports_a_frozen_server_that_still_accepts_connections() {
    let zk = zookeeper();
    let s = session(&zk);
    let hosts = zk.connect_string();
    // Like a SIGSTOPped server: the kernel completes connections into the
    // backlog, nobody ever answers.
    let frozen = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = frozen.local_addr().expect("addr");
    let _reg = register(&s, Endpoint::new(addr));
    let output = zkutil(&["--zk", &hosts, "check", "--timeout", "500ms"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stdout).contains(&format!("{addr} unreachable: no reply within 500ms")),
        "{}",
        text(&output.stdout)
    );
    // Connect-only, for services that are not time servers.
    let output = zkutil(&["--zk", &hosts, "check", "--probe", "tcp"]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    assert!(text(&output.stdout).contains(&format!("{addr} reachable")));
}

#[test]
fn status_reports_an_ensembles_leader_and_followers() {
    zkutil::testing::init_test_logging();
    let mut zk = ZkEnsemble::start(3).expect("the ensemble starts");
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "status"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" leader ")).count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" follower ")).count(),
        2,
        "{stdout}"
    );
    let follower = (0..3)
        .find(|&i| zk.mode(i).as_deref() == Some("follower"))
        .unwrap_or(0);
    zk.kill(follower);
    let output = zkutil(&["--zk", &hosts, "status", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let down: Vec<Value> = text(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["up"] == false)
        .collect();
    assert_eq!(down.len(), 1, "{}", text(&output.stdout));
    assert_eq!(down[0]["host"], format!("127.0.0.1:{}", zk.port(follower)));
}
