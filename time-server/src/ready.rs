//! `ready`: the second phase of a two-phase start. A server started with
//! `--start-disabled` is registered out of rotation; with `--ready-check`,
//! it runs that command every second until it exits 0, then puts its
//! registrations in rotation itself (as `zkutil enable` would).

use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use zkutil::{BasePath, Control, Endpoint, Session};

/// How often the check runs, and how long one run may take.
const EVERY: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where each registration is: its parent and its endpoint (a serverset
/// member's name changes when it is re-created; these do not).
pub(crate) type Targets = Vec<(BasePath, Endpoint)>;

/// Runs `check` until it passes, then enables every target; returns early
/// (false) when `stop` says so (a message or its sender gone).
pub(crate) fn enable_when_ready(
    check: &str,
    session: &Session,
    targets: &Targets,
    stop: &Receiver<()>,
) -> bool {
    let mut said = false;
    loop {
        match run_check(check) {
            Ok(()) => break,
            Err(why) if !said => {
                said = true;
                tracing::info!(
                    check,
                    why,
                    "not ready yet; out of rotation, checking every second"
                );
            }
            Err(why) => tracing::debug!(check, why, "not ready yet"),
        }
        if !wait(stop, EVERY) {
            return false;
        }
    }
    for (parent, endpoint) in targets {
        loop {
            match Control::Enable.apply_to(session, parent, *endpoint) {
                Ok(_) => break,
                Err(err) if err.is_retryable() => {
                    tracing::warn!(%endpoint, error = %err.chain(), "cannot enable yet; retrying");
                    if !wait(stop, EVERY) {
                        return false;
                    }
                }
                Err(err) => {
                    tracing::error!(%endpoint, error = %err.chain(), "cannot put it in rotation; `zkutil enable` it");
                    break;
                }
            }
        }
    }
    tracing::info!(check, "ready check passed; in rotation");
    true
}

/// Waits `delay`; false when asked to stop meanwhile.
fn wait(stop: &Receiver<()>, delay: Duration) -> bool {
    matches!(stop.recv_timeout(delay), Err(RecvTimeoutError::Timeout))
}

/// Runs `sh -c check` for at most [`CHECK_TIMEOUT`]: `Err` says why it
/// did not pass.
fn run_check(check: &str) -> Result<(), String> {
    let mut child = Command::new("sh")
        .args(["-c", check])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run it: {err}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(status.to_string()),
            Ok(None) if started.elapsed() >= CHECK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {CHECK_TIMEOUT:?}; killed"));
            }
            // A child process has no event to wait on with a deadline.
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(err.to_string()),
        }
    }
}
