//! Ending waits early: [`Cancel`] ends every wait on a session's runtime
//! (its close), [`Interrupt`] a waiting connect (a program's Ctrl-C).

use std::future::Future;

/// A signal that ends waits on the runtime: closing the channel wakes every
/// receiver at once.
#[derive(Clone)]
pub(super) struct Cancel {
    sender: async_channel::Sender<()>,
    receiver: async_channel::Receiver<()>,
}

impl Cancel {
    pub(super) fn new() -> Cancel {
        let (sender, receiver) = async_channel::bounded(1);
        Cancel { sender, receiver }
    }

    pub(super) fn trigger(&self) {
        self.sender.close();
    }

    /// Whether it was triggered.
    #[cfg(test)]
    pub(super) fn is_triggered(&self) -> bool {
        self.sender.is_closed()
    }

    /// Completes when triggered.
    pub(super) fn triggered(&self) -> impl Future<Output = ()> + Send + 'static {
        let receiver = self.receiver.clone();
        async move {
            let _ = receiver.recv().await;
        }
    }
}

/// Ends a waiting connect from another thread: what a program's Ctrl-C
/// handler triggers, so that a wait for an unreachable ZooKeeper ends at
/// once instead of after the connect timeout. Cloned handles are one
/// interrupt; once triggered it stays triggered.
///
/// # Example
///
/// ```
/// use std::time::{Duration, Instant};
/// use zkutil::{Error, Interrupt, SessionConfig};
/// let interrupt = Interrupt::new();
/// // A signal handler would call this: a connect waiting for a silent host ends at once.
/// interrupt.trigger();
/// let started = Instant::now();
/// let result = SessionConfig::new("192.0.2.1:2181") // TEST-NET-1: never answers
///     .with_connect_timeout(Duration::from_secs(30))
///     .with_interrupt(interrupt)
///     .connect();
/// assert!(matches!(result, Err(Error::Interrupted)));
/// assert!(started.elapsed() < Duration::from_secs(5));
/// ```
#[derive(Clone)]
pub struct Interrupt(pub(super) Cancel);

impl Interrupt {
    /// A new, untriggered interrupt.
    pub fn new() -> Interrupt {
        Interrupt(Cancel::new())
    }

    /// Ends every connect waiting on it, now and later, with
    /// [`Error::Interrupted`](crate::Error::Interrupted).
    pub fn trigger(&self) {
        self.0.trigger();
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        self.0.sender.is_closed()
    }
}

impl Default for Interrupt {
    fn default() -> Interrupt {
        Interrupt::new()
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Interrupt")
            .field(&self.is_triggered())
            .finish()
    }
}
