//! The time-server under systemd (`Type=notify`): what it tells the
//! service manager, heard on a notify socket of the test's own, as
//! systemd would.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use zkutil::testing::TestProcess;

use crate::support::zookeeper;

/// The messages on `socket` until one contains `wanted` (all of them), or
/// a panic after `deadline` with what came.
fn until_heard(socket: &UnixDatagram, wanted: &str, deadline: Duration, heard: &mut Vec<String>) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = message.contains(wanted);
            heard.push(message);
            if found {
                return;
            }
        }
    }
    panic!("never heard {wanted:?}; heard {heard:?}");
}

#[test]
fn systemd_hears_the_wait_for_zookeeper_then_ready_once_registered_then_stopping() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    zk.kill();
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).expect("a notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let server = TestProcess::start(
        env!("CARGO_BIN_EXE_time-server"),
        &[
            "--zk",
            &hosts,
            "--base-path",
            "/notify",
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("NOTIFY_SOCKET", path.to_str().expect("a UTF-8 path")),
            ("RUST_LOG", "info"),
        ],
    );
    let mut heard = Vec::new();
    until_heard(
        &socket,
        &format!("STATUS=waiting for ZooKeeper at {hosts}"),
        Duration::from_secs(20),
        &mut heard,
    );
    assert!(
        !heard.iter().any(|message| message.contains("READY=1")),
        "ready before ZooKeeper: {heard:?}"
    );
    zk.restart().expect("ZooKeeper starts");
    until_heard(&socket, "READY=1", Duration::from_secs(30), &mut heard);
    let ready = heard.last().cloned().unwrap_or_default();
    assert!(ready.contains("STATUS=registered 1 of 1"), "{ready}");
    assert!(
        heard
            .iter()
            .any(|message| message == "STATUS=registered 1 of 1\n"),
        "{heard:?}"
    );
    server.signal("TERM");
    until_heard(&socket, "STOPPING=1", Duration::from_secs(10), &mut heard);
    eprintln!("systemd heard: {heard:?}");
}
