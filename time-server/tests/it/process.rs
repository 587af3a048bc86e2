//! The real binary against a real ZooKeeper: registration, ownership,
//! crash, graceful stop, and one-line errors.

use std::time::Duration;

use zkutil::testing::wait_until;
use zkutil::{Endpoint, Metadata};

use crate::support::{ServerProcess, ask, children, observer, snapshot, zookeeper};

const LISTEN3: [&str; 6] = [
    "--listen",
    "127.0.0.1:0",
    "--listen",
    "127.0.0.1:0",
    "--listen",
    "127.0.0.1:0",
];

fn args<'a>(zk: &'a str, base: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--zk",
        zk,
        "--base-path",
        base,
        "--session-timeout",
        "2s",
        "--drain",
        "0s",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn three_port0_listeners_become_three_ephemeral_nodes_owned_by_one_session() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    assert!(
        obs.stat("/svc").ok().flatten().is_none(),
        "base path exists before the test"
    );
    let server = ServerProcess::start(&args(&hosts, "/svc", &LISTEN3));
    let names = server.registered(3);
    wait_until(Duration::from_secs(10), "three children", || {
        (children(&obs, "/svc").len() == 3).then_some(())
    });
    let mut found = children(&obs, "/svc");
    let mut logged = names.clone();
    found.sort();
    logged.sort();
    assert_eq!(
        found,
        logged,
        "registered names differ from the bound ports; log:\n{}",
        server.stderr()
    );
    let mut owners = Vec::new();
    for name in &found {
        let endpoint = Endpoint::from_node_name(name).expect("a valid node name");
        assert_ne!(endpoint.port(), 0);
        let path = format!("/svc/{name}");
        let (data, stat) = obs.get_data(&path).expect("reads the node");
        let metadata = Metadata::from_json(&path, &data).expect("valid metadata");
        assert_eq!(
            (metadata.address(), metadata.port(), metadata.pid()),
            ("127.0.0.1", endpoint.port(), server.pid())
        );
        owners.push(stat.ephemeral_owner());
        // The node's name is a port that answers as itself.
        let reply = ask(endpoint.addr()).unwrap_or_default();
        assert!(reply.starts_with(&format!("{name}: ")), "{reply:?}");
    }
    assert!(
        owners[0].get() != 0 && owners.iter().all(|o| *o == owners[0]),
        "owners {owners:?}"
    );
    assert_ne!(owners[0], obs.id());
    let base = obs
        .stat("/svc")
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no base path"));
    assert_eq!(
        base.ephemeral_owner().get(),
        0,
        "the base path must be persistent"
    );
}

#[test]
fn a_second_server_adds_its_nodes_without_disturbing_the_first() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let first = ServerProcess::start(&args(&hosts, "/go_servers", &LISTEN3));
    first.registered(3);
    let before = snapshot(&obs, "/go_servers");
    let second = ServerProcess::start(&args(
        &hosts,
        "/go_servers",
        &["--listen", "127.0.0.1:0,127.0.0.1:0"],
    ));
    second.registered(2);
    wait_until(Duration::from_secs(10), "five children", || {
        (children(&obs, "/go_servers").len() == 5).then_some(())
    });
    let after = snapshot(&obs, "/go_servers");
    for node in &before {
        assert!(
            after.contains(node),
            "{node:?} changed or vanished: {after:?}"
        );
    }
    let owners: std::collections::BTreeSet<zkutil::SessionId> =
        after.iter().map(|(_, owner, _)| *owner).collect();
    assert_eq!(owners.len(), 2, "{after:?}");
}

#[test]
fn nodes_vanish_after_the_server_is_killed_with_sigkill() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let mut server = ServerProcess::start(&args(&hosts, "/go_servers", &LISTEN3));
    server.registered(3);
    server.signal("KILL");
    server.wait(Duration::from_secs(10));
    // The session timeout is 2 s; the server expires it within about that.
    wait_until(
        Duration::from_secs(30),
        "the killed server's nodes are gone",
        || children(&obs, "/go_servers").is_empty().then_some(()),
    );
}

