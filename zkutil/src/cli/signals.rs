//! `signals`: SIGINT and SIGTERM as a graceful stop, and the process's
//! [`Interrupt`] that ends a waiting ZooKeeper connect at once.

use std::sync::OnceLock;

use crate::error::Error;
use crate::session::Interrupt;

/// The process's interrupt: triggered by the first signal that
/// [`on_signals`] catches, it ends a waiting ZooKeeper connect at once.
pub fn interrupt() -> Interrupt {
    static INTERRUPT: OnceLock<Interrupt> = OnceLock::new();
    INTERRUPT.get_or_init(Interrupt::new).clone()
}

/// Turns the first SIGINT or SIGTERM into a message (the signal number) on
/// the returned channel, for a graceful stop, and a second one into an
/// immediate exit (128 + signal), for an operator who does not want to wait.
///
/// # Errors
///
/// [`Error::Io`] when the handlers or their thread cannot be set up.
pub fn on_signals() -> crate::Result<std::sync::mpsc::Receiver<i32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|source| Error::Io {
            what: "installing signal handlers",
            source,
        })?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for (seen, signal) in signals.forever().enumerate() {
                if seen == 0 {
                    tracing::info!(signal, "stopping (a second signal exits at once)");
                    // The stop first: whoever the interrupt wakes finds it
                    // already on its way.
                    let _ = tx.send(signal);
                    interrupt().trigger();
                } else {
                    tracing::warn!(signal, "second signal: exiting now");
                    std::process::exit(128 + signal);
                }
            }
        })
        .map_err(|source| Error::Io {
            what: "starting the signal thread",
            source,
        })?;
    Ok(rx)
}
