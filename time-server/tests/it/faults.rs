//! Registrations under session faults, against real ZooKeeper: the
//! registry must always converge to exactly the set of live listeners.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zkutil::testing::{LineRecorder, ZkEnsemble, ZkServer, four_letter_word, wait_until};
use zkutil::{SessionConfig, SessionId};

use crate::support::{ServerProcess, ask, children, free_ports, observer, snapshot, zookeeper};

const BASE: &str = "/go_servers";

fn server_args<'a>(zk: &'a str, session_timeout: &'a str, listen: &'a str) -> Vec<&'a str> {
    vec![
        "--zk",
        zk,
        "--base-path",
        BASE,
        "--session-timeout",
        session_timeout,
        "--listen",
        listen,
    ]
}

fn owners(snapshot: &[(String, SessionId, i64)]) -> BTreeSet<SessionId> {
    snapshot.iter().map(|(_, owner, _)| *owner).collect()
}

#[test]
fn session_expiry_recreates_registrations() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(
        &hosts,
        "2s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    server.registered(3);
    wait_until(Duration::from_secs(10), "three nodes", || {
        (snapshot(&obs, BASE).len() == 3).then_some(())
    });
    let old = owners(&snapshot(&obs, BASE));
    assert_eq!(old.len(), 1);
    // Frozen past the session timeout: ZooKeeper expires the session for
    // real and deletes its nodes.
    server.signal("STOP");
    wait_until(
        Duration::from_secs(30),
        "the frozen server's nodes expire",
        || children(&obs, BASE).is_empty().then_some(()),
    );
    server.signal("CONT");
    let back = wait_until(
        Duration::from_secs(30),
        "the nodes come back under a new session",
        || {
            let now = snapshot(&obs, BASE);
            let owners = owners(&now);
            (now.len() == 3 && owners.len() == 1 && owners.is_disjoint(&old)).then_some(now)
        },
    );
    assert_eq!(children(&obs, BASE).len(), 3, "duplicates: {back:?}");
    assert!(server.stderr().contains("expired"), "{}", server.stderr());
    // ZooKeeper expired the session: nobody else deleted anything.
    assert!(
        !server.stderr().contains("deleted by someone else"),
        "{}",
        server.stderr()
    );
}

/// The index of the ensemble node holding the connection of `session`.
fn node_of_session(zk: &ZkEnsemble, session: SessionId) -> Option<usize> {
    let sid = format!("sid={session:#x}");
    (0..zk.len())
        .find(|&i| four_letter_word(zk.port(i), "cons").is_some_and(|cons| cons.contains(&sid)))
}

