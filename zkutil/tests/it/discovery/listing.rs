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