#[test]
fn sigterm_deregisters_and_exits_zero() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let mut server = ServerProcess::start(&args(&hosts, "/go_servers", &LISTEN3));
    server.registered(3);
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(20));
    assert!(status.success(), "exit {status}; log:\n{}", server.stderr());
    assert!(
        children(&obs, "/go_servers").is_empty(),
        "nodes left after a clean stop"
    );
    assert!(
        server.stderr().contains("deregistered"),
        "{}",
        server.stderr()
    );
}

#[test]
fn unreachable_zookeeper_is_a_one_line_error_naming_the_hosts() {
    let hosts = "127.0.0.1:1";
    let mut server = ServerProcess::start(&[
        "--zk",
        hosts,
        "--zk-connect-timeout",
        "1s",
        "--startup-timeout",
        "2s",
        "--listen",
        "127.0.0.1:0",
    ]);
    let status = server.wait(Duration::from_secs(20));
    assert!(!status.success());
    let err = server.stderr();
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("time-server: error: ") && last.contains(hosts),
        "{err}"
    );
}

#[test]
fn a_listener_that_cannot_bind_is_a_one_line_error_and_nothing_is_registered() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("a bound address").to_string();
    let hosts = zk.connect_string();
    let mut server = ServerProcess::start(&args(
        &hosts,
        "/go_servers",
        &["--listen", "127.0.0.1:0", "--listen", &addr],
    ));
    let status = server.wait(Duration::from_secs(20));
    assert!(!status.success());
    let err = server.stderr();
    assert!(
        err.lines()
            .last()
            .unwrap_or_default()
            .contains(&format!("binding {addr}")),
        "{err}"
    );
    assert!(children(&obs, "/go_servers").is_empty());
}

#[test]
fn an_unspecified_address_needs_advertise_and_registers_the_advertised_ip() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let mut refused =
        ServerProcess::start(&args(&hosts, "/go_servers", &["--listen", "0.0.0.0:0"]));
    assert!(!refused.wait(Duration::from_secs(20)).success());
    assert!(
        refused.stderr().contains("--advertise"),
        "{}",
        refused.stderr()
    );
    let server = ServerProcess::start(&args(
        &hosts,
        "/go_servers",
        &["--listen", "0.0.0.0:0", "--advertise", "127.0.0.1"],
    ));
    let names = server.registered(1);
    assert!(names[0].starts_with("127.0.0.1:"), "{names:?}");
    assert!(
        !children(&obs, "/go_servers")
            .iter()
            .any(|n| n.starts_with("0.0.0.0"))
    );
}

#[test]
fn bad_flags_exit_with_a_usage_error() {
    let mut server = ServerProcess::start(&["--listen", "not-an-address"]);
    let status = server.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(2), "{}", server.stderr());
    assert!(
        server.stderr().contains("invalid endpoint"),
        "{}",
        server.stderr()
    );
}

#[test]
fn listen_takes_a_host_name_as_advertise_does() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&args(&hosts, "/go_servers", &["--listen", "localhost:0"]));
    let names = server.registered(1);
    assert!(
        names[0].starts_with("127.0.0.1:") || names[0].starts_with("[::1]:"),
        "{names:?}"
    );
}

#[test]
fn a_base_path_typo_is_refused_before_binding_or_connecting() {
    for bad in ["go_servers", "/go_servers/", "/", "/zookeeper"] {
        // Nothing listens on port 1: a connect would be exit 1 or retried.
        let mut server = ServerProcess::start(&["--zk", "127.0.0.1:1", "--base-path", bad]);
        let status = server.wait(Duration::from_secs(10));
        assert_eq!(status.code(), Some(2), "{bad:?}: {}", server.stderr());
        assert!(
            server.stderr().contains("invalid base path"),
            "{}",
            server.stderr()
        );
    }
}

