//! A ZooKeeper follower cut off from everyone while a server's session is
//! on it: the quorum stays, the session moves to another node within its
//! timeout, so the registration must not flap (same owner session, same
//! creation time) and the server ends up healthy.

use std::time::{Duration, Instant};

use zkutil::testing::wait_until;

use crate::support::{BASE, METRICS_PORT, health, snapshot, zk_lab};

/// The server's session timeout: long enough to find the other follower.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn an_isolated_zookeeper_follower_does_not_make_registrations_flap() {
    let Some(mut world) = zk_lab() else { return };
    let leader = world.ensemble.leader().expect("a leader");
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    // The server knows only the followers: its session is on one of them.
    let zk_followers: Vec<String> = followers
        .iter()
        .map(|&i| world.zk[i].socket(2181).to_string())
        .collect();
    let host = world.host("server");
    let _server = world.time_server_on(&host, &zk_followers.join(","), "10s");
    // On the leader: an observer on the follower about to be isolated
    // would be cut off with it, and its reads would fail.
    let observer = world.observer_of(&[leader]);
    let before = wait_until(Duration::from_secs(30), "the server registers", || {
        let nodes = snapshot(&observer, BASE);
        (nodes.len() == 1).then_some(nodes)
    });
    let session = before[0].1;
    let (on, other) = wait_until(
        Duration::from_secs(10),
        "a follower lists the session",
        || {
            followers
                .iter()
                .find(|&&i| world.holds(i, session))
                .map(|&i| (i, followers[0] + followers[1] - i))
        },
    );

    let isolated = world.zk[on].clone();
    let cut_at = Instant::now();
    world.lab.isolate(&isolated);
    let moved = wait_until(
        SESSION_TIMEOUT,
        "the session moves to the other follower",
        || world.holds(other, session).then(|| cut_at.elapsed()),
    );
    // A flap is an expiry: watch the node for longer than the session lasts.
    while cut_at.elapsed() < SESSION_TIMEOUT + Duration::from_secs(2) {
        assert_eq!(snapshot(&observer, BASE), before, "{}", world.report());
        // Sampling is enough: a flap leaves a new owner and ctime behind.
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until(Duration::from_secs(10), "/healthz says 200", || {
        (health(host.socket(METRICS_PORT)) == Some(200)).then_some(())
    });
    println!("follower isolated: the server's session moved after {moved:?}, no flap");

    world.lab.heal();
    assert!(
        world.ensemble.wait_serving(on, Duration::from_secs(30)),
        "the follower is back; {}",
        world.report()
    );
    assert_eq!(snapshot(&observer, BASE), before, "{}", world.report());
}
