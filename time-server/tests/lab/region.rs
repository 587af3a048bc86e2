//! Two regions: three voters in A, two observers in B 40 ms away. A
//! time-server and a time-client in B use B's observers only. B cut off
//! from A for longer than the server's session: A's registry loses B's
//! server, but the client in B, which can no longer hear about it, keeps
//! serving from its last known list (both servers, no request lost); after
//! the heal, B's server registers again and all is as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zkutil::Session;
use zkutil::testing::lab::Host;
use zkutil::testing::wait_until;

use crate::support::{BASE, TIME_PORT, region_lab, snapshot};
use crate::traffic::{lost_nothing, start_client_on};

/// The round trip between the regions.
const RTT: Duration = Duration::from_millis(40);

/// The connect string of `hosts`' ZooKeeper nodes.
fn connect_string(hosts: &[Host]) -> String {
    let sockets: Vec<String> = hosts.iter().map(|h| h.socket(2181).to_string()).collect();
    sockets.join(",")
}

/// The number of "server list changed" lines in the client's log so far.
fn list_changes(client: &zkutil::testing::TestProcess) -> usize {
    client
        .stderr()
        .lines()
        .iter()
        .filter(|(_, l)| l.contains("server list changed"))
        .count()
}

#[test]
fn a_region_cut_off_from_the_voters_keeps_serving_from_its_last_known_list() {
    let Some((mut world, wan)) = region_lab(RTT) else {
        return;
    };
    let (in_a, in_b) = (
        connect_string(&world.zk[..3]),
        connect_string(&world.zk[3..]),
    );
    for b in 3..5 {
        assert_eq!(world.ensemble.mode(b).as_deref(), Some("observer"));
    }
    let (a_server, b_server, b_client) = (world.host("as"), world.host("bs"), world.host("bc"));
    let _servers = [
        world.time_server_on(&a_server, &in_a, "4s"),
        world.time_server_on(&b_server, &in_b, "4s"),
    ];
    let a: Arc<Session> = zkutil::SessionConfig::new(&in_a)
        .with_session_timeout(Duration::from_secs(10))
        .connect()
        .map(Arc::new)
        .expect("a session in region A");
    wait_until(Duration::from_secs(30), "both servers register", || {
        (snapshot(&a, BASE).len() == 2).then_some(())
    });
    let client = start_client_on(&b_client, &in_b);
    let changes_before = list_changes(&client);

    let cut_at = Instant::now();
    wan.cut(&mut world.lab);
    // Past B's server's session: A's registry forgets it.
    wait_until(Duration::from_secs(30), "A forgets B's server", || {
        (snapshot(&a, BASE).len() == 1).then_some(())
    });
    let forgotten_after = cut_at.elapsed();
    let during = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(during + 50, Duration::from_secs(30));
    let changes_during = list_changes(&client) - changes_before;
    let b_endpoint = b_server.socket(TIME_PORT).to_string();
    let b_answered = client.stdout().lines()[during..]
        .iter()
        .filter(|(_, l)| l.contains(&b_endpoint))
        .count();

    wan.heal(&mut world.lab);
    let healed_at = Instant::now();
    wait_until(
        Duration::from_secs(30),
        "B's server registers again",
        || (snapshot(&a, BASE).len() == 2).then_some(()),
    );
    let back_after = healed_at.elapsed();
    let after = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(after + 20, Duration::from_secs(30));
    let summary = lost_nothing(&world, client);
    println!(
        "region B ({RTT:?} away) cut off: A forgot B's server after {forgotten_after:?}; \
         the client in B changed its list {changes_during} times meanwhile, and B's server \
         answered {b_answered} of its next 50 requests; \
         B's server back in A {back_after:?} after the heal; client: {summary}"
    );
    assert_eq!(
        changes_during,
        0,
        "the client in B dropped a server it could not hear about; {}",
        world.report()
    );
    assert!(
        b_answered > 0,
        "B's server, gone from A's registry, answered nothing in B"
    );
}
