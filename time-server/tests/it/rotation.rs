//! The two-phase start: `--start-disabled` registers out of rotation until
//! `zkutil enable` (here its library call) or `--ready-check` passes.

use std::time::Duration;

use zkutil::testing::wait_until;
use zkutil::{BasePath, Control, Session};

use crate::support::{ServerProcess, observer, zookeeper};

/// Whether the one instance under /go_servers is in rotation, and the
/// reason it is not.
fn rotation(observer: &Session) -> Option<(bool, Option<String>)> {
    let instance = zkutil::list_instances(observer, &BasePath::from_static("/go_servers"), true)
        .ok()?
        .pop()?;
    Some((
        instance.is_enabled(),
        instance.disabled_reason().map(str::to_owned),
    ))
}

#[test]
fn a_server_started_disabled_is_registered_out_of_rotation_until_enabled() {
    let zk = zookeeper();
    let server = ServerProcess::start(&[
        "--zk",
        &zk.connect_string(),
        "--listen",
        "127.0.0.1:0",
        "--start-disabled",
    ]);
    let name = server.registered(1).remove(0);
    let obs = observer(&zk);
    assert_eq!(
        rotation(&obs),
        Some((false, Some("starting: waiting for zkutil enable".into())))
    );
    Control::Enable
        .apply_to(
            &obs,
            &BasePath::from_static("/go_servers"),
            name.parse().expect("an endpoint"),
        )
        .expect("enables");
    assert_eq!(rotation(&obs), Some((true, None)));
}

#[test]
fn a_passing_ready_check_puts_the_server_in_rotation() {
    let zk = zookeeper();
    let dir = tempfile::tempdir().expect("a temp dir");
    let ready = dir.path().join("ready");
    let check = format!("test -e {}", ready.display());
    let server = ServerProcess::start(&[
        "--zk",
        &zk.connect_string(),
        "--listen",
        "127.0.0.1:0",
        "--start-disabled",
        "--ready-check",
        &check,
    ]);
    server.registered(1);
    let obs = observer(&zk);
    server.wait_for_log("not ready yet", 1, Duration::from_secs(30));
    assert_eq!(
        rotation(&obs),
        Some((false, Some("starting: waiting for its ready check".into())))
    );
    std::fs::write(&ready, b"").expect("the check passes now");
    server.wait_for_log(
        "ready check passed; in rotation",
        1,
        Duration::from_secs(30),
    );
    wait_until(Duration::from_secs(10), "in rotation", || {
        (rotation(&obs)? == (true, None)).then_some(())
    });
}

#[test]
fn a_ready_check_without_start_disabled_is_a_usage_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_time-server"))
        .args(["--ready-check", "true"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--start-disabled"));
}
