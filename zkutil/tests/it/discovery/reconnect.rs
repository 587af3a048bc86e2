//! A cache cut off from ZooKeeper: stale meanwhile, and once back exactly
//! what a fresh listing says, with no watch piled up and a fallback only
//! for instances that vanished while it was away.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zkutil::testing::wait_until;
use zkutil::{BasePath, Change, Discovery, Metadata, SessionConfig};

use crate::support::{proxy_to, session, session_through, zookeeper};

use super::{endpoint, register};

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
    let discovery =
        Discovery::start(s, &BasePath::from_static("/go_servers")).expect("discovery starts");
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
    let discovery = Discovery::start(s.clone(), &BasePath::from_static("/go_servers"))
        .expect("discovery starts");
    s.expire_for_testing().unwrap_or_else(|e| panic!("{e:?}"));
    let rebuilt = wait_until(Duration::from_secs(30), "the session is rebuilt", || {
        (s.state() == zkutil::SessionState::Connected).then(|| s.id())
    });
    let _reg = register(&owner, "127.0.0.1:11");
    discovery
        .wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 1)
        .unwrap_or_else(|| panic!("no watch after rebuild (session {rebuilt:#x})"));
}

/// Re-listing after each of five reconnects adds no watch on ZooKeeper, in
/// either mode: one listing's watch, however many listings.
fn re_listing_after_reconnects_piles_up_no_watchers(relisting: bool) {
    let zk = zookeeper();
    let s = session(&zk);
    let _first = register(&s, "127.0.0.1:1");
    // The registration's own watch on its node, armed by its thread: in
    // `before`, or it would land later and be taken for the cache's.
    let before = wait_until(Duration::from_secs(10), "the registration's watch", || {
        zkutil::testing::mntr_value(zk.port(), "zk_watch_count").filter(|n| *n >= 1)
    });
    // A proxy that can cut the connection: the client reconnects with its
    // session intact, and the cache re-lists each time.
    let proxy = proxy_to(&zk, Duration::ZERO);
    let through = session_through(&proxy, Duration::from_secs(10));
    let discovery = if relisting {
        Discovery::start_relisting_for_testing(
            through.clone(),
            &BasePath::from_static("/go_servers"),
            false,
        )
    } else {
        Discovery::start(through.clone(), &BasePath::from_static("/go_servers"))
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
        zkutil::Format::Plain => zkutil::Registrar::new(BasePath::from_static("/go_servers")),
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
    let base = BasePath::from_static("/go_servers");
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
    let base = BasePath::from_static("/go_servers");
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
