//! Discovery by per-child events, under random changes and faults: after
//! any sequence, the snapshot equals what a fresh listing and fresh reads
//! say, for every seed.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use zkutil::testing::wait_until;
use zkutil::{BasePath, Discovery, Session};

use crate::support::{proxy_to, session, session_through, zookeeper};

/// endpoint → in service, for a set of instances.
type View = BTreeMap<String, bool>;

fn truth(writer: &Session, base: &BasePath) -> View {
    zkutil::list_instances(writer, base, false)
        .expect("a fresh listing")
        .iter()
        .map(|i| (i.endpoint().to_string(), i.is_enabled()))
        .collect()
}

fn seen(discovery: &Discovery) -> View {
    let snapshot = discovery.snapshot();
    snapshot
        .instances()
        .iter()
        .chain(snapshot.out_of_service().iter())
        .map(|i| (i.endpoint().to_string(), i.is_enabled()))
        .collect()
}

/// Whether the snapshot comes to equal a fresh listing (within 30 s);
/// the listing when it does not.
fn converges(discovery: &Discovery, writer: &Session, base: &BasePath) -> Result<(), View> {
    let expected = truth(writer, base);
    zkutil::testing::poll_until(Duration::from_secs(30), Duration::from_millis(10), || {
        (seen(discovery) == expected).then_some(())
    })
    .ok_or(expected)
}

fn curator(port: u16, enabled: bool) -> Vec<u8> {
    format!(
        r#"{{"name":"time","id":"c{port}","address":"127.0.0.1","port":{port},"sslPort":null,"payload":null,"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null,"enabled":{enabled}}}"#
    )
    .into_bytes()
}

#[test]
fn a_server_registered_twice_stays_listed_while_either_registration_is_there() {
    // One endpoint, two children: a plain `ip:port` node and a Curator
    // instance, as during a migration from one format to the other.
    let zk = zookeeper();
    let writer = session(&zk);
    let base = BasePath::new("/twice").expect("a base path");
    writer.ensure_path(base.as_str()).expect("creates");
    let discovery = Discovery::start(session(&zk), &base).expect("starts");
    let plain = format!("{base}/127.0.0.1:7");
    let other = format!("{base}/c7");
    // Events are applied in order: once a later marker is seen, every
    // change before it was applied.
    let mut markers = 0u16;
    let mut settle = |step: &str| {
        markers += 1;
        writer
            .create_ephemeral(&format!("{base}/127.0.0.2:{markers}"), b"{}")
            .expect("creates a marker");
        if let Err(expected) = converges(&discovery, &writer, &base) {
            panic!(
                "{step}: {:?} is not the listing {expected:?}",
                seen(&discovery)
            );
        }
        seen(&discovery).get("127.0.0.1:7").copied()
    };
    writer.create_ephemeral(&plain, b"{}").expect("creates");
    writer
        .create_ephemeral(&other, &curator(7, true))
        .expect("creates");
    assert_eq!(settle("both registered"), Some(true));
    writer.delete(&plain, None).expect("deletes");
    assert_eq!(
        settle("the plain one removed"),
        Some(true),
        "the Curator one is still there"
    );
    writer
        .set_data(&other, &curator(7, false), None)
        .expect("writes");
    assert_eq!(settle("the Curator one disabled"), Some(false));
    writer.create_ephemeral(&plain, b"{}").expect("creates");
    assert_eq!(
        settle("the plain one back"),
        Some(true),
        "in service before out of it"
    );
    assert!(
        !discovery
            .snapshot()
            .out_of_service()
            .contains("127.0.0.1:7".parse().expect("an endpoint")),
        "listed once"
    );
    writer.delete(&plain, None).expect("deletes");
    assert_eq!(settle("the plain one removed again"), Some(false));
    writer.delete(&other, None).expect("deletes");
    assert_eq!(settle("both removed"), None);
}

#[test]
fn the_snapshot_equals_a_fresh_listing_after_random_changes_and_faults() {
    let mut zk = zookeeper();
    let writer = session(&zk);
    let proxy = proxy_to(&zk, Duration::ZERO);
    for seed in 0..16u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let base = BasePath::new(&format!("/events{seed}")).expect("a base path");
        let watcher = session_through(&proxy, Duration::from_secs(4));
        let discovery = Discovery::start(watcher.clone(), &base).expect("starts");
        let mut faults = 0;
        for _ in 0..30 {
            let port: u16 = rng.random_range(1..12);
            let plain = format!("{base}/127.0.0.1:{port}");
            let other = format!("{base}/c{port}");
            match rng.random_range(0..10) {
                0..=2 => {
                    let _ = writer.ensure_path(base.as_str());
                    let _ = writer.create_ephemeral(&plain, b"{}");
                }
                // Half the time at the plain child's endpoint: one server
                // registered twice.
                3 => {
                    let _ = writer.ensure_path(base.as_str());
                    let at = port + 100 * rng.random_range(0..2);
                    let _ = writer.create_ephemeral(&other, &curator(at, rng.random()));
                }
                4 => {
                    let at = port + 100 * rng.random_range(0..2);
                    let _ = writer.set_data(&other, &curator(at, rng.random()), None);
                }
                5..=6 => {
                    let _ = writer.delete(&plain, None);
                    let _ = writer.delete(&other, None);
                }
                7 => {
                    faults += 1;
                    proxy.cut();
                }
                8 if faults < 3 => {
                    faults += 1;
                    let _ = watcher.expire_for_testing();
                }
                // ZooKeeper itself, once per seed in half the seeds:
                // restarted, or frozen (SIGSTOP) for half a second.
                9 if faults < 4 && seed % 4 == 3 => {
                    faults += 10;
                    zk.restart().expect("ZooKeeper restarts");
                }
                9 if faults < 4 && seed % 4 == 2 => {
                    faults += 10;
                    zk.pause();
                    // The fault's duration, not a wait for an event.
                    std::thread::sleep(Duration::from_millis(500));
                    zk.resume();
                }
                _ => {}
            }
        }
        if let Err(expected) = converges(&discovery, &writer, &base) {
            panic!(
                "seed {seed}: the snapshot {:?} is not the listing {expected:?} (stale: {}, events: {})",
                seen(&discovery),
                discovery.snapshot().is_stale(),
                discovery.follows_events()
            );
        }
        // And it follows on: one more change is seen.
        let _ = writer.ensure_path(base.as_str());
        writer
            .create_ephemeral(&format!("{base}/127.0.0.1:99"), b"{}")
            .expect("creates");
        let expected = truth(&writer, &base);
        wait_until(Duration::from_secs(30), "a later change too", || {
            (seen(&discovery) == expected).then_some(())
        });
        eprintln!(
            "seed {seed}: {} instances, {faults} faults, snapshot == listing",
            expected.len()
        );
    }
}
