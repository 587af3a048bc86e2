//! The exec check: `sh -c COMMAND` in a process group of its own, its
//! output captured (the last [`MAX_OUTPUT`] bytes kept, for the reason of
//! a failure). At the timeout the whole group is killed, so a command that
//! forked a child and hung does not leave it behind, and every process of
//! the group this process is the parent of (directly, or as the subreaper
//! it makes itself) is reaped.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// The output kept of a run: its tail.
const MAX_OUTPUT: usize = 4 * 1024;

/// How often a running command is looked at (a child has no event to wait
/// on with a deadline).
const POLL: Duration = Duration::from_millis(10);

/// Runs `sh -c command` for at most `timeout`.
pub(super) fn run(command: &str, timeout: Duration) -> Result<(), String> {
    adopt_orphans();
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot run sh: {err}"))?;
    let group = Pid::from_child(&child);
    let output = collect(&mut child);
    let deadline = Instant::now() + timeout;
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
fn collect(child: &mut Child) -> mpsc::Receiver<String> {
    let (done, result) = mpsc::channel();
    let pipes: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
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
                        .spawn(move || tail_of(pipe))
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

/// The last [`MAX_OUTPUT`] bytes of `pipe`, read to its end.
fn tail_of(mut pipe: Box<dyn Read + Send>) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = pipe.read(&mut buf) {
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * MAX_OUTPUT {
            kept.drain(..kept.len() - MAX_OUTPUT);
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