#[test]
fn absurd_or_zero_durations_exit_with_a_usage_error_not_a_panic() {
    for args in [
        ["--startup-timeout", "99999999999years"],
        ["--drain", "99999999999years"],
        ["--startup-timeout", "0s"],
        ["--zk-connect-timeout", "0s"],
        ["--session-timeout", "0s"],
    ] {
        let mut server = ServerProcess::start(&args);
        let status = server.wait(Duration::from_secs(10));
        let stderr = server.stderr();
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let mut server =
        ServerProcess::start(&["--zk", &hosts, "--listen", "127.0.0.1:0", "--drain", "60s"]);
    server.registered(1);
    server.signal("TERM");
    server.wait_for_log("still serving clients", 1, Duration::from_secs(20));
    server.signal("TERM");
    // Well before the 60 s drain would end.
    let status = server.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(128 + 15), "{}", server.stderr());
    assert!(
        server.stderr().contains("second signal"),
        "{}",
        server.stderr()
    );
}

#[test]
fn demo_script_stops_with_a_clear_error_when_zookeeper_fails_to_start() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/demo.sh");
    // A "java" that exits at once: ZooKeeper never starts.
    let output = std::process::Command::new("bash")
        .arg(script)
        .env("ZK_JAVA", "false")
        .env_remove("ZK_HOSTS")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running demo.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("ZooKeeper did not start"),
        "no clear cause: {stderr}"
    );
    assert!(
        !stderr.contains("building release") && !stderr.contains("running time-client"),
        "carried on without ZooKeeper: {stderr}"
    );
}

#[test]
fn a_layout_nesting_one_format_among_anothers_instances_is_refused_naming_both_paths() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    for (extra, named) in [
        (
            &[
                "--format",
                "plain,curator",
                "--curator-base-path",
                "/go_servers",
            ][..],
            "curator parent /go_servers/time would sit among the plain instances under /go_servers",
        ),
        (
            &[
                "--format",
                "plain,serverset",
                "--serverset-path",
                "/go_servers",
            ][..],
            "serverset parent /go_servers would sit among the plain instances under /go_servers",
        ),
        // A format alone among a plain fleet this server does not register:
        // the post's servers under /go_servers still list it.
        (
            &["--format", "curator", "--curator-base-path", "/go_servers"][..],
            "curator parent /go_servers/time would sit among the plain instances under /go_servers",
        ),
        // As the README once showed it, before each format had its own
        // root: the plain base path /services would list Curator's `time`.
        (
            &["--base-path", "/services", "--format", "curator"][..],
            "curator parent /services/time would sit among the plain instances under /services",
        ),
        (
            &["--format", "serverset"][..],
            "a serverset needs its own path",
        ),
    ] {
        let mut all = vec!["--zk", hosts.as_str(), "--listen", "127.0.0.1:0"];
        all.extend_from_slice(extra);
        let mut server = ServerProcess::start(&all);
        let status = server.wait(Duration::from_secs(20));
        let log = server.stderr();
        assert!(!status.success(), "{extra:?} started: {log}");
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.starts_with("time-server: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{extra:?}: one error line: {log}");
        assert!(errors[0].contains(named), "{extra:?}: {log}");
        assert!(
            !log.contains("listening"),
            "{extra:?}: bound before refusing: {log}"
        );
    }
    assert!(
        children(&observer(&zk), "/go_servers").is_empty(),
        "something registered"
    );
}

#[test]
fn a_base_path_given_for_curator_alone_is_said_to_be_the_plain_formats() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    // A --base-path meant for Curator, away from Curator's own root (the
    // README's old `--base-path /services` is now refused as a nesting).
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--base-path",
        "/legacy",
        "--format",
        "curator",
        "--listen",
        "127.0.0.1:0",
    ]);
    server.registered(1);
    assert_eq!(children(&observer(&zk), "/services/time").len(), 1);
    assert_eq!(
        server.log_count("--base-path is the parent of plain registrations only"),
        1,
        "{}",
        server.stderr()
    );
}
