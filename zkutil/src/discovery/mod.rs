//! `Discovery`: a live, watch-driven cache of the instances registered
//! under a base path.
//!
//! One persistent recursive watch on the base path (ZooKeeper 3.6+) and
//! one initial listing; then each change arrives as one event with the
//! child's path and is applied alone — a change costs one notification
//! (plus one read of that child when its format needs its data), not a
//! re-listing of every child. The client does not restore the watch after
//! a reconnect, so after every reconnect and session rebuild it is added
//! again and the base path re-listed once: a change made while disconnected
//! is never missed. Events are applied in the order ZooKeeper sent them,
//! after the listing that follows the watch, so a stale event is always
//! followed by the one that corrects it. A ZooKeeper that refuses the watch
//! (older than 3.6) is followed the old way: a one-shot child watch and a
//! re-listing per change. Readers take a consistent [`Snapshot`] (a
//! persistent [`Instances`] list: one change costs O(log N), and readers
//! share it) without touching ZooKeeper, so a client makes no
//! ZooKeeper request per request it sends.
//!
//! While ZooKeeper is unreachable or the session is being rebuilt, the
//! snapshot keeps the last list it read (last known good) and says so:
//! [`Snapshot::is_stale`], its age, and the session state. An empty list
//! read from ZooKeeper is trusted: it means no servers. A missing base path
//! means the same, and is watched until it appears.
//!
//! Child names and metadata come from anyone who can write to ZooKeeper:
//! a malformed one is skipped and logged once, not on every refresh.
//! Subscribers get typed [`Change`]s: instances added and removed, and the
//! view going stale or fresh (unlike Curator's ServiceCache, which gives no
//! such events).

mod events;
mod fallback;
mod holders;
mod instance;
mod instances;
mod listing;
mod node_name;
mod publish;
mod read;
mod refresh;
mod shared;
mod snapshot;

use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::holders::Holders;
pub use self::instance::{DEFAULT_WEIGHT, Instance};
pub use self::instances::{Instances, InstancesIter};
use self::read::WarnOnce;
pub(crate) use self::read::nodes_of;
pub use self::read::{LIST_UNDER_MAX_NODES, list, list_under};
use self::refresh::refresh_loop;
use self::shared::{Shared, Wake};
pub use self::snapshot::{Change, Snapshot};
use crate::base_path::BasePath;
use crate::error::{Error, Result};
use crate::session::{Session, deadline_after};
use crate::sync::{lock, wait_timeout};

/// The live list of instances under one base path, kept by a refresh
/// thread.
///
/// Dropping it stops that thread, waits for it to end, and removes the
/// persistent watch. The thread sees the stop at once when it is waiting
/// (for a change, or out a backoff); when it is busy with ZooKeeper, after
/// the work in hand: a listing (at most four calls), or the per-child
/// events queued before the drop (a read each, for the formats that need
/// their data). Every call is bounded by the session's request timeout
/// (5 s by default) and the first failure ends the work, so a drop while
/// ZooKeeper does not answer waits about one request timeout.
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// use std::sync::Arc;
/// use std::time::Duration;
/// use zkutil::{BasePath, Change, Discovery, SessionConfig};
///
/// let session = Arc::new(SessionConfig::new(hosts).connect()?);
/// let base = BasePath::from_static("/go_servers");
/// let discovery = Discovery::start(session.clone(), &base)?;
/// let changes = discovery.subscribe();
///
/// session.ensure_path(base.as_str())?;
/// session.create_ephemeral("/go_servers/10.0.0.7:8897", b"")?; // a server appears
/// match changes.recv_timeout(Duration::from_secs(5))? {
///     Change::Added(instance) => assert_eq!(instance.endpoint().to_string(), "10.0.0.7:8897"),
///     other => panic!("{other:?}"),
/// }
/// let snapshot = discovery.snapshot(); // no ZooKeeper call: the cached view
/// assert_eq!(snapshot.instances().len(), 1);
/// assert!(!snapshot.is_stale());
/// # Ok(())
/// # }
/// ```
pub struct Discovery {
    shared: Arc<Shared>,
    wake: mpsc::Sender<Wake>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("base_path", &self.shared.base_path)
            .field("version", &self.snapshot().version())
            .finish()
    }
}

impl Discovery {
    /// Starts a cache of the children of `base_path`, endpoints only, and
    /// waits (bounded by the session's request timeout) for the first
    /// listing. If that fails, the cache starts empty and stale and keeps
    /// trying in the background.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a malformed base path.
    pub fn start(session: Arc<Session>, base_path: &BasePath) -> Result<Discovery> {
        Discovery::start_inner(session, base_path, false, true)
    }

