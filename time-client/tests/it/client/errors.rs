//! Failures said in one line: an empty registry (the run goes on), no
//! ZooKeeper running (at once, with the cause), and usage errors.

use std::time::{Duration, Instant};

use crate::support::{run_client, zookeeper};

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