#[test]
fn leader_failover_keeps_registrations_without_flap() {
    zkutil::testing::init_test_logging();
    let mut zk = ZkEnsemble::start(3).unwrap_or_else(|e| panic!("starting ensemble: {e}"));
    let hosts = zk.connect_string();
    let obs = SessionConfig::new(&hosts)
        .with_session_timeout(Duration::from_secs(20))
        .connect()
        .expect("connects to ZooKeeper");
    let server = ServerProcess::start(&server_args(
        &hosts,
        "10s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    server.registered(3);
    let before = wait_until(Duration::from_secs(10), "three nodes", || {
        let now = snapshot(&obs, BASE);
        (now.len() == 3).then_some(now)
    });
    let owner = before[0].1;
    // An observer's child watch: any create or delete under the base path fires it.
    let (tx, events) = mpsc::channel();
    obs.children_and_watch(BASE, move |event| {
        let _ = tx.send(event);
    })
    .expect("lists and watches");

    let leader = zk.leader().unwrap_or_else(|| panic!("no leader"));
    zk.kill(leader);
    wait_until(Duration::from_secs(30), "a new leader", || zk.leader());
    let connected = wait_until(
        Duration::from_secs(30),
        "the server's session is on a live node",
        || node_of_session(&zk, owner),
    );
    zk.kill(connected);
    // Two of three nodes down: no quorum. Bring the leader back for one.
    zk.restart(leader)
        .unwrap_or_else(|e| panic!("restart: {e}"));
    wait_until(
        Duration::from_secs(30),
        "the server's session moved to another node",
        || node_of_session(&zk, owner).filter(|&i| i != connected),
    );
    let after = snapshot(&obs, BASE);
    assert_eq!(after, before, "nodes changed owner or were re-created");
    match events.try_recv() {
        Err(mpsc::TryRecvError::Empty) => {}
        other => panic!("the observer's child watch fired: {other:?}"),
    }
    assert!(
        !server.stderr().contains("re-registered"),
        "{}",
        server.stderr()
    );
}

#[test]
fn zookeeper_outage_shorter_than_session_timeout_changes_nothing() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(
        &hosts,
        "20s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    server.registered(3);
    let before = {
        let obs = observer(&zk);
        wait_until(Duration::from_secs(10), "three nodes", || {
            let now = snapshot(&obs, BASE);
            (now.len() == 3).then_some(now)
        })
    };
    zk.kill();
    server.wait_for_log("disconnected from ZooKeeper", 1, Duration::from_secs(20));
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    server.wait_for_log("reconnected to ZooKeeper", 1, Duration::from_secs(30));
    let obs = observer(&zk);
    assert_eq!(
        snapshot(&obs, BASE),
        before,
        "nodes changed although the session survived"
    );
    assert!(
        !server.stderr().contains("re-registered"),
        "{}",
        server.stderr()
    );
}

#[test]
fn zookeeper_outage_longer_than_session_timeout_recovers() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(
        &hosts,
        "2s",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ));
    let names: BTreeSet<String> = server.registered(3).into_iter().collect();
    zk.kill();
    // The client declares the session expired on its own (1.4× the timeout).
    server.wait_for_log(
        "ZooKeeper session expired (as far as the client can tell)",
        1,
        Duration::from_secs(30),
    );
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    let obs = observer(&zk);
    wait_until(
        Duration::from_secs(30),
        "the registry equals the live listeners, one live owner",
        || {
            let now = snapshot(&obs, BASE);
            let found: BTreeSet<String> = now.iter().map(|(name, _, _)| name.clone()).collect();
            let owners = owners(&now);
            let log = server.stderr();
            let current = log
                .lines()
                .rev()
                .find_map(|line| match line.split_once("new=") {
                    Some((_, rest)) => Some(rest),
                    None if line.contains("re-attached") => {
                        line.split_once("session=").map(|(_, rest)| rest)
                    }
                    None => None,
                })
                .and_then(|rest| rest.split_whitespace().next())?
                .to_owned();
            let owner = owners.iter().next().map(|o| format!("{o:#x}"));
            (found == names && owners.len() == 1 && owner.as_deref() == Some(current.as_str()))
                .then_some(())
        },
    );
    // Still exactly three a moment later: no duplicate, nothing stale.
    assert_eq!(children(&obs, BASE).len(), 3);
}

#[test]
fn fast_restart_replaces_stale_node() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let ports = free_ports(3);
    let listen = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut first = ServerProcess::start(&server_args(&hosts, "30s", &listen));
    first.registered(3);
    let old = wait_until(Duration::from_secs(10), "three nodes", || {
        let now = snapshot(&obs, BASE);
        (now.len() == 3).then_some(owners(&now))
    });
    first.signal("KILL");
    first.wait(Duration::from_secs(10));
    let restarted = Instant::now();
    let second = ServerProcess::start(&server_args(&hosts, "30s", &listen));
    wait_until(
        Duration::from_secs(20),
        "the nodes are owned by the new process",
        || {
            let now = snapshot(&obs, BASE);
            let owners = owners(&now);
            (now.len() == 3 && owners.len() == 1 && owners.is_disjoint(&old)).then_some(())
        },
    );
    let took = restarted.elapsed();
    eprintln!("fast restart: registered again {took:?} after the new process started");
    // The old session would have kept them for 30 s.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        second.stderr().contains("replaced the node of session 0x"),
        "{}",
        second.stderr()
    );
    // Its own replacement is not "someone else" deleting its node.
    assert!(
        !second.stderr().contains("deleted by someone else"),
        "{}",
        second.stderr()
    );
}

