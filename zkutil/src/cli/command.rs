//! `command`: running an operator's shell command with a deadline — the
//! exec health check, `zkutil render`'s validation and reload commands.
//!
//! `sh -c COMMAND` runs in a process group of its own, its output captured
//! (the last [`MAX_OUTPUT`] bytes kept, read until the command exits or its
//! deadline, whoever else holds the pipes). At the timeout the whole group
//! is killed, so a command that forked a child and hung does not leave it
//! behind; what a command that passed left running on purpose (a daemon)
//! keeps running, its output read and dropped.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// The output kept of a run: its tail.
pub const MAX_OUTPUT: usize = 4 * 1024;

/// How often a running command is looked at (a child has no event to wait
/// on with a deadline).
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// The process groups of the commands running now (each led by the
/// command's own child).
static RUNNING: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

fn running() -> std::sync::MutexGuard<'static, Option<HashSet<i32>>> {
    RUNNING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The process groups of the commands running now: a child of this
/// process in none of them is not a command's.
pub(crate) fn running_groups() -> HashSet<i32> {
    running().clone().unwrap_or_default()
}

/// What is done to a command's process group when its run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Killed, pass or fail: nothing of a check outlives its run.
    Always,
    /// Killed only when the command overran its timeout: a reload command
    /// may start a daemon that must live on (`haproxy -D … -sf …`).
    OnTimeout,
}

/// One run of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// `Err` says why it failed in a few words (an exit status, "still
    /// running after 30s; killed"), with the last line it printed.
    pub result: Result<(), String>,
    /// The tail of what it printed on stdout and stderr (at most
    /// [`MAX_OUTPUT`] bytes of each).
    pub output: String,
}

/// Runs `sh -c command`, with `env` added to its environment, for at most
/// `timeout`.
pub fn run(command: &str, timeout: Duration, env: &[(&str, &str)], end: End) -> Ran {
    let spawned = Command::new("sh")
        .args(["-c", command])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            return Ran {
                result: Err(format!("cannot run sh: {err}")),
                output: String::new(),
            };
        }
    };
    let group = Pid::from_child(&child);
    running()
        .get_or_insert_with(HashSet::new)
        .insert(group.as_raw_nonzero().get());
    let deadline = Instant::now() + timeout;
    let exited = Arc::new(AtomicBool::new(false));
    // The output is read until a second after the deadline at most.
    let until = deadline + Duration::from_secs(1);
    let output = collect(&mut child, until, &exited, end == End::OnTimeout);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => break Err(()),
            Ok(None) => std::thread::sleep(POLL),
            Err(err) => {
                end_group(group, &mut child);
                return Ran {
                    result: Err(format!("waiting for it: {err}")),
                    output: String::new(),
                };
            }
        }
    };
    // A group ended (by the kill, or by its leader's exit when left alone)
    // closes the output pipes and the readers end; left alone, what it
    // started may keep them until the readers give up.
    if end == End::Always || status.is_err() {
        end_group(group, &mut child);
    } else {
        forget_group(group);
    }
    exited.store(true, Ordering::SeqCst);
    // A tail per pipe, each within moments of the exit (the readers' own
    // bound is `until`).
    let tails: Vec<String> = (0..2)
        .filter_map(|_| {
            let left = until.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
            output.recv_timeout(left.min(Duration::from_secs(2))).ok()
        })
        .filter(|tail| !tail.is_empty())
        .collect();
    let output = tails.join("\n");
    let result = match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(with_output(&status.to_string(), &output)),
        Err(()) => Err(with_output(
            &format!("still running after {}; killed", crate::rounded(timeout)),
            &output,
        )),
    };
    Ran { result, output }
}

/// `what`, and the last line of `output` if there is one.
fn with_output(what: &str, output: &str) -> String {
    match output.lines().rev().find(|line| !line.trim().is_empty()) {
        Some(line) => format!("{what}: {}", line.trim()),
        None => what.to_owned(),
    }
}

