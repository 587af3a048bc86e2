//! zkutil and Apache Curator's service discovery (the real one, 5.4 from
//! Debian, run as a JVM by `testing::CuratorPeer`) on one ZooKeeper: each
//! reads what the other writes.

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use zkutil::testing::{CuratorPeer, Responder, TestProcess, wait_until};
use zkutil::{BasePath, Discovery, Endpoint, Format, Metadata, Registrar};

use crate::support::{InProcessServer, server_config, session, zookeeper};

fn peer() -> CuratorPeer {
    CuratorPeer::get().unwrap_or_else(|err| panic!("the Curator peer: {err}"))
}

/// The JSON lines of a `list` run.
fn curator_list(peer: &CuratorPeer, hosts: &str, service: &str, spring: bool) -> Vec<Value> {
    let mut args = vec!["list", hosts, "/services", service];
    if spring {
        args.push("spring");
    }
    let out = peer
        .run(&args)
        .unwrap_or_else(|err| panic!("curator list: {err}"));
    out.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// A time-server in this process registered in `format` as `service`
/// under /services (the default root of Curator and Spring services), on
/// two listeners.
fn server(hosts: &str, format: Format, service: &str) -> InProcessServer {
    InProcessServer::start(time_server::Config {
        formats: vec![format],
        service: service.to_owned(),
        listen: vec!["127.0.0.1:0".parse().expect("a valid literal"); 2],
        ..server_config(hosts)
    })
}

/// Our time-server on two listeners, registered in Curator's format as
/// `time`, once Curator lists both.
fn curator_listed_server(hosts: &str, peer: &CuratorPeer) -> (InProcessServer, Vec<Value>) {
    let server = server(hosts, Format::Curator, "time");
    let listed = wait_until(Duration::from_secs(30), "Curator lists both", || {
        let listed = curator_list(peer, hosts, "time", false);
        (listed.len() == 2).then_some(listed)
    });
    (server, listed)
}

#[test]
fn curator_lists_and_picks_our_time_servers_with_their_payload() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let peer = peer();
    let (server, listed) = curator_listed_server(&hosts, &peer);
    for instance in &listed {
        let port = instance["port"].as_u64().expect("a port");
        assert_eq!(instance["address"], "127.0.0.1", "{instance}");
        assert_eq!(instance["enabled"], true, "{instance}");
        assert_eq!(instance["payloadClass"], "java.util.LinkedHashMap");
        assert_eq!(
            instance["payload"]["port"].as_u64(),
            Some(port),
            "{instance}"
        );
        assert_eq!(
            instance["payload"]["pid"].as_u64(),
            Some(u64::from(std::process::id()))
        );
        assert_eq!(instance["id"], format!("time-127.0.0.1-{port}"));
    }
    let picked = peer
        .run(&["provider", &hosts, "/services", "time"])
        .expect("curator provider");
    let ports: Vec<String> = listed
        .iter()
        .map(|i| format!("127.0.0.1:{}", i["port"]))
        .collect();
    assert!(
        ports.contains(&picked.trim().to_owned()),
        "{picked} not in {ports:?}"
    );

    // Our own reader sees the same, as curator instances.
    let s = session(&zk);
    let ours =
        zkutil::list_instances(&s, &BasePath::from_static("/services/time"), false).expect("lists");
    assert_eq!(ours.len(), 2);
    assert!(
        ours.iter()
            .all(|i| i.format() == Format::Curator && i.is_enabled())
    );

    server.stop();
    assert!(
        curator_list(&peer, &hosts, "time", false).is_empty(),
        "deregistered on stop"
    );
}

#[test]
fn a_spring_discovery_client_reads_our_spring_instances() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let peer = peer();
    let server = server(&hosts, Format::Spring, "greeter");
    let listed = wait_until(Duration::from_secs(30), "Curator lists both", || {
        let listed = curator_list(&peer, &hosts, "greeter", true);
        (listed.len() == 2).then_some(listed)
    });
    for instance in &listed {
        assert_eq!(
            instance["payloadClass"],
            "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance",
            "read with Spring's payload class: {instance}"
        );
        assert_eq!(instance["payload"]["name"], "greeter");
        assert_eq!(instance["payload"]["id"], instance["id"]);
        assert_eq!(instance["payload"]["metadata"]["instance_status"], "UP");
        assert_eq!(
            instance["payload"]["metadata"]["port"].as_str(),
            Some(instance["port"].to_string().as_str()),
            "metadata values are strings, as Spring's map is"
        );
    }
    server.stop();
}

/// Waits for the peer's cache to print `instances <expected>` as line
/// `after` or later; that line's index and time.
fn cache_shows(cache: &TestProcess, expected: &str, after: usize) -> (usize, Instant) {
    let line = format!("instances {expected}");
    cache
        .stdout()
        .wait_until(Duration::from_secs(30), &line, |lines| {
            lines
                .iter()
                .enumerate()
                .skip(after)
                .find(|(_, (_, l))| *l == line)
                .map(|(i, (at, _))| (i, *at))
        })
}

