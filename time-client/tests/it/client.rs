//! The client against real ZooKeeper and real servers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use time_client::report::Summary;
use time_client::request::parse_reply;
use time_client::{Config, run};
use zkutil::Endpoint;
use zkutil::testing::TestProcess;

use crate::support::{RUN_DEADLINE, Servers, run_client, zookeeper};

fn config(hosts: &str, count: u64) -> Config {
    Config {
        count,
        interval: Duration::ZERO,
        ..Config::new(hosts)
    }
}

/// Runs the client in this process to the end (no stop request).
fn run_all(config: &Config, out: &mut impl std::io::Write) -> Summary {
    let (_keep, stop) = std::sync::mpsc::channel();
    run(config, out, &stop).expect("runs")
}

#[test]
fn the_client_reaches_each_of_five_servers_within_sixty_requests() {
    let zk = zookeeper();
    let servers = Servers::start(&zk, "/go_servers", 5);
    let mut out = Vec::new();
    let summary = run_all(&config(&zk.connect_string(), 60), &mut out);
    assert_eq!((summary.ok, summary.failed), (60, 0));
    let reached: BTreeSet<Endpoint> = summary.per_server.keys().copied().collect();
    let expected: BTreeSet<Endpoint> = servers.endpoints().into_iter().collect();
    // P(missing one of 5 in 60 uniform picks) = 5 * 0.8^60 ≈ 7e-6.
    assert_eq!(reached, expected);
}

#[test]
fn the_client_works_with_exactly_one_server() {
    let zk = zookeeper();
    let servers = Servers::start(&zk, "/go_servers", 1);
    let mut out = Vec::new();
    let summary = run_all(&config(&zk.connect_string(), 10), &mut out);
    assert_eq!((summary.ok, summary.failed), (10, 0));
    assert_eq!(summary.per_server.get(&servers.endpoints()[0]), Some(&10));
}

