//! A request fails only when no server it knows answers: servers killed
//! while their nodes are still registered (their sessions not yet expired)
//! cost retries, never a failed request, even to a client that has just
//! started and knows nothing of them.

use std::time::Duration;

use zkutil::Endpoint;
use zkutil::testing::free_ports;

use crate::support::{Servers, register_all, run_client, zookeeper};

/// Requests answered and failed in a client's stdout.
fn tally(stdout: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(stdout);
    let failed = text.lines().filter(|l| l.contains("FAILED")).count();
    let answered = text
        .lines()
        .filter(|l| l.starts_with('[') && !l.contains("FAILED"))
        .count();
    (answered, failed)
}

#[test]
fn three_of_five_servers_dead_but_registered_fail_no_request() {
    let zk = zookeeper();
    let _live = Servers::start(&zk, "/failover", 2);
    // Three registrations whose servers are gone, as after a SIGKILL: the
    // port refuses, the node stays until the session expires.
    let session = zkutil::testing::connect(&zk, Duration::from_secs(30));
    let _dead = register_all(
        &session,
        "/failover",
        free_ports(3)
            .expect("free ports")
            .into_iter()
            .map(|port| Endpoint::new(([127, 0, 0, 1], port).into())),
        "dead",
    );
    let hosts = zk.connect_string();

    // One client, default flags but the pace.
    let output = run_client(&[
        "--zk",
        &hosts,
        "--base-path",
        "/failover",
        "--interval",
        "0s",
    ]);
    let (answered, failed) = tally(&output.stdout);
    assert_eq!(
        (answered, failed),
        (100, 0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Fresh clients: each knows nothing of the dead yet.
    let mut totals = (0, 0);
    for _ in 0..20 {
        let output = run_client(&[
            "--zk",
            &hosts,
            "--base-path",
            "/failover",
            "--count",
            "3",
            "--interval",
            "0s",
        ]);
        let (answered, failed) = tally(&output.stdout);
        totals = (totals.0 + answered, totals.1 + failed);
    }
    assert_eq!(totals, (60, 0), "20 fresh clients of 3 requests each");
}

#[test]
fn an_explicit_retry_cap_is_honoured() {
    let zk = zookeeper();
    let session = zkutil::testing::connect(&zk, Duration::from_secs(30));
    let _dead = register_all(
        &session,
        "/capped",
        free_ports(4)
            .expect("free ports")
            .into_iter()
            .map(|port| Endpoint::new(([127, 0, 0, 1], port).into())),
        "dead",
    );
    let output = run_client(&[
        "--zk",
        &zk.connect_string(),
        "--base-path",
        "/capped",
        "--count",
        "1",
        "--retries",
        "1",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("(after 2 attempts)"), "{stdout}");
}

#[test]
fn a_request_to_servers_that_never_answer_ends_at_its_deadline() {
    let zk = zookeeper();
    let session = zkutil::testing::connect(&zk, Duration::from_secs(30));
    let silent: Vec<zkutil::testing::Responder> = (0..4)
        .map(|_| {
            zkutil::testing::Responder::start(zkutil::testing::Behaviour::NoReply)
                .expect("a server")
        })
        .collect();
    let _registered = register_all(
        &session,
        "/silent",
        silent.iter().map(|server| Endpoint::new(server.addr())),
        "silent",
    );
    let started = std::time::Instant::now();
    // Four servers that each hold a request 3 s: 12 s without a deadline.
    let output = run_client(&[
        "--zk",
        &zk.connect_string(),
        "--base-path",
        "/silent",
        "--count",
        "1",
        "--timeout",
        "3s",
        "--request-deadline",
        "1s",
    ]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        took < Duration::from_secs(6),
        "the request took {took:?}: {stdout}"
    );
    eprintln!("a request to four silent servers failed after {took:?} (deadline 1 s)");
}

#[test]
fn eight_hung_servers_leave_time_to_reach_the_one_that_answers() {
    use zkutil::testing::{Behaviour, Responder};
    let zk = zookeeper();
    let session = zkutil::testing::connect(&zk, Duration::from_secs(30));
    // Eight servers that accept and never answer (a wedged process, or a
    // frozen one whose kernel still accepts), and one good one.
    let servers: Vec<Responder> = (0..9)
        .map(|i| {
            Responder::start(if i == 0 {
                Behaviour::Time
            } else {
                Behaviour::NoReply
            })
            .expect("a server")
        })
        .collect();
    let _registered = register_all(
        &session,
        "/hung",
        servers.iter().map(|server| Endpoint::new(server.addr())),
        "hung",
    );
    // Fresh clients with the defaults, at once: each knows nothing of the
    // hung ones and must get to the good one within its 10 s deadline.
    let mut clients: Vec<zkutil::testing::TestProcess> = (0..12)
        .map(|_| {
            zkutil::testing::TestProcess::start(
                env!("CARGO_BIN_EXE_time-client"),
                &[
                    "--zk",
                    &zk.connect_string(),
                    "--base-path",
                    "/hung",
                    "--count",
                    "1",
                ],
                &[("NO_COLOR", "1")],
            )
        })
        .collect();
    let failed: Vec<String> = clients
        .iter_mut()
        .filter_map(|client| {
            let status = client.wait(Duration::from_secs(60));
            let out: Vec<String> = client
                .stdout()
                .lines()
                .into_iter()
                .map(|(_, l)| l)
                .collect();
            (!status.success()).then(|| out.join(" | "))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 12 fresh clients failed although {} answers, e.g. {:?}",
        failed.len(),
        servers[0].addr(),
        failed.first()
    );
}

#[test]
fn ten_healthy_servers_answering_in_1200ms_within_the_timeout_fail_no_request() {
    use time_server::listener::{ServeOptions, Serving, bind_all};
    let zk = zookeeper();
    let session = zkutil::testing::connect(&zk, Duration::from_secs(30));
    let any = Endpoint::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    // Ten healthy servers, each answering in 1.2 s: within the client's
    // 2 s --timeout and its 10 s deadline.
    let serving = Serving::start(
        bind_all(&vec![any; 10], None).expect("listeners"),
        ServeOptions {
            reply_delay: Duration::from_millis(1200),
            ..ServeOptions::default()
        },
    );
    let _registered = register_all(
        &session,
        "/slow",
        serving.listeners().iter().map(|b| b.advertised()),
        "slow",
    );
    let mut client = zkutil::testing::TestProcess::start(
        env!("CARGO_BIN_EXE_time-client"),
        &[
            "--zk",
            &zk.connect_string(),
            "--base-path",
            "/slow",
            "--count",
            "2",
        ],
        &[("NO_COLOR", "1")],
    );
    let status = client.wait(Duration::from_secs(60));
    let out: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert!(
        status.success(),
        "requests failed although every server answers in 1.2 s: {out:?}"
    );
}
