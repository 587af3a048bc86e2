//! The `zkutil` binary, run as a process against real ZooKeeper: stdout
//! (text and JSON), stderr and exit codes.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use zkutil::testing::{Responder, TestProcess, ZkEnsemble, wait_until};
use zkutil::{BasePath, Endpoint, Metadata, Registration};

use crate::support::{InProcessServer, server_config, session, zookeeper};

fn zkutil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkutil"))
        .args(args)
        .env_remove("ZK_HOSTS")
        .env_remove("ZK_AUTH")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running zkutil: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A long-running `zkutil`, its stdout recorded line by line.
fn running(args: &[&str]) -> TestProcess {
    TestProcess::start(env!("CARGO_BIN_EXE_zkutil"), args, &[])
}

fn lines(process: &TestProcess) -> Vec<String> {
    process
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, line)| line)
        .collect()
}

/// Stops it with `signal` and waits for the exit.
fn stop_with(process: &mut TestProcess, signal: &str) -> std::process::ExitStatus {
    process.signal(signal);
    process.wait(Duration::from_secs(15))
}

fn register(s: &Arc<zkutil::Session>, endpoint: Endpoint) -> Registration {
    let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
    Registration::register(s, &BasePath::default(), endpoint, &metadata).expect("registers")
}

#[test]
fn empty_is_not_an_error_but_says_why() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let ls = zkutil(&["--zk", &hosts, "ls"]);
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert_eq!(text(&ls.stdout), "(no instances)\n");
    assert_eq!(
        text(&ls.stderr).trim(),
        "zkutil: no server has registered under /go_servers (it does not exist)"
    );
    let check = zkutil(&["--zk", &hosts, "check"]);
    assert!(check.status.success(), "nothing registered is nothing down");
    let at_least_one = zkutil(&["--zk", &hosts, "check", "--min", "1"]);
    assert_eq!(at_least_one.status.code(), Some(1));
    assert!(text(&at_least_one.stderr).contains("0 reachable, fewer than --min 1"));
}

