//! The ZooKeeper leader cut off from everyone while a server's session is
//! on it: the followers elect a new leader, the session moves to one of
//! them and stays alive (a new leader gives every session a fresh
//! timeout), so the registration must not flap (same owner session, same
//! creation time) and the server ends up healthy.

use std::time::{Duration, Instant};

use zkutil::testing::{poll_until, wait_until};

use crate::support::{BASE, METRICS_PORT, health, snapshot, try_snapshot, zk_lab};

/// The server's session timeout: longer than an election (the followers
/// notice the leader gone after `syncLimit`, 5 s in the lab's ensemble).
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn an_isolated_zookeeper_leader_does_not_make_registrations_flap() {
    let Some(mut world) = zk_lab() else { return };
    let leader = world.ensemble.leader().expect("a leader");
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let host = world.host("server");
    // The session lands on the leader: the followers refuse the server's
    // connects at once while it starts (the client shuffles its hosts).
    for &i in &followers {
        let follower = world.zk[i].clone();
        world.lab.cut_one_way(&host, &follower);
    }
    let _server = world.time_server(&host, "10s");
    let observer = world.observer();
    let before = wait_until(Duration::from_secs(30), "the server registers", || {
        let nodes = snapshot(&observer, BASE);
        (nodes.len() == 1).then_some(nodes)
    });
    let session = before[0].1;
    wait_until(
        Duration::from_secs(10),
        "the leader lists the session",
        || world.holds(leader, session).then_some(()),
    );
    world.lab.heal();

    let isolated = world.zk[leader].clone();
    let cut_at = Instant::now();
    world.lab.isolate(&isolated);
    let elected = wait_until(Duration::from_secs(30), "a follower is elected", || {
        followers
            .iter()
            .any(|&i| world.ensemble.mode(i).as_deref() == Some("leader"))
            .then(|| cut_at.elapsed())
    });
    let moved = wait_until(
        SESSION_TIMEOUT * 2,
        "the session moves to a follower",
        || {
            followers
                .iter()
                .any(|&i| world.holds(i, session))
                .then(|| cut_at.elapsed())
        },
    );
    // A flap is an expiry: watch the node for longer than the session
    // lasts, through every read the new quorum answers.
    let mut samples = 0;
    while cut_at.elapsed() < moved + SESSION_TIMEOUT + Duration::from_secs(2) {
        if let Some(nodes) = try_snapshot(&observer, BASE) {
            assert_eq!(
                nodes,
                before,
                "the registration flapped; {}",
                world.report()
            );
            samples += 1;
        }
        // Sampling is enough: a flap leaves a new owner and ctime behind.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        samples > 0,
        "the new quorum never answered; {}",
        world.report()
    );
    poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (health(host.socket(METRICS_PORT)) == Some(200)).then_some(())
    })
    .unwrap_or_else(|| panic!("/healthz is not 200; {}", world.report()));
    println!(
        "leader isolated: a new leader after {elected:?}, the server's session moved after \
         {moved:?}, no flap ({samples} reads)"
    );

    world.lab.heal();
    assert!(
        world.ensemble.wait_serving(leader, Duration::from_secs(30)),
        "the old leader is back; {}",
        world.report()
    );
    assert_eq!(snapshot(&observer, BASE), before, "{}", world.report());
}
