//! ZooKeeper cut off from everyone, while it keeps running: it expires
//! every session itself. After the heal a client's new session may list
//! the base path before the servers have registered again; the servers
//! kept running all along, so no request may fail for it.

use std::sync::Arc;
use std::time::Duration;

use time_server::listener::Serving;
use zkutil::testing::{DelayProxy, TestProcess, ZkServer, mntr_value, wait_until};
use zkutil::{BasePath, SessionConfig};

use crate::support::{answered, change_logged, register_all, zookeeper};

/// The time-client binary asking every 10 ms under `/partition`, through
/// `link`, once it has made its first 30 requests.
fn client_through(link: &DelayProxy, session_timeout: &str, count: &str) -> TestProcess {
    let client = TestProcess::start(
        env!("CARGO_BIN_EXE_time-client"),
        &[
            "--zk",
            &link.addr().to_string(),
            "--base-path",
            "/partition",
            "--session-timeout",
            session_timeout,
            "--count",
            count,
            "--interval",
            "10ms",
        ],
        &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
    );
    client.stdout().wait_for_lines(30, Duration::from_secs(30));
    client
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
    let _registrations = register_all(
        &servers_session,
        "/partition",
        serving.listeners().iter().map(|bound| bound.advertised()),
        "test",
    );
    let mut client = client_through(&client_link, "3s", "1500");
    let before = mntr_value(zk.port(), "zk_global_sessions").expect("mntr answers");
    assert_eq!(before, 2, "the client's and the servers' sessions");

    // ZooKeeper alone: it expires both sessions itself.
    client_link.hold();
    servers_link.hold();
    wait_until(
        Duration::from_secs(30),
        "ZooKeeper expired every session",
        || (mntr_value(zk.port(), "zk_global_sessions") == Some(0)).then_some(()),
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

fn session_via(link: &DelayProxy, timeout: Duration) -> Arc<zkutil::Session> {
    SessionConfig::new(link.addr().to_string())
        .with_session_timeout(timeout)
        .connect()
        .map(Arc::new)
        .expect("a session through its link")
}

#[test]
fn a_server_taken_out_of_rotation_is_never_tried_as_a_fallback_once_the_client_sees_it() {
    let zk = zookeeper();
    let (client_link, a_link, b_link) = (proxy(&zk), proxy(&zk), proxy(&zk));
    let serving = Serving::on_free_ports(2).expect("listeners");
    let base = BasePath::new("/partition").expect("a base path");
    let ends: Vec<_> = serving.listeners().iter().map(|b| b.advertised()).collect();
    let (a, b) = (ends[0], ends[1]);
    let (sa, sb) = (
        session_via(&a_link, Duration::from_secs(2)),
        session_via(&b_link, Duration::from_secs(2)),
    );
    let ra = register_all(&sa, "/partition", [a], "test");
    let _rb = register_all(&sb, "/partition", [b], "test");
    let mut client = client_through(&client_link, "8s", "3000");
    // An operator drains A while the client is cut off; A's registration
    // keeps the change for when it re-creates its node.
    client_link.hold();
    let operator = zkutil::testing::connect(&zk, Duration::from_secs(5));
    zkutil::Control::Disable {
        reason: Some("drain".into()),
    }
    .apply_to(&operator, &base, a)
    .expect("disables A");
    wait_until(
        Duration::from_secs(10),
        "A's registration keeps the drain",
        || {
            String::from_utf8_lossy(&ra[0].data())
                .contains("\"enabled\":false")
                .then_some(())
        },
    );
    // Then ZooKeeper is cut off from everyone until every session but the
    // operator's expired; the client comes back first, to an empty registry.
    a_link.hold();
    b_link.hold();
    wait_until(
        Duration::from_secs(60),
        "every other session expired",
        || (mntr_value(zk.port(), "zk_global_sessions") == Some(1)).then_some(()),
    );
    client_link.release();
    client
        .stderr()
        .wait_until(Duration::from_secs(30), "the fallback", |lines| {
            lines
                .iter()
                .any(|(_, l)| l.contains("trying the last known servers"))
                .then_some(())
        });
    // A comes back out of rotation; B's link stays cut.
    a_link.release();
    let a_text = a.to_string();
    // Out of rotation from this request on: judged by request numbers,
    // not by when two output streams were read.
    let (_, a_out_from, _) = change_logged(&client, 0, &a_text);
    let seen = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(seen + 50, Duration::from_secs(30));
    b_link.release();
    client.signal("INT");
    let _ = client.wait(Duration::from_secs(30));
    let to_a: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| answered(l).is_some_and(|(seq, server)| seq >= a_out_from && server == a))
        .collect();
    assert!(
        to_a.is_empty(),
        "{} requests went to {a_text} after the client saw it out of rotation, e.g. {:?}",
        to_a.len(),
        to_a.first()
    );
}

#[test]
fn servers_whose_sessions_end_after_the_client_is_back_cost_no_request() {
    let zk = zookeeper();
    let (client_link, servers_link) = (proxy(&zk), proxy(&zk));
    let serving = Serving::on_free_ports(2).expect("listeners");
    // The servers' sessions outlive the client's: ZooKeeper expires them
    // after the client has come back and listed them.
    let servers_session = session_via(&servers_link, Duration::from_secs(8));
    let _registrations = register_all(
        &servers_session,
        "/partition",
        serving.listeners().iter().map(|bound| bound.advertised()),
        "test",
    );
    let mut client = client_through(&client_link, "2s", "3000");
    assert_eq!(mntr_value(zk.port(), "zk_global_sessions"), Some(2));
    client_link.hold();
    servers_link.hold();
    wait_until(
        Duration::from_secs(30),
        "the client's session expired",
        || (mntr_value(zk.port(), "zk_global_sessions") == Some(1)).then_some(()),
    );
    client_link.release();
    client
        .stderr()
        .wait_until(Duration::from_secs(30), "fresh again", |lines| {
            lines
                .iter()
                .any(|(_, l)| l.contains("fresh again"))
                .then_some(())
        });
    // The client's new session and the servers' old one; then ZooKeeper
    // expires the servers' (their link still cut), under the client's eyes.
    wait_until(Duration::from_secs(30), "the client's new session", || {
        (mntr_value(zk.port(), "zk_global_sessions") == Some(2)).then_some(())
    });
    wait_until(
        Duration::from_secs(30),
        "the servers' session expired",
        || (mntr_value(zk.port(), "zk_global_sessions") == Some(1)).then_some(()),
    );
    client
        .stderr()
        .wait_until(Duration::from_secs(30), "the fallback", |lines| {
            lines
                .iter()
                .any(|(_, l)| l.contains("trying the last known servers"))
                .then_some(())
        });
    let seen = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(seen + 30, Duration::from_secs(30));
    servers_link.release();
    client
        .stderr()
        .wait_until(Duration::from_secs(30), "the servers are back", |lines| {
            lines
                .iter()
                .any(|(_, l)| l.contains("no longer using the last known servers"))
                .then_some(())
        });
    client.signal("INT");
    let _ = client.wait(Duration::from_secs(30));
    let lines: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let failed: Vec<&String> = lines.iter().filter(|l| l.contains("FAILED")).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed while both servers kept serving, e.g. {:?}",
        failed.len(),
        lines.len(),
        failed.first()
    );
}

