//! `Shutdown`: the one-way switch that tells acceptors to stop.
//!
//! Acceptors block in `accept()`, which no flag can interrupt:
//! [`Shutdown::stop`] sets the flag, then connects once to each acceptor
//! (module `wake`) so that it wakes, sees the flag and returns. This module
//! is only the switch, and which connections were its own.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use zkutil::cli::lock;

/// Set once, never cleared; shared by reference between threads.
#[derive(Debug, Default)]
pub struct Shutdown {
    triggered: AtomicBool,
    /// The local addresses of the server's own wake-up connections, noted
    /// before they connect: answered like clients, but not counted as ones.
    wakers: Mutex<HashSet<SocketAddr>>,
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

    /// Notes a wake-up connection's local address, before it connects.
    pub(crate) fn note_waker(&self, local: SocketAddr) {
        lock(&self.wakers).insert(local);
    }

    /// Whether a connection from `peer` is one of the server's wake-ups.
    pub(crate) fn is_waker(&self, peer: SocketAddr) -> bool {
        lock(&self.wakers).contains(&peer)
    }
}
