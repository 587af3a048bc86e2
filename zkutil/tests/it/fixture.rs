//! The fixture's own tests (omicron): it starts real servers, reports a
//! missing launcher clearly, and leaves nothing behind.

use std::time::Duration;

use zkutil::testing::{StartError, ZkEnsemble, ZkServer, wait_until};

use crate::support::zookeeper;

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

#[test]
fn standalone_server_serves_and_drop_kills_it_and_removes_its_dir() {
    let zk = zookeeper();
    assert!(
        zk.is_serving(),
        "srvr did not answer; log:\n{}",
        zk.log_tail()
    );
    let pid = zk.pid().unwrap_or_else(|| panic!("no pid"));
    let dir = zk.dir().to_path_buf();
    assert!(dir.join("node1/zoo.cfg").exists());
    drop(zk);
    assert!(
        !process_exists(pid),
        "ZooKeeper {pid} still runs after drop"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn restart_keeps_the_port_and_serves_again() {
    let mut zk = zookeeper();
    let port = zk.port();
    zk.kill();
    assert!(!zk.is_serving());
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    assert_eq!(zk.port(), port);
    assert!(zk.is_serving());
}

#[test]
fn paused_server_answers_nothing_until_resumed() {
    let mut zk = zookeeper();
    zk.pause();
    assert!(!zk.is_serving(), "a SIGSTOPped server answered srvr");
    zk.resume();
    wait_until(
        Duration::from_secs(10),
        "the resumed server answers srvr",
        || zk.is_serving().then_some(()),
    );
}

#[test]
fn ensemble_of_three_elects_one_leader_and_survives_losing_it() {
    zkutil::testing::init_test_logging();
    let mut zk = ZkEnsemble::start(3).unwrap_or_else(|e| panic!("starting ensemble: {e}"));
    assert_eq!(zk.connect_string().split(',').count(), 3);
    let leader = zk.leader().unwrap_or_else(|| panic!("no leader"));
    let modes: Vec<String> = (0..3).filter_map(|i| zk.mode(i)).collect();
    assert_eq!(
        modes.iter().filter(|m| *m == "follower").count(),
        2,
        "{modes:?}"
    );
    zk.kill(leader);
    let new_leader = wait_until(Duration::from_secs(30), "a new leader is elected", || {
        zk.leader()
    });
    assert_ne!(new_leader, leader);
    zk.restart(leader)
        .unwrap_or_else(|e| panic!("restart: {e}"));
    assert_eq!(zk.mode(leader).as_deref(), Some("follower"));
}

#[test]
fn missing_zookeeper_jars_give_a_typed_hint() {
    // Safe: no other test in this binary reads ZK_CLASSPATH concurrently
    // with this value... so use a child process instead of mutating env.
    let out = std::process::Command::new(std::env::current_exe().unwrap_or_default())
        .args([
            "--exact",
            "fixture::start_with_missing_classpath_child",
            "--nocapture",
            "--include-ignored",
        ])
        .env("ZK_CLASSPATH", "/nonexistent/zookeeper.jar")
        .output()
        .unwrap_or_else(|e| panic!("running the test binary: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// Runs only in the child process above, where ZK_CLASSPATH is wrong.
#[test]
#[ignore = "run by missing_zookeeper_jars_give_a_typed_hint"]
fn start_with_missing_classpath_child() {
    match ZkServer::start() {
        Err(err @ StartError::NotInstalled { .. }) => {
            assert!(err.to_string().contains("scripts/zk.sh install"), "{err}");
        }
        other => panic!("expected NotInstalled, got {other:?}"),
    }
}
