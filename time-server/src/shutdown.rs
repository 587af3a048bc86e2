//! `Shutdown`: the one-way switch that tells acceptors to stop.
//!
//! Acceptors block in `accept()`, which no flag can interrupt: after
//! [`Shutdown::trigger`], [`crate::listener::wake`] connects once to each
//! listener so that its acceptor wakes, sees the flag and returns.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once, never cleared; shared by reference between threads.
#[derive(Debug, Default)]
pub struct Shutdown {
    triggered: AtomicBool,
}

impl Shutdown {
    /// A switch in the "running" position.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Flips the switch.
    pub fn trigger(&self) {
        self.triggered.store(true, Ordering::SeqCst);
    }

    /// Whether the switch was flipped.
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }
}

/// Starts a thread that turns the first SIGINT or SIGTERM into a message on
/// the returned channel (graceful shutdown) and a second one into an
/// immediate exit, for an operator who does not want to wait.
///
/// # Errors
///
/// When the signal handlers cannot be installed.
pub fn on_signals() -> anyhow::Result<std::sync::mpsc::Receiver<i32>> {
    use anyhow::Context;
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for signal in signals.forever() {
                seen += 1;
                if seen == 1 {
                    let _ = tx.send(signal);
                } else {
                    tracing::warn!(signal, "second signal: exiting now");
                    std::process::exit(128 + signal);
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(rx)
}
