//! The metrics server's limits, seen from a client over TCP: a bounded
//! number of answers per connection, no request bodies, and a head that
//! never completes is not waited for.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use zkutil::cli::metrics::MetricsServer;

fn serve() -> MetricsServer {
    MetricsServer::start(
        "127.0.0.1:0".parse().expect("an address"),
        Arc::new(Mutex::new(Registry::default())),
        Box::new(|| Ok(())),
    )
    .expect("serves")
}

/// Sends `request`, then reads until the server closes (at most 16 MiB,
/// `within`): what it answered, and whether it closed in time.
fn exchange(addr: SocketAddr, request: &[u8], within: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connects");
    stream
        .set_read_timeout(Some(within))
        .expect("a read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("a write timeout");
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let closed = stream.take(16 << 20).read_to_end(&mut answer).is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[test]
fn a_connection_is_closed_after_its_hundredth_answer() {
    let server = serve();
    let request = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".repeat(150);
    let (answer, closed) = exchange(server.addr(), request.as_bytes(), Duration::from_secs(5));
    assert!(closed, "the server kept the connection open");
    assert_eq!(
        answer.matches("HTTP/1.1 200").count(),
        MetricsServer::MAX_REQUESTS,
        "{:.300}",
        answer
    );
}

#[test]
fn a_request_with_a_body_gets_413_and_the_connection_is_closed() {
    let server = serve();
    let (answer, closed) = exchange(
        server.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\nabc",
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    assert!(closed, "the server waited for the body");
}

#[test]
fn a_head_that_never_ends_is_closed_after_the_idle_timeout() {
    let server = serve();
    let started = Instant::now();
    let (answer, closed) = exchange(
        server.addr(),
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ",
        MetricsServer::IDLE_TIMEOUT + Duration::from_secs(5),
    );
    let took = started.elapsed();
    eprintln!("a head that never ends: closed after {took:?}, answered {answer:.40?}");
    assert!(closed, "still open after {took:?}");
}
