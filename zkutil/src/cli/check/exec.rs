//! The exec check: `sh -c COMMAND` in a process group of its own, its
//! output captured (the last [`MAX_OUTPUT`] bytes kept, for the reason of
//! a failure; read until the run's deadline at most, so a process that
//! keeps the pipes open holds no thread). At the timeout the whole group
//! is killed, so a command that forked a child and hung does not leave it
//! behind, and every process of the group this process is the parent of
//! (directly, or as the subreaper it makes itself) is reaped. A process
//! that left the group (`setsid`, a daemon) and was adopted here is
//! killed and reaped after the run: nothing of a check outlives it. This
//! takes every child of the process that no check is running as a check's
//! orphan: it is meant for processes whose children are their checks (the
//! `zkutil` sidecar).

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// The output kept of a run: its tail.
const MAX_OUTPUT: usize = 4 * 1024;

/// How often a running command is looked at (a child has no event to wait
/// on with a deadline).
const POLL: Duration = Duration::from_millis(10);

/// The process groups of the checks running now (each led by the check's
/// own child): every other child of this process is an adopted orphan.
static RUNNING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn running() -> std::sync::MutexGuard<'static, Option<HashSet<i32>>> {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `sh -c command` for at most `timeout`.
pub(super) fn run(command: &str, timeout: Duration) -> Result<(), String> {
    adopt_orphans();
    let result = run_once(command, timeout);
    end_adopted();
    result
}

fn run_once(command: &str, timeout: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot run sh: {err}"))?;
    let group = Pid::from_child(&child);
    running()
        .get_or_insert_with(HashSet::new)
        .insert(group.as_raw_nonzero().get());
    let deadline = Instant::now() + timeout;
    // The output is read until a second after the deadline at most.
    let output = collect(&mut child, deadline + Duration::from_secs(1));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => break Err(()),
            Ok(None) => std::thread::sleep(POLL),
            Err(err) => {
                end_group(group, &mut child);
                return Err(format!("waiting for it: {err}"));
            }
        }
    };
    // Whatever it left running in its group goes with it, pass or fail:
    // the output pipes then close and the readers end.
    end_group(group, &mut child);
    let output = output
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(with_output(&status.to_string(), &output)),
        Err(()) => Err(with_output(
            &format!("still running after {}; killed", crate::rounded(timeout)),
            &output,
        )),
    }
}

/// `what`, and the last line of `output` if there is one.
fn with_output(what: &str, output: &str) -> String {
    match output.lines().rev().find(|line| !line.trim().is_empty()) {
        Some(line) => format!("{what}: {}", line.trim()),
        None => what.to_owned(),
    }
}

/// Reads the child's stdout and stderr to their ends (each pipe by a
/// thread of its own, so a full pipe never blocks the command), keeping
/// the tail; the receiver gets it once both ended.
fn collect(child: &mut Child, until: Instant) -> mpsc::Receiver<String> {
    let (done, result) = mpsc::channel();
    // Non-blocking: a reader gives up at `until`, whoever holds the pipe.
    let nonblocking = |fd: std::os::fd::BorrowedFd<'_>| rustix::io::ioctl_fionbio(fd, true).is_ok();
    let pipes: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .filter(|p| nonblocking(p.as_fd()))
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .filter(|p| nonblocking(p.as_fd()))
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    let _ = std::thread::Builder::new()
        .name("check-output".into())
        .spawn(move || {
            let readers: Vec<_> = pipes
                .into_iter()
                .filter_map(|pipe| {
                    std::thread::Builder::new()
                        .name("check-pipe".into())
                        .spawn(move || tail_of(pipe, until))
                        .ok()
                })
                .collect();
            let tails: Vec<String> = readers
                .into_iter()
                .filter_map(|reader| reader.join().ok())
                .collect();
            let _ = done.send(tails.join("\n"));
        });
    result
}

/// The last [`MAX_OUTPUT`] bytes of `pipe` (non-blocking), read to its
/// end or until `until`.
fn tail_of(mut pipe: Box<dyn Read + Send>, until: Instant) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * MAX_OUTPUT {
                    kept.drain(..kept.len() - MAX_OUTPUT);
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(POLL);
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let start = kept.len().saturating_sub(MAX_OUTPUT);
    String::from_utf8_lossy(&kept[start..]).into_owned()
}

/// Kills every process of the group, waits for the child, and reaps the
/// group's other processes that are ours to reap (orphans re-parented to
/// this process as their subreaper).
fn end_group(group: Pid, child: &mut Child) {
    let _ = rustix::process::kill_process_group(group, Signal::KILL);
    let _ = child.wait();
    if let Some(running) = running().as_mut() {
        running.remove(&group.as_raw_nonzero().get());
    }
    // Killed just now: their exits follow within moments.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        match rustix::process::waitpgid(group, WaitOptions::NOHANG) {
            Ok(Some(_)) => {}
            Ok(None) => std::thread::sleep(POLL),
            // No process of the group is our child any more.
            Err(_) => break,
        }
    }
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
    let ours: HashSet<i32> = running().clone().unwrap_or_default();
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
