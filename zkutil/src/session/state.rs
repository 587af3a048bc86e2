//! What one session shares between the callers' threads and its
//! supervisor: the client in use, the state, the subscribers, and the
//! runtime every call runs on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use super::cancel::Cancel;
use super::config::SessionConfig;
use super::runtime::Runtime;
use super::types::{SessionEvent, SessionState};
use crate::error::{Error, Result};
use crate::sync::{lock, wait_timeout};

/// A subscriber callback; returns false to unsubscribe.
pub(super) type Subscriber = Box<dyn FnMut(SessionEvent) -> bool + Send>;

/// The client in use and what we know of its session.
pub(super) struct Current {
    pub(super) client: Option<zk::Client>,
    pub(super) info: Option<zk::SessionInfo>,
    pub(super) id: i64,
    pub(super) timeout: Duration,
    /// Bumped at each rebuild, so that state changes of a replaced client
    /// are ignored.
    pub(super) generation: u64,
}

impl Current {
    pub(super) fn of(client: zk::Client, generation: u64) -> Current {
        Current {
            id: client.session_id().0,
            info: Some(client.session().clone()),
            timeout: client.session_timeout(),
            client: Some(client),
            generation,
        }
    }
}

pub(super) struct Inner {
    pub(super) config: SessionConfig,
    pub(super) current: Mutex<Current>,
    pub(super) state: Mutex<SessionState>,
    /// Signalled on every state change: calls made while the session is
    /// being rebuilt wait on it for the new one.
    pub(super) state_changed: Condvar,
    pub(super) subscribers: Mutex<Vec<Subscriber>>,
    /// Paths kept by a `Registration` of this session (see `claim`).
    pub(super) claims: Mutex<std::collections::HashSet<String>>,
    /// Set (under the `current` lock) when the session is being closed.
    pub(super) closing: AtomicBool,
    /// Closed when the session is: every wait on the runtime (a call in
    /// flight, a rebuild's connect) ends at once instead of at its deadline.
    pub(super) cancel: Cancel,
    /// Set once the server has answered a multi-read with "unimplemented"
    /// (ZooKeeper before 3.6, which then closes the connection): reads of
    /// many nodes go one request per node from then on.
    pub(super) no_multi_read: AtomicBool,
    // Last: dropped after every client.
    pub(super) runtime: Runtime,
}

impl Inner {
    pub(super) fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        lock(&self.current)
    }

    /// Records a state change; `Closed` is final (a supervisor still
    /// finishing a rebuild cannot reopen a closed session's state).
    pub(super) fn set_state(&self, state: SessionState) -> SessionState {
        let mut current = lock(&self.state);
        let previous = *current;
        if previous != SessionState::Closed {
            *current = state;
        }
        drop(current);
        self.state_changed.notify_all();
        previous
    }

    /// The client to call, once the session is not being rebuilt: waits
    /// for a rebuild to finish until `deadline`. `None` when the deadline
    /// passed first (the caller reports a timeout, which is retryable).
    pub(super) fn usable_client(&self, deadline: Instant) -> Result<Option<zk::Client>> {
        let mut state = lock(&self.state);
        while *state == SessionState::Rebuilding && !self.closing.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            state = wait_timeout(&self.state_changed, state, left);
        }
        drop(state);
        match self.current().client.clone() {
            Some(client) if !self.closing.load(Ordering::SeqCst) => Ok(Some(client)),
            _ => Err(Error::Closed),
        }
    }

    pub(super) fn notify(&self, event: SessionEvent) {
        lock(&self.subscribers).retain_mut(|subscriber| subscriber(event));
    }
}
