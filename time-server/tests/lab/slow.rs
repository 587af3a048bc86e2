//! A slow ZooKeeper link (200 ms round trip, 50 ms jitter) from the first
//! connect on: the servers and one client reach ZooKeeper only through
//! relays on the control host that hold back every answer. Sessions must
//! hold with the default timeouts and no request may be lost; what the
//! delay costs is time, measured against a client on a direct link.

use std::time::{Duration, Instant};

use zkutil::Endpoint;
use zkutil::testing::{DelayProxy, wait_until};

use crate::support::{BASE, TIME_PORT, snapshot, zk_lab};
use crate::traffic::{lost_nothing, start_client, start_client_on, visibility};

/// Every answer of ZooKeeper this late (the request goes at once).
const RTT: Duration = Duration::from_millis(200);
/// Give or take this much, at random.
const JITTER: Duration = Duration::from_millis(50);
/// How long the registrations are watched: past the default session
/// timeout (10 s), so that a session the delay killed would be gone.
const WATCHED_FOR: Duration = Duration::from_secs(20);

#[test]
fn a_slow_zookeeper_link_keeps_registrations_and_requests_and_delays_changes() {
    let Some(mut world) = zk_lab() else { return };
    let relays: Vec<DelayProxy> = world
        .zk
        .iter()
        .map(|zk| {
            let bind = (world.lab.control_address(), 0).into();
            DelayProxy::start_on(bind, zk.socket(2181), RTT, JITTER).expect("a relay")
        })
        .collect();
    let slow_zk = relays
        .iter()
        .map(|r| r.addr().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (s1, s2) = (world.host("s1"), world.host("s2"));
    let (slow_host, direct_host) = (world.host("slow"), world.host("direct"));
    let servers = [
        world.time_server_on(&s1, &slow_zk, "10s"),
        world.time_server_on(&s2, &slow_zk, "10s"),
    ];
    let observer = world.observer();
    let before = wait_until(Duration::from_secs(30), "both servers register", || {
        let nodes = snapshot(&observer, BASE);
        (nodes.len() == 2).then_some(nodes)
    });
    let registered_at = Instant::now();
    let slow = start_client_on(&slow_host, &slow_zk);
    let direct = start_client(&world, &direct_host);
    let endpoint = Endpoint::from(s1.socket(TIME_PORT));
    // The slow client first: each change waits until it is seen there, so
    // the direct client keeps up. The other way round, the slow client
    // would still be reading the direct rounds' backlog (one read per
    // event, a round trip each) when its own rounds begin.
    let delayed = visibility(&observer, &slow, endpoint);
    let fast = visibility(&observer, &direct, endpoint);
    // A session the delay killed would be gone, and its node with it.
    while registered_at.elapsed() < WATCHED_FOR {
        assert_eq!(snapshot(&observer, BASE), before, "{}", world.report());
        std::thread::sleep(Duration::from_millis(100));
    }
    let summaries = [lost_nothing(&world, direct), lost_nothing(&world, slow)];

    let expiries: usize = servers
        .iter()
        .map(|s| s.log_count("ZooKeeper session expired"))
        .sum();
    let median = |s: &[Duration]| s[s.len() / 2];
    let max = |s: &[Duration]| s[s.len() - 1];
    println!(
        "slow ZooKeeper link ({RTT:?} round trip, {JITTER:?} jitter): a change reached the client in \
         {:?} (median) / {:?} (max) on a direct link, {:?} / {:?} on the slow one ({} samples each); \
         sessions expired: {expiries}; clients (direct, slow): {summaries:?}",
        median(&fast),
        max(&fast),
        median(&delayed),
        max(&delayed),
        fast.len()
    );
    assert_eq!(
        expiries,
        0,
        "a server's session expired; {}",
        world.report()
    );
    assert!(
        median(&delayed) >= RTT - JITTER,
        "the slow link was not slow: {delayed:?}"
    );
    assert!(
        max(&delayed) <= Duration::from_secs(10),
        "a change took {:?} to reach the client",
        max(&delayed)
    );
}
