//! SIGTERM while a registration's create is still on its way to ZooKeeper
//! (every answer of ZooKeeper 400 ms late): once the process has exited,
//! no node of it is left behind for a session timeout.

use std::time::{Duration, Instant};

use zkutil::testing::DelayProxy;

use crate::support::{ServerProcess, children, observer, zookeeper};

#[test]
fn a_stop_while_a_create_is_in_flight_leaves_no_node_behind() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
    let slow = DelayProxy::start(target, Duration::from_millis(400)).expect("a proxy");
    let hosts = slow.addr().to_string();
    // The moment of the signal after the listeners are up: the first
    // create is sent then, and answered 400 ms later.
    for (round, after) in [0u64, 150, 350, 600].into_iter().enumerate() {
        let base = format!("/shutdown{round}");
        let mut server = ServerProcess::start(&[
            "--zk",
            &hosts,
            "--base-path",
            &base,
            "--session-timeout",
            "10s",
            "--drain",
            "0s",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
        ]);
        zkutil::testing::TestProcess::stderr(&server).wait_until(
            Duration::from_secs(30),
            "the listeners are up",
            |lines| {
                (lines
                    .iter()
                    .filter(|(_, l)| l.contains("advertised="))
                    .count()
                    >= 2)
                    .then_some(())
            },
        );
        // The fault's moment, not a wait for a condition.
        std::thread::sleep(Duration::from_millis(after));
        server.signal("TERM");
        let status = server.wait(Duration::from_secs(30));
        let exited = Instant::now();
        assert!(
            status.success(),
            "round {round}: {status}\n{}",
            server.stderr()
        );
        // A node of a closed session is gone at once; one of a session left
        // open would stay for its 10 s timeout.
        let left =
            zkutil::testing::poll_until(Duration::from_secs(2), Duration::from_millis(20), || {
                children(&obs, &base).is_empty().then_some(())
            });
        assert!(
            left.is_some(),
            "round {round} (signal {after} ms after listening): {:?} left {:?} after exit\n{}",
            children(&obs, &base),
            exited.elapsed(),
            server.stderr()
        );
    }
}
