//! The `ip` commands the lab runs: each one checked, its stderr in the
//! error; and the best-effort forms teardown uses, which never fail.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::testing::wait::{poll_until, send_signal};

/// Runs `ip args…`; its stdout, or an error naming the command and what
/// `ip` said.
pub(super) fn ip(args: &[&str]) -> std::io::Result<String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(std::io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// `ip args…` for teardown: a failure is logged, never raised (a drop
/// must not panic, and what is already gone is no error).
pub(super) fn ip_quietly(args: &[&str]) {
    if let Err(err) = ip(args) {
        tracing::debug!(%err, "lab teardown");
    }
}

/// Kills (SIGKILL) every process in `namespace`, and waits (at most 5 s)
/// until none is left: a JVM started there outlives the test that started
/// it when that test is killed, and a namespace's last process holds it.
pub(super) fn kill_all_in(namespace: &str) {
    let pids = || -> Vec<u32> {
        ip(&["netns", "pids", namespace])
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect()
    };
    for pid in pids() {
        let _ = send_signal(pid, "KILL");
    }
    poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
        pids().is_empty().then_some(())
    });
}

/// The names of the network namespaces (`ip netns list`).
pub(super) fn namespaces() -> Vec<String> {
    ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The names of the host's links (`ip -o link show`), a veth's without
/// its `@peer`.
pub(super) fn links() -> Vec<String> {
    ip(&["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .filter_map(|name| name.split('@').next())
        .map(str::to_owned)
        .collect()
}
