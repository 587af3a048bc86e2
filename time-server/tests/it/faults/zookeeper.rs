//! ZooKeeper's own faults: a real expiry, a leader and a connected node
//! lost, outages shorter and longer than the session timeout, ZooKeeper down
//! at start or dying during registration.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zkutil::testing::{ZkEnsemble, four_letter_word, wait_until};
use zkutil::{SessionConfig, SessionId};

use crate::support::{ServerProcess, ask, children, free_ports, observer, snapshot, zookeeper};

use super::{BASE, owners, server_args};

#[test]
fn session_expiry_recreates_registrations() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(
        &hosts,
        "2s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    server.registered(3);
    wait_until(Duration::from_secs(10), "three nodes", || {
        (snapshot(&obs, BASE).len() == 3).then_some(())
    });
    let old = owners(&snapshot(&obs, BASE));
    assert_eq!(old.len(), 1);
    // Frozen past the session timeout: ZooKeeper expires the session for
    // real and deletes its nodes.
    server.signal("STOP");
    wait_until(
        Duration::from_secs(30),
        "the frozen server's nodes expire",
        || children(&obs, BASE).is_empty().then_some(()),
    );
    server.signal("CONT");
    let back = wait_until(
        Duration::from_secs(30),
        "the nodes come back under a new session",
        || {
            let now = snapshot(&obs, BASE);
            let owners = owners(&now);
            (now.len() == 3 && owners.len() == 1 && owners.is_disjoint(&old)).then_some(now)
        },
    );
    assert_eq!(children(&obs, BASE).len(), 3, "duplicates: {back:?}");
    assert!(server.stderr().contains("expired"), "{}", server.stderr());
    // ZooKeeper expired the session: nobody else deleted anything.
    assert!(
        !server.stderr().contains("deleted by someone else"),
        "{}",
        server.stderr()
    );
}

/// The index of the ensemble node holding the connection of `session`.
fn node_of_session(zk: &ZkEnsemble, session: SessionId) -> Option<usize> {
    let sid = format!("sid={session:#x}");
    (0..zk.len())
        .find(|&i| four_letter_word(zk.port(i), "cons").is_some_and(|cons| cons.contains(&sid)))
}

