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

    // Live event streams are capped, and clients that hold streams without
    // reading lock nobody out: a new stream takes the oldest one's place.
    let mut streams: Vec<std::net::TcpStream> = (0..16).map(|_| open_stream(addr)).collect();
    let _newest = open_stream(addr);
    let oldest = &mut streams[0];
    wait_until(Duration::from_secs(10), "the oldest stream ends", || {
        ended(oldest).then_some(())
    });
}

/// Whether `stream` has ended: what it sent is read (within a second),
/// and then it is closed.
fn ended(stream: &mut std::net::TcpStream) -> bool {
    let mut chunk = [0u8; 64 * 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    while std::time::Instant::now() < deadline {
        match std::io::Read::read(stream, &mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn empty_base_paths_are_let_go_and_a_huge_record_reaches_the_page_cut() {
    let zk = zookeeper();
    let session = crate::support::observer(&zk);
    let (console, addr) = console(&zk, &["--root", "/churn", "--rescan", "1s"]);
    let state = || -> Value {
        let (_, body) = http_request(addr, "GET", "/api/state", &[]).expect("the state");
        serde_json::from_str(&body).expect("JSON")
    };
    let services = |state: &Value| state["registry"]["services"].as_array().map_or(0, Vec::len);
    let threads = || {
        std::fs::read_dir(format!("/proc/{}/task", console.pid()))
            .map(Iterator::count)
            .unwrap_or(0)
    };
    // One base path with a huge record, to see first where threads start.
    session.ensure_path("/churn/big").expect("a base path");
    let huge = serde_json::json!({ "blob": "x".repeat(200_000) }).to_string();
    session
        .create_ephemeral("/churn/big/127.0.0.1:9", huge.as_bytes())
        .expect("a huge record");
    wait_until(Duration::from_secs(20), "the big one is shown", || {
        (services(&state()) == 1).then_some(())
    });
    let shown = state();
    let metadata = &shown["registry"]["services"][0]["instances"][0]["metadata"];
    let text = metadata.as_str().unwrap_or_default();
    assert!(
        text.len() < 4096 && text.contains("bytes in all"),
        "{metadata}"
    );
    let baseline = threads();
    for round in 0..10 {
        let path = format!("/churn/p{round}");
        session.ensure_path(&path).expect("a base path");
        session
            .create_ephemeral(&format!("{path}/127.0.0.1:{}", 1000 + round), b"")
            .expect("an instance");
    }
    wait_until(Duration::from_secs(20), "eleven base paths shown", || {
        (services(&state()) == 11).then_some(())
    });
    for round in 0..10 {
        let path = format!("/churn/p{round}");
        session
            .delete(&format!("{path}/127.0.0.1:{}", 1000 + round), None)
            .expect("deleted");
        session.delete(&path, None).expect("deleted");
    }
    wait_until(
        Duration::from_secs(20),
        "the emptied base paths are let go",
        || (services(&state()) == 1).then_some(()),
    );
    wait_until(Duration::from_secs(10), "their threads end", || {
        (threads() <= baseline).then_some(())
    });
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