#[test]
fn a_server_seen_out_of_rotation_after_the_reconnect_is_never_a_fallback_even_once_gone() {
    let zk = zookeeper();
    let (client_link, a_link, s_link) = (proxy(&zk), proxy(&zk), proxy(&zk));
    let serving = Serving::on_free_ports(2).expect("listeners");
    let base = BasePath::new("/partition").expect("a base path");
    let ends: Vec<_> = serving.listeners().iter().map(|b| b.advertised()).collect();
    let (a, s) = (ends[0], ends[1]);
    // S's session ends before A's: both after the client is back.
    let (sa, ss) = (
        session_via(&a_link, Duration::from_secs(20)),
        session_via(&s_link, Duration::from_secs(10)),
    );
    let _ra = register_all(&sa, "/partition", [a], "test");
    let _rs = register_all(&ss, "/partition", [s], "test");
    let mut client = client_through(&client_link, "2s", "6000");
    client_link.hold();
    a_link.hold();
    s_link.hold();
    wait_until(
        Duration::from_secs(30),
        "the client's session expired",
        || (mntr_value(zk.port(), "zk_global_sessions") == Some(2)).then_some(()),
    );
    client_link.release();
    client
        .stderr()
        .wait_until(Duration::from_secs(30), "fresh again", |lines| {
            lines
                .iter()
                .any(|(_, l)| l.contains("fresh again"))
                .then_some(())
        });
    // The operator takes S out of rotation; the client sees it.
    let operator = zkutil::testing::connect(&zk, Duration::from_secs(5));
    zkutil::Control::Disable {
        reason: Some("drain".into()),
    }
    .apply_to(&operator, &base, s)
    .expect("disables S");
    let s_text = s.to_string();
    // Out of rotation from this request on: judged by request numbers,
    // not by when two output streams were read.
    let (_, s_out_from, _) = change_logged(&client, 0, &s_text);
    // S's session ends, then A's (both links still cut; both keep serving).
    client
        .stderr()
        .wait_until(Duration::from_secs(60), "the fallback", |lines| {
            lines
                .iter()
                .any(|(_, l)| l.contains("trying the last known servers"))
                .then_some(())
        });
    let seen = client.stdout().len();
    client
        .stdout()
        .wait_for_lines(seen + 200, Duration::from_secs(30));
    client.signal("INT");
    let _ = client.wait(Duration::from_secs(30));
    let to_s: Vec<String> = client
        .stdout()
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| answered(l).is_some_and(|(seq, server)| seq >= s_out_from && server == s))
        .collect();
    assert!(
        to_s.is_empty(),
        "{} requests went to {s_text} after the client saw it out of rotation, e.g. {:?}",
        to_s.len(),
        to_s.first()
    );
}
