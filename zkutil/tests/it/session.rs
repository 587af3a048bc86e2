//! Sessions: connect with a deadline, bounded calls, prompt close.

use std::time::{Duration, Instant};

use zkutil::testing::wait_until;
use zkutil::{Error, SessionConfig};

use crate::support::{session, zookeeper};

#[test]
fn unreachable_zookeeper_fails_within_the_connect_deadline_naming_the_hosts() {
    // A port nobody listens on: bind one, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let hosts = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let result = SessionConfig::new(&hosts)
        .with_connect_timeout(Duration::from_secs(1))
        .connect();
    let waited = started.elapsed();
    match result {
        Err(err @ Error::ConnectTimeout { .. }) => {
            assert!(err.to_string().contains(&hosts), "{err}")
        }
        Err(err) => assert!(
            err.to_string().contains(&hosts),
            "cause does not name hosts: {err}"
        ),
        Ok(s) => panic!("connected to nothing: {s:?}"),
    }
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
}

#[test]
fn empty_connect_string_is_an_invalid_argument() {
    assert!(matches!(
        SessionConfig::new(" ").connect(),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn calls_on_a_frozen_server_time_out_with_a_retryable_error() {
    let mut zk = zookeeper();
    let s = zkutil::SessionConfig::new(zk.connect_string())
        .with_session_timeout(Duration::from_secs(20))
        .with_request_timeout(Duration::from_millis(500))
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));
    zk.pause();
    let started = Instant::now();
    let result = s.children("/");
    zk.resume();
    let err = result
        .err()
        .unwrap_or_else(|| panic!("a frozen server answered"));
    assert!(err.is_retryable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "call took {:?}",
        started.elapsed()
    );
    // The same session works again once the server thaws.
    wait_until(Duration::from_secs(20), "the session answers again", || {
        s.children("/").ok()
    });
}

#[test]
fn closing_a_session_removes_its_ephemeral_nodes_at_once() {
    let zk = zookeeper();
    // A long session timeout, so that only an explicit close removes the
    // node within the bound below.
    let owner = SessionConfig::new(zk.connect_string())
        .with_session_timeout(Duration::from_secs(30))
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));
    let observer = session(&zk);
    owner
        .create_ephemeral("/e", b"x")
        .unwrap_or_else(|e| panic!("{e}"));
    owner.close();
    let started = Instant::now();
    wait_until(Duration::from_secs(20), "/e is gone", || {
        observer.stat("/e").ok().flatten().is_none().then_some(())
    });
    eprintln!("ephemeral node gone {:?} after close", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_expired_session_is_rebuilt_and_subscribers_are_told() {
    let zk = zookeeper();
    let s = session(&zk);
    let (tx, rx) = std::sync::mpsc::channel();
    s.subscribe(move |event| tx.send(event).is_ok());
    let old = s.id();
    s.expire_for_testing()
        .unwrap_or_else(|e| panic!("expiring: {e:?}"));
    let started = Instant::now();
    let (previous, current) = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(zkutil::SessionEvent::Rebuilt { previous, current }) => break (previous, current),
            Ok(_) => {}
            Err(e) => panic!(
                "no Rebuilt event after {:?}: {e}; zk log:\n{}",
                started.elapsed(),
                zk.log_tail()
            ),
        }
    };
    assert_eq!(previous, old);
    assert_ne!(
        current, old,
        "the server forgot the old session: a new one is expected"
    );
    assert_eq!(s.id(), current);
    assert_eq!(s.state(), zkutil::SessionState::Connected);
    s.children("/")
        .unwrap_or_else(|e| panic!("the rebuilt session does not answer: {e}"));
}
