//! `time-client --metrics-listen`: its view of the registry and what it did
//! with it, scraped while it runs; `/healthz` follows the view's freshness.

use std::net::SocketAddr;
use std::time::Duration;

use zkutil::testing::{http_get, metric_value as value, wait_until};

use crate::support::{Servers, client_process, zookeeper};

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get(addr, path).unwrap_or_default()
}

#[test]
fn a_running_client_reports_its_view_and_its_picks_and_goes_unhealthy_when_stale() {
    let mut zk = zookeeper();
    let servers = Servers::start(&zk, "/go_servers", 2);
    let mut client = client_process(&[
        "--zk",
        &zk.connect_string(),
        "--count",
        "100000",
        "--interval",
        "20ms",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let addr: SocketAddr =
        client
            .stderr()
            .wait_until(Duration::from_secs(30), "the metrics address", |lines| {
                lines
                    .iter()
                    .filter_map(|(_, l)| l.split("metrics=").nth(1))
                    .filter_map(|rest| rest.split_whitespace().next())
                    .find_map(|a| a.parse().ok())
            });
    let text = wait_until(Duration::from_secs(30), "both servers picked", || {
        let (status, text) = get(addr, "/metrics");
        let picked = servers.endpoints().iter().all(|e| {
            value(
                &text,
                &format!("time_client_picks_total{{instance=\"{e}\"}}"),
            )
            .is_some_and(|n| n > 0.0)
        });
        (status == 200 && picked).then_some(text)
    });
    assert_eq!(value(&text, "time_client_instances"), Some(2.0), "{text}");
    assert_eq!(value(&text, "time_client_snapshot_stale"), Some(0.0));
    assert_eq!(value(&text, "time_client_retries_total"), Some(0.0));
    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_owned()));

    // ZooKeeper gone: the last known list is used, and /healthz says so.
    zk.kill();
    let (_, reason) = wait_until(Duration::from_secs(30), "503 while stale", || {
        Some(get(addr, "/healthz")).filter(|(status, _)| *status == 503)
    });
    assert!(reason.contains("ZooKeeper unreachable"), "{reason}");
    let (_, text) = get(addr, "/metrics");
    assert_eq!(
        value(&text, "time_client_snapshot_stale"),
        Some(1.0),
        "{text}"
    );
    // The change is counted by another thread, after the stale view is in
    // place: it may lag the 503 by a moment.
    wait_until(Duration::from_secs(10), "the stale change counted", || {
        value(
            &get(addr, "/metrics").1,
            "time_client_changes_total{kind=\"stale\"}",
        )
        .filter(|n| *n >= 1.0)
    });
    zk.restart().expect("ZooKeeper restarts");
    wait_until(Duration::from_secs(60), "200 when fresh again", || {
        (get(addr, "/healthz").0 == 200).then_some(())
    });
    client.signal("INT");
    client.wait(Duration::from_secs(30));
}
