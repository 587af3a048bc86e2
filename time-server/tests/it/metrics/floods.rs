//! Connection floods on the metrics port (idle connections, clients that
//! pipeline and never read, a server short of descriptors): `/healthz`, the
//! time listener and ZooKeeper keep working.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use zkutil::testing::{http_get, wait_until};

use crate::support::{ServerProcess, ask, zookeeper};

use super::{healthz_answers, start_with_metrics};

/// Whether the server has closed `stream`: EOF, or a reset.
fn closed(stream: &mut TcpStream) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

#[test]
fn healthz_and_the_time_listener_answer_while_300_idle_connections_and_a_non_reading_pipeliner_hold_the_metrics_port()
 {
    let zk = zookeeper();
    let (server, listener, metrics) = start_with_metrics(&zk);
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect_timeout(&metrics, Duration::from_secs(2)).expect("connects"))
        .collect();
    let (stalled, pipeliner_closed, stop) = (
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    );
    let pipelined = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        // Pipelines scrapes and never reads: the server's answers back up
        // until its writes block.
        scope.spawn(|| {
            let Ok(mut stream) = TcpStream::connect_timeout(&metrics, Duration::from_secs(2))
            else {
                return;
            };
            let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
            let batch = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(100);
            while !stop.load(Ordering::SeqCst) {
                match stream.write_all(batch.as_bytes()) {
                    Ok(()) => {
                        pipelined.fetch_add(100, Ordering::SeqCst);
                    }
                    Err(err)
                        if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                    {
                        stalled.store(true, Ordering::SeqCst);
                    }
                    Err(_) => {
                        pipeliner_closed.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        });
        let _stop = StopOnDrop(&stop);
        // Far more answers than socket buffers hold (a few KiB each), or
        // the server stopped reading.
        wait_until(
            Duration::from_secs(10),
            "the pipeliner has sent 20,000 requests or stalls",
            || {
                (pipelined.load(Ordering::SeqCst) >= 20_000
                    || stalled.load(Ordering::SeqCst)
                    || pipeliner_closed.load(Ordering::SeqCst))
                .then_some(())
            },
        );
        eprintln!(
            "pipeliner: {} requests sent, stalled: {}",
            pipelined.load(Ordering::SeqCst),
            stalled.load(Ordering::SeqCst)
        );
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            slowest = slowest.max(healthz_answers(metrics, Duration::from_secs(5), &server));
            let reply = ask(listener).expect("the time listener answers meanwhile");
            assert!(reply.starts_with(&listener.to_string()), "{reply}");
        }
        eprintln!(
            "/healthz under 300 idle connections and a non-reading pipeliner: slowest of 5 took {slowest:?}"
        );
        // The pipeliner is cut off by the write timeout; the idle ones by
        // eviction or the idle timeout (5 s each).
        let started = Instant::now();
        wait_until(
            Duration::from_secs(15),
            "the pipeliner is closed by the server",
            || pipeliner_closed.load(Ordering::SeqCst).then_some(()),
        );
        for stream in &mut idle {
            wait_until(
                Duration::from_secs(15),
                "every idle connection is closed",
                || closed(stream).then_some(()),
            );
        }
        eprintln!(
            "pipeliner and idle connections closed {:?} after the checks",
            started.elapsed()
        );
        healthz_answers(metrics, Duration::from_secs(5), &server);
    });
}

/// Sets the flag when dropped, so a scoped thread ends even if the test
/// panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Whether the server has closed `stream` (non-blocking): EOF or an error.
fn closed_now(stream: &mut TcpStream) -> bool {
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.kind() != ErrorKind::WouldBlock,
    }
}

