//! A time-client asking the servers all along a fault, the proof that it
//! lost nothing (its summary line, after a clean stop), and how long a
//! change in the registry takes to reach it.

use std::time::{Duration, Instant};

use zkutil::testing::TestProcess;
use zkutil::testing::lab::Host;
use zkutil::{BasePath, Control, Endpoint, Session};

use crate::support::{BASE, ZkLab, stop_client, time_client_binary};

/// Disable-then-enable rounds [`visibility`] measures.
const ROUNDS: usize = 10;

/// A time-client in `host` asking every 20 ms (JSON lines on stdout, logs
/// on stderr), with ZooKeeper's default session timeout, once it has
/// answered 20 times.
pub fn start_client(world: &ZkLab, host: &Host) -> TestProcess {
    start_client_on(host, &world.ensemble.connect_string())
}

/// As [`start_client`], with the connect string `zk`.
pub fn start_client_on(host: &Host, zk: &str) -> TestProcess {
    let client = host.start(
        time_client_binary(),
        &[
            "--zk",
            zk,
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
pub fn lost_nothing(world: &ZkLab, client: TestProcess) -> String {
    let (summary, client) = stop_client(client);
    assert!(
        summary.contains("\"failed\":0,"),
        "requests lost: {summary}\n{}\nclient log:\n{}",
        world.report(),
        client.stderr_text()
    );
    summary
}

/// The value of `field=` in a log line (up to the next space).
fn field<'a>(line: &'a str, field: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(field)?.strip_prefix('='))
        .unwrap_or("")
}

/// Makes `change`, and waits until the client logs a list of servers that
/// `seen` accepts; how long that took.
fn time_to_see(
    client: &TestProcess,
    what: &str,
    change: impl FnOnce(),
    seen: impl Fn(&str) -> bool,
) -> Duration {
    let from = client.stderr().len();
    let at = Instant::now();
    change();
    client
        .stderr()
        .wait_for(Duration::from_secs(10), |lines, _| {
            lines[from.min(lines.len())..]
                .iter()
                .find(|(_, l)| l.contains("server list changed") && seen(l))
                .map(|(t, _)| t.saturating_duration_since(at))
        })
        .unwrap_or_else(|| {
            let log = client.stderr_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "not within 10 s: {what}; the client's log ends with:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
}

/// `ROUNDS` times: `endpoint` out of rotation, then back, from the control
/// host; the time each change took to reach the client, as the client logs
/// it (at its next request: within 20 ms), sorted. The client must have
/// caught up with every earlier change, or it may show a change before
/// it is made.
pub fn visibility(observer: &Session, client: &TestProcess, endpoint: Endpoint) -> Vec<Duration> {
    let base = BasePath::new(BASE).expect("a base path");
    let name = endpoint.to_string();
    let apply = |control: Control| {
        control
            .apply_to(observer, &base, endpoint)
            .unwrap_or_else(|e| panic!("{control} on {endpoint}: {e}"));
    };
    let mut samples = Vec::new();
    for _ in 0..ROUNDS {
        samples.push(time_to_see(
            client,
            "the client sees the server out of rotation",
            || apply(Control::Disable { reason: None }),
            |l| field(l, "out_of_service").contains(&name),
        ));
        samples.push(time_to_see(
            client,
            "the client sees the server back in rotation",
            || apply(Control::Enable),
            |l| field(l, "in_service").contains(&name) && field(l, "out_of_service").is_empty(),
        ));
    }
    samples.sort();
    samples
}
