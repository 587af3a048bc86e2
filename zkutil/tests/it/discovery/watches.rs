//! Changes as events: one watch per cache on ZooKeeper, each change one
//! event, none lost, and the re-listing way of older ZooKeepers.

use std::time::Duration;

use zkutil::testing::wait_until;
use zkutil::{BasePath, Change, Discovery};

use crate::support::{proxy_to, session, session_through, zookeeper};

use super::{endpoint, register};

#[test]
fn adding_then_removing_one_instance_yields_one_added_then_one_removed() {
    let zk = zookeeper();
    let s = session(&zk);
    let _first = register(&s, "127.0.0.1:1");
    let discovery = Discovery::start(s.clone(), &BasePath::from_static("/go_servers"))
        .expect("discovery starts");
    let changes = discovery.subscribe();
    let version = discovery.snapshot().version();
    let second = register(&s, "127.0.0.1:2");
    let added = changes
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no event: {e}"));
    assert_eq!(
        added,
        Change::Added(zkutil::Instance::new(endpoint("127.0.0.1:2")))
    );
    second.deregister().expect("deregisters");
    let removed = changes
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no event: {e}"));
    assert_eq!(
        removed,
        Change::Removed(zkutil::Instance::new(endpoint("127.0.0.1:2")))
    );
    // A later change is the next event: nothing came in between.
    let _sentinel = register(&s, "127.0.0.1:3");
    let next = changes
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no event: {e}"));
    assert_eq!(
        next,
        Change::Added(zkutil::Instance::new(endpoint("127.0.0.1:3"))),
        "an extra event before the sentinel"
    );
    assert_eq!(discovery.snapshot().version(), version + 3);
}

#[test]
fn changes_arrive_as_events_and_none_is_lost_across_a_reconnect_or_a_rebuild() {
    let zk = zookeeper();
    let s = session(&zk);
    let proxy = proxy_to(&zk, Duration::ZERO);
    let through = session_through(&proxy, Duration::from_secs(10));
    let _a = register(&s, "127.0.0.1:1");
    let b = register(&s, "127.0.0.1:2");
    let discovery = Discovery::start(through.clone(), &BasePath::from_static("/go_servers"))
        .expect("discovery");
    assert!(
        discovery.follows_events(),
        "ZooKeeper 3.8 has persistent watches"
    );
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 2)
        .expect("the first listing");
    let listings = discovery.listings_for_testing();

    // A change is one event: applied without a re-listing.
    let c = register(&s, "127.0.0.1:3");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 3)
        .expect("the new instance is seen");
    assert_eq!(
        discovery.listings_for_testing(),
        listings,
        "no re-listing for one change"
    );

    // Disconnected: the client does not restore persistent watches, so the
    // changes made meanwhile come from the re-listing after the reconnect.
    proxy.cut();
    b.deregister().expect("deregisters");
    let _d = register(&s, "127.0.0.1:4");
    let ports = |snap: &zkutil::Snapshot| -> Vec<u16> {
        snap.instances()
            .iter()
            .map(|i| i.endpoint().port())
            .collect()
    };
    discovery
        .wait_for(Duration::from_secs(20), |snap| ports(snap) == [1, 3, 4])
        .expect("a deletion and a creation made while disconnected are both seen");
    // ... and the watch is back: a later change is an event again.
    let relisted = discovery.listings_for_testing();
    c.deregister().expect("deregisters");
    discovery
        .wait_for(Duration::from_secs(20), |snap| ports(snap) == [1, 4])
        .expect("the watch was added again");
    assert_eq!(discovery.listings_for_testing(), relisted);

    // A rebuilt session: the same.
    let old = through.id();
    through.expire_for_testing().expect("expires the session");
    let _e = register(&s, "127.0.0.1:5");
    wait_until(Duration::from_secs(30), "a new session", || {
        (through.id() != old).then_some(())
    });
    discovery
        .wait_for(Duration::from_secs(20), |snap| ports(snap) == [1, 4, 5])
        .expect("the change around the rebuild is seen");
    let _f = register(&s, "127.0.0.1:6");
    discovery
        .wait_for(Duration::from_secs(20), |snap| ports(snap) == [1, 4, 5, 6])
        .expect("and the watch works under the new session");
    assert_eq!(
        discovery.pending_watches_for_testing(),
        1,
        "one watch, however many reconnects"
    );
}

#[test]
fn the_re_listing_way_of_older_zookeepers_still_sees_every_change() {
    let zk = zookeeper();
    let s = session(&zk);
    let _a = register(&s, "127.0.0.1:1");
    let discovery = Discovery::start_relisting_for_testing(
        s.clone(),
        &BasePath::from_static("/go_servers"),
        false,
    )
    .expect("discovery");
    assert!(!discovery.follows_events());
    let b = register(&s, "127.0.0.1:2");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 2)
        .expect("a creation");
    let listings = discovery.listings_for_testing();
    b.deregister().expect("deregisters");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 1)
        .expect("a deletion");
    assert!(
        discovery.listings_for_testing() > listings,
        "seen by re-listing"
    );
    assert_eq!(discovery.pending_watches_for_testing(), 1);
}

#[test]
fn dropping_a_discovery_removes_its_persistent_watch() {
    let zk = zookeeper();
    let s = session(&zk);
    let watches = || zkutil::testing::mntr_value(zk.port(), "zk_watch_count").unwrap_or(u64::MAX);
    let before = watches();
    let discovery =
        Discovery::start(s.clone(), &BasePath::from_static("/go_servers")).expect("discovery");
    // ZooKeeper counts a persistent recursive watch in both its data and
    // child watch tables.
    wait_until(Duration::from_secs(10), "the watch is added", || {
        (watches() > before && watches() != u64::MAX).then_some(())
    });
    drop(discovery);
    wait_until(Duration::from_secs(10), "the watch is removed", || {
        (watches() == before).then_some(())
    });
}

#[test]
fn dropping_one_of_two_discoveries_on_a_session_keeps_the_others_events_coming() {
    let zk = zookeeper();
    let s = session(&zk);
    let owner = session(&zk);
    let _a = register(&owner, "127.0.0.1:1");
    let first =
        Discovery::start(s.clone(), &BasePath::from_static("/go_servers")).expect("discovery");
    let second =
        Discovery::start(s.clone(), &BasePath::from_static("/go_servers")).expect("discovery");
    for cache in [&first, &second] {
        cache
            .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 1)
            .expect("the first listing");
    }
    drop(first);
    let listings = second.listings_for_testing();
    let _b = register(&owner, "127.0.0.1:2");
    second
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 2)
        .expect("the other's watch still delivers");
    assert_eq!(
        second.listings_for_testing(),
        listings,
        "seen as an event, not by a re-listing"
    );
}