#[test]
fn zookeeper_down_at_start_then_registers() {
    let mut zk = zookeeper();
    zk.kill();
    let hosts = zk.connect_string();
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port}");
    let mut args = server_args(&hosts, "10s", &listen);
    args.extend(["--zk-connect-timeout", "500ms"]);
    let server = ServerProcess::start(&args);
    // The listener answers while ZooKeeper is down.
    let addr: SocketAddr = listen.parse().expect("a valid literal");
    let reply = wait_until(Duration::from_secs(20), "the listener answers", || {
        ask(addr).ok()
    });
    assert!(reply.starts_with(&format!("{listen}: ")), "{reply:?}");
    server.wait_for_log("ZooKeeper unreachable", 2, Duration::from_secs(30));
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    let obs = observer(&zk);
    let restarted = Instant::now();
    wait_until(Duration::from_secs(30), "the node appears", || {
        (children(&obs, BASE) == [listen.clone()]).then_some(())
    });
    eprintln!(
        "registered {:?} after ZooKeeper came back",
        restarted.elapsed()
    );
    // One log line per failed attempt, not a busy loop.
    let attempts = server.log_count("ZooKeeper unreachable");
    assert!(attempts < 50, "{attempts} attempts logged");
}

/// Runs a time-client in this process on a thread, writing to a recorder.
fn client_thread(
    hosts: &str,
    count: u64,
    tune: impl FnOnce(&mut time_client::Config),
) -> (
    LineRecorder,
    std::thread::JoinHandle<time_client::report::Summary>,
) {
    let mut config = time_client::Config {
        count,
        interval: Duration::from_millis(10),
        ..time_client::Config::new(hosts)
    };
    tune(&mut config);
    let out = LineRecorder::new();
    let mut sink = out.clone();
    let thread = std::thread::spawn(move || {
        let (_keep, stop) = mpsc::channel();
        time_client::run(&config, &mut sink, &stop).unwrap_or_else(|e| panic!("client: {e:#}"))
    });
    (out, thread)
}

#[test]
fn sigterm_deregisters_before_closing() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let ports = free_ports(2);
    let stopping_listen = format!("127.0.0.1:{}", ports[0]);
    let staying_listen = format!("127.0.0.1:{}", ports[1]);
    let mut stopping = ServerProcess::start(&server_args(&hosts, "10s", &stopping_listen));
    let staying = ServerProcess::start(&server_args(&hosts, "10s", &staying_listen));
    stopping.registered(1);
    staying.registered(1);
    wait_until(Duration::from_secs(10), "both registered", || {
        (children(&obs, BASE).len() == 2).then_some(())
    });

    let (out, client) = client_thread(&hosts, 400, |_| {});
    out.wait_for_lines(40, Duration::from_secs(30));

    stopping.signal("TERM");
    wait_until(
        Duration::from_secs(10),
        "the stopping server's node is gone",
        || (children(&obs, BASE) == [staying_listen.clone()]).then_some(()),
    );
    let vanished = Instant::now();
    // Deregistered, and still accepting (the drain period).
    let addr: SocketAddr = stopping_listen.parse().expect("a valid literal");
    let reply = ask(addr).unwrap_or_else(|e| panic!("the listener stopped before the drain: {e}"));
    assert!(
        reply.starts_with(&format!("{stopping_listen}: ")),
        "{reply:?}"
    );
    let status = stopping.wait(Duration::from_secs(20));
    assert!(
        status.success(),
        "exit {status}; log:\n{}",
        stopping.stderr()
    );

    let summary = client.join().unwrap_or_else(|_| panic!("client panicked"));
    assert_eq!((summary.ok, summary.failed), (400, 0), "{}", summary.line());
    assert_eq!(summary.per_server.len(), 2, "{}", summary.line());
    // After its node vanished the client sent it nothing (100 ms allowed for
    // the client's own watch and a request already under way).
    let host = format!("] {stopping_listen} ");
    let late = out
        .lines()
        .into_iter()
        .filter(|(at, l)| *at > vanished + Duration::from_millis(100) && l.contains(&host));
    assert_eq!(late.count(), 0, "requests to the deregistered server");
}

