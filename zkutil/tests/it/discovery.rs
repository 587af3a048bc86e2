//! Discovery: a watch-driven cache that lists once, then follows changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zkutil::testing::wait_until;
use zkutil::{BasePath, Change, Discovery, Endpoint, Metadata, Registration, SessionConfig};

use crate::support::{proxy_to, session, session_through, zookeeper};

fn endpoint(text: &str) -> Endpoint {
    text.parse().expect("a valid literal")
}

fn register(s: &Arc<zkutil::Session>, text: &str) -> Registration {
    let e = endpoint(text);
    let metadata = Metadata::for_this_process(e, SystemTime::now(), "test");
    Registration::register(s, &BasePath::default(), e, &metadata).expect("registers")
}

fn endpoints(discovery: &Discovery) -> Vec<String> {
    discovery
        .snapshot()
        .instances()
        .iter()
        .map(|i| i.endpoint().to_string())
        .collect()
}

#[test]
fn the_cache_lists_valid_children_and_skips_malformed_ones() {
    let zk = zookeeper();
    let s = session(&zk);
    let regs: Vec<Registration> = ["127.0.0.1:1", "[::1]:8897", "10.0.0.1:80"]
        .iter()
        .map(|t| register(&s, t))
        .collect();
    for bad in [
        "foo",
        "1.2.3.4:99999",
        "256.0.0.1:80",
        ":80",
        &"x".repeat(1024),
    ] {
        s.create_ephemeral(&format!("/go_servers/{bad}"), b"")
            .unwrap_or_else(|err| panic!("{bad}: {err}"));
    }
    s.create_ephemeral("/go_servers/127.0.0.1:2", b"not json")
        .expect("creates the node");
    s.create_ephemeral("/go_servers/127.0.0.1:3", &vec![b'{'; 1_000_000])
        .expect("creates the node");
    let discovery =
        Discovery::start_with_metadata(s.clone(), &BasePath::default()).expect("discovery starts");
    let snapshot = discovery.snapshot();
    assert!(!snapshot.is_stale());
    let found: Vec<String> = snapshot
        .instances()
        .iter()
        .map(|i| i.endpoint().to_string())
        .collect();
    assert_eq!(
        found,
        [
            "10.0.0.1:80",
            "127.0.0.1:1",
            "127.0.0.1:2",
            "127.0.0.1:3",
            "[::1]:8897"
        ]
    );
    let with_metadata: Vec<bool> = snapshot
        .instances()
        .iter()
        .map(|i| i.metadata().is_some())
        .collect();
    assert_eq!(
        with_metadata,
        [true, true, false, false, true],
        "bad metadata is skipped, the instance kept"
    );
    drop(regs);
    wait_until(
        Duration::from_secs(10),
        "deregistered nodes leave the cache",
        || (endpoints(&discovery) == ["127.0.0.1:2", "127.0.0.1:3"]).then_some(()),
    );
}

#[test]
fn adding_then_removing_one_instance_yields_one_added_then_one_removed() {
    let zk = zookeeper();
    let s = session(&zk);
    let _first = register(&s, "127.0.0.1:1");
    let discovery = Discovery::start(s.clone(), &BasePath::default()).expect("discovery starts");
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
fn a_missing_base_path_is_an_empty_list_until_it_appears() {
    let zk = zookeeper();
    let s = session(&zk);
    let discovery = Discovery::start(s.clone(), &BasePath::default()).expect("discovery starts");
    assert!(discovery.snapshot().instances().is_empty());
    assert!(!discovery.snapshot().is_stale());
    let _reg = register(&s, "127.0.0.1:7");
    let snapshot = discovery.wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 1);
    assert!(
        snapshot.is_some(),
        "the cache never saw the base path appear"
    );
}

