//! The binary's output: a numbered line per request (or the post's lines
//! with `--plain`), JSON objects with `--json`, and a closed stdout ending
//! the run quietly.

use std::time::{Duration, Instant};

use time_client::request::parse_reply;
use zkutil::Endpoint;

use crate::support::{Servers, run_client, zookeeper};

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
