//! `command`: running an operator's shell command with a deadline — the
//! exec health check, `zkutil render`'s validation and reload commands.
//!
//! `sh -c COMMAND` runs in a process group of its own, its output captured
//! (the last [`MAX_OUTPUT`] bytes kept; read until the run's deadline at
//! most, so a process that keeps the pipes open holds no thread). At the
//! timeout the whole group is killed, so a command that forked a child and
//! hung does not leave it behind.

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
    // The output is read until a second after the deadline at most.
    let output = collect(&mut child, deadline + Duration::from_secs(1));
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
    let output = output
        .recv_timeout(Duration::from_secs(1))
        .unwrap_or_default();
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
        .name("command-output".into())
        .spawn(move || {
            let readers: Vec<_> = pipes
                .into_iter()
                .filter_map(|pipe| {
                    std::thread::Builder::new()
                        .name("command-pipe".into())
                        .spawn(move || tail_of(pipe, until))
                        .ok()
                })
                .collect();
            let tails: Vec<String> = readers
                .into_iter()
                .filter_map(|reader| reader.join().ok())
                .filter(|tail| !tail.is_empty())
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
