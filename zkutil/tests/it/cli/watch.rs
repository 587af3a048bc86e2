//! `watch`: one line per change, as text or JSON.

use std::time::Duration;

use serde_json::Value;
use zkutil::Endpoint;
use zkutil::testing::wait_until;

use crate::support::{session, zookeeper};

use super::{
    HUGE_NODES, assert_never_held_them_all, lines, megabyte_pad, register, roomy_zookeeper,
    running, stop_with,
};

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

/// Someone put many Curator records of nearly a megabyte each under the
/// watched path (ZooKeeper's limit per node; the number of nodes has
/// none): the watcher reads every one, but decodes them as they come,
/// never holding all of their bytes at once. 150 MB of records; the
/// watcher's peak memory must stay well below that.
#[test]
fn a_watcher_of_many_megabyte_records_never_holds_them_all_in_memory() {
    let zk = roomy_zookeeper();
    let s = session(&zk);
    s.ensure_path("/huge").expect("creates the parent");
    let pad = megabyte_pad();
    for i in 0..HUGE_NODES {
        let record = format!(
            r#"{{"name":"huge","id":"r{i}","address":"10.0.8.{}","port":{},"payload":{{"pad":"{pad}"}},"registrationTimeUTC":1,"serviceType":"DYNAMIC"}}"#,
            i % 250,
            1000 + i
        );
        s.create_ephemeral(&format!("/huge/r{i}"), record.as_bytes())
            .expect("a record of nearly a megabyte");
    }
    let watch = running(&[
        "--zk",
        &zk.connect_string(),
        "--base-path",
        "/huge",
        "watch",
    ]);
    wait_until(Duration::from_secs(60), "every record is listed", || {
        let listed = lines(&watch).iter().filter(|l| l.contains(" + ")).count();
        (listed == HUGE_NODES).then_some(())
    });
    assert_never_held_them_all(&watch, "the watcher");
}
