//! ZooKeeper cut off from everyone, while it keeps running: it expires
//! every session itself. After the heal a client's new session may list
//! the base path before the servers have registered again; the servers
//! kept running all along, so no request may fail for it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use time_server::listener::Serving;
use zkutil::testing::{DelayProxy, ZkServer, four_letter_word, wait_until};
use zkutil::{BasePath, Metadata, Registration, SessionConfig};

use crate::support::zookeeper;

/// Sessions alive on ZooKeeper (`mntr`'s `zk_global_sessions`).
fn live_sessions(zk: &ZkServer) -> Option<u64> {
    four_letter_word(zk.port(), "mntr")?
        .lines()
        .find_map(|line| line.strip_prefix("zk_global_sessions"))?
        .trim()
        .parse()
        .ok()
}

fn proxy(zk: &ZkServer) -> DelayProxy {
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
    DelayProxy::start(target, Duration::ZERO).expect("a proxy")
}

#[test]
fn a_client_that_lists_before_the_servers_registered_again_loses_no_request() {
    let zk = zookeeper();
    let (client_link, servers_link) = (proxy(&zk), proxy(&zk));
    let serving = Serving::on_free_ports(2).expect("listeners");
    let servers_session = SessionConfig::new(servers_link.addr().to_string())
        .with_session_timeout(Duration::from_secs(2))
        .connect()
        .map(Arc::new)
        .expect("the servers' session");
    let base = BasePath::new("/partition").expect("a base path");
    let _registrations: Vec<Registration> = serving
        .listeners()
        .iter()
        .map(|bound| {
            let endpoint = bound.advertised();
            let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "test");
            Registration::register(&servers_session, &base, endpoint, &metadata).expect("registers")
        })
        .collect();
    let mut client = zkutil::testing::TestProcess::start(
        env!("CARGO_BIN_EXE_time-client"),
        &[
            "--zk",
            &client_link.addr().to_string(),
            "--base-path",
            "/partition",
            "--session-timeout",
            "3s",
            "--count",
            "1500",
            "--interval",
            "10ms",
        ],
        &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
    );
    client.stdout().wait_for_lines(30, Duration::from_secs(30));
    let before = live_sessions(&zk).expect("mntr answers");
    assert_eq!(before, 2, "the client's and the servers' sessions");

    // ZooKeeper alone: it expires both sessions itself.
    client_link.hold();
    servers_link.hold();
    wait_until(
        Duration::from_secs(30),
        "ZooKeeper expired every session",
        || (live_sessions(&zk) == Some(0)).then_some(()),
    );
    // The client comes back first; the servers' way back is still cut, so
    // its new session lists no server for certain.
    client_link.release();
    client.stderr().wait_until(
        Duration::from_secs(30),
        "the client lists no server after its new session",
        |lines| {
            lines
                .iter()
                .any(|(_, l)| l.contains("server list changed") && l.contains("in_service= "))
                .then_some(())
        },
    );
    let seen = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(seen + 30, Duration::from_secs(30));
    servers_link.release();
    let status = client.wait(Duration::from_secs(90));
    assert!(status.success(), "{}", client.stderr_text());
    let lines: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains("FAILED")).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed, e.g. {:?}\n{}",
        failed.len(),
        lines.len(),
        failed.first(),
        client.stderr_text()
    );
    assert!(
        client
            .stderr_text()
            .contains("no longer using the last known servers"),
        "the servers registered again and the client followed:\n{}",
        client.stderr_text()
    );
}