#[test]
fn curators_cache_sees_our_deregistration_at_once_and_our_re_registration_after_expiry() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let peer = peer();
    let mut cache = peer.start(&["cache", &hosts, "/services", "time"]);
    cache_shows(&cache, "", 0);
    let s = session(&zk);
    let responder = Responder::time().expect("a responder");
    let endpoint = Endpoint::new(responder.addr());
    let registrar = Registrar::new(BasePath::from_static("/services"))
        .format(Format::Curator)
        .expect("writable");
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
    let registration = registrar
        .register(&s, endpoint, &metadata)
        .expect("registers");
    cache_shows(&cache, &endpoint.to_string(), 0);

    // A real expiry: ZooKeeper deletes the node; ours is re-created and
    // Curator's cache sees the instance again.
    let seen = cache.stdout().len();
    let old = s.id();
    s.expire_for_testing().expect("expires the session");
    wait_until(Duration::from_secs(30), "a new session", || {
        (s.id() != old).then_some(())
    });
    let owner = || {
        s.stat(&registration.path())
            .ok()
            .flatten()
            .map(|stat| stat.ephemeral_owner())
    };
    wait_until(
        Duration::from_secs(30),
        "re-registered under the new session",
        || (owner() == Some(s.id())).then_some(()),
    );
    // The node went with the old session, and came back.
    let (vanished, _) = cache_shows(&cache, "", seen);
    cache_shows(&cache, &endpoint.to_string(), vanished + 1);

    let seen = cache.stdout().len();
    let deregistered = Instant::now();
    registration.deregister().expect("deregisters");
    let (_, gone) = cache_shows(&cache, "", seen);
    let took = gone.saturating_duration_since(deregistered);
    eprintln!("Curator's ServiceCache saw the deregistration after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    cache.close_stdin();
    cache.wait(Duration::from_secs(30));
}

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
fn every_node_we_write_reads_back_in_zookeepers_own_cli_and_our_client_calls_each_format() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let s = session(&zk);
    let responder = Responder::time().expect("a responder");
    let endpoint = Endpoint::new(responder.addr());
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
    let mut registrations = Vec::new();
    for (format, base, expected) in [
        (
            Format::Plain,
            "/go_servers",
            format!("\"port\":{}", endpoint.port()),
        ),
        (
            Format::Curator,
            "/services",
            "\"serviceType\":\"DYNAMIC\"".to_owned(),
        ),
        (
            Format::Spring,
            "/spring",
            "\"instance_status\":\"UP\"".to_owned(),
        ),
        (
            Format::Serverset,
            "/aurora",
            format!("\"port\":{}", endpoint.port()),
        ),
    ] {
        let registrar = Registrar::new(BasePath::new(base).expect("a base path"))
            .format(format)
            .expect("writable");
        let registration = registrar
            .register(&s, endpoint, &metadata)
            .expect("registers");
        // An independent reader: ZooKeeper's own zkCli.sh.
        let printed = zkutil::testing::zk_cli(&hosts, &["get", &registration.path()]);
        assert!(printed.contains(&expected), "{format}: {printed}");

        // Our client, pointed at the directory of the instances.
        let dir = registrar.parent();
        let config = time_client::Config {
            base_path: BasePath::new(&dir).expect("a base path"),
            count: 3,
            interval: Duration::ZERO,
            ..time_client::Config::new(&hosts)
        };
        let (_keep, stop) = std::sync::mpsc::channel();
        let summary =
            time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
        assert_eq!(
            (summary.ok, summary.failed),
            (3, 0),
            "{format}: {}",
            summary.line()
        );
        registrations.push(registration);
    }
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

#[test]
fn curators_service_provider_skips_an_instance_we_took_out_of_rotation() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let peer = peer();
    let (server, listed) = curator_listed_server(&hosts, &peer);
    let mut endpoints: Vec<String> = listed
        .iter()
        .map(|i| format!("127.0.0.1:{}", i["port"]))
        .collect();
    endpoints.sort();
    let picks = |peer: &CuratorPeer| {
        let out = peer
            .run(&["provider", &hosts, "/services", "time", "20"])
            .unwrap_or_else(|err| panic!("curator provider: {err}"));
        let mut seen: Vec<String> = out.lines().map(str::to_owned).collect();
        seen.sort();
        seen.dedup();
        seen
    };
    assert_eq!(picks(&peer), endpoints, "round-robin over both");

    let observer = session(&zk);
    let service = BasePath::from_static("/services/time");
    let drained: Endpoint = endpoints[0].parse().expect("an endpoint");
    zkutil::Control::Disable {
        reason: Some("interop".into()),
    }
    .apply_to(&observer, &service, drained)
    .expect("disables");
    let enabled: Vec<bool> = curator_list(&peer, &hosts, "time", false)
        .iter()
        .map(|i| i["enabled"].as_bool().expect("Curator reads enabled"))
        .collect();
    assert_eq!(enabled.iter().filter(|on| !**on).count(), 1, "{enabled:?}");
    assert_eq!(
        picks(&peer),
        vec![endpoints[1].clone()],
        "20 picks, none disabled"
    );

    zkutil::Control::Enable
        .apply_to(&observer, &service, drained)
        .expect("enables");
    assert_eq!(picks(&peer), endpoints, "back in rotation");
    server.stop();
}
