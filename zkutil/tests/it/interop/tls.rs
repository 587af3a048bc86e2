//! Curator and zkutil on a ZooKeeper that serves only TLS and asks every
//! client for a certificate: Curator, given the system properties of a
//! production JVM client (`ZkServer::jvm_client_properties`), reads what we
//! registered over TLS as it does over plaintext, and what it registers over
//! TLS our discovery sees.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use zkutil::testing::{CuratorPeer, TlsMode, ZkServer, init_test_logging};
use zkutil::{BasePath, Discovery, Endpoint, Format, Metadata, Registrar, Registration, Session};

use super::{curator_list, peer};

fn tls_zookeeper() -> ZkServer {
    init_test_logging();
    ZkServer::start_tls(TlsMode::Need).unwrap_or_else(|e| panic!("starting ZooKeeper: {e}"))
}

#[track_caller]
fn connect_as(zk: &ZkServer, name: &str) -> Arc<Session> {
    zk.session_config(Some(name))
        .with_session_timeout(Duration::from_secs(4))
        .connect()
        .map(Arc::new)
        .unwrap_or_else(|e| panic!("connecting as {name}: {e}; zk log:\n{}", zk.log_tail()))
}

/// The Curator peer as TLS client `name` of `zk`.
fn curator_as(zk: &ZkServer, name: &str) -> CuratorPeer {
    peer().with_system_properties(zk.jvm_client_properties(Some(name)))
}

#[test]
fn curator_over_tls_lists_picks_and_reads_what_we_registered_over_tls_in_curator_and_plain_formats()
{
    let zk = tls_zookeeper();
    let hosts = zk.connect_string();
    let alice = connect_as(&zk, "alice");
    let endpoint: Endpoint = "127.0.0.1:8897".parse().expect("a valid literal");
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
    let registrar = Registrar::new(BasePath::from_static("/services"))
        .format(Format::Curator)
        .expect("writable");
    let curator_format = registrar
        .register(&alice, endpoint, &metadata)
        .expect("registers in Curator's format");
    let plain = Registration::register(
        &alice,
        &BasePath::from_static("/go_servers"),
        endpoint,
        &metadata,
    )
    .expect("registers in the plain format");

    // Bob's Curator: another identity, reading alice's world-readable nodes.
    let curator = curator_as(&zk, "bob");
    let listed = curator_list(&curator, &hosts, "time", false);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let instance = &listed[0];
    assert_eq!(instance["address"], "127.0.0.1", "{instance}");
    assert_eq!(instance["port"], 8897, "{instance}");
    assert_eq!(instance["enabled"], true, "{instance}");
    assert_eq!(instance["payload"]["port"], 8897, "{instance}");
    assert_eq!(instance["id"], "time-127.0.0.1-8897");
    let picked = curator
        .run(&["provider", &hosts, "/services", "time"])
        .unwrap_or_else(|err| panic!("curator provider: {err}"));
    assert_eq!(picked.trim(), "127.0.0.1:8897");

    // The plain format is no Curator service: Curator's client reads the
    // node itself, named by its endpoint, our JSON inside.
    let children = curator
        .run(&["children", &hosts, "/", "go_servers"])
        .unwrap_or_else(|err| panic!("curator children: {err}"));
    let children: Vec<Value> = children
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(children[0]["name"], "127.0.0.1:8897");
    let data: Value = serde_json::from_str(children[0]["data"].as_str().expect("data"))
        .unwrap_or_else(|e| panic!("our JSON: {e}: {}", children[0]));
    assert_eq!(data["port"], 8897, "{data}");

    curator_format.deregister().expect("deregisters");
    plain.deregister().expect("deregisters");
    assert!(
        curator_list(&curator, &hosts, "time", false).is_empty(),
        "Curator sees the deregistration"
    );
}

#[test]
fn our_discovery_over_tls_sees_an_instance_curator_registered_over_tls_come_and_go() {
    let zk = tls_zookeeper();
    let hosts = zk.connect_string();
    let bob = connect_as(&zk, "bob");
    let discovery =
        Discovery::start(bob, &BasePath::from_static("/services/time")).expect("starts");
    let mut curator = curator_as(&zk, "alice").start(&[
        "register",
        &hosts,
        "/services",
        "time",
        "127.0.0.1",
        "8897",
    ]);
    curator
        .stdout()
        .wait_until(Duration::from_secs(30), "Curator registers", |lines| {
            lines
                .iter()
                .find(|(_, l)| l.starts_with("registered "))
                .map(|_| ())
        });
    let seen = discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().len() == 1
        })
        .expect("bob's discovery sees alice's Curator instance");
    let instance = &seen.instances()[0];
    assert_eq!(instance.endpoint().to_string(), "127.0.0.1:8897");
    assert_eq!(instance.format(), Format::Curator);

    curator.close_stdin();
    curator.wait(Duration::from_secs(30));
    discovery
        .wait_for(Duration::from_secs(30), |snapshot| {
            snapshot.instances().is_empty()
        })
        .expect("Curator's unregistration is seen");
}
