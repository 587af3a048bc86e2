//! The whole ensemble cut off from every server and client, for longer
//! than every session: the three ZooKeeper nodes still reach each other,
//! so the ensemble keeps running and expires every session. The servers
//! still reach the client, so it must lose no request: through the cut on
//! its last known list, and after it: the client's links come back first,
//! so its new session lists an empty registry before the servers register
//! again (README guarantees: "ZooKeeper cut off from everyone costs no
//! request"). After the heal every server registers again, once.

use std::time::{Duration, Instant};

use zkutil::testing::{poll_until, wait_until};

use crate::support::{BASE, TIME_PORT, snapshot, stop_client, zk_lab};

/// Every session's timeout, servers' and client's.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// How long the ensemble stays cut off: twice every session.
const CUT: Duration = Duration::from_secs(8);

#[test]
fn the_ensemble_cut_off_from_everyone_costs_no_request_and_every_server_registers_again() {
    let Some(mut world) = zk_lab() else { return };
    let (s1, s2, client_host) = (world.host("s1"), world.host("s2"), world.host("client"));
    let _servers = [world.time_server(&s1, "4s"), world.time_server(&s2, "4s")];
    let observer = world.observer();
    let mut endpoints = vec![
        s1.socket(TIME_PORT).to_string(),
        s2.socket(TIME_PORT).to_string(),
    ];
    endpoints.sort();
    let before = wait_until(Duration::from_secs(30), "both servers register", || {
        let nodes = snapshot(&observer, BASE);
        (nodes.len() == 2).then_some(nodes)
    });
    let client = world.time_client(&client_host);
    client.stdout().wait_for_lines(20, Duration::from_secs(30));
    // The observer's, both servers' and the client's.
    wait_until(
        Duration::from_secs(10),
        "the leader counts 4 sessions",
        || world.global_sessions().filter(|&n| n == 4),
    );

    let zk = world.zk.clone();
    let cut_at = Instant::now();
    world
        .lab
        .partition(&zk.iter().collect::<Vec<_>>(), &[&s1, &s2, &client_host]);
    // The ensemble runs on: it expires everyone's session but the
    // observer's (the control host is on neither side).
    let expired = wait_until(
        SESSION_TIMEOUT * 3,
        "ZooKeeper expires every session",
        || {
            (world.global_sessions() == Some(1) && snapshot(&observer, BASE).is_empty())
                .then(|| cut_at.elapsed())
        },
    );
    let during = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(during + 20, Duration::from_secs(30));
    // Past every expiry, the cut lasts its full length.
    poll_until(CUT * 2, Duration::from_millis(100), || {
        (cut_at.elapsed() >= CUT).then_some(())
    });

    // The client's links come back first: its new session lists an
    // empty registry (every server's session expired), the window in
    // which it must keep asking its last known servers.
    let client_back = Instant::now();
    world.lab.heal_host(&client_host);
    wait_until(
        Duration::from_secs(30),
        "the client has a session again",
        || world.global_sessions().filter(|&n| n == 2),
    );
    let lines = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(lines + 20, Duration::from_secs(30));

    let healed_at = Instant::now();
    world.lab.heal();
    let after = wait_until(
        Duration::from_secs(30),
        "both servers register again",
        || {
            let nodes = snapshot(&observer, BASE);
            (nodes.len() >= 2).then_some(nodes)
        },
    );
    let back = healed_at.elapsed();
    let lines = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(lines + 50, Duration::from_secs(30));
    let (summary, client) = stop_client(client);
    // The client's new session listed the registry before the servers
    // were back, and so lived on its last known list.
    let fell_back = client.stderr_text().contains("as a fallback");
    println!(
        "ensemble cut off from everyone for {:?} (the client's side {:?}): every session \
         expired after {expired:?}, both servers registered again {back:?} after the heal \
         (target 2 s); client (fell back on its last known list: {fell_back}): {summary}",
        healed_at - cut_at,
        client_back - cut_at
    );
    assert!(
        summary.contains("\"failed\":0,"),
        "requests lost: {summary}\n{}\nclient log:\n{}",
        world.report(),
        client.stderr_text()
    );
    let names: Vec<&str> = after.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(
        names,
        endpoints,
        "one node per endpoint; {}",
        world.report()
    );
    for (node, old) in after.iter().zip(&before) {
        assert_ne!(node.1, old.1, "a new session owns {}", node.0);
    }
    assert!(
        back <= Duration::from_secs(10),
        "registered again only {back:?} after the heal; {}",
        world.report()
    );
    // Once only: no second registration followed the first.
    assert_eq!(snapshot(&observer, BASE), after, "{}", world.report());
}