    /// Like [`Discovery::start`], and also reads each instance's metadata
    /// (once per new instance, not on every refresh).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a malformed base path.
    pub fn start_with_metadata(session: Arc<Session>, base_path: &BasePath) -> Result<Discovery> {
        Discovery::start_inner(session, base_path, true, true)
    }

    /// Like [`Discovery::start`], following the base path the old way (a
    /// one-shot child watch and a re-listing per change), as with a
    /// ZooKeeper older than 3.6: for tests of that path, and benchmarks.
    #[cfg(feature = "testing")]
    pub fn start_relisting_for_testing(
        session: Arc<Session>,
        base_path: &BasePath,
        with_metadata: bool,
    ) -> Result<Discovery> {
        Discovery::start_inner(session, base_path, with_metadata, false)
    }

    fn start_inner(
        session: Arc<Session>,
        base_path: &BasePath,
        with_metadata: bool,
        events: bool,
    ) -> Result<Discovery> {
        let empty = Snapshot {
            out_of_service: Instances::default(),
            instances: Instances::default(),
            version: 0,
            refreshed_at: None,
            stale_since: None,
            session_state: session.state(),
            fallback: None,
        };
        let shared = Arc::new(Shared {
            session,
            base_path: base_path.clone(),
            with_metadata,
            current: Mutex::new(Arc::new(empty)),
            changed: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            warned: Mutex::new(WarnOnce::default()),
            armed: std::sync::atomic::AtomicBool::new(false),
            pending_watches: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            listings: std::sync::atomic::AtomicU64::new(0),
            base_missing: std::sync::atomic::AtomicBool::new(false),
            decoded: Mutex::new(std::collections::HashMap::new()),
            holders: Mutex::new(Holders::default()),
            events: std::sync::atomic::AtomicBool::new(events),
            recursive: Mutex::new(None),
            reread: std::sync::atomic::AtomicBool::new(true),
            reconnected_at: Mutex::new(None),
        });
        let (wake, woken) = mpsc::channel();
        let events = wake.clone();
        shared
            .session
            .subscribe(move |event| events.send(Wake::Session(event)).is_ok());
        // The first listing happens here, so that a caller's first snapshot
        // is already useful.
        let first = shared.refresh(&wake);
        let (thread_shared, thread_wake) = (shared.clone(), wake.clone());
        let thread = std::thread::Builder::new()
            .name(format!("discover {base_path}"))
            .spawn(move || refresh_loop(&thread_shared, &woken, &thread_wake, first))
            .map_err(|source| Error::Io {
                what: "starting the discovery thread",
                source,
            })?;
        Ok(Discovery {
            shared,
            wake,
            thread: Some(thread),
        })
    }

    /// One-shot watches armed by this cache and not yet fired (tests check
    /// that re-listing after reconnects piles none up).
    #[cfg(feature = "testing")]
    pub fn pending_watches_for_testing(&self) -> usize {
        let persistent = usize::from(lock(&self.shared.recursive).is_some());
        persistent
            + self
                .shared
                .pending_watches
                .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether changes arrive as per-child events (a persistent recursive
    /// watch) rather than by re-listing.
    pub fn follows_events(&self) -> bool {
        self.shared.events.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Listings of the base path made so far.
    #[cfg(feature = "testing")]
    pub fn listings_for_testing(&self) -> u64 {
        self.shared
            .listings
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The base path.
    pub fn base_path(&self) -> &BasePath {
        &self.shared.base_path
    }

    /// Whether the last listing found no base path at all: nobody ever
    /// registered there (or a typo, or an unused chroot). An empty
    /// snapshot then says more than "no instances".
    pub fn base_path_missing(&self) -> bool {
        self.shared
            .base_missing
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The session used.
    pub fn session(&self) -> &Arc<Session> {
        &self.shared.session
    }

    /// The current view; cheap, touches no network.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.current().clone()
    }

    /// Typed changes from now on, on a channel.
    pub fn subscribe(&self) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel();
        lock(&self.shared.subscribers).push(tx);
        rx
    }

    /// Waits until `accept` holds for the current snapshot, at most
    /// `timeout`; returns that snapshot, or `None` on timeout.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut accept: impl FnMut(&Snapshot) -> bool,
    ) -> Option<Arc<Snapshot>> {
        let deadline = deadline_after(timeout);
        let mut current = self.shared.current();
        loop {
            if accept(&current) {
                return Some(current.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            current = wait_timeout(&self.shared.changed, current, left);
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Removed now, not when the last clone of the session goes.
        lock(&self.shared.recursive).take();
    }
}
