//! Ctrl-C: it ends a wait for a silent ZooKeeper at once, and a run after
//! the current request, with the summary.

use std::time::{Duration, Instant};

use zkutil::testing::TestProcess;

use crate::support::{RUN_DEADLINE, Servers, zookeeper};

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
