//! A time-client asking the servers all along a fault, and the proof that
//! it lost nothing: its summary line, after a clean stop.

use std::time::Duration;

use zkutil::testing::TestProcess;
use zkutil::testing::lab::Host;

use crate::support::{BASE, ZkLab, time_client_binary};

/// A time-client in `host` asking every 20 ms (JSON lines on stdout, logs
/// on stderr), with ZooKeeper's default session timeout, once it has
/// answered 20 times.
pub fn start_client(world: &ZkLab, host: &Host) -> TestProcess {
    let client = host.start(
        time_client_binary(),
        &[
            "--zk",
            &world.ensemble.connect_string(),
            "--base-path",
            BASE,
            "--count",
            "100000",
            "--interval",
            "20ms",
            "--json",
        ],
        &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
    );
    client.stdout().wait_for_lines(20, Duration::from_secs(30));
    client
}

/// Stops `client` (SIGINT: it finishes the request under way) and checks
/// its summary counts no failed request; the summary line.
///
/// # Panics
///
/// When a request failed, or no summary is printed.
#[track_caller]
pub fn lost_nothing(world: &ZkLab, mut client: TestProcess) -> String {
    client.signal("INT");
    client.wait(Duration::from_secs(30));
    let lines: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let summary = lines
        .iter()
        .find(|l| l.contains("\"type\":\"summary\""))
        .unwrap_or_else(|| panic!("no summary; stdout ends with {:?}", lines.last()))
        .clone();
    assert!(
        summary.contains("\"failed\":0,"),
        "requests lost: {summary}\n{}\nclient log:\n{}",
        world.report(),
        client.stderr_text()
    );
    summary
}
