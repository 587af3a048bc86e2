//! SIGTERM with ZooKeeper down: the server exits within its drain, also
//! after its client declared the session expired.

use std::time::Duration;

use zkutil::testing::ZkServer;

use crate::support::{ServerProcess, zookeeper};

use super::{server_args, time_to_exit};

/// Starts a server with three listeners and a 1 s drain, waits until it is
/// registered, and stops ZooKeeper.
fn registered_server_then_zookeeper_down(session_timeout: &str) -> (ServerProcess, ZkServer) {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let mut args = server_args(
        &hosts,
        session_timeout,
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    );
    args.extend(["--drain", "1s"]);
    let server = ServerProcess::start(&args);
    server.registered(3);
    zk.kill();
    server.wait_for_log("disconnected from ZooKeeper", 1, Duration::from_secs(30));
    (server, zk)
}

#[test]
fn sigterm_with_zookeeper_down_exits_within_drain_plus_two_seconds() {
    let (mut server, _zk) = registered_server_then_zookeeper_down("30s");
    let took = time_to_exit(&mut server);
    eprintln!("stopped {took:?} after SIGTERM with ZooKeeper down (drain 1 s)");
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}; log:\n{}",
        server.stderr()
    );
}

#[test]
fn sigterm_after_the_client_declared_expiry_exits_without_a_close_warning() {
    let (mut server, _zk) = registered_server_then_zookeeper_down("2s");
    server.wait_for_log(
        "ZooKeeper session expired (as far as the client can tell)",
        1,
        Duration::from_secs(30),
    );
    let took = time_to_exit(&mut server);
    eprintln!("stopped {took:?} after SIGTERM with the session expired (drain 1 s)");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        !server.stderr().contains("did not confirm"),
        "{}",
        server.stderr()
    );
}