#[test]
fn the_cache_goes_stale_while_zookeeper_is_down_and_fresh_when_it_returns() {
    let mut zk = zookeeper();
    let owner = session(&zk);
    let _reg = register(&owner, "127.0.0.1:9");
    let s = SessionConfig::new(zk.connect_string())
        .with_session_timeout(Duration::from_secs(20))
        .connect()
        .map(Arc::new)
        .expect("connects to ZooKeeper");
    let discovery = Discovery::start(s, &BasePath::default()).expect("discovery starts");
    let changes = discovery.subscribe();
    zk.kill();
    let stale = discovery
        .wait_for(Duration::from_secs(20), |snap| snap.is_stale())
        .unwrap_or_else(|| panic!("never stale"));
    assert_eq!(stale.instances().len(), 1, "the last known list is kept");
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(5)).ok(),
        Some(Change::Stale)
    );
    zk.restart().expect("restarts");
    discovery
        .wait_for(Duration::from_secs(30), |snap| !snap.is_stale())
        .unwrap_or_else(|| panic!("never fresh"));
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(5)).ok(),
        Some(Change::Fresh)
    );
}

#[test]
fn the_cache_rearms_its_watch_after_a_session_rebuild() {
    let zk = zookeeper();
    let owner = session(&zk);
    let s = session(&zk);
    let discovery = Discovery::start(s.clone(), &BasePath::default()).expect("discovery starts");
    s.expire_for_testing().unwrap_or_else(|e| panic!("{e:?}"));
    let rebuilt = wait_until(Duration::from_secs(30), "the session is rebuilt", || {
        (s.state() == zkutil::SessionState::Connected).then(|| s.id())
    });
    let _reg = register(&owner, "127.0.0.1:11");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 1)
        .unwrap_or_else(|| panic!("no watch after rebuild (session {rebuilt:#x})"));
}

#[test]
fn listing_instances_with_metadata_costs_one_round_trip_not_one_per_instance() {
    let zk = zookeeper();
    let s = session(&zk);
    let regs: Vec<Registration> = (1..=40)
        .map(|port| register(&s, &format!("127.0.0.1:{port}")))
        .collect();
    // Every answer of ZooKeeper arrives 100 ms late: 41 sequential reads
    // would take over 4 s; the list plus one pipelined batch, well under 1 s.
    let proxy = proxy_to(&zk, Duration::from_millis(100));
    let slow = SessionConfig::new(proxy.addr().to_string())
        .with_session_timeout(Duration::from_secs(10))
        .with_request_timeout(Duration::from_secs(20))
        .connect()
        .expect("a session through the proxy");
    let started = std::time::Instant::now();
    let listed = zkutil::list_instances(&slow, &BasePath::default(), true).expect("list");
    let took = started.elapsed();
    eprintln!("40 instances with metadata listed in {took:?} at 100 ms per answer");
    assert_eq!(listed.len(), regs.len());
    assert!(listed.iter().all(|i| i.metadata().is_some()));
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}: one round trip per instance?"
    );
}

/// Re-listing after each of five reconnects adds no watch on ZooKeeper, in
/// either mode: one listing's watch, however many listings.
fn re_listing_after_reconnects_piles_up_no_watchers(relisting: bool) {
    let zk = zookeeper();
    let s = session(&zk);
    let _first = register(&s, "127.0.0.1:1");
    let before = zkutil::testing::mntr_value(zk.port(), "zk_watch_count").expect("mntr answers");
    // A proxy that can cut the connection: the client reconnects with its
    // session intact, and the cache re-lists each time.
    let proxy = proxy_to(&zk, Duration::ZERO);
    let through = session_through(&proxy, Duration::from_secs(10));
    let discovery = if relisting {
        Discovery::start_relisting_for_testing(through.clone(), &BasePath::default(), false)
    } else {
        Discovery::start(through.clone(), &BasePath::default())
    }
    .expect("discovery");
    assert_eq!(discovery.follows_events(), !relisting);
    let armed = wait_until(
        Duration::from_secs(10),
        "the cache's watch is on ZooKeeper",
        || zkutil::testing::mntr_value(zk.port(), "zk_watch_count").filter(|n| *n > before),
    );
    for _ in 0..5 {
        let listed = discovery.listings_for_testing();
        proxy.cut();
        wait_until(
            Duration::from_secs(20),
            "a re-listing after the reconnect",
            || {
                (discovery.listings_for_testing() > listed
                    && through.state() == zkutil::SessionState::Connected)
                    .then_some(())
            },
        );
    }
    // ZooKeeper re-registers a reconnecting client's watches: let them land.
    wait_until(Duration::from_secs(10), "the watch count settles", || {
        (zkutil::testing::mntr_value(zk.port(), "zk_watch_count") == Some(armed)).then_some(())
    });
    assert_eq!(
        zkutil::testing::mntr_value(zk.port(), "zk_watch_count"),
        Some(armed),
        "as many watches on ZooKeeper as after the first listing"
    );
    // ZooKeeper keeps one watch per path and connection, however many the
    // client armed: the client's own count says whether they piled up.
    assert_eq!(
        discovery.pending_watches_for_testing(),
        1,
        "one watch armed in the client, however many re-listings"
    );
    // And that one watch still works.
    let _second = register(&s, "127.0.0.1:2");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 2)
        .expect("the new instance is seen");
}

