//! `ls` and `get`: exactly what is registered, whoever wrote it (our
//! registrations, a time-server under a chroot, the post's Go servers) and
//! whatever a child hides.

use std::time::Duration;

use serde_json::Value;
use zkutil::testing::{Responder, wait_until};
use zkutil::{BasePath, Endpoint, Registration};

use crate::support::{InProcessServer, server_config, session, zookeeper};

use super::{lines, register, running, stop_with, text, zkutil};

#[test]
fn ls_lists_exactly_what_is_registered() {
    let zk = zookeeper();
    let s = session(&zk);
    let regs: Vec<Registration> = ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"]
        .iter()
        .map(|t| register(&s, t.parse().expect("a valid literal")))
        .collect();
    s.create_ephemeral("/go_servers/not-an-endpoint", b"")
        .expect("creates the node");
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "ls", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listed: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)));
    let listed = listed.as_array().cloned().unwrap_or_default();
    let endpoints: Vec<&str> = listed
        .iter()
        .filter_map(|i| i["endpoint"].as_str())
        .collect();
    assert_eq!(endpoints, ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"]);
    for instance in &listed {
        assert_eq!(instance["owner"], format!("{:#x}", s.id()));
        assert_eq!(instance["metadata"]["version"], "test");
        assert!(instance["age_ms"].as_i64().is_some_and(|age| age >= 0));
    }
    assert!(
        text(&output.stderr).contains("skipping malformed child"),
        "{}",
        text(&output.stderr)
    );

    let table = zkutil(&["ls", "--zk", &hosts]);
    assert!(table.status.success());
    let lines: Vec<String> = text(&table.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with("ENDPOINT"));
    drop(regs);
}

#[test]
fn get_shows_one_instance_and_an_unknown_one_is_a_one_line_error() {
    let zk = zookeeper();
    let s = session(&zk);
    let _reg = register(&s, "127.0.0.1:9".parse().expect("a valid literal"));
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "get", "127.0.0.1:9"]);
    assert!(output.status.success());
    let shown: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(shown["stat"]["owner"], format!("{:#x}", s.id()));
    assert_eq!(shown["metadata"]["port"], 9);
    let missing = zkutil(&["--zk", &hosts, "get", "127.0.0.1:10"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        text(&missing.stderr).trim(),
        "zkutil: error: no instance 127.0.0.1:10 registered under /go_servers"
    );
}