#[test]
fn sigkill_of_two_of_three_servers_loses_no_request() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let mut servers: Vec<ServerProcess> = (0..3)
        .map(|_| ServerProcess::start(&server_args(&hosts, "20s", "127.0.0.1:0")))
        .collect();
    for server in &servers {
        server.registered(1);
    }
    wait_until(Duration::from_secs(10), "three registered", || {
        (children(&obs, BASE).len() == 3).then_some(())
    });
    let (out, client) = client_thread(&hosts, 300, |_| {});
    out.wait_for_lines(20, Duration::from_secs(30));
    for server in servers.iter_mut().take(2) {
        server.signal("KILL");
        server.wait(Duration::from_secs(10));
    }
    // Their nodes stay listed until their sessions time out (20 s).
    assert_eq!(children(&obs, BASE).len(), 3);
    let summary = client.join().unwrap_or_else(|_| panic!("client panicked"));
    eprintln!("two of three servers killed: {}", summary.line());
    assert_eq!((summary.ok, summary.failed), (300, 0), "{}", summary.line());
}

#[test]
fn a_frozen_server_is_timed_out_marked_down_and_loses_no_request() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let servers: Vec<ServerProcess> = (0..2)
        .map(|_| ServerProcess::start(&server_args(&hosts, "20s", "127.0.0.1:0")))
        .collect();
    for server in &servers {
        server.registered(1);
    }
    wait_until(Duration::from_secs(10), "two registered", || {
        (children(&obs, BASE).len() == 2).then_some(())
    });
    // Accepts (the kernel does), never answers.
    servers[0].signal("STOP");
    let (_, client) = client_thread(&hosts, 100, |config| {
        config.limits.timeout = Duration::from_millis(300);
        config.interval = Duration::from_millis(5);
    });
    let summary = client.join().unwrap_or_else(|_| panic!("client panicked"));
    servers[0].signal("CONT");
    eprintln!("one of two servers frozen: {}", summary.line());
    assert_eq!((summary.ok, summary.failed), (100, 0), "{}", summary.line());
    // Marked down after its first timeout: the cooldown (10 s) outlasts the run.
    assert_eq!(summary.retries, 1, "{}", summary.line());
}

/// `n` listeners on free ports, as one `--listen` value.
fn port_zero_listeners(n: usize) -> String {
    vec!["127.0.0.1:0"; n].join(",")
}

#[test]
fn zookeeper_dying_during_registration_delays_it_but_every_listener_registers() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let listen = port_zero_listeners(300);
    let mut server = ServerProcess::start(&server_args(&hosts, "2s", &listen));
    server.wait_for_log("connected to ZooKeeper", 1, Duration::from_secs(30));
    zk.kill();
    // Down for longer than the client's own expiry guess (1.4 × 2 s).
    server.wait_for_log(
        "ZooKeeper session expired (as far as the client can tell)",
        1,
        Duration::from_secs(60),
    );
    zk.restart().expect("restart");
    let obs = observer(&zk);
    wait_until(
        Duration::from_secs(120),
        "all 300 listeners registered",
        || (children(&obs, BASE).len() == 300).then_some(()),
    );
    assert!(server.try_status().is_none(), "{}", server.stderr());
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; log:\n{}", server.stderr());
}

/// Starts a server with three listeners and a 1 s drain, waits until it is
/// registered, and stops ZooKeeper.
fn registered_server_then_zookeeper_down(session_timeout: &str) -> (ServerProcess, ZkServer) {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    let mut args = server_args(
        &hosts,
        session_timeout,
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    );
    args.extend(["--drain", "1s"]);
    let server = ServerProcess::start(&args);
    server.registered(3);
    zk.kill();
    server.wait_for_log("disconnected from ZooKeeper", 1, Duration::from_secs(30));
    (server, zk)
}

