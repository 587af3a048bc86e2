//! A server whose packets to ZooKeeper are dropped on arrival, while
//! ZooKeeper's still reach it: the one-way cut a firewall rule or a broken
//! link makes, where the server is told nothing (its connects time out).
//! It must end as the full partition does: the node gone after the session
//! timeout, `/healthz` 503 within it, registered again once after the
//! heal; and a client, which still reaches both servers, loses nothing.

use std::time::{Duration, Instant};

use zkutil::testing::{poll_until, wait_until};

use crate::support::{BASE, METRICS_PORT, TIME_PORT, health, snapshot, stop_client, zk_lab};

/// The servers' session timeout.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);

#[test]
fn a_server_whose_packets_to_zookeeper_are_dropped_expires_and_registers_again_once() {
    let Some(mut world) = zk_lab() else { return };
    let (cut, other, client_host) = (world.host("s1"), world.host("s2"), world.host("client"));
    let server = world.time_server(&cut, "4s");
    let _other = world.time_server(&other, "4s");
    let observer = world.observer();
    let endpoint = cut.socket(TIME_PORT).to_string();
    let healthz = cut.socket(METRICS_PORT);
    let before = wait_until(Duration::from_secs(30), "both servers register", || {
        let nodes = snapshot(&observer, BASE);
        (nodes.len() == 2 && health(healthz) == Some(200)).then_some(nodes)
    });
    let client = world.time_client(&client_host);
    client.stdout().wait_for_lines(20, Duration::from_secs(30));

    let cut_at = Instant::now();
    for zk in world.zk.clone() {
        world.lab.drop_on_arrival(&cut, &zk);
    }
    let unhealthy = poll_until(SESSION_TIMEOUT, Duration::from_millis(50), || {
        (health(healthz) == Some(503)).then(|| cut_at.elapsed())
    })
    .unwrap_or_else(|| {
        panic!(
            "/healthz not 503 within {SESSION_TIMEOUT:?} of the cut ({:?}); {}\nserver log:\n{}",
            health(healthz),
            world.report(),
            server.stderr_text()
        )
    });
    let mine = |nodes: &[(String, zkutil::SessionId, i64)]| {
        nodes.iter().filter(|n| n.0 == endpoint).count()
    };
    let vanished = poll_until(SESSION_TIMEOUT * 3, Duration::from_millis(50), || {
        (mine(&snapshot(&observer, BASE)) == 0).then(|| cut_at.elapsed())
    })
    .unwrap_or_else(|| panic!("the node outlived the session; {}", world.report()));
    let during = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(during + 20, Duration::from_secs(30));

    let healed_at = Instant::now();
    world.lab.heal();
    let after = wait_until(
        Duration::from_secs(30),
        "the server registers again",
        || {
            let nodes = snapshot(&observer, BASE);
            (mine(&nodes) > 0).then_some(nodes)
        },
    );
    let back = healed_at.elapsed();
    wait_until(Duration::from_secs(10), "/healthz says 200 again", || {
        (health(healthz) == Some(200)).then_some(())
    });
    let lines = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(lines + 20, Duration::from_secs(30));
    let (summary, client) = stop_client(client);
    println!(
        "server cut one way (its packets to ZooKeeper dropped): 503 after {unhealthy:?}, node gone \
         after {vanished:?}, registered again {back:?} after the heal (target 2 s); client: {summary}"
    );
    assert!(
        summary.contains("\"failed\":0,"),
        "requests lost: {summary}\n{}\nclient log:\n{}",
        world.report(),
        client.stderr_text()
    );
    assert_eq!(after.len(), 2, "one node each, no duplicate: {after:?}");
    assert_eq!(mine(&after), 1, "{after:?}");
    let old = before
        .iter()
        .find(|n| n.0 == endpoint)
        .expect("registered before");
    let new = after
        .iter()
        .find(|n| n.0 == endpoint)
        .expect("registered after");
    assert_ne!(new.1, old.1, "a new session owns it");
    assert!(
        back <= Duration::from_secs(10),
        "registered again only {back:?} after the heal; {}",
        world.report()
    );
    // Once only: no second registration follows the first.
    assert_eq!(snapshot(&observer, BASE), after, "{}", world.report());
}