/// Open descriptors of `pid`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn with_256_descriptors_floods_of_the_metrics_port_and_the_time_listener_leave_descriptors_spare_and_zookeeper_time_and_healthz_working()
 {
    // This process holds 600 sockets of its own.
    let _ = time_server::fdlimit::raise();
    let mut zk = zookeeper();
    let server = ServerProcess::start_with_open_file_limit(
        256,
        &[
            "--zk",
            &zk.connect_string(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--session-timeout",
            "30s",
        ],
    );
    let names = server.registered(1);
    let listener: SocketAddr = names[0].parse().expect("an endpoint");
    let metrics = server.logged_addr("metrics=");
    wait_until(Duration::from_secs(10), "healthy", || {
        (http_get(metrics, "/healthz").ok()?.0 == 200).then_some(())
    });
    let stop = AtomicBool::new(false);
    // Connections tried (a server out of descriptors lets them time out).
    let (metrics_tried, time_tried, peak_files) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    std::thread::scope(|scope| {
        // 300 idle connections on the metrics port, each reopened as soon
        // as the server closes it.
        scope.spawn(|| {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                held.retain_mut(|stream| !closed_now(stream));
                while held.len() < 300 && !stop.load(Ordering::SeqCst) {
                    metrics_tried.fetch_add(1, Ordering::SeqCst);
                    let Ok(stream) =
                        TcpStream::connect_timeout(&metrics, Duration::from_millis(500))
                    else {
                        break;
                    };
                    let _ = stream.set_nonblocking(true);
                    held.push(stream);
                }
                peak_files.fetch_max(open_files(server.pid()), Ordering::SeqCst);
                // Pacing of the flood, not a wait for anything.
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // 300 idle clients of the time listener, each replaced after 3 s:
        // the server holds as many as its cap allows for the 2 s drain.
        scope.spawn(|| {
            let mut held: std::collections::VecDeque<(Instant, TcpStream)> = Default::default();
            while !stop.load(Ordering::SeqCst) {
                while held
                    .front()
                    .is_some_and(|(at, _)| at.elapsed() > Duration::from_secs(3))
                {
                    held.pop_front();
                }
                while held.len() < 300 && !stop.load(Ordering::SeqCst) {
                    time_tried.fetch_add(1, Ordering::SeqCst);
                    let Ok(stream) =
                        TcpStream::connect_timeout(&listener, Duration::from_millis(500))
                    else {
                        break;
                    };
                    held.push_back((Instant::now(), stream));
                }
                // Pacing of the flood, not a wait for anything.
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let _stop = StopOnDrop(&stop);
        wait_until(
            Duration::from_secs(10),
            "both floods have tried 300 connections",
            || {
                (metrics_tried.load(Ordering::SeqCst) >= 300
                    && time_tried.load(Ordering::SeqCst) >= 300)
                    .then_some(())
            },
        );
        // ZooKeeper goes away and comes back: the reconnect needs a socket.
        zk.kill();
        server.wait_for_log("disconnected from ZooKeeper", 1, Duration::from_secs(20));
        zk.restart()
            .unwrap_or_else(|e| panic!("ZooKeeper restarts: {e}"));
        server.wait_for_log("reconnected to ZooKeeper", 1, Duration::from_secs(20));
        let reply = ask(listener).unwrap_or_else(|e| {
            panic!(
                "the time listener answers during the floods: {e}; log:\n{}",
                server.stderr()
            )
        });
        assert!(reply.starts_with(&names[0]), "{reply}");
        healthz_answers(metrics, Duration::from_secs(5), &server);
        eprintln!(
            "256 descriptors: {} metrics and {} time connections tried by the floods, peak {} open files in the server",
            metrics_tried.load(Ordering::SeqCst),
            time_tried.load(Ordering::SeqCst),
            peak_files.load(Ordering::SeqCst)
        );
        // Never at the limit: an accept or a reconnect would then fail.
        assert!(
            peak_files.load(Ordering::SeqCst) < 256,
            "the server used every descriptor"
        );
    });
}

#[test]
fn healthz_answers_while_100_non_reading_pipeliners_hold_the_metrics_port() {
    let zk = zookeeper();
    let (server, _listener, metrics) = start_with_metrics(&zk);
    let batch = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(2000);
    let pipeliners: Vec<TcpStream> = (0..100)
        .filter_map(|_| TcpStream::connect_timeout(&metrics, Duration::from_secs(2)).ok())
        .inspect(|stream| {
            let _ = stream.set_nonblocking(true);
            // As much as the socket takes now; never read.
            let _ = (&*stream).write(batch.as_bytes());
        })
        .collect();
    assert_eq!(pipeliners.len(), 100, "every pipeliner connects");
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        slowest = slowest.max(healthz_answers(metrics, Duration::from_secs(5), &server));
    }
    eprintln!(
        "/healthz under {} non-reading pipeliners: slowest of 10 took {slowest:?}",
        pipeliners.len()
    );
}

/// Reads a reply to its EOF (the server shuts its side right after it).
fn reply_of(addr: SocketAddr) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = String::new();
    let _ = (&mut stream).take(4096).read_to_string(&mut reply);
    (stream, reply)
}

/// Many listeners under a small open-file limit: the cap the server
/// announces leaves room for what its listeners hold, so that filling the
/// cap and flooding past it never makes an `accept` fail (a listener whose
/// acceptors all failed left its clients unanswered for up to the 2 s
/// drain: each idle acceptor holds a descriptor while it waits).
#[test]
fn with_24_listeners_and_256_descriptors_the_cap_and_a_flood_past_it_are_answered_without_an_accept_failing()
 {
    const LISTENERS: usize = 24;
    // This process holds the cap's connections and the flood's.
    let _ = time_server::fdlimit::raise();
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let mut args = vec!["--zk", hosts.as_str()];
    args.extend(std::iter::repeat_n(["--listen", "127.0.0.1:0"], LISTENERS).flatten());
    let server = ServerProcess::start_with_open_file_limit(256, &args);
    server.registered(LISTENERS);
    let addrs: Vec<SocketAddr> = server
        .listening()
        .iter()
        .map(|a| a.parse().expect("an endpoint"))
        .collect();
    assert_eq!(addrs.len(), LISTENERS);
    let cap: usize = server
        .stderr()
        .split("lowering --max-connections")
        .nth(1)
        .and_then(|rest| rest.split("max_connections=").nth(1))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no lowered cap logged:\n{}", server.stderr()));
    let slow = std::sync::Mutex::new(Vec::new());
    let ask_timed = |addr: SocketAddr| {
        let started = Instant::now();
        let (stream, reply) = reply_of(addr);
        assert!(reply.starts_with(&format!("{addr}: ")), "{reply:?}");
        if started.elapsed() > Duration::from_secs(1) {
            slow.lock().expect("a lock").push((addr, started.elapsed()));
        }
        stream
    };
    // The cap filled with clients that read their reply and stay (each
    // held for the 2 s drain), then 48 clients at a time past it for 1 s.
    let held: Vec<TcpStream> = (0..cap).map(|i| ask_timed(addrs[i % LISTENERS])).collect();
    let stop = AtomicBool::new(false);
    let flood = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for t in 0..48 {
            let (addrs, stop, flood, ask_timed) = (&addrs, &stop, &flood, &ask_timed);
            scope.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::SeqCst) {
                    drop(ask_timed(addrs[i % LISTENERS]));
                    flood.fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            });
        }
        // The flood's length, within the held clients' drain.
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::SeqCst);
    });
    drop(held);
    let slow = slow.into_inner().expect("a lock");
    eprintln!(
        "cap {cap}; a flood of {} past it; {} replies over 1 s",
        flood.load(Ordering::SeqCst),
        slow.len()
    );
    assert_eq!(server.log_count("accept failed"), 0, "{}", server.stderr());
    assert!(slow.is_empty(), "replies over 1 s: {slow:?}");
}
