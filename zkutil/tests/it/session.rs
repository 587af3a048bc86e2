//! Sessions: connect with a deadline, bounded calls, prompt close.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zkutil::testing::{ZkEnsemble, sessions_on, wait_until};
use zkutil::{Error, SessionConfig, SessionEvent, SessionState};

use crate::support::{session, zookeeper};

#[test]
fn a_refused_connection_is_reported_at_once_with_its_cause() {
    // A port nobody listens on: bind one, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let hosts = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let result = SessionConfig::new(&hosts)
        .with_connect_timeout(Duration::from_secs(30))
        .connect();
    let waited = started.elapsed();
    match result {
        Err(err @ Error::Refused { .. }) => assert_eq!(
            err.to_string(),
            format!("cannot connect to ZooKeeper at {hosts}: connection refused — is it running?")
        ),
        Err(err) => panic!("expected a refusal naming {hosts}, got: {err}"),
        Ok(s) => panic!("connected to nothing: {s:?}"),
    }
    assert!(
        waited < Duration::from_secs(1),
        "took {waited:?}, not at once"
    );
}

/// `zk1:2181, zk2:2181` (a blank after the comma, as YAML lists often
/// have) is two hosts: the second is used when the first is down, never
/// dropped for an unresolvable `" zk2"`.
#[test]
fn a_blank_after_a_comma_in_the_connect_string_loses_no_host() {
    let zk = zookeeper();
    let closed = zkutil::testing::free_ports(1).expect("a free port")[0];
    let hosts = format!("127.0.0.1:{closed}, 127.0.0.1:{}", zk.port());
    let session = SessionConfig::new(&hosts)
        .with_connect_timeout(Duration::from_secs(10))
        .connect()
        .unwrap_or_else(|err| panic!("{hosts:?} should reach the second host: {err}"));
    session
        .ensure_path("/blanks")
        .expect("served by the second host");
}

