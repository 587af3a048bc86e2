//! One ZooKeeper session for a whole run, however many requests: the
//! post's client opened one per request.

use crate::support::{Servers, run_client, zookeeper};

#[test]
fn the_client_uses_one_zookeeper_session_for_the_whole_run() {
    let zk = zookeeper();
    let _servers = Servers::start(&zk, "/go_servers", 2);
    let before = zxid(&zk);
    let output = run_client(&[
        "--zk",
        &zk.connect_string(),
        "--count",
        "30",
        "--interval",
        "0s",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Listing children is a read and writes no transaction; creating and
    // closing a session write one each. One session: 1 or 2 transactions
    // (2 when its close reached the server). The post's client: 60.
    let transactions = zxid(&zk) - before;
    assert!(
        (1..=2).contains(&transactions),
        "{transactions} transactions for one run"
    );
}

/// The server's last transaction id, from `srvr`.
fn zxid(zk: &zkutil::testing::ZkServer) -> i64 {
    let answer = zkutil::testing::four_letter_word(zk.port(), "srvr").unwrap_or_default();
    let hex = answer
        .lines()
        .find_map(|l| l.strip_prefix("Zxid: 0x"))
        .unwrap_or_else(|| panic!("srvr: {answer}"));
    i64::from_str_radix(hex.trim(), 16).unwrap_or_else(|e| panic!("{hex}: {e}"))
}