/// SIGTERMs `server` and returns how long it took to exit (successfully).
fn time_to_exit(server: &mut ServerProcess) -> Duration {
    let started = Instant::now();
    server.signal("TERM");
    let status = server.wait(Duration::from_secs(60));
    let took = started.elapsed();
    assert!(status.success(), "exit {status}; log:\n{}", server.stderr());
    took
}

#[test]
fn sigterm_with_zookeeper_down_exits_within_drain_plus_two_seconds() {
    let (mut server, _zk) = registered_server_then_zookeeper_down("30s");
    let took = time_to_exit(&mut server);
    eprintln!("stopped {took:?} after SIGTERM with ZooKeeper down (drain 1 s)");
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}; log:\n{}",
        server.stderr()
    );
}

#[test]
fn sigterm_after_the_client_declared_expiry_exits_without_a_close_warning() {
    let (mut server, _zk) = registered_server_then_zookeeper_down("2s");
    server.wait_for_log(
        "ZooKeeper session expired (as far as the client can tell)",
        1,
        Duration::from_secs(30),
    );
    let took = time_to_exit(&mut server);
    eprintln!("stopped {took:?} after SIGTERM with the session expired (drain 1 s)");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        !server.stderr().contains("did not confirm"),
        "{}",
        server.stderr()
    );
}

#[test]
fn two_listeners_advertising_one_endpoint_are_one_registration() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port},127.0.0.2:{port}");
    let mut args = server_args(&hosts, "10s", &listen);
    args.extend(["--advertise", "127.0.0.1", "--drain", "0s"]);
    let mut server = ServerProcess::start(&args);
    server.wait_for_log("registered once", 1, Duration::from_secs(30));
    server.registered(1);
    assert_eq!(children(&obs, BASE), vec![format!("127.0.0.1:{port}")]);
    let _ = time_to_exit(&mut server);
    // One maintainer: nothing re-creates the node after deregistration.
    assert!(children(&obs, BASE).is_empty(), "{}", server.stderr());
    assert!(
        !server.stderr().contains("re-registered"),
        "{}",
        server.stderr()
    );
}

#[test]
fn with_256_open_files_idle_connections_do_not_starve_other_clients() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "-c",
        "ulimit -n 256 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_time-server"),
    ];
    args.extend(server_args(&hosts, "10s", &listen));
    let server = zkutil::testing::TestProcess::start("bash", &args, &[("RUST_LOG", "info")]);
    server.wait_for_log("lowering --max-connections", 1, Duration::from_secs(30));
    server.wait_for_log("registered", 1, Duration::from_secs(30));
    let addr: SocketAddr = listen.parse().expect("addr");
    // 400 idle clients, each holding its connection open after the reply.
    let mut idle = Vec::new();
    for _ in 0..400 {
        let mut stream =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut stream), &mut line)
            .expect("the reply line");
        assert!(line.starts_with(&listen), "{line:?}");
        idle.push(stream);
    }
    let started = Instant::now();
    let reply = ask(addr).expect("another client is answered");
    eprintln!(
        "answered in {:?} with 400 idle connections",
        started.elapsed()
    );
    assert!(reply.starts_with(&listen), "{reply:?}");
    assert!(
        server.log_count("accept failed") <= 1,
        "{}",
        server.stderr_text()
    );
}

#[test]
fn a_node_deleted_by_an_operator_is_recreated_and_the_log_says_who() {
    let zk = zookeeper();
    let obs = observer(&zk);
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&server_args(&hosts, "10s", "127.0.0.1:0"));
    let name = server.registered(1).remove(0);
    let path = format!("{BASE}/{name}");
    let owner = obs
        .stat(&path)
        .expect("stat")
        .expect("registered")
        .ephemeral_owner();
    obs.delete(&path, None).expect("the operator's delete");
    wait_until(
        Duration::from_secs(20),
        "the node is back, same owner",
        || {
            obs.stat(&path)
                .ok()
                .flatten()
                .filter(|stat| stat.ephemeral_owner() == owner)
        },
    );
    server.wait_for_log(
        "deleted by someone else; re-created it",
        1,
        Duration::from_secs(20),
    );
}