#[test]
fn re_listing_after_reconnects_piles_up_no_watchers_on_zookeeper() {
    re_listing_after_reconnects_piles_up_no_watchers(true);
}

#[test]
fn after_five_reconnects_the_persistent_watch_is_single_on_zookeeper_and_delivers() {
    re_listing_after_reconnects_piles_up_no_watchers(false);
}

#[test]
fn changes_arrive_as_events_and_none_is_lost_across_a_reconnect_or_a_rebuild() {
    let zk = zookeeper();
    let s = session(&zk);
    let proxy = proxy_to(&zk, Duration::ZERO);
    let through = session_through(&proxy, Duration::from_secs(10));
    let _a = register(&s, "127.0.0.1:1");
    let b = register(&s, "127.0.0.1:2");
    let discovery = Discovery::start(through.clone(), &BasePath::default()).expect("discovery");
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
    let discovery = Discovery::start_relisting_for_testing(s.clone(), &BasePath::default(), false)
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
    let discovery = Discovery::start(s.clone(), &BasePath::default()).expect("discovery");
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
fn a_base_path_listing_larger_than_java_clients_accept_is_read_whole() {
    // Java clients (Curator, zkCli, Spring, Dubbo) refuse any packet over
    // jute.maxbuffer (1 MiB by default): a getChildren of ~55,000 `ip:port`
    // names fails there (Curator 5.4 measured: ConnectionLoss after 10 s of
    // retries at 60,000). ZooKeeper itself sends it, and our client reads it
    // whole; a fleet that big is still better sharded (README).
    let zk = zookeeper();
    let owner = zkutil::testing::connect(&zk, Duration::from_secs(30));
    owner.ensure_path("/big").expect("creates the base path");
    let n = 60_000;
    std::thread::scope(|scope| {
        for w in 0..8 {
            let owner = owner.clone();
            scope.spawn(move || {
                for i in (w..n).step_by(8) {
                    let name = format!(
                        "/big/10.{}.{}.{}:8897",
                        (i >> 16) as u8,
                        (i >> 8) as u8,
                        i as u8
                    );
                    owner.create_ephemeral(&name, b"").expect("registers");
                }
            });
        }
    });
    let names = owner.children("/big").expect("one listing");
    let packet: usize = names.iter().map(|name| 4 + name.len()).sum();
    assert!(packet > 1 << 20, "{packet} bytes: not beyond 1 MiB");
    let discovery =
        Discovery::start(session(&zk), &BasePath::from_static("/big")).expect("discovery starts");
    let snapshot = discovery
        .wait_for(Duration::from_secs(60), |s| s.instances().len() == n)
        .expect("every instance, from one listing");
    assert!(!snapshot.is_stale());
}

/// The snapshot's instances, in and out of service, as one sorted list.
fn everything(snap: &zkutil::Snapshot) -> Vec<zkutil::Instance> {
    let mut all: Vec<zkutil::Instance> = snap
        .instances()
        .iter()
        .chain(snap.out_of_service().iter())
        .cloned()
        .collect();
    all.sort_by_key(zkutil::Instance::endpoint);
    all
}

/// A cache cut off from ZooKeeper (the link down, not a blip) while an
/// operator disables one server, re-weights another and a third registers
/// again with new metadata: once it is back, its snapshot is what a fresh
/// listing with reads says, in either mode and format.
fn every_change_made_while_cut_off_is_seen_after_the_reconnect(
    relisting: bool,
    format: zkutil::Format,
) {
    let zk = zookeeper();
    let s = session(&zk);
    let registrar = match format {
        zkutil::Format::Plain => zkutil::Registrar::new(BasePath::default()),
        _ => zkutil::Registrar::new(BasePath::from_static("/services"))
            .format(format)
            .and_then(|r| r.service("time"))
            .expect("a writable format"),
    };
    let base = BasePath::new(&registrar.parent()).expect("a base path");
    let at = |text: &str, version: &str, weight: Option<u32>| {
        let e = endpoint(text);
        let metadata =
            Metadata::for_this_process(e, SystemTime::now(), version).with_weight(weight);
        registrar.register(&s, e, &metadata).expect("registers")
    };
    let (a, b) = (
        at("127.0.0.1:1", "test", None),
        at("127.0.0.1:2", "test", None),
    );
    let c = at("127.0.0.1:3", "test", None);
    let proxy = proxy_to(&zk, Duration::ZERO);
    let through = session_through(&proxy, Duration::from_secs(10));
    let discovery = if relisting {
        Discovery::start_relisting_for_testing(through.clone(), &base, true)
    } else {
        Discovery::start_with_metadata(through.clone(), &base)
    }
    .expect("discovery");
    assert_eq!(discovery.follows_events(), !relisting);
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 3)
        .expect("the first listing");

    proxy.hold();
    discovery
        .wait_for(Duration::from_secs(20), |snap| snap.is_stale())
        .expect("the cache knows it is cut off");
    let disable = zkutil::Control::Disable {
        reason: Some("cut-off test".into()),
    };
    disable.apply_to(&s, &base, a.endpoint()).expect("disables");
    zkutil::Control::Weight(7)
        .apply_to(&s, &base, b.endpoint())
        .expect("re-weights");
    c.deregister().expect("deregisters");
    let _c = at("127.0.0.1:3", "v2", Some(9));
    proxy.release();

    discovery
        .wait_for(Duration::from_secs(20), |snap| !snap.is_stale())
        .expect("fresh again");
    let truth = zkutil::list_instances(&s, &base, true).expect("a fresh listing");
    let seen = discovery
        .wait_for(Duration::from_secs(5), |snap| everything(snap) == truth)
        .map(|snap| everything(&snap))
        .unwrap_or_else(|| everything(&discovery.snapshot()));
    assert_eq!(
        seen, truth,
        "the snapshot after the reconnect is a fresh listing"
    );
    assert!(
        !discovery.snapshot().instances().contains(a.endpoint()),
        "the disabled one is out"
    );
    drop(b);
}