#[test]
fn server_client_and_cli_agree_on_a_chrooted_registry() {
    let zk = zookeeper();
    let root = session(&zk);
    let chrooted = format!("{}/app", zk.connect_string());
    let server = InProcessServer::start(time_server::Config {
        listen: vec!["127.0.0.1:0".parse().expect("a valid literal"); 2],
        ..server_config(&chrooted)
    });
    // The chroot did not exist: the server created it.
    let names = wait_until(
        Duration::from_secs(30),
        "the server registers inside the chroot",
        || {
            root.children("/app/go_servers")
                .ok()
                .filter(|names| names.len() == 2)
        },
    );

    let output = zkutil(&["--zk", &chrooted, "ls", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let listed: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let mut cli_names: Vec<String> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["endpoint"].as_str().map(str::to_owned))
        .collect();
    let mut zk_names = names.clone();
    cli_names.sort();
    zk_names.sort();
    assert_eq!(cli_names, zk_names);

    let client = time_client::Config {
        count: 10,
        interval: Duration::ZERO,
        // Both servers reached for certain (random picks miss one 1 in 512).
        strategy: zkutil::Strategy::RoundRobin,
        ..time_client::Config::new(&chrooted)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&client, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!(
        (summary.ok, summary.failed, summary.per_server.len()),
        (10, 0, 2),
        "{}",
        summary.line()
    );

    let mut top = root.children("/").expect("lists the children");
    top.sort();
    assert_eq!(
        top,
        ["app", "zookeeper"],
        "something was written outside the chroot"
    );
    server.stop();
    assert!(
        root.children("/app/go_servers")
            .unwrap_or_default()
            .is_empty()
    );
}

#[test]
fn one_unreadable_child_hides_no_other_instance() {
    let zk = zookeeper();
    let s = session(&zk);
    let hosts = zk.connect_string();
    let responders: Vec<Responder> = (0..3)
        .map(|_| Responder::time().expect("a responder"))
        .collect();
    let _regs: Vec<Registration> = responders[..2]
        .iter()
        .map(|r| register(&s, Endpoint::new(r.addr())))
        .collect();
    // The third: readable by nobody (an ACL without READ), set by
    // ZooKeeper's own CLI.
    let hidden = format!("/go_servers/{}", responders[2].addr());
    s.create_ephemeral(&hidden, b"{}").expect("create");
    zkutil::testing::zk_cli(&hosts, &["setAcl", &hidden, "world:anyone:cdwa"]);
    assert!(s.get_data(&hidden).is_err_and(|e| e.is_no_auth()));

    let discovery =
        zkutil::Discovery::start_with_metadata(s.clone(), &BasePath::from_static("/go_servers"))
            .expect("discovery");
    let snapshot = discovery.snapshot();
    assert!(!snapshot.is_stale());
    let with_metadata: Vec<(String, bool)> = snapshot
        .instances()
        .iter()
        .map(|i| (i.endpoint().to_string(), i.metadata().is_some()))
        .collect();
    let mut expected: Vec<(String, bool)> = responders
        .iter()
        .enumerate()
        .map(|(i, r)| (r.addr().to_string(), i < 2))
        .collect();
    expected.sort();
    let mut found = with_metadata.clone();
    found.sort();
    assert_eq!(
        found, expected,
        "listed by its name alone, the others intact"
    );

    let ls = zkutil(&["--zk", &hosts, "ls", "--json"]);
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    for r in &responders {
        assert!(
            text(&ls.stdout).contains(&r.addr().to_string()),
            "{}",
            text(&ls.stdout)
        );
    }
    let check = zkutil(&["--zk", &hosts, "check", "--probe", "tcp"]);
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    let mut watch = running(&["--zk", &hosts, "watch"]);
    watch
        .stdout()
        .wait_until(Duration::from_secs(20), "all three listed", |lines| {
            responders
                .iter()
                .all(|r| lines.iter().any(|(_, l)| l.contains(&r.addr().to_string())))
                .then_some(())
        });
    assert!(stop_with(&mut watch, "TERM").success());
}

#[test]
fn ls_and_watch_list_the_posts_go_servers_whose_nodes_hold_no_data() {
    let seed =
        zkutil::testing::SeedGo::get().unwrap_or_else(|e| panic!("building the Go peer: {e}"));
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let mut watch = running(&["--zk", &hosts, "watch"]);
    let ports = zkutil::testing::free_ports(2).expect("free ports");
    let listen: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut go = seed.server(&hosts, &[&listen[0], &listen[1]]);
    for address in &listen {
        wait_until(
            Duration::from_secs(30),
            "watch prints each Go server",
            || {
                lines(&watch)
                    .iter()
                    .any(|l| l.ends_with(&format!(" + {address}")))
                    .then_some(())
            },
        );
    }
    let ls = zkutil(&["--zk", &hosts, "ls", "--json"]);
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    let listed: Value =
        serde_json::from_slice(&ls.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&ls.stdout)));
    let mut endpoints: Vec<&str> = listed
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["endpoint"].as_str()).collect())
        .unwrap_or_default();
    endpoints.sort_unstable();
    let mut expected = [listen[0].as_str(), listen[1].as_str()];
    expected.sort_unstable();
    assert_eq!(endpoints, expected);
    assert!(!text(&ls.stderr).contains("WARN"), "{}", text(&ls.stderr));
    go.signal("KILL");
    go.wait(Duration::from_secs(10));
    let status = stop_with(&mut watch, "INT");
    assert!(status.success(), "{status}");
    assert!(
        !watch.stderr_text().contains("WARN"),
        "{}",
        watch.stderr_text()
    );
}
