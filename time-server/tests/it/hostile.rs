//! Hostile clients: garbage, floods, idle and half-open connections,
//! resets. The server stays up, keeps answering normal requests, and its
//! threads and memory stay bounded (read from /proc).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use zkutil::testing::{ZkServer, http_get, metric_value as metric, wait_until};

use crate::support::{ServerProcess, ask, free_ports, zookeeper};

/// A field of /proc/<pid>/status, as a number (`Threads:`, `VmRSS:` in kB).
fn proc_status(pid: u32, field: &str) -> u64 {
    zkutil::testing::proc_status(pid, field)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn start(zk: &ZkServer, extra: &[&str]) -> (ServerProcess, SocketAddr) {
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port}");
    let hosts = zk.connect_string();
    let mut args = vec!["--zk", hosts.as_str(), "--listen", listen.as_str()];
    args.extend_from_slice(extra);
    let server = ServerProcess::start(&args);
    server.registered(1);
    (server, listen.parse().expect("a valid literal"))
}

/// What the server holds while idle: its threads and RSS (KiB).
fn footprint(server: &ServerProcess) -> (u64, u64) {
    (
        proc_status(server.pid(), "Threads:"),
        proc_status(server.pid(), "VmRSS:"),
    )
}

/// No thread per connection and bounded memory: the thread count stays
/// that of the idle server (the acceptors and the one drain thread serve
/// every connection), give or take 2 of the ZooKeeper client's, and RSS
/// grows by at most 16 MiB.
#[track_caller]
fn assert_bounded(server: &ServerProcess, idle: (u64, u64)) {
    let (threads, rss_kib) = footprint(server);
    assert!(
        threads <= idle.0 + 2,
        "{threads} threads, idle {}: a thread per connection?",
        idle.0
    );
    assert!(
        rss_kib <= idle.1 + 16 * 1024,
        "RSS {rss_kib} KiB, idle {} KiB",
        idle.1
    );
}

/// A normal request is answered, within a generous deadline.
#[track_caller]
fn assert_answers(addr: SocketAddr, server: &ServerProcess) -> Duration {
    let started = Instant::now();
    let reply = ask(addr).unwrap_or_else(|e| panic!("no reply: {e}; log:\n{}", server.stderr()));
    let took = started.elapsed();
    assert!(reply.starts_with(&format!("{addr}: ")), "{reply:?}");
    assert!(
        took < Duration::from_secs(2),
        "a normal request took {took:?}"
    );
    took
}

