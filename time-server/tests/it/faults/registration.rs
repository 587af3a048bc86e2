//! The server's own registrations: a fast restart replaces its stale
//! nodes, two listeners advertising one endpoint are one node, and a node an
//! operator deleted comes back.

use std::time::{Duration, Instant};

use zkutil::testing::wait_until;

use crate::support::{ServerProcess, children, free_ports, observer, snapshot, zookeeper};

use super::{BASE, owners, server_args, time_to_exit};

#[test]
fn fast_restart_replaces_stale_node() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let ports = free_ports(3);
    let listen = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut first = ServerProcess::start(&server_args(&hosts, "30s", &listen));
    first.registered(3);
    let old = wait_until(Duration::from_secs(10), "three nodes", || {
        let now = snapshot(&obs, BASE);
        (now.len() == 3).then_some(owners(&now))
    });
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    let restarted = Instant::now();
    let second = ServerProcess::start(&server_args(&hosts, "30s", &listen));
    wait_until(
        Duration::from_secs(20),
        "the nodes are owned by the new process",
        || {
            let now = snapshot(&obs, BASE);
            let owners = owners(&now);
            (now.len() == 3 && owners.len() == 1 && owners.is_disjoint(&old)).then_some(())
        },
    );
    let took = restarted.elapsed();
    eprintln!("fast restart: registered again {took:?} after the new process started");
    // The old session would have kept them for 30 s.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        second.stderr().contains("replaced the node of session 0x"),
        "{}",
        second.stderr()
    );
    // Its own replacement is not "someone else" deleting its node.
    assert!(
        !second.stderr().contains("deleted by someone else"),
        "{}",
        second.stderr()
    );
}

#[test]
fn two_listeners_advertising_one_endpoint_are_one_registration() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port},127.0.0.2:{port}");
    let mut args = server_args(&hosts, "10s", &listen);
    args.extend(["--advertise", "127.0.0.1", "--drain", "0s"]);
    let mut server = ServerProcess::start(&args);
    server.wait_for_log("registered once", 1, Duration::from_secs(30));
    server.registered(1);
    assert_eq!(children(&obs, BASE), vec![format!("127.0.0.1:{port}")]);
    let _ = time_to_exit(&mut server);
    // One maintainer: nothing re-creates the node after deregistration.
    assert!(children(&obs, BASE).is_empty(), "{}", server.stderr());
    assert!(
        !server.stderr().contains("re-registered"),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_node_deleted_by_an_operator_is_recreated_and_the_log_says_who() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(&hosts, "10s", "127.0.0.1:0"));
    let name = server.registered(1).remove(0);
    let path = format!("{BASE}/{name}");
    let owner = obs
        .stat(&path)
        .expect("stat")
        .expect("registered")
        .ephemeral_owner();
    obs.delete(&path, None).expect("the operator's delete");
    wait_until(
        Duration::from_secs(20),
        "the node is back, same owner",
        || {
            obs.stat(&path)
                .ok()
                .flatten()
                .filter(|stat| stat.ephemeral_owner() == owner)
        },
    );
    server.wait_for_log(
        "deleted by someone else; re-created it",
        1,
        Duration::from_secs(20),
    );
}

/// A server whose session ZooKeeper expired is not registered until its
/// node is back, and stays unhealthy while re-creating it is refused: with
/// `--zk-auth`, a parent re-created open to strangers during the expiry.
#[test]
fn healthz_is_503_while_a_node_lost_with_its_session_is_not_back() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let mut args = server_args(&hosts, "2s", "127.0.0.1:0");
    args.extend(["--zk-auth", "svc:s3cret", "--metrics-listen", "127.0.0.1:0"]);
    let server = ServerProcess::start(&args);
    server.registered(1);
    let metrics = server.logged_addr("metrics=");
    let health = || zkutil::testing::http_get(metrics, "/healthz").ok();
    wait_until(Duration::from_secs(10), "healthy", || {
        (health()?.0 == 200).then_some(())
    });
    // Frozen past its session: ZooKeeper deletes its node; meanwhile a
    // stranger replaces the empty parent by one open to everyone.
    server.signal("STOP");
    wait_until(Duration::from_secs(30), "the node expires", || {
        children(&obs, BASE).is_empty().then_some(())
    });
    obs.delete(BASE, None).expect("deletes the empty parent");
    obs.ensure_path(BASE).expect("re-creates it open");
    server.signal("CONT");
    server.wait_for_log(
        "not re-registering under a parent open to strangers",
        1,
        Duration::from_secs(30),
    );
    // Refused, and it says so: a session is connected, the node is not there.
    let answers: Vec<u16> = (0..5)
        .filter_map(|_| health().map(|(status, _)| status))
        .collect();
    assert!(
        !answers.is_empty() && answers.iter().all(|&s| s == 503),
        "/healthz answered {answers:?} with no node registered; log:\n{}",
        server.stderr()
    );
    assert!(children(&obs, BASE).is_empty());
}
