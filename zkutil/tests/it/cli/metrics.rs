//! `--metrics-listen` on the long-running commands: `register` and `watch`
//! serve metrics and a health check, and the registration says where.

use std::time::Duration;

use serde_json::Value;
use zkutil::testing::{TestProcess, wait_until};

use crate::support::{session, zookeeper};

use super::stop_with;

/// The body of `GET path` when the status is 200, else the status.
fn http_get(addr: std::net::SocketAddr, path: &str) -> Result<String, u16> {
    match zkutil::testing::http_get(addr, path) {
        Ok((200, body)) => Ok(body),
        Ok((status, _)) => Err(status),
        Err(_) => Err(0),
    }
}

#[test]
fn register_and_watch_serve_metrics_and_the_registration_says_where() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let observer = session(&zk);
    let mut sidecar = TestProcess::start(
        crate::support::zkutil_binary(),
        &[
            "--zk",
            &hosts,
            "register",
            "127.0.0.1:7001",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[("RUST_LOG", "info")],
    );
    let metrics = sidecar.logged_addr("metrics=");
    let (data, _) = wait_until(Duration::from_secs(20), "registered", || {
        observer.get_data("/go_servers/127.0.0.1:7001").ok()
    });
    let value: Value = serde_json::from_slice(&data).expect("valid JSON");
    assert_eq!(
        value["metrics"],
        metrics.to_string(),
        "the registration says where"
    );
    // Healthy once the registrant holds its registration (just after the
    // node appears).
    wait_until(Duration::from_secs(10), "healthy", || {
        http_get(metrics, "/healthz").ok()
    });
    assert!(http_get(metrics, "/metrics").is_ok_and(|text| {
        text.contains("zkutil_register_zookeeper_connected 1")
            && text.contains("zkutil_register_registrations 1")
    }));

    let mut watch = TestProcess::start(
        crate::support::zkutil_binary(),
        &["--zk", &hosts, "watch", "--metrics-listen", "127.0.0.1:0"],
        &[("RUST_LOG", "info")],
    );
    let watching = watch.logged_addr("metrics=");
    wait_until(
        Duration::from_secs(20),
        "one instance in the watcher's view",
        || {
            http_get(watching, "/metrics")
                .is_ok_and(|text| text.contains("zkutil_watch_instances 1"))
                .then_some(())
        },
    );
    assert!(http_get(watching, "/healthz").is_ok());
    assert!(stop_with(&mut watch, "TERM").success());
    assert!(stop_with(&mut sidecar, "TERM").success());
}

/// A registrant whose session ZooKeeper expired is unhealthy while its
/// node is not back: here, with `--zk-auth`, re-creating it is refused
/// under a parent a stranger re-created open during the expiry.
#[test]
fn registers_healthz_is_503_while_its_node_is_refused_after_an_expiry() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let observer = session(&zk);
    let mut sidecar = TestProcess::start(
        crate::support::zkutil_binary(),
        &[
            "--zk",
            &hosts,
            "--zk-auth",
            "svc:s3cret",
            "--session-timeout",
            "2s",
            "register",
            "127.0.0.1:7001",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[("RUST_LOG", "info")],
    );
    let metrics = sidecar.logged_addr("metrics=");
    wait_until(Duration::from_secs(20), "healthy", || {
        http_get(metrics, "/healthz").ok()
    });
    sidecar.signal("STOP");
    wait_until(Duration::from_secs(30), "the node expires", || {
        observer
            .stat("/go_servers/127.0.0.1:7001")
            .ok()?
            .is_none()
            .then_some(())
    });
    observer
        .delete("/go_servers", None)
        .expect("deletes the empty parent");
    observer
        .ensure_path("/go_servers")
        .expect("re-creates it open");
    sidecar.signal("CONT");
    sidecar.wait_for_log(
        "not re-registering under a parent open to strangers",
        1,
        Duration::from_secs(30),
    );
    assert_eq!(
        http_get(metrics, "/healthz"),
        Err(503),
        "{}",
        sidecar.stderr_text()
    );
    assert!(
        http_get(metrics, "/metrics").is_ok_and(|t| t.contains("zkutil_register_registrations 0"))
    );
    assert!(stop_with(&mut sidecar, "TERM").success());
}
