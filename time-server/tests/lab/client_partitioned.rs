//! A client cut off from ZooKeeper but not from the servers: its view of
//! the registry goes stale and its session expires, but the servers it
//! knows still answer, so it must lose no request, before, during or after.

use std::time::Duration;

use zkutil::testing::wait_until;

use crate::support::{BASE, TIME_PORT, snapshot, stop_client, zk_lab};

#[test]
fn a_client_cut_off_from_zookeeper_but_not_from_the_servers_loses_no_request() {
    let Some(mut world) = zk_lab() else { return };
    let (s1, s2, client_host) = (world.host("s1"), world.host("s2"), world.host("client"));
    let _servers = [world.time_server(&s1, "4s"), world.time_server(&s2, "4s")];
    let observer = world.observer();
    wait_until(Duration::from_secs(30), "both servers register", || {
        (snapshot(&observer, BASE).len() == 2).then_some(())
    });
    let client = world.time_client(&client_host);
    client.stdout().wait_for_lines(20, Duration::from_secs(30));
    let with_client = wait_until(
        Duration::from_secs(10),
        "the leader counts 4 sessions",
        || world.global_sessions().filter(|&n| n == 4),
    );

    let zk = world.zk.clone();
    world
        .lab
        .partition(&[&client_host], &zk.iter().collect::<Vec<_>>());
    // ZooKeeper expires the client's session: the longest it can be cut off.
    wait_until(
        Duration::from_secs(30),
        "ZooKeeper expires the client's session",
        || world.global_sessions().filter(|&n| n == with_client - 1),
    );
    let during = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(during + 20, Duration::from_secs(30));

    world.lab.heal();
    // Back: a new session, the list read again; then some more requests.
    wait_until(
        Duration::from_secs(30),
        "the client has a session again",
        || world.global_sessions().filter(|&n| n == with_client),
    );
    let after = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(after + 20, Duration::from_secs(30));
    let (summary, client) = stop_client(client);
    println!("client partitioned from ZooKeeper: {summary}");
    assert!(
        summary.contains("\"failed\":0,"),
        "requests lost: {summary}\n{}\nclient log:\n{}",
        world.report(),
        client.stderr_text()
    );
    let ports = format!(":{TIME_PORT}");
    assert!(summary.contains(&ports), "{summary}");
}
