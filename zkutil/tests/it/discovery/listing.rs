//! What a listing shows: valid children only, whatever their names, their
//! metadata or their number, read in one round trip.

use std::time::Duration;

use zkutil::testing::wait_until;
use zkutil::{BasePath, Discovery, Registration, SessionConfig};

use crate::support::{proxy_to, session, zookeeper};

use super::{endpoints, register};

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
        Discovery::start_with_metadata(s.clone(), &BasePath::from_static("/go_servers"))
            .expect("discovery starts");
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
fn a_missing_base_path_is_an_empty_list_until_it_appears() {
    let zk = zookeeper();
    let s = session(&zk);
    let discovery = Discovery::start(s.clone(), &BasePath::from_static("/go_servers"))
        .expect("discovery starts");
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
    let listed =
        zkutil::list_instances(&slow, &BasePath::from_static("/go_servers"), true).expect("list");
    let took = started.elapsed();
    eprintln!("40 instances with metadata listed in {took:?} at 100 ms per answer");
    assert_eq!(listed.len(), regs.len());
    assert!(listed.iter().all(|i| i.metadata().is_some()));
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}: one round trip per instance?"
    );
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

#[test]
fn a_node_named_in_another_spelling_of_its_address_leaves_no_ghost_when_deleted() {
    let zk = zookeeper();
    let s = session(&zk);
    s.ensure_path("/go_servers").expect("the base path");
    let discovery =
        Discovery::start(s.clone(), &BasePath::from_static("/go_servers")).expect("discovery");
    let relisting = Discovery::start_relisting_for_testing(
        s.clone(),
        &BasePath::from_static("/go_servers"),
        true,
    )
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

/// Many children's data is read in multi-reads of several nodes each: a
/// stranger who registers children of nearly a megabyte each (ZooKeeper's
/// limit for one node) makes answers of megabytes each, tens of them in
/// flight at once. The listing must still come whole (and ZooKeeper stay
/// up), and so must the re-reading of every child after a reconnect.
#[test]
fn children_of_a_megabyte_each_are_listed_whole_and_again_after_a_reconnect() {
    let zk = zookeeper();
    let writer = session(&zk);
    big_children(&writer);
    let proxy = proxy_to(&zk, Duration::ZERO);
    let discovery = big_discovery(&proxy);
    assert_eq!(discovery.snapshot().instances().len(), BIG_CHILDREN);
    // Cut: the reconnect re-reads every child's data, one deleted meanwhile.
    proxy.hold();
    writer
        .delete("/services/big/i0", None)
        .expect("deletes one while the watcher is away");
    proxy.release();
    wait_until(
        Duration::from_secs(30),
        "the re-listing after the reconnect has the change",
        || {
            let snapshot = discovery.snapshot();
            (!snapshot.is_stale() && snapshot.instances().len() == BIG_CHILDREN - 1).then_some(())
        },
    );
}

/// The re-listing after a reconnect reads every child's data; a connection
/// cut in the middle of those reads fails some of them. The listing must
/// then keep the last known list whole, never publish the children whose
/// reads happened to finish: a registered instance that vanishes from the
/// list is lost traffic. The cuts land at several moments of the re-read.
#[test]
fn a_connection_cut_while_every_child_is_re_read_drops_none_of_them() {
    let zk = zookeeper();
    let writer = session(&zk);
    big_children(&writer);
    let proxy = proxy_to(&zk, Duration::ZERO);
    let discovery = std::sync::Arc::new(big_discovery(&proxy));
    assert_eq!(discovery.snapshot().instances().len(), BIG_CHILDREN);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fewest = {
        let (discovery, done) = (discovery.clone(), done.clone());
        std::thread::spawn(move || {
            let mut fewest = BIG_CHILDREN;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                fewest = fewest.min(discovery.snapshot().instances().len());
                std::thread::sleep(Duration::from_micros(200));
            }
            fewest
        })
    };
    for after in [0, 5, 20, 50, 100, 200, 400] {
        let before = proxy.last_connected();
        proxy.cut();
        wait_until(Duration::from_secs(20), "the watcher reconnects", || {
            (proxy.last_connected() != before).then_some(())
        });
        // Into the re-read that the reconnect starts.
        std::thread::sleep(Duration::from_millis(after));
    }
    wait_until(
        Duration::from_secs(30),
        "a fresh listing after the last cut",
        || (!discovery.snapshot().is_stale()).then_some(()),
    );
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let fewest = fewest.join().expect("the monitor runs to the end");
    assert_eq!(
        fewest, BIG_CHILDREN,
        "a listing cut in the middle of its reads dropped registered instances"
    );
    assert_eq!(discovery.snapshot().instances().len(), BIG_CHILDREN);
}

