//! What Curator writes, read by us: our client calls a service Curator
//! registered, a bad child hides nothing else, and a container parent that
//! ZooKeeper removed is no instances.

use std::time::{Duration, SystemTime};

use zkutil::testing::{Responder, wait_until};
use zkutil::{BasePath, Discovery, Endpoint, Format, Metadata, Registrar};

use crate::support::{session, zookeeper};

use super::{curator_list, peer};

#[test]
fn our_client_calls_a_service_curator_registered_and_stops_when_curator_closes() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let peer = peer();
    let responder = Responder::time().expect("a responder");
    let port = responder.addr().port().to_string();
    let mut curator = peer.start(&["register", &hosts, "/services", "time", "127.0.0.1", &port]);
    curator
        .stdout()
        .wait_until(Duration::from_secs(30), "Curator registers", |lines| {
            lines
                .iter()
                .find(|(_, l)| l.starts_with("registered "))
                .map(|_| ())
        });
    let config = time_client::Config {
        base_path: BasePath::from_static("/services/time"),
        count: 5,
        interval: Duration::ZERO,
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!((summary.ok, summary.failed), (5, 0), "{}", summary.line());
    assert_eq!(
        summary.per_server.keys().copied().collect::<Vec<_>>(),
        [Endpoint::new(responder.addr())]
    );

    let s = session(&zk);
    let discovery = Discovery::start(s, &BasePath::from_static("/services/time")).expect("starts");
    discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().len() == 1
        })
        .expect("our discovery sees Curator's instance");
    curator.close_stdin();
    curator.wait(Duration::from_secs(30));
    discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().is_empty()
        })
        .expect("Curator's unregistration is seen");
    let summary = time_client::run(
        &time_client::Config { count: 1, ..config },
        &mut std::io::sink(),
        &stop,
    )
    .expect("the client runs");
    assert_eq!(
        (summary.ok, summary.failed),
        (0, 1),
        "nothing is called any more"
    );
}

#[test]
fn one_bad_child_fails_curators_query_but_not_ours_and_disabled_is_not_picked() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let peer = peer();
    let s = session(&zk);
    s.ensure_path("/services/time").expect("creates the path");
    let good = r#"{"name":"time","id":"good","address":"127.0.0.1","port":7001,"sslPort":null,"payload":null,"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}"#;
    let off = r#"{"name":"time","id":"off","address":"127.0.0.1","port":7002,"sslPort":null,"payload":null,"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null,"enabled":false}"#;
    s.create_ephemeral("/services/time/good", good.as_bytes())
        .expect("creates");
    s.create_ephemeral("/services/time/off", off.as_bytes())
        .expect("creates");

    // Curator 5 accepts `enabled` (2.x/3.x readers fail on it, so we never
    // write it) and reports it.
    let listed = curator_list(&peer, &hosts, "time", false);
    let enabled: Vec<(u64, bool)> = listed
        .iter()
        .map(|i| {
            (
                i["port"].as_u64().unwrap_or(0),
                i["enabled"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(enabled, [(7001, true), (7002, false)]);

    let discovery =
        Discovery::start(s.clone(), &BasePath::from_static("/services/time")).expect("starts");
    let snapshot = discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().len() == 1
        })
        .expect("the enabled one");
    assert_eq!(snapshot.instances()[0].endpoint().port(), 7001);
    assert_eq!(
        snapshot.out_of_service().len(),
        1,
        "the disabled one is kept apart"
    );

    // One child that is no instance: Curator's query fails as a whole;
    // ours skips that child alone.
    s.create_ephemeral("/services/time/garbage", b"not json")
        .expect("creates");
    let refused = peer.run(&["list", &hosts, "/services", "time"]);
    assert!(
        refused.is_err(),
        "Curator listed despite the bad child: {refused:?}"
    );
    let ours =
        zkutil::list_instances(&s, &BasePath::from_static("/services/time"), false).expect("lists");
    let ports: Vec<u16> = ours.iter().map(|i| i.endpoint().port()).collect();
    assert_eq!(ports, [7001, 7002]);
}

#[test]
fn a_container_parent_curator_made_and_zookeeper_removed_is_no_instances_then_made_again() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let peer = peer();
    let responder = Responder::time().expect("a responder");
    let port = responder.addr().port().to_string();
    let s = session(&zk);
    let discovery =
        Discovery::start(s.clone(), &BasePath::from_static("/services/time")).expect("starts");
    let mut curator = peer.start(&["register", &hosts, "/services", "time", "127.0.0.1", &port]);
    discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().len() == 1
        })
        .expect("Curator's instance is seen");
    curator.close_stdin();
    curator.wait(Duration::from_secs(30));
    // Curator's parent is a CONTAINER: ZooKeeper removes it once empty.
    wait_until(
        Duration::from_secs(30),
        "ZooKeeper removes the empty container",
        || {
            s.stat("/services/time")
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        },
    );
    let snapshot = discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().is_empty()
        })
        .expect("no instances yet");
    assert!(
        !snapshot.is_stale(),
        "a vanished parent is no instances, not an error"
    );
    // The snapshot was empty since the instance left; the parent's own
    // deletion reaches the discovery as its own event, a moment later.
    wait_until(
        Duration::from_secs(30),
        "the discovery learns that the parent is gone",
        || discovery.base_path_missing().then_some(()),
    );
    // Our registration makes the parents again; discovery sees it.
    let endpoint = Endpoint::new(responder.addr());
    let registrar = Registrar::new(BasePath::from_static("/services"))
        .format(Format::Curator)
        .expect("writable");
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
    let _registration = registrar
        .register(&s, endpoint, &metadata)
        .expect("registers");
    discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().len() == 1
        })
        .expect("ours is seen under the re-made parent");
}
