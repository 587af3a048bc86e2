//! The registry layout during a migration: each format under its own root,
//! so that a reader of one format's parent never meets another format's
//! nodes. Attacked with the post's own Go client, which takes every child
//! of `/go_servers` for an `ip:port`.

use std::process::{Command, Stdio};
use std::time::Duration;

use clap::Parser;
use zkutil::testing::{TestProcess, wait_until};

use crate::support::{InProcessServer, session, zookeeper};

/// Runs the post's client for `count` requests against `hosts`, at most
/// 60 s: its exit status and stdout.
fn run_seed_client(hosts: &str, count: u32) -> (std::process::ExitStatus, String) {
    let seed =
        zkutil::testing::SeedGo::get().unwrap_or_else(|e| panic!("building the Go peer: {e}"));
    let mut client = seed.client(hosts, count, 0);
    let status = client.wait(Duration::from_secs(60));
    let printed: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    (status, printed.join("\n"))
}

#[test]
fn plain_and_curator_with_default_paths_keep_the_posts_client_and_our_readers_clean() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let observer = session(&zk);
    // The migration as the README shows it: the real flags, their defaults.
    let args = time_server::Args::try_parse_from([
        "time-server",
        "--zk",
        &hosts,
        "--format",
        "plain,curator",
        "--listen",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let server = InProcessServer::start(time_server::Config {
        startup_timeout: Some(Duration::from_secs(30)),
        drain: Duration::ZERO,
        ..args.config()
    });
    let plain = wait_until(Duration::from_secs(30), "both formats register", || {
        let plain = observer.children("/go_servers").ok()?;
        let curator = observer.children("/services/time").ok()?;
        (plain.len() == 3 && curator.len() == 3).then_some(plain)
    });
    assert!(
        plain
            .iter()
            .all(|name| name.parse::<zkutil::Endpoint>().is_ok()),
        "only ip:port children under /go_servers: {plain:?}"
    );

    // The post's client, which picks serverList[r.Intn(3)] among them.
    let (status, printed) = run_seed_client(&hosts, 20);
    let answered = printed
        .lines()
        .filter(|line| {
            plain
                .iter()
                .any(|name| line.starts_with(&format!("{name}: ")))
        })
        .count();
    assert!(status.success(), "{status}; it printed:\n{printed}");
    assert_eq!(answered, 20, "answered of 20; it printed:\n{printed}");

    // Our readers: one listing (ls) and the watch-driven discovery that
    // the time-client uses (watch); neither has anything to skip.
    let ls = Command::new(crate::support::zkutil_binary())
        .args(["--zk", &hosts, "ls", "--json"])
        .env_remove("ZK_HOSTS")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running zkutil: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&ls.stdout),
        String::from_utf8_lossy(&ls.stderr),
    );
    assert!(ls.status.success(), "{stderr}");
    assert!(!stderr.contains("WARN"), "zkutil ls warned: {stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON array");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{stdout}");

    let mut watch = TestProcess::start(
        crate::support::zkutil_binary(),
        &["--zk", &hosts, "watch"],
        &[("RUST_LOG", "info")],
    );
    watch.stdout().wait_for_lines(3, Duration::from_secs(30));
    watch.signal("TERM");
    assert!(watch.wait(Duration::from_secs(15)).success());
    let log = watch.stderr_text();
    assert!(!log.contains("WARN"), "zkutil watch warned: {log}");
    server.stop();
}

#[test]
fn ls_under_a_root_lists_every_format_with_its_parent() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let observer = session(&zk);
    let args = time_server::Args::try_parse_from([
        "time-server",
        "--zk",
        &hosts,
        "--format",
        "plain,spring,serverset",
        "--serverset-path",
        "/aurora/time",
        "--listen",
        "127.0.0.1:0",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let server = InProcessServer::start(time_server::Config {
        startup_timeout: Some(Duration::from_secs(30)),
        drain: Duration::ZERO,
        ..args.config()
    });
    wait_until(
        Duration::from_secs(30),
        "all three formats register",
        || {
            ["/go_servers", "/services/time", "/aurora/time"]
                .iter()
                .all(|parent| observer.children(parent).is_ok_and(|c| c.len() == 1))
                .then_some(())
        },
    );
    let ls = Command::new(crate::support::zkutil_binary())
        .args(["--zk", &hosts, "ls", "--under", "/", "--json"])
        .env_remove("ZK_HOSTS")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running zkutil: {e}"));
    let stdout = String::from_utf8_lossy(&ls.stdout);
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON array");
    let mut seen: Vec<(String, String)> = listed
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            (
                row["parent"].as_str().unwrap_or_default().to_owned(),
                row["format"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("/aurora/time".to_owned(), "serverset".to_owned()),
            ("/go_servers".to_owned(), "plain".to_owned()),
            ("/services/time".to_owned(), "spring".to_owned()),
        ],
        "{stdout}"
    );
    // The table says where each one lives.
    let table = Command::new(crate::support::zkutil_binary())
        .args(["--zk", &hosts, "ls", "--under", "/"])
        .env_remove("ZK_HOSTS")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running zkutil: {e}"));
    let table = String::from_utf8_lossy(&table.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|line| line.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert_eq!(rows[0], ["PARENT", "ENDPOINT", "FORMAT"], "{table}");
    for (row, (parent, format)) in rows[1..].iter().zip([
        ("/aurora/time", "serverset"),
        ("/go_servers", "plain"),
        ("/services/time", "spring"),
    ]) {
        assert_eq!((row[0], row[2]), (parent, format), "{table}");
    }
    server.stop();
}

/// A format registered alone never lands among a plain fleet that some
/// other process registers: `zkutil register --format curator
/// --curator-base-path /go_servers` (a `time` child there) and `--format
/// serverset --serverset-path /go_servers` (`member_…` children) are
/// refused at startup with one line naming both paths, and nothing is
/// written under `/go_servers`.
#[test]
fn one_format_alone_is_refused_among_the_plain_fleets_instances() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let observer = session(&zk);
    let e: zkutil::Endpoint = "127.0.0.1:7001".parse().expect("a valid literal");
    let plain = zkutil::Registration::register(
        &observer,
        &zkutil::BasePath::from_static("/go_servers"),
        e,
        &zkutil::Metadata::for_this_process(e, std::time::SystemTime::now(), "test"),
    )
    .expect("a plain fleet under /go_servers");
    for (flags, message) in [
        (
            ["--format", "curator", "--curator-base-path", "/go_servers"],
            "curator parent /go_servers/time would sit among the plain instances under /go_servers",
        ),
        (
            ["--format", "serverset", "--serverset-path", "/go_servers"],
            "serverset parent /go_servers would sit among the plain instances under /go_servers",
        ),
    ] {
        let mut args = vec!["--zk", &hosts, "register", "127.0.0.1:7002"];
        args.extend(flags);
        // A process with a deadline: one that is not refused registers
        // and holds its node until stopped.
        let mut register = TestProcess::start(crate::support::zkutil_binary(), &args, &[]);
        let status = register.wait(Duration::from_secs(15));
        let stderr = register.stderr_text();
        assert_eq!(status.code(), Some(1), "{flags:?}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("zkutil: error:"))
            .collect();
        assert!(
            errors.len() == 1 && errors[0].contains(message),
            "{flags:?}: {stderr}"
        );
        assert_eq!(
            observer.children("/go_servers").expect("lists"),
            ["127.0.0.1:7001"],
            "{flags:?}"
        );
    }
    plain.deregister().expect("deregisters");
}
