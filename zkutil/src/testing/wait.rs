//! Waiting with deadlines, and what tests read of processes: free ports,
//! `/proc` fields, signals, log tails.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `f` every `every` until it returns `Some`; `None` when `deadline`
/// passes first. For conditions nothing announces (a process becoming
/// ready, a server-side expiry seen from outside); where a watch or an
/// event exists, wait on that instead.
pub fn poll_until<T>(
    deadline: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(every.min(left));
    }
}

/// Polls `f` every 20 ms until it returns `Some`, and returns that value.
///
/// # Panics
///
/// When `deadline` passes first, naming `what`: this is for tests.
#[track_caller]
pub fn wait_until<T>(deadline: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    poll_until(deadline, Duration::from_millis(20), f)
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting until {what}"))
}

/// `n` distinct free loopback ports. All are held until all are found, so
/// they differ; they are released before the caller binds them (a race
/// that callers retry or accept).
///
/// # Errors
///
/// When no port can be bound.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

#[cfg(feature = "testing-peers")]
/// A numeric field of `/proc/<pid>/status` (`Threads:`, or `VmRSS:` in
/// KiB); `None` when the process or field is gone.
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Whether every thread of `pid` is stopped (`T`), or it is gone.
pub(super) fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.chars().next())
            })
            .is_none_or(|state| state == 'T' || state == 't')
    })
}

/// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`, …) to a process we
/// started, by PID, with `kill(1)`.
///
/// # Errors
///
/// When `kill` cannot be run or reports failure.
pub fn send_signal(pid: u32, signal: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "kill -{signal} {pid}: {status}"
        )))
    }
}

/// The last `lines` lines of a file, or a note saying it could not be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(no log at {}: {err})", path.display()),
    }
}
