//! What a [`Discovery`](super::Discovery) shares with its refresh thread:
//! the current snapshot, the subscribers, and what the thread knows of the
//! base path; and why the thread wakes.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};

use super::holders::Holders;
use super::instance::Instance;
use super::instances::Instances;
use super::read::WarnOnce;
use super::snapshot::{Change, Snapshot};
use crate::base_path::BasePath;
use crate::endpoint::Endpoint;
use crate::session::{NodeEvent, RecursiveWatch, Session, SessionEvent};
use crate::sync::lock;

/// Why the refresh thread woke up.
pub(super) enum Wake {
    /// A one-shot watch fired (it is spent: the next listing re-arms one).
    Watch,
    /// The persistent recursive watch saw one node change.
    Node(NodeEvent),
    Session(SessionEvent),
    Stop,
}

/// The state of one discovery, shared by its handle and its thread.
pub(super) struct Shared {
    pub(super) session: Arc<Session>,
    pub(super) base_path: BasePath,
    pub(super) with_metadata: bool,
    pub(super) current: Mutex<Arc<Snapshot>>,
    pub(super) changed: Condvar,
    pub(super) subscribers: Mutex<Vec<mpsc::Sender<Change>>>,
    pub(super) warned: Mutex<WarnOnce>,
    /// Whether a one-shot watch is armed on the base path (or on its
    /// absence). A listing while one is armed arms no other: re-listing
    /// after every reconnect must not pile up watchers in the client.
    pub(super) armed: std::sync::atomic::AtomicBool,
    /// One-shot watches armed and not yet fired, and listings made: what
    /// the tests check (no pile-up of watchers across reconnects).
    pub(super) pending_watches: Arc<std::sync::atomic::AtomicUsize>,
    pub(super) listings: std::sync::atomic::AtomicU64,
    /// Whether the last listing found no base path at all.
    pub(super) base_missing: std::sync::atomic::AtomicBool,
    /// Children that are not plain names, by name: their instance, or
    /// `None` when they are none of the formats.
    pub(super) decoded: Mutex<std::collections::HashMap<String, Option<Instance>>>,
    /// Which children name each endpoint (kept while changes come as
    /// per-child events).
    pub(super) holders: Mutex<Holders>,
    /// Whether changes come as per-child events of a persistent recursive
    /// watch (ZooKeeper 3.6+); false after ZooKeeper refused one, and the
    /// base path is then followed with one-shot watches and re-listings.
    pub(super) events: std::sync::atomic::AtomicBool,
    /// The persistent recursive watch, while one is added on this
    /// connection (the client does not restore it after a reconnect).
    pub(super) recursive: Mutex<Option<RecursiveWatch>>,
    /// Whether the next listing must read every child's data again: set by
    /// a reconnect or a session rebuild, when any child may have changed
    /// unseen (a disable, a weight, a re-registration with new metadata).
    pub(super) reread: std::sync::atomic::AtomicBool,
    /// When the session last reconnected or was rebuilt (the fallback's
    /// trigger window starts there), the instances known then, and every
    /// endpoint seen out of rotation since.
    #[allow(clippy::type_complexity)]
    pub(super) reconnected_at: Mutex<
        Option<(
            std::time::Instant,
            Instances,
            std::collections::HashSet<Endpoint>,
        )>,
    >,
}

impl Shared {
    pub(super) fn current(&self) -> MutexGuard<'_, Arc<Snapshot>> {
        lock(&self.current)
    }
}