#[test]
fn leader_failover_keeps_registrations_without_flap() {
    zkutil::testing::init_test_logging();
    let mut zk = ZkEnsemble::start(3).unwrap_or_else(|e| panic!("starting ensemble: {e}"));
    let hosts = zk.connect_string();
    let obs = SessionConfig::new(&hosts)
        .with_session_timeout(Duration::from_secs(20))
        .connect()
        .expect("connects to ZooKeeper");
    let server = ServerProcess::start(&server_args(
        &hosts,
        "10s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    server.registered(3);
    let before = wait_until(Duration::from_secs(10), "three nodes", || {
        let now = snapshot(&obs, BASE);
        (now.len() == 3).then_some(now)
    });
    let owner = before[0].1;
    // An observer's child watch: any create or delete under the base path fires it.
    let (tx, events) = mpsc::channel();
    obs.children_and_watch(BASE, move |event| {
        let _ = tx.send(event);
    })
    .expect("lists and watches");

    let leader = zk.leader().unwrap_or_else(|| panic!("no leader"));
    zk.kill(leader);
    wait_until(Duration::from_secs(30), "a new leader", || zk.leader());
    let connected = wait_until(
        Duration::from_secs(30),
        "the server's session is on a live node",
        || node_of_session(&zk, owner),
    );
    zk.kill(connected);
    // Two of three nodes down: no quorum. Bring the leader back for one.
    zk.restart(leader)
        .unwrap_or_else(|e| panic!("restart: {e}"));
    wait_until(
        Duration::from_secs(30),
        "the server's session moved to another node",
        || node_of_session(&zk, owner).filter(|&i| i != connected),
    );
    let after = snapshot(&obs, BASE);
    assert_eq!(after, before, "nodes changed owner or were re-created");
    match events.try_recv() {
        Err(mpsc::TryRecvError::Empty) => {}
        other => panic!("the observer's child watch fired: {other:?}"),
    }
    assert!(
        !server.stderr().contains("re-registered"),
        "{}",
        server.stderr()
    );
}

#[test]
fn zookeeper_outage_shorter_than_session_timeout_changes_nothing() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(
        &hosts,
        "20s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    server.registered(3);
    let before = {
        let obs = observer(&zk);
        wait_until(Duration::from_secs(10), "three nodes", || {
            let now = snapshot(&obs, BASE);
            (now.len() == 3).then_some(now)
        })
    };
    zk.kill();
    server.wait_for_log("disconnected from ZooKeeper", 1, Duration::from_secs(20));
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    server.wait_for_log("reconnected to ZooKeeper", 1, Duration::from_secs(30));
    let obs = observer(&zk);
    assert_eq!(
        snapshot(&obs, BASE),
        before,
        "nodes changed although the session survived"
    );
    assert!(
        !server.stderr().contains("re-registered"),
        "{}",
        server.stderr()
    );
}

#[test]
fn zookeeper_outage_longer_than_session_timeout_recovers() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(
        &hosts,
        "2s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    let names: BTreeSet<String> = server.registered(3).into_iter().collect();
    zk.kill();
    // The client declares the session expired on its own (1.4× the timeout).
    server.wait_for_log(
        "ZooKeeper session expired (as far as the client can tell)",
        1,
        Duration::from_secs(30),
    );
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    let obs = observer(&zk);
    wait_until(
        Duration::from_secs(30),
        "the registry equals the live listeners, one live owner",
        || {
            let now = snapshot(&obs, BASE);
            let found: BTreeSet<String> = now.iter().map(|(name, _, _)| name.clone()).collect();
            let owners = owners(&now);
            let log = server.stderr();
            let current = log
                .lines()
                .rev()
                .find_map(|line| match line.split_once("new=") {
                    Some((_, rest)) => Some(rest),
                    None if line.contains("re-attached") => {
                        line.split_once("session=").map(|(_, rest)| rest)
                    }
                    None => None,
                })
                .and_then(|rest| rest.split_whitespace().next())?
                .to_owned();
            let owner = owners.iter().next().map(|o| format!("{o:#x}"));
            (found == names && owners.len() == 1 && owner.as_deref() == Some(current.as_str()))
                .then_some(())
        },
    );
    // Still exactly three a moment later: no duplicate, nothing stale.
    assert_eq!(children(&obs, BASE).len(), 3);
}

#[test]
fn zookeeper_down_at_start_then_registers() {
    let mut zk = zookeeper();
    zk.kill();
    let hosts = zk.connect_string();
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port}");
    let mut args = server_args(&hosts, "10s", &listen);
    args.extend(["--zk-connect-timeout", "500ms"]);
    let server = ServerProcess::start(&args);
    // The listener answers while ZooKeeper is down.
    let addr: SocketAddr = listen.parse().expect("a valid literal");
    let reply = wait_until(Duration::from_secs(20), "the listener answers", || {
        ask(addr).ok()
    });
    assert!(reply.starts_with(&format!("{listen}: ")), "{reply:?}");
    server.wait_for_log("ZooKeeper unreachable", 2, Duration::from_secs(30));
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    let obs = observer(&zk);
    let restarted = Instant::now();
    wait_until(Duration::from_secs(30), "the node appears", || {
        (children(&obs, BASE) == [listen.clone()]).then_some(())
    });
    eprintln!(
        "registered {:?} after ZooKeeper came back",
        restarted.elapsed()
    );
    // One log line per failed attempt, not a busy loop.
    let attempts = server.log_count("ZooKeeper unreachable");
    assert!(attempts < 50, "{attempts} attempts logged");
}

/// `n` listeners on free ports, as one `--listen` value.
fn port_zero_listeners(n: usize) -> String {
    vec!["127.0.0.1:0"; n].join(",")
}

#[test]
fn zookeeper_dying_during_registration_delays_it_but_every_listener_registers() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let listen = port_zero_listeners(300);
    let mut server = ServerProcess::start(&server_args(&hosts, "2s", &listen));
    server.wait_for_log("connected to ZooKeeper", 1, Duration::from_secs(30));
    zk.kill();
    // Down for longer than the client's own expiry guess (1.4 × 2 s).
    server.wait_for_log(
        "ZooKeeper session expired (as far as the client can tell)",
        1,
        Duration::from_secs(60),
    );
    zk.restart().expect("restart");
    let obs = observer(&zk);
    wait_until(
        Duration::from_secs(120),
        "all 300 listeners registered",
        || (children(&obs, BASE).len() == 300).then_some(()),
    );
    assert!(server.try_status().is_none(), "{}", server.stderr());
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; log:\n{}", server.stderr());
}