#[test]
fn a_silent_host_times_out_naming_the_hosts_unless_interrupted() {
    // Accepts connections (the kernel does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let hosts = silent.local_addr().expect("bound").to_string();
    let started = Instant::now();
    match SessionConfig::new(&hosts)
        .with_connect_timeout(Duration::from_secs(1))
        .connect()
    {
        Err(err @ Error::ConnectTimeout { .. }) => {
            assert!(err.to_string().contains(&hosts), "{err}")
        }
        Err(err) => panic!("expected a connect timeout naming {hosts}, got: {err}"),
        Ok(s) => panic!("connected to nothing: {s:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    let interrupt = zkutil::Interrupt::new();
    let config = SessionConfig::new(&hosts)
        .with_connect_timeout(Duration::from_secs(60))
        .with_interrupt(interrupt.clone());
    let connecting = std::thread::spawn(move || config.connect().map(drop));
    let triggered = Instant::now();
    interrupt.trigger();
    let result = connecting.join().expect("the connect thread");
    assert!(matches!(result, Err(Error::Interrupted)), "{result:?}");
    assert!(
        triggered.elapsed() < Duration::from_secs(1),
        "took {:?}",
        triggered.elapsed()
    );
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
        .expect("connects to ZooKeeper");
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
        .expect("connects to ZooKeeper");
    let observer = session(&zk);
    owner
        .create_ephemeral("/e", b"x")
        .expect("creates the node");
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

#[test]
fn a_session_lost_under_a_call_is_a_retryable_error() {
    let zk = zookeeper();
    let proxy = crate::support::proxy_to(&zk, Duration::ZERO);
    let s = Arc::new(
        SessionConfig::new(proxy.addr().to_string())
            .with_session_timeout(Duration::from_secs(4))
            .with_request_timeout(Duration::from_secs(30))
            .connect()
            .expect("a session through the proxy"),
    );
    let old = s.id();
    // Cut off until ZooKeeper has expired the session, and the client
    // does not know it yet (it guesses expiry only after 1.4x the timeout).
    proxy.hold();
    wait_until(
        Duration::from_secs(30),
        "ZooKeeper expired the session",
        || (zkutil::testing::mntr_value(zk.port(), "zk_global_sessions") == Some(0)).then_some(()),
    );
    assert_eq!(s.id(), old, "the client has not given the session up yet");
    let caller = s.clone();
    let call = std::thread::spawn(move || caller.create_ephemeral("/under-a-call", b""));
    proxy.release();
    let result = call.join().expect("the call panicked");
    eprintln!("the call made as the session was lost ended with {result:?}");
    // At worst an error worth retrying, never a terminal "session expired".
    match &result {
        Err(err) => assert!(err.is_retryable(), "{err:?}"),
        Ok(_) => assert_ne!(s.id(), old, "it succeeded on the new session"),
    }
    wait_until(Duration::from_secs(30), "a new session", || {
        (s.id() != old).then_some(())
    });
    s.children("/").expect("the rebuilt session answers");
}

#[test]
fn a_call_made_while_the_session_is_rebuilt_waits_for_the_new_session() {
    let mut zk = zookeeper();
    let s = Arc::new(
        SessionConfig::new(zk.connect_string())
            .with_session_timeout(Duration::from_secs(2))
            .with_request_timeout(Duration::from_secs(30))
            .connect()
            .expect("session"),
    );
    zk.kill();
    wait_until(
        Duration::from_secs(30),
        "the client declares expiry",
        || (s.state() == SessionState::Rebuilding).then_some(()),
    );
    let caller = s.clone();
    let call = std::thread::spawn(move || caller.children("/"));
    zk.restart().expect("restart");
    let result = call.join().expect("the call panicked");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(s.state(), SessionState::Connected);
}

#[test]
fn session_reattaches_after_an_outage_longer_than_the_clients_expiry_guess() {
    let mut zk = zookeeper();
    // The client declares the session expired after 1.4 × 4 s without
    // contact; a restarted ZooKeeper restores it from its log with a fresh
    // timeout, so it can be resumed.
    let s = Arc::new(
        SessionConfig::new(zk.connect_string())
            .with_session_timeout(Duration::from_secs(4))
            .connect()
            .expect("session"),
    );
    let (tx, events) = std::sync::mpsc::channel();
    s.subscribe(move |event| tx.send(event).is_ok());
    let id = s.id();
    s.create_ephemeral("/resumed", b"x").expect("create");
    zk.kill();
    wait_until(
        Duration::from_secs(30),
        "the client declares expiry",
        || (s.state() == SessionState::Rebuilding).then_some(()),
    );
    zk.restart().expect("restart");
    let rebuilt = loop {
        match events.recv_timeout(Duration::from_secs(30)) {
            Ok(SessionEvent::Rebuilt { previous, current }) => break (previous, current),
            Ok(_) => {}
            Err(e) => panic!("no Rebuilt event: {e}; zk log:\n{}", zk.log_tail()),
        }
    };
    assert_eq!(rebuilt, (id, id), "the old session was re-attached");
    assert_eq!(s.id(), id);
    let stat = s
        .stat("/resumed")
        .expect("stat")
        .expect("the node survived");
    assert_eq!(stat.ephemeral_owner(), id, "same owner");
}

#[test]
fn closing_a_session_the_client_declared_expired_returns_at_once() {
    let mut zk = zookeeper();
    let s = session(&zk);
    zk.kill();
    wait_until(
        Duration::from_secs(30),
        "the client declares expiry",
        || (s.state() == SessionState::Rebuilding).then_some(()),
    );
    let started = Instant::now();
    assert!(
        s.close_within(Duration::from_secs(20)),
        "nothing to confirm"
    );
    let took = started.elapsed();
    eprintln!("closed an expired session in {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(s.state(), SessionState::Closed);
}

#[test]
fn a_rebuild_racing_a_close_leaves_no_session_behind() {
    let zk = zookeeper();
    for _ in 0..3 {
        let s = SessionConfig::new(zk.connect_string())
            .with_session_timeout(Duration::from_secs(30))
            .connect()
            .expect("session");
        s.expire_for_testing().expect("expire");
        // Closed while the supervisor rebuilds (or is about to).
        drop(s);
    }
    // A leaked session would stay connected for its 30 s timeout.
    wait_until(Duration::from_secs(10), "no client session is left", || {
        sessions_on(zk.port()).is_empty().then_some(())
    });
}

#[test]
fn session_survives_a_frozen_zookeeper_node() {
    zkutil::testing::init_test_logging();
    let mut zk = ZkEnsemble::start(3).expect("ensemble");
    // The two followers only: a frozen *leader* stops the whole ensemble
    // until a new one is elected, which is another fault. With a follower
    // frozen, the other one serves, and the client must go there at once.
    let leader = zk.leader().expect("a leader");
    let followers: Vec<usize> = (0..zk.len()).filter(|&i| i != leader).collect();
    let hosts = followers
        .iter()
        .map(|&i| format!("127.0.0.1:{}", zk.port(i)))
        .collect::<Vec<_>>()
        .join(",");
    let s = SessionConfig::new(&hosts)
        .with_session_timeout(Duration::from_secs(4))
        .connect()
        .expect("session");
    let (tx, events) = std::sync::mpsc::channel();
    s.subscribe(move |event| tx.send((Instant::now(), event)).is_ok());
    let id = s.id();
    s.create_ephemeral("/frozen", b"x").expect("create");
    for round in 0..2 {
        // Exactly one node lists the session: a node thawed in the round
        // before may still list its old connection for a moment, and
        // freezing that one would freeze nothing the client uses.
        let attached = wait_until(Duration::from_secs(20), "the session's node", || {
            let listing: Vec<usize> = followers
                .iter()
                .copied()
                .filter(|&i| sessions_on(zk.port(i)).contains(&id))
                .collect();
            (listing.len() == 1).then(|| listing[0])
        });
        zk.pause(attached);
        let frozen_at = Instant::now();
        let wait_for = |wanted: SessionEvent| loop {
            match events.recv_timeout(Duration::from_secs(20)) {
                Ok((at, event)) if event == wanted => break at,
                Ok((_, SessionEvent::Rebuilt { .. })) => panic!("the session was lost"),
                Ok(_) => {}
                Err(e) => panic!("no {wanted:?} event: {e}"),
            }
        };
        let lost = wait_for(SessionEvent::Disconnected);
        let back = wait_for(SessionEvent::Connected);
        let gap = back - lost;
        eprintln!(
            "round {round}: node {attached} frozen; reconnected elsewhere {gap:?} after the hang was detected"
        );
        // The next attempt went to the live follower, not to the hung one
        // again (which would cost a whole connection timeout, 1.6 s here).
        assert!(
            gap < Duration::from_millis(1500),
            "reconnecting took {gap:?}"
        );
        // The fault itself lasts 4.5 s in all: longer than the session
        // timeout (4 s), shorter than the ensemble's sync limit (5 s), after
        // which the leader would drop the node and its rejoining would be a
        // fault of its own. A duration of the injected fault, not a wait
        // for an event.
        std::thread::sleep(Duration::from_millis(4500).saturating_sub(frozen_at.elapsed()));
        assert_eq!(
            s.stat("/frozen")
                .expect("stat")
                .map(|stat| stat.ephemeral_owner()),
            Some(id),
            "the node is still ours while node {attached} is frozen"
        );
        zk.resume(attached);
        // Back in the ensemble before the next round freezes the other: a
        // thaw late past the sync limit still says `follower` until the node
        // notices it was dropped, so wait for it to be synced and serving.
        assert!(
            zk.wait_serving(attached, Duration::from_secs(30)),
            "the thawed node {attached} serves again"
        );
    }
    assert_eq!(s.id(), id, "the session was never rebuilt");
}

#[test]
fn a_long_session_finds_zookeeper_again_within_seconds_after_a_long_outage() {
    let mut zk = zookeeper();
    // A long session (60 s) outlives a long outage; what matters is how
    // soon the client notices that ZooKeeper is back.
    let s = SessionConfig::new(zk.connect_string())
        .with_session_timeout(Duration::from_secs(60))
        .connect()
        .expect("session");
    s.ensure_path("/back").expect("serves");
    zk.kill();
    // The fault itself: ZooKeeper stays down this long, while the client
    // keeps trying (each round of attempts waiting longer than the last).
    const OUTAGE: Duration = Duration::from_secs(20);
    std::thread::sleep(OUTAGE);
    assert_eq!(s.state(), SessionState::Disconnected, "the outage was seen");
    zk.restart().expect("restart");
    let back = Instant::now();
    let found =
        zkutil::testing::poll_until(Duration::from_secs(40), Duration::from_millis(20), || {
            (s.state() == SessionState::Connected).then(|| back.elapsed())
        });
    println!(
        "after a {OUTAGE:?} outage the client was connected again {found:?} after ZooKeeper served"
    );
    let found = found.expect("connected again within 40 s");
    // ZooKeeper's Java client tries again at most 1 s after a failed round
    // (with a backoff doubling without end, this took 4.9 s).
    assert!(
        found < Duration::from_secs(3),
        "the client found ZooKeeper {found:?} after it was back"
    );
    assert!(s.children("/back").expect("the same session").is_empty());
}
