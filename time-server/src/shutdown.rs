//! `Shutdown`: the one-way switch that tells acceptors to stop.
//!
//! Acceptors block in `accept()`, which no flag can interrupt:
//! [`Shutdown::stop`] sets the flag, then connects once to each listener
//! ([`crate::listener::wake`]) so that its acceptor wakes, sees the flag and
//! returns. That method is with the listeners it wakes, in `listener`:
//! this module is only the switch.

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