#[test]
fn garbage_and_a_one_mebibyte_request_do_not_hurt_the_server() {
    let zk = zookeeper();
    let (server, addr) = start(&zk, &[]);
    let idle = footprint(&server);
    let garbage: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for payload in [garbage, vec![b'x'; 1 << 20], b"\r\n\0\xff\xfe".to_vec()] {
        let mut stream = TcpStream::connect(addr).expect("connects");
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        // The server stops reading at its drain limit: the write may fail.
        let _ = stream.write_all(&payload);
        let _ = stream.shutdown(Shutdown::Write);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.read_to_end(&mut Vec::new());
        assert_answers(addr, &server);
        assert_bounded(&server, idle);
    }
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

#[test]
fn five_hundred_idle_connections_neither_block_normal_requests_nor_grow_without_bound() {
    let zk = zookeeper();
    let (server, addr) = start(&zk, &["--max-connections", "200"]);
    let idle = footprint(&server);
    // Slow loris: connect, send nothing, never close.
    let held: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert_eq!(held.len(), 500);
    let took = assert_answers(addr, &server);
    let (threads, rss_kib) = footprint(&server);
    eprintln!(
        "slow loris: 500 idle connections, max 200: {threads} threads (idle {}), RSS {rss_kib} KiB (idle {}), \
         a normal request took {took:?}",
        idle.0, idle.1
    );
    assert_bounded(&server, idle);
    // Every held connection got its reply (beyond the cap: at once), and
    // those within the cap are let go at their drain deadline: the reply,
    // then the server's close.
    for (i, stream) in held.iter().enumerate().filter(|(i, _)| i % 50 == 0) {
        let mut stream = stream;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
        let mut reply = String::new();
        let ended = stream.read_to_string(&mut reply);
        assert!(
            ended.is_ok() && reply.starts_with(&format!("{addr}: ")),
            "held connection {i}: {ended:?}, {reply:?}"
        );
    }
}

#[test]
fn half_open_and_resetting_clients_do_not_hurt_the_server() {
    let zk = zookeeper();
    let (server, addr) = start(&zk, &[]);
    let idle = footprint(&server);
    // Half-open: the client closes its write side and never reads.
    let half_open: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .inspect(|stream| {
            let _ = stream.shutdown(Shutdown::Write);
        })
        .collect();
    assert_answers(addr, &server);
    assert_bounded(&server, idle);
    // Resets mid-reply: close with the reply unread, so the kernel answers
    // with RST.
    for _ in 0..200 {
        if let Ok(mut stream) = TcpStream::connect(addr) {
            let _ = stream.write_all(b"timestamp");
        }
    }
    assert_answers(addr, &server);
    assert_bounded(&server, idle);
    drop(half_open);
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    assert!(
        std::path::Path::new(&format!("/proc/{}", server.pid())).exists(),
        "the server died"
    );
}

/// `connections_in_flight` on the metrics port at `metrics`.
fn in_flight(metrics: SocketAddr) -> Option<f64> {
    let (_, text) = http_get(metrics, "/metrics").ok()?;
    metric(&text, "time_server_connections_in_flight")
}

/// A client that reads its reply, then neither sends nor closes.
fn idle_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    let mut reply = String::new();
    // The server half-closes after its line: EOF ends the read.
    let _ = (&mut stream).take(4096).read_to_string(&mut reply);
    assert!(reply.starts_with(&format!("{addr}: ")), "{reply:?}");
    stream
}

/// Whether the server has closed `stream` for good: a byte sent to a
/// closed socket is answered with a reset.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"x").is_err() {
        return true;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    matches!(stream.read(&mut [0u8; 16]), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

#[test]
fn idle_clients_are_closed_at_the_drain_timeout_when_nothing_else_happens() {
    let zk = zookeeper();
    let (server, addr) = start(
        &zk,
        &["--max-connections", "4", "--metrics-listen", "127.0.0.1:0"],
    );
    let metrics = server.logged_addr("metrics=");
    // Four clients fill the cap, then nothing at all happens on the time
    // listener.
    let mut idle: Vec<TcpStream> = (0..4).map(|_| idle_client(addr)).collect();
    let started = Instant::now();
    wait_until(Duration::from_secs(2), "the four are in flight", || {
        (in_flight(metrics)? == 4.0).then_some(())
    });
    // The drain timeout is 2 s: 6 s is three times that.
    wait_until(
        Duration::from_secs(6),
        "the idle clients are let go (connections_in_flight back to 0)",
        || (in_flight(metrics)? == 0.0).then_some(()),
    );
    let released = started.elapsed();
    eprintln!("4 idle clients released {released:?} after their replies (drain timeout 2 s)");
    for stream in &mut idle {
        wait_until(
            Duration::from_secs(2),
            "the server closed the idle socket",
            || closed_by_server(stream).then_some(()),
        );
    }
    // A fifth client takes a place under the cap, not the overflow path.
    let _fifth = idle_client(addr);
    // Accepted is not yet counted in flight: wait for the server's count.
    let text = wait_until(Duration::from_secs(5), "the fifth is in flight", || {
        let (_, text) = http_get(metrics, "/metrics").ok()?;
        (metric(&text, "time_server_connections_in_flight") == Some(1.0)).then_some(text)
    });
    assert_eq!(
        metric(&text, "time_server_connections_over_cap_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "time_server_connections_in_flight"),
        Some(1.0),
        "{text}"
    );
}
