//! Bad requests on the metrics port: garbage, a wrong method, a huge or
//! endless header line get an error or are cut off, and the time listener
//! keeps answering.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use zkutil::testing::http_get;

use crate::support::{ServerProcess, ask, zookeeper};

use super::{healthz_answers, start_with_metrics};

#[test]
fn garbage_on_the_metrics_port_gets_an_error_and_the_time_listener_keeps_answering() {
    let zk = zookeeper();
    let server = ServerProcess::start(&[
        "--zk",
        &zk.connect_string(),
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let names = server.registered(1);
    let listener: std::net::SocketAddr = names[0].parse().expect("an endpoint");
    let metrics = server.logged_addr("metrics=");
    let huge = format!("GET /{} HTTP/1.0\r\n\r\n", "a".repeat(1 << 20));
    // A client that never finishes its request, held open meanwhile.
    let mut slow = std::net::TcpStream::connect(metrics).expect("connects");
    slow.write_all(b"GET /metr").expect("writes");
    for request in [
        "GARBAGE\r\n\r\n",
        "POST /metrics HTTP/1.0\r\n\r\n",
        huge.as_str(),
    ] {
        let mut stream = std::net::TcpStream::connect(metrics).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        let _ = stream.write_all(request.as_bytes());
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status = answer.split_whitespace().nth(1).unwrap_or("closed");
        assert!(
            ["400", "405", "404", "413", "414", "431", "closed"].contains(&status),
            "{:.40}: {status}",
            request
        );
        let reply = ask(listener).expect("the time listener answers meanwhile");
        assert!(reply.starts_with(&names[0]), "{reply}");
    }
    assert_eq!(
        http_get(metrics, "/metrics").map(|(s, _)| s).ok(),
        Some(200),
        "still serving"
    );
    drop(slow);
}

#[test]
fn a_256_mib_header_line_on_the_metrics_port_is_cut_off_and_grows_the_server_by_at_most_16_mib() {
    let zk = zookeeper();
    let (server, listener, metrics) = start_with_metrics(&zk);
    let rss = || zkutil::testing::proc_status(server.pid(), "VmRSS:").expect("VmRSS");
    // Warm: one scrape's allocations are not the attack's.
    assert_eq!(
        http_get(metrics, "/metrics").map(|(s, _)| s).ok(),
        Some(200)
    );
    let before = rss();
    let mut stream =
        TcpStream::connect_timeout(&metrics, Duration::from_secs(2)).expect("connects");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    let chunk = vec![b'a'; 1 << 20];
    let (mut sent, mut peak) = (0usize, before);
    let refused = (|| {
        stream.write_all(b"GET /")?;
        while sent < 256 << 20 {
            stream.write_all(&chunk)?;
            sent += chunk.len();
            peak = peak.max(rss());
        }
        Ok::<(), std::io::Error>(())
    })()
    .err();
    peak = peak.max(rss());
    let grown_kib = peak.saturating_sub(before);
    eprintln!(
        "a header line of {} MiB sent before the server refused more ({refused:?}): RSS {before} KiB -> peak {peak} KiB (+{grown_kib} KiB)",
        sent >> 20
    );
    assert!(grown_kib <= 16 * 1024, "the server grew by {grown_kib} KiB");
    // Cut off: the writes are refused (closed, reset), not just slowed.
    match refused {
        Some(err) if !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!(
            "the server took {} MiB of one header line: {other:?}",
            sent >> 20
        ),
    }
    healthz_answers(metrics, Duration::from_secs(5), &server);
    let reply = ask(listener).expect("the time listener answers");
    assert!(reply.starts_with(&listener.to_string()), "{reply}");
}
