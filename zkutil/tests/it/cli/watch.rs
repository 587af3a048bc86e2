//! `watch`: one line per change, as text or JSON.

use std::time::Duration;

use serde_json::Value;
use zkutil::Endpoint;
use zkutil::testing::wait_until;

use crate::support::{session, zookeeper};

use super::{lines, register, running, stop_with};

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