/// Reads the child's stdout and stderr (each pipe by a thread of its own,
/// so a full pipe never blocks the command), keeping the tail; the
/// receiver gets one tail per pipe at its end, or soon after the command
/// `exited` (what it started may hold the pipe), or at `until`. With
/// `drain`, a reader goes on reading (and dropping) what a process left
/// behind still writes, until it closes the pipe: a daemon a reload
/// command started is never killed by SIGPIPE for a reader gone.
fn collect(
    child: &mut Child,
    until: Instant,
    exited: &Arc<AtomicBool>,
    drain: bool,
) -> mpsc::Receiver<String> {
    let (done, result) = mpsc::channel();
    // Non-blocking: a reader looks at the time and the command's exit.
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
    for pipe in pipes {
        let (done, exited) = (done.clone(), exited.clone());
        let _ = std::thread::Builder::new()
            .name("command-pipe".into())
            .spawn(move || tail_of(pipe, until, &exited, drain, &done));
    }
    result
}

/// How long a pipe is read after the command exited, for what it wrote
/// last.
const AFTER_EXIT: Duration = Duration::from_millis(100);

/// Reads `pipe` (non-blocking) to its end, or until `AFTER_EXIT` after the
/// command `exited`, or until `until`, and sends the last [`MAX_OUTPUT`]
/// bytes read; then, with `drain`, reads on (dropping it all) until the
/// pipe closes.
fn tail_of(
    mut pipe: Box<dyn Read + Send>,
    until: Instant,
    exited: &AtomicBool,
    drain: bool,
    done: &mpsc::Sender<String>,
) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    let mut sent = false;
    let mut exited_at: Option<Instant> = None;
    let send = |kept: &[u8]| {
        let start = kept.len().saturating_sub(MAX_OUTPUT);
        let _ = done.send(String::from_utf8_lossy(&kept[start..]).into_owned());
    };
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if !sent => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * MAX_OUTPUT {
                    kept.drain(..kept.len() - MAX_OUTPUT);
                }
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if !sent {
                    let now = Instant::now();
                    if exited.load(Ordering::SeqCst) {
                        exited_at.get_or_insert(now);
                    }
                    if now >= until || exited_at.is_some_and(|at| now >= at + AFTER_EXIT) {
                        send(&kept);
                        sent = true;
                        if !drain {
                            return;
                        }
                    }
                    std::thread::sleep(POLL);
                } else {
                    // Draining what a daemon still writes: slowly is enough
                    // (the pipe holds 64 KiB), and costs nearly nothing.
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !sent {
        send(&kept);
    }
}

/// The group is no longer a running command's.
fn forget_group(group: Pid) {
    if let Some(running) = running().as_mut() {
        running.remove(&group.as_raw_nonzero().get());
    }
}

/// Kills every process of the group, waits for the child, and reaps the
/// group's other processes that are ours to reap (orphans re-parented to
/// this process as their subreaper).
fn end_group(group: Pid, child: &mut Child) {
    let _ = rustix::process::kill_process_group(group, Signal::KILL);
    let _ = child.wait();
    forget_group(group);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_left_by_a_passing_command_lives_on_and_the_output_is_kept() {
        let dir = tempfile::tempdir().expect("a folder");
        let ticks = dir.path().join("ticks");
        let pid = dir.path().join("pid");
        let command = format!(
            "(echo $$ > {pid}; while :; do echo tick; date >> {ticks}; sleep 0.2; done) & echo started",
            pid = pid.display(),
            ticks = ticks.display()
        );
        let started = Instant::now();
        let ran = run(&command, Duration::from_millis(500), &[], End::OnTimeout);
        assert_eq!(ran.result, Ok(()));
        assert!(ran.output.contains("started"), "{:?}", ran.output);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let lines = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
        };
        // Past the deadline and the readers' own bound: still writing.
        std::thread::sleep(Duration::from_secs(3));
        let before = lines(&ticks);
        std::thread::sleep(Duration::from_millis(600));
        let after = lines(&ticks);
        let daemon = std::fs::read_to_string(&pid).expect("its pid");
        let _ = std::process::Command::new("kill")
            .arg(daemon.trim())
            .status();
        assert!(
            after > before,
            "the daemon stopped: {before} then {after} ticks"
        );
    }
}