#[test]
fn every_change_made_while_cut_off_is_seen_after_the_reconnect_with_events() {
    every_change_made_while_cut_off_is_seen_after_the_reconnect(false, zkutil::Format::Plain);
}

#[test]
fn every_change_made_while_cut_off_is_seen_after_the_reconnect_when_re_listing() {
    every_change_made_while_cut_off_is_seen_after_the_reconnect(true, zkutil::Format::Plain);
}

#[test]
fn every_curator_change_made_while_cut_off_is_seen_after_the_reconnect_in_both_modes() {
    for relisting in [false, true] {
        every_change_made_while_cut_off_is_seen_after_the_reconnect(
            relisting,
            zkutil::Format::Curator,
        );
    }
}

#[test]
fn instances_gone_while_cut_off_are_offered_as_a_fallback_until_any_registers_again() {
    let zk = zookeeper();
    let s = session(&zk);
    let base = BasePath::default();
    let (a, b) = (register(&s, "127.0.0.1:1"), register(&s, "127.0.0.1:2"));
    let proxy = proxy_to(&zk, Duration::ZERO);
    let through = session_through(&proxy, Duration::from_secs(10));
    let discovery = Discovery::start_with_metadata(through, &base).expect("discovery");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 2)
        .expect("the first listing");
    assert!(discovery.snapshot().fallback().is_none());

    proxy.hold();
    discovery
        .wait_for(Duration::from_secs(20), |snap| snap.is_stale())
        .expect("cut off");
    a.deregister().expect("deregisters");
    b.deregister().expect("deregisters");
    proxy.release();
    let snap = discovery
        .wait_for(Duration::from_secs(20), |snap| !snap.is_stale())
        .expect("fresh again");
    assert!(snap.instances().is_empty(), "the true listing is empty");
    let offered: Vec<String> = snap
        .fallback()
        .map(|f| f.iter().map(|i| i.endpoint().to_string()).collect())
        .unwrap_or_default();
    assert_eq!(offered, ["127.0.0.1:1", "127.0.0.1:2"]);

    let _c = register(&s, "127.0.0.1:3");
    let snap = discovery
        .wait_for(Duration::from_secs(20), |snap| snap.instances().len() == 1)
        .expect("a new registration");
    assert!(
        snap.fallback().is_none(),
        "the registry lists instances again"
    );
}

