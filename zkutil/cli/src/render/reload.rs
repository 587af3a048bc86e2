//! `reload`: the `--exec` command after each write, on a thread of its
//! own so that a slow or failing command never holds up the next render.
//!
//! One run at a time: writes that come while it runs ask for one more run
//! after it. A failure is retried with a growing delay (1 s up to a
//! minute), at once when a new write asks. Each run is bounded by its
//! timeout (its process group killed past it), and its output is logged,
//! its last lines only. A write leaves a marker beside its file (see
//! [`super::write::owed_marker`]) that only a passing run removes: a
//! command owed when the process stops runs at its next start.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use zkutil::Backoff;
use zkutil::cli::command::{self, End, Ran};

use super::metrics::Metrics;

/// The output lines of a run that reach the log.
const LOGGED_LINES: usize = 20;

#[derive(Debug, Default)]
struct State {
    /// A write since the last run began.
    pending: bool,
    stop: bool,
}

/// The thread running the `--exec` command.
#[derive(Debug)]
pub struct Reloader {
    state: Arc<(Mutex<State>, Condvar)>,
}

impl Reloader {
    /// Starts the thread for `command`, each run at most `timeout`.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub fn start(
        command: String,
        timeout: Duration,
        markers: Vec<PathBuf>,
        metrics: Metrics,
    ) -> anyhow::Result<Reloader> {
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let shared = state.clone();
        std::thread::Builder::new()
            .name("exec".into())
            .spawn(move || run_loop(&shared, (&command, timeout), &markers, &metrics))?;
        Ok(Reloader { state })
    }

    /// Files were written: the command runs (again) as soon as it can.
    pub fn request(&self) {
        let (state, woken) = &*self.state;
        zkutil::cli::lock(state).pending = true;
        woken.notify_all();
    }
}

impl Drop for Reloader {
    /// The thread ends after the run in hand, if any (not waited for:
    /// the process may exit while it runs, and its command lives on).
    fn drop(&mut self) {
        let (state, woken) = &*self.state;
        zkutil::cli::lock(state).stop = true;
        woken.notify_all();
    }
}

fn run_loop(
    state: &(Mutex<State>, Condvar),
    (command, timeout): (&str, Duration),
    markers: &[PathBuf],
    metrics: &Metrics,
) {
    let (state, woken) = state;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut retry_at: Option<Instant> = None;
    loop {
        {
            let mut current = zkutil::cli::lock(state);
            loop {
                if current.stop {
                    return;
                }
                if current.pending || retry_at.is_some_and(|at| Instant::now() >= at) {
                    break;
                }
                current = match retry_at {
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        woken
                            .wait_timeout(current, left)
                            .map(|(guard, _)| guard)
                            .unwrap_or_else(|poisoned| poisoned.into_inner().0)
                    }
                    None => woken
                        .wait(current)
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                };
            }
            current.pending = false;
        }
        let (started, wall) = (Instant::now(), SystemTime::now());
        let ran = command::run(command, timeout, &[], End::OnTimeout);
        log_output(&ran);
        metrics.exec_ran(ran.result.is_ok());
        match ran.result {
            Ok(()) => {
                tracing::info!(took = %zkutil::rounded(started.elapsed()), "--exec command done");
                clear_owed(markers, wall);
                backoff.reset();
                retry_at = None;
            }
            Err(why) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %why, retry_in = %zkutil::rounded(delay), attempt = backoff.attempts(),
                    "--exec command failed; renders go on, the command is tried again");
                retry_at = Some(Instant::now() + delay);
            }
        }
    }
}

/// Removes the `markers` made before a passing run `started`: a write
/// during the run owes another.
pub fn clear_owed(markers: &[PathBuf], started: SystemTime) {
    for marker in markers {
        let made = std::fs::metadata(marker).and_then(|meta| meta.modified());
        if made.is_ok_and(|made| made <= started) {
            if let Err(err) = std::fs::remove_file(marker) {
                tracing::warn!(marker = %marker.display(), error = %err, "cannot remove the mark of a command owed");
            }
        }
    }
}

/// The last lines the command printed, one log line each.
pub(super) fn log_output(ran: &Ran) {
    let lines: Vec<&str> = ran
        .output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    for line in &lines[lines.len().saturating_sub(LOGGED_LINES)..] {
        tracing::info!(output = %line.trim_end(), "--exec");
    }
}
