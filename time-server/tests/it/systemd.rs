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
        &format!(
            "STATUS=ZooKeeper unreachable; listeners keep serving (cannot connect to ZooKeeper at {hosts}"
        ),
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
    assert_eq!(ready, "READY=1\nSTATUS=registered 1 of 1\n");
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

/// The repository's units, each with the binary it starts.
const UNITS: [(&str, &str, &str); 3] = [
    (
        "time-server/debian/time-server.service",
        "time-server",
        "time-server.service",
    ),
    (
        "zkutil/cli/debian/zkutil-register@.service",
        "zkutil",
        "zkutil-register@web.service",
    ),
    (
        "zkutil/cli/debian/zkutil-sidecar.service",
        "zkutil",
        "zkutil-sidecar.service",
    ),
];

#[test]
fn systemd_analyze_verify_accepts_every_unit_and_each_is_hardened() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = std::path::Path::new(env!("CARGO_BIN_EXE_time-server"))
        .parent()
        .expect("the binaries' folder")
        .to_path_buf();
    let dir = tempfile::tempdir().expect("a folder");
    for (unit, binary, name) in UNITS {
        let text = std::fs::read_to_string(root.join(unit)).expect("the unit");
        for hardening in [
            "DynamicUser=yes",
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "Restart=on-failure",
            "LoadCredential=",
        ] {
            assert!(text.contains(hardening), "{unit} has no {hardening}");
        }
        // Verified with the binary it starts as built here (installed, it
        // is /usr/bin's); man pages are checked by the package's test.
        let here = text.replace(
            &format!("/usr/bin/{binary}"),
            &built.join(binary).display().to_string(),
        );
        let path = dir.path().join(name);
        std::fs::write(&path, here).expect("the unit written");
        let verify = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .expect("runs systemd-analyze (Debian's systemd)");
        let said = String::from_utf8_lossy(&verify.stderr);
        assert!(
            verify.status.success() && said.trim().is_empty(),
            "{unit}: {said}"
        );
    }
}

#[test]
fn systemd_hears_stopping_when_the_startup_timeout_ends_the_server() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    zk.kill();
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).expect("a notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let mut server = TestProcess::start(
        env!("CARGO_BIN_EXE_time-server"),
        &[
            "--zk",
            &hosts,
            "--listen",
            "127.0.0.1:0",
            "--startup-timeout",
            "1s",
        ],
        &[
            ("NOTIFY_SOCKET", path.to_str().expect("a UTF-8 path")),
            ("RUST_LOG", "info"),
        ],
    );
    let mut heard = Vec::new();
    until_heard(&socket, "STOPPING=1", Duration::from_secs(20), &mut heard);
    assert!(
        !heard.iter().any(|message| message.contains("READY=1")),
        "{heard:?}"
    );
    assert_eq!(server.wait(Duration::from_secs(20)).code(), Some(1));
}
