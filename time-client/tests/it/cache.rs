//! The client's live view of the registry: no ZooKeeper request per
//! request, new servers used at once, removed ones dropped, and the last
//! known list used while ZooKeeper is away.

use std::time::{Duration, Instant};

use time_client::{Config, run};
use zkutil::testing::{LineRecorder, four_letter_word};

use crate::support::{Servers, client_process, zookeeper};

fn packets_received(port: u16) -> i64 {
    let mntr = four_letter_word(port, "mntr").unwrap_or_default();
    mntr.lines()
        .find_map(|line| line.strip_prefix("zk_packets_received"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no zk_packets_received in mntr: {mntr}"))
}

#[test]
fn after_the_first_list_the_client_sends_no_zookeeper_request_per_request() {
    let zk = zookeeper();
    let _servers = Servers::start(&zk, "/go_servers", 3);
    let before = packets_received(zk.port());
    let config = Config {
        count: 300,
        interval: Duration::ZERO,
        ..Config::new(zk.connect_string())
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = run(&config, &mut std::io::sink(), &stop).expect("runs");
    assert_eq!(summary.ok, 300);
    // Connect, first list with its watch, pings, close: a handful. A list
    // per request (the post's client: a session per request) would be ≥ 300.
    let packets = packets_received(zk.port()) - before;
    eprintln!("ZooKeeper received {packets} packets during 300 requests");
    assert!(packets < 40, "{packets} packets for 300 requests");
}

fn first_line_after(lines: &[(Instant, String)], text: &str, after: Instant) -> Option<Instant> {
    lines
        .iter()
        .find(|(at, line)| *at >= after && line.contains(text))
        .map(|(at, _)| *at)
}

#[test]
fn a_server_registered_mid_run_is_used_within_a_second_and_a_deregistered_one_no_more() {
    let zk = zookeeper();
    let _first = Servers::start(&zk, "/go_servers", 1);
    let out = LineRecorder::new();
    let config = Config {
        count: 400,
        interval: Duration::from_millis(10),
        ..Config::new(zk.connect_string())
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let client = {
        let mut out = out.clone();
        std::thread::spawn(move || run(&config, &mut out, &stop))
    };
    out.wait_for_lines(40, Duration::from_secs(30));

    let mut added = Servers::start(&zk, "/go_servers", 1);
    let registered = Instant::now();
    let host = format!("] {} ", added.endpoints()[0]);
    let used = out.wait_until(
        Duration::from_secs(10),
        "the new server gets a request",
        |lines| first_line_after(lines, &host, registered),
    );
    let took = used.duration_since(registered);
    eprintln!("registration to first use by the running client: {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    added.deregister();
    let vanished = Instant::now();
    let summary = client
        .join()
        .unwrap_or_else(|_| panic!("panicked"))
        .expect("the client runs");
    assert_eq!(summary.failed, 0, "{}", summary.line());
    // A request already under way when the node vanished may still finish
    // there: allow 500 ms for the watch to fire and that request to end (a
    // few ms, but threads wait their turn on a busy machine).
    let lines = out.lines();
    let to_added = |keep: &dyn Fn(Instant) -> bool| {
        lines
            .iter()
            .filter(|(at, line)| keep(*at) && line.contains(&host))
            .count()
    };
    assert!(
        to_added(&|at| at < vanished) > 0,
        "the filter finds the requests the added server got while registered"
    );
    let settled = vanished + Duration::from_millis(500);
    assert!(
        lines.iter().filter(|(at, _)| *at > settled).count() >= 20,
        "the client went on long enough after the deregistration to tell"
    );
    let late: Vec<_> = lines
        .iter()
        .filter(|(at, line)| *at > settled && line.contains(&host))
        .collect();
    assert!(
        late.is_empty(),
        "{} requests went to the deregistered server",
        late.len()
    );
}

#[test]
fn zookeeper_stopped_mid_run_requests_continue_from_the_last_known_list() {
    let mut zk = zookeeper();
    let _servers = Servers::start(&zk, "/go_servers", 2);
    let hosts = zk.connect_string();
    let mut client = client_process(&["--zk", &hosts, "--count", "300", "--interval", "20ms"]);
    client.stdout().wait_for_lines(40, Duration::from_secs(30));
    zk.kill();
    client.wait_for_log("using the last known list", 1, Duration::from_secs(30));
    let during = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(during + 20, Duration::from_secs(30));
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    client.wait_for_log("fresh again", 1, Duration::from_secs(30));
    let status = client.wait(Duration::from_secs(60));
    assert!(status.success(), "{}", client.stderr_text());
    assert_eq!(client.stdout().len(), 300, "one line per request");
    let stderr = client.stderr_text();
    assert_eq!(
        stderr.matches("using the last known list").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("300 ok, 0 failed"), "{stderr}");
}
