//! A time-server that clients reach but ZooKeeper does not: the fault no
//! process test can make. Its session must expire (its node vanishes, so
//! clients stop picking a server that nobody can vouch for), its health
//! check must say so while it lasts, and after the heal it must register
//! again, once.

use std::time::{Duration, Instant};

use zkutil::testing::{poll_until, wait_until};

use crate::support::{BASE, METRICS_PORT, TIME_PORT, ask, health, snapshot, zk_lab};

/// The server's session timeout.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

#[test]
fn a_server_cut_off_from_zookeeper_expires_reports_unhealthy_and_registers_again_once_after_the_heal()
 {
    let Some(mut world) = zk_lab() else { return };
    let host = world.host("server");
    let server = world.time_server(&host, "4s");
    let observer = world.observer();
    let endpoint = host.socket(TIME_PORT).to_string();
    let healthz = host.socket(METRICS_PORT);
    let before = wait_until(Duration::from_secs(30), "the server registers", || {
        let nodes = snapshot(&observer, BASE);
        (nodes.len() == 1 && health(healthz) == Some(200)).then_some(nodes)
    });
    assert_eq!(before[0].0, endpoint);

    let zk = world.zk.clone();
    let cut_at = Instant::now();
    world
        .lab
        .partition(&[&host], &zk.iter().collect::<Vec<_>>());

    // Unhealthy within the session timeout: it cannot vouch for its node.
    let unhealthy = poll_until(SESSION_TIMEOUT, Duration::from_millis(50), || {
        (health(healthz) == Some(503)).then(|| cut_at.elapsed())
    });
    let unhealthy = unhealthy.unwrap_or_else(|| {
        panic!(
            "/healthz not 503 within {SESSION_TIMEOUT:?} of the partition ({:?}); {}\nserver log:\n{}",
            health(healthz),
            world.report(),
            server.stderr_text()
        )
    });
    // ZooKeeper expires the session itself: the node vanishes.
    let vanished = poll_until(SESSION_TIMEOUT * 3, Duration::from_millis(50), || {
        snapshot(&observer, BASE)
            .is_empty()
            .then(|| cut_at.elapsed())
    })
    .unwrap_or_else(|| panic!("the node outlived the session; {}", world.report()));
    // The clients' side of the network is untouched: it still serves.
    let reply = ask(host.socket(TIME_PORT)).expect("the server still answers clients");
    assert!(reply.starts_with(&endpoint), "{reply}");

    let healed_at = Instant::now();
    world.lab.heal();
    let after = wait_until(
        Duration::from_secs(30),
        "the server registers again",
        || {
            let nodes = snapshot(&observer, BASE);
            (!nodes.is_empty()).then_some(nodes)
        },
    );
    let back = healed_at.elapsed();
    wait_until(Duration::from_secs(10), "/healthz says 200 again", || {
        (health(healthz) == Some(200)).then_some(())
    });
    println!(
        "server partitioned from ZooKeeper: 503 after {unhealthy:?}, node gone after {vanished:?}, \
         registered again {back:?} after the heal (target 2 s)"
    );
    assert_eq!(after.len(), 1, "one node, no duplicate: {after:?}");
    assert_eq!(after[0].0, endpoint);
    assert_ne!(after[0].1, before[0].1, "a new session owns it");
    assert!(
        back <= Duration::from_secs(10),
        "registered again only {back:?} after the heal; {}",
        world.report()
    );
    // Once only: no second registration follows the first.
    assert_eq!(snapshot(&observer, BASE), after, "{}", world.report());
}
