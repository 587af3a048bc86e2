//! What we write, read by others: Curator and Spring list, pick and cache
//! our instances, honour our out-of-rotation flag, and ZooKeeper's own CLI
//! reads every format.

use std::time::{Duration, Instant, SystemTime};

use zkutil::testing::{CuratorPeer, Responder, TestProcess, wait_until};
use zkutil::{BasePath, Endpoint, Format, Metadata, Registrar};

use crate::support::{session, zookeeper};

use super::{curator_list, curator_listed_server, peer, server};

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
