//! What a client sees when servers fail: a SIGTERM, a SIGKILL, a SIGSTOP
//! or a server short of file descriptors loses no request.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zkutil::testing::{LineRecorder, wait_until};

use crate::support::{ServerProcess, ask, children, free_ports, observer, zookeeper};

use super::{BASE, server_args};

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
    // After its node vanished the client sent it nothing (500 ms allowed for
    // the client's own watch and a request already under way: a few ms, but
    // threads wait their turn on a busy machine).
    let host = format!("] {stopping_listen} ");
    let settled = vanished + Duration::from_millis(500);
    let after = out.lines().into_iter().filter(|(at, _)| *at > settled);
    let (all, late) = after.fold((0, 0), |(all, late), (_, l)| {
        (all + 1, late + usize::from(l.contains(&host)))
    });
    assert!(
        all >= 20,
        "the client went on long enough to tell: {all} requests"
    );
    assert_eq!(late, 0, "requests to the deregistered server");
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
