//! Every ZooKeeper link of the servers and the client losing 5% of its
//! packets: TCP hides the loss behind retransmits, so registrations must
//! hold (no session expires with the default timeouts) and the client must
//! lose nothing. What loss costs is time: a change made in the registry
//! reaches the client later, and this test prints how much.

use std::time::{Duration, Instant};

use zkutil::Endpoint;
use zkutil::testing::lab::Host;

use crate::support::{BASE, TIME_PORT, snapshot, zk_lab};
use crate::traffic::{lost_nothing, start_client, visibility};

/// The loss on each link, in percent.
const LOSS: u8 = 5;
/// How long the loss lasts: well past the default session timeout (10 s),
/// so that a session the loss killed would have expired by the end.
const LOSSY_FOR: Duration = Duration::from_secs(25);

/// TCP segments `host` retransmitted so far (its namespace's counters).
fn retransmits(host: &Host) -> u64 {
    let output = host
        .command("cat")
        .arg("/proc/net/snmp")
        .output()
        .expect("cat in the host");
    let snmp = String::from_utf8_lossy(&output.stdout);
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find_map(|(n, v)| (n == "RetransSegs").then(|| v.parse().ok())?)
        .unwrap_or(0)
}

#[test]
fn a_lossy_zookeeper_link_keeps_registrations_and_requests_and_delays_changes() {
    let Some(mut world) = zk_lab() else { return };
    let (s1, s2, client_host) = (world.host("s1"), world.host("s2"), world.host("client"));
    let servers = [world.time_server(&s1, "10s"), world.time_server(&s2, "10s")];
    let observer = world.observer();
    let before =
        zkutil::testing::wait_until(Duration::from_secs(30), "both servers register", || {
            let nodes = snapshot(&observer, BASE);
            (nodes.len() == 2).then_some(nodes)
        });
    let client = start_client(&world, &client_host);
    let endpoint = Endpoint::from(s1.socket(TIME_PORT));
    let clean = visibility(&observer, &client, endpoint);

    let zk = world.zk.clone();
    for host in [&s1, &s2, &client_host] {
        for node in &zk {
            world.lab.lossy(host, node, LOSS);
        }
    }
    let lossy_at = Instant::now();
    let every_host = [&s1, &s2, &client_host, &zk[0], &zk[1], &zk[2]];
    let retransmitted: u64 = every_host.iter().map(|h| retransmits(h)).sum();
    let lossy = visibility(&observer, &client, endpoint);
    // A session the loss killed would be gone, and its node with it.
    while lossy_at.elapsed() < LOSSY_FOR {
        assert_eq!(snapshot(&observer, BASE), before, "{}", world.report());
        // Sampling is enough: a flap leaves a new owner and ctime behind.
        std::thread::sleep(Duration::from_millis(100));
    }
    let retransmitted = every_host.iter().map(|h| retransmits(h)).sum::<u64>() - retransmitted;
    world.lab.heal();
    let summary = lost_nothing(&world, client);

    let expiries: usize = servers
        .iter()
        .map(|s| s.log_count("ZooKeeper session expired"))
        .sum();
    let median = |s: &[Duration]| s[s.len() / 2];
    let max = |s: &[Duration]| s[s.len() - 1];
    println!(
        "{LOSS}% loss on every ZooKeeper link for {LOSSY_FOR:?}: a change reached the client in \
         {:?} (median) / {:?} (max) without loss, {:?} / {:?} with it ({} samples each); \
         TCP retransmitted {retransmitted} segments in all; sessions expired: {expiries}; client: {summary}",
        median(&clean),
        max(&clean),
        median(&lossy),
        max(&lossy),
        clean.len()
    );
    assert_eq!(
        expiries,
        0,
        "a server's session expired; {}",
        world.report()
    );
    assert!(
        max(&lossy) <= Duration::from_secs(10),
        "a change took {:?} to reach the client",
        max(&lossy)
    );
}
