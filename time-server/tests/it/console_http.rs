//! `zkutil console`'s HTTP side without a browser: what a forged request,
//! a rebinding host name or a flood of event streams gets.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use zkutil::testing::{http_request, wait_until};

use crate::console::{console, zkutil_ok};
use crate::support::{ServerProcess, zookeeper};

#[test]
fn without_writes_allowed_a_forged_post_is_refused_and_changes_nothing() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&["--zk", &hosts, "--listen", "127.0.0.1:0"]);
    let target = server.registered(1).remove(0);
    let (_console, addr) = console(&zk, &["--path", "/go_servers"]);
    let (status, page) = http_request(addr, "GET", "/", &[]).expect("the page");
    assert_eq!(status, 200);
    let token = page
        .split("name=\"console-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the token in the page");
    let origin = format!("http://{addr}");
    let action = format!("/api/action?op=disable&path=%2Fgo_servers&endpoint={target}");
    let (status, body) = http_request(
        addr,
        "POST",
        &action,
        &[("Origin", origin.as_str()), ("X-Console-Token", token)],
    )
    .expect("an answer");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-writes"), "{body}");
    let listed: Value = serde_json::from_str(&zkutil_ok(&hosts, &["ls", "--json"])).expect("JSON");
    assert_eq!(listed[0]["in_service"], true, "{listed}");

    // Live event streams are capped: the one over the cap is refused, and a
    // closed one frees its place.
    let mut streams: Vec<std::net::TcpStream> = (0..16).map(|_| open_stream(addr)).collect();
    let (status, _) = http_request(addr, "GET", "/api/events", &[]).expect("an answer");
    assert_eq!(status, 503, "a 17th live stream");
    drop(streams.pop());
    wait_until(
        Duration::from_secs(10),
        "a closed stream frees its place",
        || {
            let mut stream = std::net::TcpStream::connect(addr).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            std::io::Write::write_all(
                &mut stream,
                format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
            )
            .ok()?;
            let mut head = [0u8; 12];
            std::io::Read::read_exact(&mut stream, &mut head).ok()?;
            (&head == b"HTTP/1.1 200").then_some(())
        },
    );
}

/// An event stream of the console, open (its first bytes read).
fn open_stream(addr: SocketAddr) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    write!(stream, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("asks");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 200", "a live stream");
    stream
}