#[test]
fn instances_taken_out_of_rotation_while_cut_off_are_never_a_fallback() {
    let zk = zookeeper();
    let s = session(&zk);
    let base = BasePath::default();
    let (a, b) = (register(&s, "127.0.0.1:1"), register(&s, "127.0.0.1:2"));
    let proxy = proxy_to(&zk, Duration::ZERO);
    let through = session_through(&proxy, Duration::from_secs(10));
    let discovery = Discovery::start_with_metadata(through, &base).expect("discovery");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 2)
        .expect("the first listing");
    proxy.hold();
    discovery
        .wait_for(Duration::from_secs(20), |snap| snap.is_stale())
        .expect("cut off");
    let disable = zkutil::Control::Disable { reason: None };
    disable.apply_to(&s, &base, a.endpoint()).expect("disables");
    disable.apply_to(&s, &base, b.endpoint()).expect("disables");
    proxy.release();
    let snap = discovery
        .wait_for(Duration::from_secs(20), |snap| {
            !snap.is_stale() && snap.out_of_service().len() == 2
        })
        .expect("fresh again, both out of rotation");
    assert!(snap.instances().is_empty());
    assert!(snap.fallback().is_none(), "an operator's drain is honoured");
}

#[test]
fn a_node_named_in_another_spelling_of_its_address_leaves_no_ghost_when_deleted() {
    let zk = zookeeper();
    let s = session(&zk);
    s.ensure_path("/go_servers").expect("the base path");
    let discovery = Discovery::start(s.clone(), &BasePath::default()).expect("discovery");
    let relisting = Discovery::start_relisting_for_testing(s.clone(), &BasePath::default(), true)
        .expect("discovery");
    // As Java prints an IPv6 address, and an IPv4 one with a leading zero
    // free spelling: both name endpoints whose canonical spelling differs.
    for name in ["[2001:db8:0:0:0:0:0:1]:80", "[::FFFF:127.0.0.1]:81"] {
        let path = format!("/go_servers/{name}");
        s.create_ephemeral(&path, b"").expect("creates the node");
        for cache in [&discovery, &relisting] {
            cache
                .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 1)
                .unwrap_or_else(|| {
                    panic!(
                        "{name} not listed (events: {}): {:?}",
                        cache.follows_events(),
                        endpoints(cache)
                    )
                });
        }
        s.delete(&path, None).expect("deletes");
        for cache in [&discovery, &relisting] {
            let gone = cache.wait_for(Duration::from_secs(10), |snap| snap.instances().is_empty());
            assert!(
                gone.is_some(),
                "{name}: a ghost stays: {:?}",
                endpoints(cache)
            );
        }
    }
}

#[test]
fn dropping_one_of_two_discoveries_on_a_session_keeps_the_others_events_coming() {
    let zk = zookeeper();
    let s = session(&zk);
    let owner = session(&zk);
    let _a = register(&owner, "127.0.0.1:1");
    let first = Discovery::start(s.clone(), &BasePath::default()).expect("discovery");
    let second = Discovery::start(s.clone(), &BasePath::default()).expect("discovery");
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
