//! `accept_failures`: failed `accept`s, logged without flooding the log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Failed `accept`s of every listener, logged at most once per
/// [`AcceptFailures::EVERY`] with the count of those not logged: out of file
/// descriptors, every accept of every acceptor fails until a connection
/// closes, and a line per failure (or per acceptor) would flood the log.
#[derive(Default)]
pub(crate) struct AcceptFailures {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptFailures {
    const EVERY: Duration = Duration::from_secs(10);

    pub(crate) fn note(&mut self, listener: SocketAddr, err: &std::io::Error) {
        let due = self
            .last_logged
            .is_none_or(|at| at.elapsed() >= AcceptFailures::EVERY);
        if due {
            tracing::warn!(%listener, error = %err, more_since_last = self.unlogged,
                "accept failed (logged at most every 10s)");
            self.last_logged = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
    }
}
