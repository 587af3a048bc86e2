//! Drain from outside: an operator takes a live server out of rotation
//! (`zkutil disable`, i.e. `zkutil::Control`) under a client sending a
//! request every 10 ms; new requests stop going to it as soon as the
//! client's watch delivers the change, none fails, and `enable` brings it
//! back.

use std::time::{Duration, Instant};

use zkutil::testing::TestProcess;
use zkutil::{BasePath, Control};

use crate::support::{Servers, answered, change_logged, logged_from, zookeeper};

#[test]
fn a_server_disabled_under_a_10ms_client_loop_gets_no_new_request_and_none_fails() {
    let zk = zookeeper();
    let servers = Servers::start(&zk, "/drain", 3);
    let drained = servers.endpoints()[0];
    let operator = zkutil::testing::connect(&zk, Duration::from_secs(10));
    let base = BasePath::from_static("/drain");
    let mut client = TestProcess::start(
        env!("CARGO_BIN_EXE_time-client"),
        &[
            "--zk",
            &zk.connect_string(),
            "--base-path",
            "/drain",
            "--count",
            "700",
            "--interval",
            "10ms",
        ],
        &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
    );
    client.stdout().wait_for_lines(50, Duration::from_secs(30));

    let off = Control::Disable {
        reason: Some("drain test".into()),
    };
    off.apply_to(&operator, &base, drained).expect("disables");
    let written = Instant::now();
    let (at, disabled_from, seen) = change_logged(&client, 0, &drained.to_string());
    let visible_after = seen.saturating_duration_since(written);

    client
        .stdout()
        .wait_for_lines(disabled_from as usize + 100, Duration::from_secs(30));
    Control::Enable
        .apply_to(&operator, &base, drained)
        .expect("enables");
    let (_, enabled_from, _) = change_logged(&client, at + 1, "");
    assert!(
        client.wait(Duration::from_secs(60)).success(),
        "{}",
        client.stderr_text()
    );

    let lines: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains("FAILED")).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(lines.len(), 700);
    let to_drained = |range: std::ops::Range<u64>| {
        lines
            .iter()
            .filter_map(|l| answered(l))
            .filter(|(seq, server)| range.contains(seq) && *server == drained)
            .count()
    };
    assert_eq!(
        to_drained(disabled_from..enabled_from),
        0,
        "a request went to the disabled server after the client saw the change"
    );
    assert!(to_drained(1..disabled_from) > 0, "it served before");
    assert!(to_drained(enabled_from..701) > 0, "enable brought it back");
    eprintln!(
        "disable visible to the client {visible_after:?} after the write; \
         out of rotation for requests {disabled_from}..{enabled_from}"
    );
}

#[test]
fn a_server_disabled_while_the_client_is_cut_off_gets_no_request_once_it_is_back() {
    let zk = zookeeper();
    let servers = Servers::start(&zk, "/cut", 3);
    let drained = servers.endpoints()[0];
    let operator = zkutil::testing::connect(&zk, Duration::from_secs(10));
    let base = BasePath::from_static("/cut");
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
    let proxy = zkutil::testing::DelayProxy::start(target, Duration::ZERO).expect("a proxy");
    let mut client = TestProcess::start(
        env!("CARGO_BIN_EXE_time-client"),
        &[
            "--zk",
            &proxy.addr().to_string(),
            "--base-path",
            "/cut",
            "--count",
            "400",
            "--interval",
            "10ms",
        ],
        &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
    );
    client.stdout().wait_for_lines(30, Duration::from_secs(30));

    // The link goes down; only when the client knows it is cut off does the
    // operator act, so that the change can reach it only after the link is
    // back.
    proxy.hold();
    let unreachable = |line: &str| line.contains("ZooKeeper unreachable");
    let (stale_at, _, _) = logged_from(&client, 0, "unreachable", unreachable);
    Control::Disable {
        reason: Some("while cut off".into()),
    }
    .apply_to(&operator, &base, drained)
    .expect("disables");
    proxy.release();
    let fresh = |line: &str| line.contains("server list is fresh again");
    let (_, fresh_from, _) = logged_from(&client, stale_at + 1, "fresh again", fresh);
    assert!(
        client.wait(Duration::from_secs(60)).success(),
        "{}",
        client.stderr_text()
    );

    let lines: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains("FAILED")).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let after_fresh: Vec<&String> = lines
        .iter()
        .filter(|l| answered(l).is_some_and(|(seq, server)| seq >= fresh_from && server == drained))
        .collect();
    assert!(
        after_fresh.is_empty(),
        "requests reached the server disabled while the client was cut off, after it was fresh again \
         (from request {fresh_from}): {} of them, e.g. {:?}",
        after_fresh.len(),
        after_fresh.first()
    );
    drop(servers);
}