/// Watchers that all reconnect at once (a ZooKeeper blip) all re-read
/// every child: with children of a megabyte each, their reads together
/// must not bring ZooKeeper down (answers of many such nodes each did,
/// on the tests' 256 MB heap), and every watcher must come back whole.
#[test]
fn many_watchers_re_reading_children_of_a_megabyte_together_keep_zookeeper_up() {
    let zk = zookeeper();
    let writer = session(&zk);
    big_children(&writer);
    let proxy = proxy_to(&zk, Duration::ZERO);
    let watchers: Vec<Discovery> = (0..12).map(|_| big_discovery(&proxy)).collect();
    for round in 0..2 {
        // A listing begun after the cut: the snapshot from before it is
        // fresh and whole too, and must not pass for the re-read.
        let listed: Vec<u64> = watchers.iter().map(|w| w.listings_for_testing()).collect();
        proxy.cut();
        wait_until(
            Duration::from_secs(60),
            "every watcher re-lists every child after the blip",
            || {
                watchers
                    .iter()
                    .zip(&listed)
                    .all(|(w, &listed)| {
                        let snapshot = w.snapshot();
                        w.listings_for_testing() > listed
                            && !snapshot.is_stale()
                            && snapshot.instances().len() == BIG_CHILDREN
                    })
                    .then_some(())
            },
        );
        assert!(
            writer.stat("/services/big").is_ok(),
            "ZooKeeper answers after round {round}"
        );
    }
}

/// A stranger's children with names of hundreds of KB (legal in
/// ZooKeeper, none of the formats): each read alone is a fine request,
/// several in one request are over ZooKeeper's request limit, and it
/// closes the connection. The listing must still show the registered
/// instances, not fail at every try.
#[test]
fn children_with_names_of_hundreds_of_kilobytes_do_not_keep_the_others_from_the_list() {
    let zk = zookeeper();
    let s = session(&zk);
    let _registered: Vec<Registration> = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        .iter()
        .map(|t| register(&s, t))
        .collect();
    let stranger = session(&zk);
    for i in 0..2 {
        let name = format!("{i}{}", "x".repeat(600_000));
        stranger
            .create_ephemeral(&format!("/go_servers/{name}"), b"")
            .expect("ZooKeeper takes a long name");
    }
    let watcher = std::sync::Arc::new(
        SessionConfig::new(zk.connect_string())
            .connect()
            .expect("connects"),
    );
    let listed = zkutil::list_instances(&watcher, &BasePath::from_static("/go_servers"), false)
        .expect("lists despite the long names");
    let listed: Vec<String> = listed.iter().map(|i| i.endpoint().to_string()).collect();
    assert_eq!(listed, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
    let discovery =
        Discovery::start(watcher, &BasePath::from_static("/go_servers")).expect("starts");
    assert_eq!(discovery.snapshot().instances().len(), 3);
}

/// Registers [`BIG_CHILDREN`] Curator records of nearly a megabyte each
/// under /services/big.
fn big_children(writer: &zkutil::Session) {
    writer
        .ensure_path("/services/big")
        .expect("creates the parent");
    let pad = "x".repeat(PAD);
    for i in 0..BIG_CHILDREN {
        let record = format!(
            r#"{{"name":"big","id":"i{i}","address":"10.0.9.{i}","port":80,"sslPort":null,"payload":{{"pad":"{pad}"}},"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}}"#
        );
        writer
            .create_ephemeral(&format!("/services/big/i{i}"), record.as_bytes())
            .expect("a record of nearly a megabyte");
    }
}

/// A Discovery of /services/big whose session goes through `proxy`.
fn big_discovery(proxy: &zkutil::testing::DelayProxy) -> Discovery {
    let watcher = std::sync::Arc::new(
        SessionConfig::new(proxy.addr().to_string())
            .connect()
            .expect("connects through the proxy"),
    );
    Discovery::start(watcher, &BasePath::from_static("/services/big")).expect("lists")
}

/// Children of nearly a megabyte each: more than one multi-read's worth.
const BIG_CHILDREN: usize = 40;
/// Nearly ZooKeeper's limit for one node's data, with room for the record around it.
const PAD: usize = 999_000;
