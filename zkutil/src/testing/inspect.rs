//! What tests ask of a running ZooKeeper outside any session: four-letter
//! words, ZooKeeper's own CLI, the sessions connected to a node.

use std::net::{Ipv4Addr, SocketAddr};
#[cfg(feature = "testing-peers")]
use std::process::{Command, Stdio};
use std::time::Duration;

/// Sends a four-letter command to a server on loopback; `None` when it
/// does not answer within a second. Plaintext: a TLS fixture answers
/// through [`ZkServer::four_letter_word`](super::ZkServer::four_letter_word).
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    crate::admin::four_letter_word(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        word,
        Duration::from_secs(1),
    )
    .ok()
}

/// One number of the server's `mntr` (`zk_global_sessions`: the sessions
/// alive; `zk_watch_count`: the watches set), `None` when it does not answer.
///
/// ```
/// let zk = zkutil::testing::zookeeper();
/// assert_eq!(zkutil::testing::mntr_value(zk.port(), "zk_global_sessions"), Some(0));
/// ```
pub fn mntr_value(port: u16, key: &str) -> Option<u64> {
    mntr_field(&four_letter_word(port, "mntr")?, key)
}

/// One number of a `mntr` answer.
pub(super) fn mntr_field(mntr: &str, key: &str) -> Option<u64> {
    mntr.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('\t'))?
        .trim()
        .parse()
        .ok()
}

#[cfg(feature = "testing-peers")]
/// Runs ZooKeeper's own `zkCli.sh` (command mode) against `connect`: an
/// independent client for what zkutil cannot do, such as an ACL without
/// READ. `ZK_CLI` overrides the script's path.
///
/// # Panics
///
/// When the script cannot be run or reports an error, with its output.
pub fn zk_cli(connect: &str, args: &[&str]) -> String {
    let script =
        std::env::var("ZK_CLI").unwrap_or_else(|_| "/usr/share/zookeeper/bin/zkCli.sh".to_owned());
    let output = Command::new(&script)
        .arg("-server")
        .arg(connect)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() || text.contains("Exception") {
        panic!("{script} {args:?} failed ({}):\n{text}", output.status);
    }
    text
}

/// The session ids that `cons` lists as connected to the ZooKeeper node
/// serving on `port` (empty when it does not answer). Plaintext, as
/// [`four_letter_word`]; a TLS fixture: [`ZkServer::sessions`](super::ZkServer::sessions).
pub fn sessions_on(port: u16) -> Vec<crate::SessionId> {
    cons_sessions(&four_letter_word(port, "cons").unwrap_or_default())
}

/// The session ids of a `cons` answer.
pub(super) fn cons_sessions(cons: &str) -> Vec<crate::SessionId> {
    cons.lines()
        .filter_map(|line| line.split("sid=0x").nth(1))
        .filter_map(|rest| rest.split([',', ')']).next())
        .filter_map(|hex| i64::from_str_radix(hex, 16).ok().map(crate::SessionId::new))
        .collect()
}
