//! The exec check: `sh -c COMMAND` run by [`command`] with its whole
//! process group killed when the run ends, pass or fail, and every process
//! of the group this process is the parent of (directly, or as the
//! subreaper it makes itself) reaped. A process
//! that left the group (`setsid`, a daemon) and was adopted here is
//! killed and reaped after the run: nothing of a check outlives it. This
//! takes every child of the process that no check is running as a check's
//! orphan: it is meant for processes whose children are their checks (the
//! `zkutil` sidecar).

use std::collections::HashSet;
use std::time::Duration;

use rustix::process::{Pid, Signal, WaitOptions};

use crate::cli::command::{self, End, POLL};

/// Runs `sh -c command` for at most `timeout`: `Err` is why it failed,
/// with the last line it printed.
pub(super) fn run(command: &str, timeout: Duration) -> Result<(), String> {
    adopt_orphans();
    let ran = command::run(command, timeout, &[], End::Always);
    end_adopted();
    ran.result
}

/// Makes this process the subreaper of its descendants, once: a check's
/// grandchild whose parent exited is then re-parented here (not to PID 1,
/// which on some machines reaps nothing), still in the check's group, and
/// killed and reaped with it.
fn adopt_orphans() {
    static ADOPT: std::sync::Once = std::sync::Once::new();
    ADOPT.call_once(|| {
        if let Err(err) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::debug!(error = %err, "cannot become the subreaper of the checks' processes");
        }
    });
}

/// Kills and reaps the children of this process that no check runs: the
/// orphans of checks adopted here, which left their check's group
/// (`setsid`) or outlived its reaping. Found in `/proc` by their parent.
fn end_adopted() {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let ours: HashSet<i32> = command::running_groups();
    for pid in entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`: comm may hold anything but ") ".
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(pgrp)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        let pgrp = pgrp.parse::<i32>().unwrap_or(0);
        if *ppid != me || ours.contains(&pid) || ours.contains(&pgrp) {
            continue;
        }
        let Some(pid) = Pid::from_raw(pid) else {
            continue;
        };
        let _ = rustix::process::kill_process(pid, Signal::KILL);
        // Killed just now: it exits within moments (a second at most here).
        for _ in 0..100 {
            match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
                Ok(None) => std::thread::sleep(POLL),
                _ => break,
            }
        }
    }
}