#[test]
fn an_empty_registry_fails_each_request_and_the_run_goes_on() {
    let zk = zookeeper();
    let missing = run_client(&["--zk", &zk.connect_string(), "--count", "1"]);
    assert_eq!(
        String::from_utf8_lossy(&missing.stdout),
        "[1/1] FAILED no server has registered under /go_servers (it does not exist)\n",
        "a base path nobody created says so"
    );
    zkutil::testing::connect(&zk, Duration::from_secs(10))
        .ensure_path("/go_servers")
        .expect("creates the base path");
    let output = run_client(&[
        "--zk",
        &zk.connect_string(),
        "--count",
        "3",
        "--interval",
        "10ms",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        (1..=3)
            .map(|n| format!("[{n}/3] FAILED no servers registered under /go_servers"))
            .collect::<Vec<_>>(),
        "failures are on stdout, one line each"
    );
    assert_eq!(
        stderr.lines().last(),
        Some("3 requests: 0 ok, 3 failed"),
        "no latency when nothing succeeded: {stderr}"
    );
}

#[test]
fn the_binary_prints_a_numbered_line_per_request_and_the_posts_lines_with_plain() {
    let zk = zookeeper();
    let servers = Servers::start(&zk, "/go_servers", 3);
    let hosts = zk.connect_string();
    let output = run_client(&["--zk", &hosts, "--count", "20", "--interval", "5ms"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 20, "{stdout}");
    for (n, line) in lines.iter().enumerate() {
        let rest = line
            .strip_prefix(&format!("[{:>2}/20] ", n + 1))
            .unwrap_or_else(|| panic!("{line:?}"));
        let mut parts = rest.splitn(3, ' ');
        let (server, latency, reply) = (parts.next(), parts.next(), parts.next());
        let endpoint: Endpoint = server.unwrap_or_default().parse().expect("a server");
        assert!(servers.endpoints().contains(&endpoint));
        assert!(latency.is_some_and(|l| l.ends_with("ms")), "{line:?}");
        let reply = format!("{}\n", reply.unwrap_or_default());
        let reply = parse_reply(endpoint, reply.as_bytes()).expect("a valid reply");
        assert_eq!(reply.address, endpoint);
    }
    assert!(
        stderr.contains("20 requests: 20 ok, 0 failed\nlatency: p50 "),
        "{stderr}"
    );
    assert!(
        !stderr.contains("discovery version"),
        "no internal jargon: {stderr}"
    );

    let plain = run_client(&[
        "--zk",
        &hosts,
        "--count",
        "3",
        "--interval",
        "5ms",
        "--plain",
    ]);
    let stdout = String::from_utf8_lossy(&plain.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for pair in lines.chunks(2) {
        let host = pair[0]
            .strip_prefix("connect host: ")
            .unwrap_or_else(|| panic!("{:?}", pair[0]));
        let endpoint: Endpoint = host.parse().expect("a server");
        parse_reply(endpoint, format!("{}\n", pair[1]).as_bytes()).expect("a valid reply");
    }
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let zk = zookeeper();
    let _servers = Servers::start(&zk, "/go_servers", 1);
    let script = format!(
        "set -o pipefail; {} --zk {} --count 1000 --interval 10ms | head -1",
        env!("CARGO_BIN_EXE_time-client"),
        zk.connect_string()
    );
    let started = Instant::now();
    let output = std::process::Command::new("bash")
        .args(["-c", &script])
        .env_remove("ZK_HOSTS")
        .output()
        .expect("runs bash");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    assert!(!stderr.contains("error"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it ran on: {:?}",
        started.elapsed()
    );
}

#[test]
fn the_client_uses_one_zookeeper_session_for_the_whole_run() {
    let zk = zookeeper();
    let _servers = Servers::start(&zk, "/go_servers", 2);
    let before = zxid(&zk);
    let output = run_client(&[
        "--zk",
        &zk.connect_string(),
        "--count",
        "30",
        "--interval",
        "0s",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Listing children is a read and writes no transaction; creating and
    // closing a session write one each. One session: 1 or 2 transactions
    // (2 when its close reached the server). The post's client: 60.
    let transactions = zxid(&zk) - before;
    assert!(
        (1..=2).contains(&transactions),
        "{transactions} transactions for one run"
    );
}

/// The server's last transaction id, from `srvr`.
fn zxid(zk: &zkutil::testing::ZkServer) -> i64 {
    let answer = zkutil::testing::four_letter_word(zk.port(), "srvr").unwrap_or_default();
    let hex = answer
        .lines()
        .find_map(|l| l.strip_prefix("Zxid: 0x"))
        .unwrap_or_else(|| panic!("srvr: {answer}"));
    i64::from_str_radix(hex.trim(), 16).unwrap_or_else(|e| panic!("{hex}: {e}"))
}

#[test]
fn zookeeper_not_running_is_said_at_once_with_the_cause() {
    let port = zkutil::testing::free_ports(1).expect("a free port")[0];
    let hosts = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let output = run_client(&[
        "--zk",
        &hosts,
        "--zk-connect-timeout",
        "30s",
        "--count",
        "1",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().last().unwrap_or_default(),
        format!(
            "time-client: error: cannot connect to ZooKeeper at {hosts}: connection refused \
             — is it running? Start one with: scripts/zk.sh start"
        ),
    );
}

#[test]
fn ctrl_c_ends_a_wait_for_a_silent_zookeeper_at_once() {
    // Accepts connections (the kernel does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let hosts = silent.local_addr().expect("bound").to_string();
    let mut client = TestProcess::start(
        env!("CARGO_BIN_EXE_time-client"),
        &[
            "--zk",
            &hosts,
            "--zk-connect-timeout",
            "60s",
            "--count",
            "1",
        ],
        &[],
    );
    // Said once the wait passes a second.
    client.wait_for_log(
        &format!("connecting to ZooKeeper at {hosts}"),
        1,
        RUN_DEADLINE,
    );
    let interrupted = Instant::now();
    client.signal("INT");
    let status = client.wait(RUN_DEADLINE);
    assert!(
        interrupted.elapsed() < Duration::from_secs(1),
        "took {:?}",
        interrupted.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{}", client.stderr_text());
}

#[test]
fn json_output_is_one_object_per_request_and_a_summary() {
    let zk = zookeeper();
    let _servers = Servers::start(&zk, "/go_servers", 2);
    let output = run_client(&[
        "--zk",
        &zk.connect_string(),
        "--count",
        "5",
        "--interval",
        "0s",
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 6);
    for (i, request) in lines[..5].iter().enumerate() {
        assert_eq!(request["type"], "request");
        assert_eq!(request["seq"], i as u64 + 1);
        assert_eq!(request["ok"], true);
        assert!(
            request["server"]
                .as_str()
                .is_some_and(|s| s.parse::<Endpoint>().is_ok()),
            "{request}"
        );
        assert!(
            request["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
            "{request}"
        );
    }
    let summary = &lines[5];
    assert_eq!(
        (
            summary["type"].as_str(),
            summary["ok"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some("summary"), Some(5), Some(0))
    );
    assert!(summary["latency_ms"]["p99"].as_f64().is_some(), "{summary}");
    assert_eq!(
        (
            summary["planned"].as_u64(),
            summary["interrupted"].as_bool()
        ),
        (Some(5), Some(false)),
        "{summary}"
    );
}

#[test]
fn ctrl_c_finishes_the_current_request_and_prints_the_summary() {
    let zk = zookeeper();
    let _servers = Servers::start(&zk, "/go_servers", 1);
    let mut client = crate::support::client_process(&[
        "--zk",
        &zk.connect_string(),
        "--count",
        "1000",
        "--interval",
        "200ms",
    ]);
    client.stdout().wait_for_lines(2, Duration::from_secs(30));
    client.signal("INT");
    let status = client.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", client.stderr_text());
    let stderr = client.stderr_text();
    let done = client.stdout().len();
    assert!(done < 1000, "the run did not stop early");
    assert!(
        stderr.contains(&format!(
            "interrupted after {done} of 1000 requests: {done} ok, 0 failed"
        )),
        "{stderr}"
    );
    assert!(
        client
            .stdout()
            .lines()
            .iter()
            .all(|(_, l)| l.starts_with('[') && l.contains("/1000] ")),
        "every request is one whole line"
    );
}

#[test]
fn bad_flags_are_a_usage_error() {
    let output = run_client(&["--strategy", "fastest"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unknown strategy"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn absurd_or_zero_durations_are_usage_errors_not_panics() {
    for args in [
        ["--timeout", "99999999999years"],
        ["--interval", "99999999999years"],
        ["--timeout", "0s"],
        ["--connect-timeout", "0s"],
        ["--zk-connect-timeout", "0s"],
    ] {
        let output = run_client(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error:") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn weighted_picking_follows_the_weights_the_servers_registered() {
    let zk = zookeeper();
    let servers = Servers::weighted(&zk, "/go_servers", &[Some(100), Some(300)]);
    let (light, heavy) = (servers.endpoints()[0], servers.endpoints()[1]);
    for strategy in [zkutil::Strategy::Weighted, zkutil::Strategy::SmoothWeighted] {
        let config = Config {
            count: 1000,
            interval: Duration::ZERO,
            strategy,
            ..config(&zk.connect_string(), 1000)
        };
        let (_keep, stop) = std::sync::mpsc::channel();
        let summary = run(&config, &mut std::io::sink(), &stop).expect("the client runs");
        assert_eq!(summary.ok, 1000, "{}", summary.line());
        let share = summary.per_server.get(&heavy).copied().unwrap_or(0) as f64 / 1000.0;
        // 0.75 expected; 5 standard deviations of 1000 draws is 0.07.
        assert!(
            (0.68..=0.82).contains(&share),
            "{strategy:?}: {}",
            summary.line()
        );
        assert!(summary.per_server.contains_key(&light));
    }
}

#[test]
fn p2c_sends_most_requests_away_from_a_slow_server() {
    use time_server::listener::{ServeOptions, Serving, bind_all};
    let zk = zookeeper();
    let session = zkutil::testing::connect(&zk, Duration::from_secs(10));
    // The real server code: two listeners as they are, one slowed by the
    // time-server's --reply-delay.
    let any = || {
        vec![Endpoint::new(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        )))]
    };
    let serve = |n: usize, reply_delay: Duration| {
        let listeners = bind_all(&any().repeat(n), None).expect("binds");
        Serving::start(
            listeners,
            ServeOptions {
                reply_delay,
                ..ServeOptions::default()
            },
        )
    };
    let fast = serve(2, Duration::ZERO);
    let slow = serve(1, Duration::from_millis(20));
    let slow_endpoint = slow.listeners()[0].advertised();
    let _registrations: Vec<_> = fast
        .listeners()
        .iter()
        .chain(slow.listeners())
        .map(|bound| {
            let endpoint = bound.advertised();
            let metadata =
                zkutil::Metadata::for_this_process(endpoint, std::time::SystemTime::now(), "test");
            zkutil::Registration::register(
                &session,
                &zkutil::BasePath::default(),
                endpoint,
                &metadata,
            )
            .expect("registers")
        })
        .collect();
    let config = Config {
        strategy: zkutil::Strategy::P2c,
        ..config(&zk.connect_string(), 300)
    };
    let summary = run_all(&config, &mut std::io::sink());
    assert_eq!(summary.ok, 300, "{}", summary.line());
    let to_slow = summary.per_server.get(&slow_endpoint).copied().unwrap_or(0);
    eprintln!("p2c: {to_slow} of 300 requests to the server 20 ms slower");
    // At most 20 % (random: a third).
    assert!(to_slow <= 60, "{}", summary.line());
}