#[test]
fn a_closed_stdout_ends_zkutil_quietly() {
    let zk = zookeeper();
    let s = session(&zk);
    let _regs: Vec<Registration> = (1..=3)
        .map(|port| {
            register(
                &s,
                format!("127.0.0.1:{port}")
                    .parse()
                    .expect("a valid literal"),
            )
        })
        .collect();
    let script = format!(
        "set -o pipefail; {} --zk {} ls | head -1",
        env!("CARGO_BIN_EXE_zkutil"),
        zk.connect_string()
    );
    let output = Command::new("bash")
        .args(["-c", &script])
        .env_remove("ZK_HOSTS")
        .output()
        .expect("runs bash");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("ENDPOINT "));
    assert!(
        !text(&output.stderr).contains("error"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn base_path_typos_are_refused_before_anything_is_contacted() {
    // Port 1: a connect would fail with exit 1, not the usage error's 2.
    for bad in [
        "go_servers",
        "/go_servers/",
        "/go//servers",
        "/",
        "/zookeeper/x",
    ] {
        let output = zkutil(&["--zk", "127.0.0.1:1", "--base-path", bad, "ls"]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("invalid base path"), "{stderr}");
    }
}

#[test]
fn a_bad_connect_string_names_the_host_and_a_bad_secret_is_never_echoed() {
    for (zk, named) in [
        ("127.0.0.1:2181,,127.0.0.2", "an empty host"),
        (
            "127.0.0.1:2181,zk2:99999",
            "host \"zk2:99999\": the port must be 1-65535",
        ),
        ("[::1:2181", "host \"[::1:2181\""),
        ("zk1:2181/app/", "chroot: invalid base path \"/app/\""),
    ] {
        let output = zkutil(&["--zk", zk, "ls"]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{zk}: {stderr}");
        assert!(stderr.contains(named), "{zk}: {stderr}");
    }
    let output = zkutil(&["--zk-auth", "s3cr3t-without-user", "ls"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("expected user:password"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "the value was echoed: {stderr}");
}

#[test]
fn completions_and_man_pages_are_generated_from_the_flags() {
    let bash = zkutil(&["completions", "bash"]);
    assert!(bash.status.success());
    let script = text(&bash.stdout);
    assert!(
        script.contains("complete -F _zkutil") && script.contains("--base-path"),
        "{script}"
    );
    let page = zkutil(&["man-page"]);
    let page = text(&page.stdout);
    assert!(
        page.contains(".TH zkutil 1") && page.contains("register"),
        "{page}"
    );
}

#[test]
fn no_color_means_no_escape_codes_and_logs_name_no_module_paths() {
    // A host that accepts and never answers: the wait logs "connecting to
    // ZooKeeper at …" after a second, then times out.
    let silent = TcpListener::bind("127.0.0.1:0").expect("binds");
    let command = format!(
        "{} --zk {} --zk-connect-timeout 2s ls",
        env!("CARGO_BIN_EXE_zkutil"),
        silent.local_addr().expect("bound")
    );
    // On a terminal (script's pseudo-terminal) logs are in colour ...
    let run = |no_color: bool| {
        let mut script = Command::new("script");
        script
            .args(["-qec", &command, "/dev/null"])
            .env_remove("RUST_LOG");
        if no_color {
            script.env("NO_COLOR", "1");
        } else {
            script.env_remove("NO_COLOR");
        }
        let output = script.output().expect("runs script (util-linux)");
        format!("{}{}", text(&output.stdout), text(&output.stderr))
    };
    let coloured = run(false);
    assert!(
        coloured.contains("connecting to ZooKeeper") && coloured.contains('\u{1b}'),
        "on a terminal logs are in colour: {coloured:?}"
    );
    // ... and NO_COLOR wins.
    let plain = run(true);
    assert!(plain.contains("connecting to ZooKeeper"), "{plain:?}");
    assert!(!plain.contains('\u{1b}'), "escape codes: {plain:?}");
    assert!(!plain.contains("zkutil::"), "module paths: {plain}");
}

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
fn watch_prints_one_plus_and_one_minus_for_a_server_that_comes_and_goes() {
    let zk = zookeeper();
    let s = session(&zk);
    let hosts = zk.connect_string();
    let mut watch = running(&["--zk", &hosts, "watch"]);
    let endpoint: Endpoint = "127.0.0.1:4242".parse().expect("a valid literal");
    let registration = register(&s, endpoint);
    wait_until(Duration::from_secs(20), "watch prints +", || {
        lines(&watch)
            .iter()
            .any(|l| l.ends_with(" + 127.0.0.1:4242"))
            .then_some(())
    });
    registration.deregister().expect("deregisters");
    wait_until(Duration::from_secs(20), "watch prints -", || {
        lines(&watch)
            .iter()
            .any(|l| l.ends_with(" - 127.0.0.1:4242"))
            .then_some(())
    });
    let status = stop_with(&mut watch, "INT");
    assert!(status.success(), "{status}");
    let lines = lines(&watch);
    assert_eq!(
        lines.iter().filter(|l| l.contains(" + ")).count(),
        1,
        "{lines:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains(" - ")).count(),
        1,
        "{lines:?}"
    );
    // Each line starts with its time.
    assert!(
        lines
            .iter()
            .all(|l| humantime::parse_rfc3339(l.split(' ').next().unwrap_or_default()).is_ok()),
        "{lines:?}"
    );
}

#[test]
fn watch_json_reports_added_and_removed() {
    let zk = zookeeper();
    let s = session(&zk);
    let already = register(&s, "127.0.0.1:7".parse().expect("a valid literal"));
    let mut watch = running(&["--zk", &zk.connect_string(), "watch", "--json"]);
    wait_until(
        Duration::from_secs(20),
        "the existing instance is listed",
        || (!lines(&watch).is_empty()).then_some(()),
    );
    already.deregister().expect("deregister");
    wait_until(Duration::from_secs(20), "the removal is reported", || {
        (lines(&watch).len() >= 2).then_some(())
    });
    let status = stop_with(&mut watch, "TERM");
    assert!(status.success());
    let events: Vec<(Option<String>, Option<String>)> = lines(&watch)
        .iter()
        .map(|line| {
            let event: Value = serde_json::from_str(line).expect("a JSON line");
            (
                event["event"].as_str().map(str::to_owned),
                event["endpoint"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        events,
        vec![
            (some("added"), some("127.0.0.1:7")),
            (some("removed"), some("127.0.0.1:7"))
        ]
    );
}

#[test]
fn register_holds_a_node_that_a_time_client_uses_and_removes_it_on_sigterm() {
    let zk = zookeeper();
    let observer = session(&zk);
    let hosts = zk.connect_string();
    let responder = Responder::time().expect("a responder");
    let endpoint = responder.addr().to_string();
    let mut sidecar = running(&[
        "--zk",
        &hosts,
        "register",
        &endpoint,
        "--metadata",
        r#"{"role":"stand-in"}"#,
    ]);
    let path = format!("/go_servers/{endpoint}");
    let (data, _) = wait_until(Duration::from_secs(20), "the sidecar registers", || {
        observer.get_data(&path).ok()
    });
    let metadata: Value = serde_json::from_slice(&data).expect("valid JSON");
    assert_eq!(
        (metadata["role"].as_str(), metadata["port"].as_u64()),
        (Some("stand-in"), Some(u64::from(responder.addr().port())))
    );

    let config = time_client::Config {
        count: 5,
        interval: Duration::ZERO,
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!((summary.ok, summary.failed), (5, 0), "{}", summary.line());

    let status = stop_with(&mut sidecar, "TERM");
    assert!(status.success(), "{status}");
    assert!(
        observer.stat(&path).ok().flatten().is_none(),
        "the node outlived the sidecar"
    );
}

#[test]
fn register_refuses_a_live_servers_address_unless_forced() {
    let zk = zookeeper();
    let observer = session(&zk);
    let hosts = zk.connect_string();
    let server = InProcessServer::start(server_config(&hosts));
    let (name, server_session) =
        wait_until(Duration::from_secs(30), "the server registers", || {
            let name = observer.children("/go_servers").ok()?.pop()?;
            let stat = observer.stat(&format!("/go_servers/{name}")).ok()??;
            Some((name, stat.ephemeral_owner()))
        });
    let path = format!("/go_servers/{name}");
    let owner = || {
        observer
            .stat(&path)
            .ok()
            .flatten()
            .map(|s| s.ephemeral_owner())
    };

    let refused = zkutil(&["--zk", &hosts, "register", &name]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let last = text(&refused.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        last,
        format!(
            "zkutil: error: {name} is registered by live session {server_session}; --force to take over"
        )
    );
    assert_eq!(
        owner(),
        Some(server_session),
        "the live server's node is untouched"
    );

    let mut forced = running(&["--zk", &hosts, "register", &name, "--force"]);
    let taken = wait_until(
        Duration::from_secs(20),
        "--force takes the node over",
        || owner().filter(|o| *o != server_session),
    );
    assert_ne!(taken, server_session);
    let status = stop_with(&mut forced, "TERM");
    assert!(status.success(), "{status}");
    // The server's keeper was waiting for the other holder to go.
    wait_until(
        Duration::from_secs(20),
        "the server registers again",
        || (owner() == Some(server_session)).then_some(()),
    );
    server.stop();
}

#[test]
fn check_fails_when_a_registered_instance_is_down() {
    let zk = zookeeper();
    let s = session(&zk);
    let responder = Responder::time().expect("a responder");
    let _up = register(&s, Endpoint::new(responder.addr()));
    let dead_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let dead: Endpoint = format!("127.0.0.1:{dead_port}")
        .parse()
        .expect("a valid literal");
    let _down = register(&s, dead);
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "check", "--timeout", "500ms"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("{} reachable", responder.addr())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("{dead} unreachable")), "{stdout}");
    drop(_down);
    let output = zkutil(&["--zk", &hosts, "check", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    let line: Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(line["reachable"], true);
    assert!(
        line["reply"]
            .as_str()
            .is_some_and(|reply| reply.starts_with(&responder.addr().to_string())),
        "{line}"
    );
}

#[test]
fn check_reports_a_frozen_server_that_still_accepts_connections() {
    let zk = zookeeper();
    let s = session(&zk);
    let hosts = zk.connect_string();
    // Like a SIGSTOPped server: the kernel completes connections into the
    // backlog, nobody ever answers.
    let frozen = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = frozen.local_addr().expect("addr");
    let _reg = register(&s, Endpoint::new(addr));
    let output = zkutil(&["--zk", &hosts, "check", "--timeout", "500ms"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert!(
        text(&output.stdout).contains(&format!("{addr} unreachable: no reply within 500ms")),
        "{}",
        text(&output.stdout)
    );
    // Connect-only, for services that are not time servers.
    let output = zkutil(&["--zk", &hosts, "check", "--probe", "tcp"]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    assert!(text(&output.stdout).contains(&format!("{addr} reachable")));
}

#[test]
fn status_reports_an_ensembles_leader_and_followers() {
    zkutil::testing::init_test_logging();
    let mut zk = ZkEnsemble::start(3).expect("the ensemble starts");
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "status"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" leader ")).count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" follower ")).count(),
        2,
        "{stdout}"
    );
    let follower = (0..3)
        .find(|&i| zk.mode(i).as_deref() == Some("follower"))
        .unwrap_or(0);
    zk.kill(follower);
    let output = zkutil(&["--zk", &hosts, "status", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let down: Vec<Value> = text(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["up"] == false)
        .collect();
    assert_eq!(down.len(), 1, "{}", text(&output.stdout));
    assert_eq!(down[0]["host"], format!("127.0.0.1:{}", zk.port(follower)));
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
fn unreachable_zookeeper_and_bad_input_are_one_line_errors() {
    let output = zkutil(&["--zk", "127.0.0.1:1", "--zk-connect-timeout", "1s", "ls"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.trim().starts_with("zkutil: error: ") && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    let bad = zkutil(&["get", "not-an-endpoint"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("invalid endpoint"),
        "{}",
        text(&bad.stderr)
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
fn with_auth_the_cli_and_the_client_can_still_discover() {
    let zk = zookeeper();
    let owner = zkutil::SessionConfig::new(zk.connect_string())
        .with_digest_auth(zkutil::Secret::new("svc:pw"))
        .connect()
        .map(Arc::new)
        .expect("connects to ZooKeeper");
    let responder = Responder::time().expect("a responder");
    let _reg = register(&owner, Endpoint::new(responder.addr()));
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "ls", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(&responder.addr().to_string()));
    let config = time_client::Config {
        count: 3,
        interval: Duration::ZERO,
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!(summary.ok, 3);
    // Another identity cannot hijack the registration, even with the
    // owner-aware takeover that replaces stale nodes.
    let output = zkutil(&[
        "--zk",
        &hosts,
        "--zk-auth",
        "intruder:pw",
        "register",
        &responder.addr().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr.matches("not authorized").count(),
        1,
        "one cause, once: {stderr}"
    );
    let stat = owner
        .stat(&format!("/go_servers/{}", responder.addr()))
        .ok()
        .flatten();
    assert_eq!(stat.map(|s| s.ephemeral_owner()), Some(owner.id()));
}

#[test]
fn register_with_auth_refuses_an_open_parent_in_every_format_and_tightens_it_when_asked() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    // Created without auth, as the post's Go server creates /go_servers:
    // ZooKeeper's open ACL, world:anyone:cdrwa.
    let stranger = zkutil::SessionConfig::new(&hosts)
        .connect()
        .expect("connects to ZooKeeper");
    let responder = Responder::time().expect("a responder");
    let endpoint = responder.addr().to_string();
    for (format, parent) in [
        ("plain", "/go_servers"),
        ("curator", "/services/time"),
        ("serverset", "/aurora/time"),
    ] {
        stranger.ensure_path(parent).expect("an open parent");
        let args = [
            "--zk",
            &hosts,
            "--zk-auth",
            "svc:pw",
            "register",
            &endpoint,
            "--format",
            format,
            "--serverset-path",
            "/aurora/time",
        ];
        // A process with a deadline: a registrant that does not refuse
        // holds its node until stopped.
        let mut refused = running(&args);
        let status = refused.wait(Duration::from_secs(20));
        let stderr = refused.stderr_text();
        assert_eq!(status.code(), Some(1), "{format}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("zkutil: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{format}: one error line: {stderr}");
        for part in [
            format!("{parent} has the open ACL world:anyone:cdrwa"),
            "--tighten-acl".to_owned(),
        ] {
            assert!(
                errors[0].contains(&part),
                "{format}: {part:?} not in {stderr}"
            );
        }
        assert_eq!(
            stranger.children(parent).expect("lists"),
            Vec::<String>::new(),
            "{format}: registered under an open parent"
        );

        let mut tightening = args.to_vec();
        tightening.push("--tighten-acl");
        let mut sidecar = running(&tightening);
        let node =
            zkutil::testing::poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
                let name = stranger.children(parent).ok()?.pop()?;
                Some(format!("{parent}/{name}"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{format}: not registered with --tighten-acl: {}",
                    sidecar.stderr_text()
                )
            });
        let forged = format!("{parent}/6.6.6.6:80");
        match stranger.create_ephemeral(&forged, b"") {
            Err(err) if err.is_no_auth() => {}
            other => panic!("{format}: a stranger creating {forged}: {other:?}"),
        }
        match stranger.delete(&node, None) {
            Err(err) if err.is_no_auth() => {}
            other => panic!("{format}: a stranger deleting {node}: {other:?}"),
        }
        assert!(
            stranger.get_data(&node).is_ok(),
            "{format}: the world still reads it"
        );
        let status = stop_with(&mut sidecar, "TERM");
        assert!(status.success(), "{format}: {status}");
    }
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
        zkutil::Discovery::start_with_metadata(s.clone(), &BasePath::default()).expect("discovery");
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

/// The body of `GET path` when the status is 200, else the status.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<String, u16> {
    match zkutil::testing::http_get(addr, path) {
        Ok((200, body)) => Ok(body),
        Ok((status, _)) => Err(status),
        Err(_) => Err(0),
    }
}

#[test]
fn register_and_watch_serve_metrics_and_the_registration_says_where() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let observer = session(&zk);
    let mut sidecar = TestProcess::start(
        env!("CARGO_BIN_EXE_zkutil"),
        &[
            "--zk",
            &hosts,
            "register",
            "127.0.0.1:7001",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[("RUST_LOG", "info")],
    );
    let metrics = sidecar.logged_addr("metrics=");
    let (data, _) = wait_until(Duration::from_secs(20), "registered", || {
        observer.get_data("/go_servers/127.0.0.1:7001").ok()
    });
    let value: Value = serde_json::from_slice(&data).expect("valid JSON");
    assert_eq!(
        value["metrics"],
        metrics.to_string(),
        "the registration says where"
    );
    assert!(http_get(metrics, "/healthz").is_ok());
    assert!(
        http_get(metrics, "/metrics")
            .is_ok_and(|text| text.contains("zkutil_register_zookeeper_connected 1"))
    );

    let mut watch = TestProcess::start(
        env!("CARGO_BIN_EXE_zkutil"),
        &["--zk", &hosts, "watch", "--metrics-listen", "127.0.0.1:0"],
        &[("RUST_LOG", "info")],
    );
    let watching = watch.logged_addr("metrics=");
    wait_until(
        Duration::from_secs(20),
        "one instance in the watcher's view",
        || {
            http_get(watching, "/metrics")
                .is_ok_and(|text| text.contains("zkutil_watch_instances 1"))
                .then_some(())
        },
    );
    assert!(http_get(watching, "/healthz").is_ok());
    assert!(stop_with(&mut watch, "TERM").success());
    assert!(stop_with(&mut sidecar, "TERM").success());
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

/// With `--zk-auth`, nobody else can add an instance under our parent or
/// delete ours, across an expiry too: while the registrant was away (its
/// session expired, the parent left empty), a stranger replaced the parent
/// by an open one. The registrant does not re-register there: one error
/// line naming the path, the ACL and the fix; it keeps trying, and
/// registers once the parent is fixed, under a parent closed to strangers.
#[test]
fn register_with_auth_does_not_re_register_under_a_parent_recreated_open_meanwhile() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let stranger = session(&zk); // no auth
    let responder = Responder::time().expect("a responder");
    let endpoint = responder.addr().to_string();
    let node = format!("/go_servers/{endpoint}");
    let mut sidecar = running(&[
        "--zk",
        &hosts,
        "--zk-auth",
        "svc:pw",
        "--session-timeout",
        "2s",
        "register",
        &endpoint,
    ]);
    wait_until(Duration::from_secs(20), "registered", || {
        stranger.stat(&node).ok().flatten()
    });
    // Frozen past its session timeout: ZooKeeper expires the session and
    // deletes the node; the parent is left empty.
    sidecar.signal("STOP");
    wait_until(
        Duration::from_secs(20),
        "the sidecar's session expired",
        || (zkutil::testing::mntr_value(zk.port(), "zk_global_sessions") == Some(1)).then_some(()),
    );
    // The stranger replaces it by an open one (DELETE on `/` is
    // ZooKeeper's default; so is the world's ALL on a new node).
    stranger
        .delete("/go_servers", None)
        .expect("deletes the empty parent");
    stranger
        .ensure_path("/go_servers")
        .expect("re-creates it open");
    sidecar.signal("CONT");
    sidecar.wait_for_log(
        "/go_servers has the open ACL world:anyone:cdrwa",
        1,
        Duration::from_secs(20),
    );
    assert_eq!(
        stranger.children("/go_servers").expect("lists"),
        Vec::<String>::new(),
        "re-registered under the open parent: {}",
        sidecar.stderr_text()
    );
    // Fixed (here: the open parent removed, so the registrant creates it
    // with its own ACL): registered again, closed to strangers.
    stranger
        .delete("/go_servers", None)
        .expect("deletes the open parent");
    wait_until(Duration::from_secs(20), "re-registered", || {
        stranger.stat(&node).ok().flatten()
    });
    match stranger.create_ephemeral("/go_servers/10.6.6.6:80", b"") {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger adding a fake instance: {other:?}"),
    }
    match stranger.delete(&node, None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger deleting {node}: {other:?}"),
    }
    assert_eq!(
        sidecar.log_count("has the open ACL"),
        1,
        "one error line while refusing: {}",
        sidecar.stderr_text()
    );
    assert!(stop_with(&mut sidecar, "TERM").success());
}
