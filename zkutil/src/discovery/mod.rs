//! `Discovery`: a live, watch-driven cache of the instances registered
//! under a base path.
//!
//! One initial listing, then a re-listing on every child-watch event and
//! after every reconnect and session rebuild: a watch is never assumed to
//! have survived. Readers take a consistent [`Snapshot`] (an
//! `Arc<[Instance]>`) without touching ZooKeeper, so a client makes no
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

mod read;
mod snapshot;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use self::read::list;
use self::read::{WarnOnce, parse_children, read_instances, truncate};
pub use self::snapshot::{Change, Instance, Snapshot};
use crate::backoff::Backoff;
use crate::base_path::BasePath;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::session::{Session, SessionEvent, SessionState, WatchEvent};

/// Why the refresh thread woke up.
enum Wake {
    /// A one-shot watch fired (it is spent: the next listing re-arms one).
    Watch,
    Session(SessionEvent),
    Stop,
}

struct Shared {
    session: Arc<Session>,
    base_path: BasePath,
    with_metadata: bool,
    current: Mutex<Arc<Snapshot>>,
    changed: Condvar,
    subscribers: Mutex<Vec<mpsc::Sender<Change>>>,
    warned: Mutex<WarnOnce>,
    /// Whether a one-shot watch is armed on the base path (or on its
    /// absence). A listing while one is armed arms no other: re-listing
    /// after every reconnect must not pile up watchers in the client.
    armed: std::sync::atomic::AtomicBool,
    /// One-shot watches armed and not yet fired, and listings made: what
    /// the tests check (no pile-up of watchers across reconnects).
    pending_watches: Arc<std::sync::atomic::AtomicUsize>,
    listings: std::sync::atomic::AtomicU64,
}

/// The live list of instances under one base path, kept by a refresh
/// thread; dropping it stops the thread.
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
        Discovery::start_inner(session, base_path, false)
    }

    /// Like [`Discovery::start`], and also reads each instance's metadata
    /// (once per new instance, not on every refresh).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a malformed base path.
    pub fn start_with_metadata(session: Arc<Session>, base_path: &BasePath) -> Result<Discovery> {
        Discovery::start_inner(session, base_path, true)
    }

    fn start_inner(
        session: Arc<Session>,
        base_path: &BasePath,
        with_metadata: bool,
    ) -> Result<Discovery> {
        let empty = Snapshot {
            instances: Arc::from(Vec::new()),
            version: 0,
            refreshed_at: None,
            stale_since: None,
            session_state: session.state(),
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
        self.shared.pending_watches.load(Ordering::SeqCst)
    }

    /// Listings of the base path made so far.
    #[cfg(feature = "testing")]
    pub fn listings_for_testing(&self) -> u64 {
        self.shared.listings.load(Ordering::SeqCst)
    }

    /// The base path.
    pub fn base_path(&self) -> &BasePath {
        &self.shared.base_path
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
        self.shared
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        rx
    }

    /// Waits until `accept` holds for the current snapshot, at most
    /// `timeout`; returns that snapshot, or `None` on timeout.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut accept: impl FnMut(&Snapshot) -> bool,
    ) -> Option<Arc<Snapshot>> {
        let deadline = crate::session::deadline_after(timeout);
        let mut current = self.shared.current();
        loop {
            if accept(&current) {
                return Some(current.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            current = self
                .shared
                .changed
                .wait_timeout(current, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Re-lists on every watch event and session change; retries failures
/// with backoff. Pending wake-ups are coalesced into one listing.
fn refresh_loop(
    shared: &Shared,
    woken: &mpsc::Receiver<Wake>,
    wake: &mpsc::Sender<Wake>,
    first: Result<()>,
) {
    let mut backoff = Backoff::default();
    let mut result = Some(first);
    let mut need = false;
    loop {
        if need {
            result = Some(shared.refresh(wake));
            need = false;
        }
        let mut wait = None;
        match result.take() {
            Some(Ok(())) => backoff.reset(),
            Some(Err(err)) => {
                let delay = backoff.next_delay();
                tracing::warn!(path = %shared.base_path, attempt = backoff.attempts(), error = %err.chain(),
                    retry_in = ?delay, "cannot list instances; keeping the last known list");
                shared.mark_stale();
                wait = Some(delay);
            }
            None => {}
        }
        let first = match wait {
            Some(delay) => match woken.recv_timeout(delay) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    need = true;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match woken.recv() {
                Ok(event) => event,
                Err(_) => return,
            },
        };
        for event in std::iter::once(first).chain(woken.try_iter()) {
            match event {
                Wake::Stop => return,
                Wake::Watch => {
                    shared.armed.store(false, Ordering::SeqCst);
                    need = true
                }
                // Re-list after every reconnect: a change made while
                // disconnected must not be missed. The one-shot watch of
                // the same session survives a reconnect (the client sends
                // it again); a rebuilt session's watches are gone.
                Wake::Session(SessionEvent::Connected) => need = true,
                Wake::Session(SessionEvent::Rebuilt { .. }) => {
                    shared.armed.store(false, Ordering::SeqCst);
                    need = true
                }
                Wake::Session(_) => shared.mark_stale(),
            }
        }
        if !need && wait.is_some() {
            // Woken early from a backoff by something that needs no listing
            // (a disconnect): the failed listing is still due.
            need = true;
        }
    }
}

impl Shared {
    fn current(&self) -> MutexGuard<'_, Arc<Snapshot>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists the children (arming a watch unless one is armed), parses
    /// them, reads the metadata of new ones, and publishes the result.
    fn refresh(&self, wake: &mpsc::Sender<Wake>) -> Result<()> {
        let names = match self.list_children(wake) {
            Ok(names) => names,
            Err(err) if err.is_no_node() => {
                // No base path yet: nobody registered. Watch for it.
                if !self.armed.swap(true, Ordering::SeqCst) {
                    let tx = wake.clone();
                    let pending = self.pending_watches.clone();
                    pending.fetch_add(1, Ordering::SeqCst);
                    let exists = self
                        .session
                        .stat_and_watch(self.base_path.as_str(), move |event| {
                            pending.fetch_sub(1, Ordering::SeqCst);
                            if event != WatchEvent::SessionEnded {
                                let _ = tx.send(Wake::Watch);
                            }
                        })
                        .inspect_err(|_| {
                            self.pending_watches.fetch_sub(1, Ordering::SeqCst);
                            self.armed.store(false, Ordering::SeqCst);
                        })?;
                    if exists.is_some() {
                        // Created between the two calls: list again.
                        let _ = wake.send(Wake::Watch);
                    }
                }
                Vec::new()
            }
            Err(err) => return Err(err),
        };
        {
            let present: HashSet<&str> = names.iter().map(String::as_str).collect();
            lock(&self.warned).retain_children(&self.base_path, &present);
        }
        let warn = |path: &str, error: &str, message: &str| self.warn_once(path, error, message);
        let endpoints = parse_children(&self.base_path, &names, warn);
        let instances = if self.with_metadata {
            // Metadata is read once per new instance, not on every refresh
            // (one without it, unreadable last time, is read again).
            let previous = self.current().clone();
            let known: BTreeMap<Endpoint, &Instance> = previous
                .instances
                .iter()
                .filter(|i| i.metadata.is_some())
                .map(|i| (i.endpoint, i))
                .collect();
            let new: Vec<Endpoint> = endpoints
                .iter()
                .filter(|e| !known.contains_key(e))
                .copied()
                .collect();
            let mut read: BTreeMap<Endpoint, Instance> =
                read_instances(&self.session, &self.base_path, &new, warn)?
                    .into_iter()
                    .map(|i| (i.endpoint, i))
                    .collect();
            endpoints
                .iter()
                .filter_map(|endpoint| match known.get(endpoint) {
                    Some(instance) => Some((*instance).clone()),
                    // Gone since the listing: the next watch event says so.
                    None => read.remove(endpoint),
                })
                .collect()
        } else {
            endpoints.into_iter().map(Instance::new).collect()
        };
        self.publish(instances);
        Ok(())
    }

    /// The children of the base path, with a one-shot watch unless one is
    /// armed already.
    fn list_children(&self, wake: &mpsc::Sender<Wake>) -> Result<Vec<String>> {
        self.listings.fetch_add(1, Ordering::SeqCst);
        if self.armed.swap(true, Ordering::SeqCst) {
            return self.session.children(self.base_path.as_str());
        }
        let tx = wake.clone();
        let pending = self.pending_watches.clone();
        pending.fetch_add(1, Ordering::SeqCst);
        self.session
            .children_and_watch(self.base_path.as_str(), move |_| {
                pending.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(Wake::Watch);
            })
            .inspect_err(|_| {
                self.pending_watches.fetch_sub(1, Ordering::SeqCst);
                self.armed.store(false, Ordering::SeqCst);
            })
    }

    /// Replaces the snapshot, tells subscribers what changed.
    fn publish(&self, instances: Vec<Instance>) {
        let mut changes = Vec::new();
        {
            let mut current = self.current();
            let old: BTreeMap<Endpoint, &Instance> =
                current.instances.iter().map(|i| (i.endpoint, i)).collect();
            let new: BTreeMap<Endpoint, &Instance> =
                instances.iter().map(|i| (i.endpoint, i)).collect();
            changes.extend(
                old.iter()
                    .filter(|(e, _)| !new.contains_key(e))
                    .map(|(_, i)| Change::Removed((*i).clone())),
            );
            changes.extend(
                new.iter()
                    .filter(|(e, _)| !old.contains_key(e))
                    .map(|(_, i)| Change::Added((*i).clone())),
            );
            let session_state = self.session.state();
            let fresh = session_state == SessionState::Connected;
            if fresh && current.stale_since.is_some() {
                changes.push(Change::Fresh);
            }
            let changed =
                !changes.iter().all(|c| *c == Change::Fresh) || current.refreshed_at.is_none();
            *current = Arc::new(Snapshot {
                instances: if changed {
                    Arc::from(instances)
                } else {
                    current.instances.clone()
                },
                version: if changed {
                    current.version + 1
                } else {
                    current.version
                },
                refreshed_at: Some(Instant::now()),
                stale_since: if fresh {
                    None
                } else {
                    current.stale_since.or(Some(Instant::now()))
                },
                session_state,
            });
        }
        self.changed.notify_all();
        self.send(changes);
    }

    /// Marks the view stale (keeping its instances), once.
    fn mark_stale(&self) {
        let became_stale = {
            let mut current = self.current();
            let session_state = self.session.state();
            if current.stale_since.is_some() && current.session_state == session_state {
                false
            } else {
                let was_stale = current.stale_since.is_some();
                let mut next = Snapshot::clone(&current);
                next.stale_since = current.stale_since.or(Some(Instant::now()));
                next.session_state = session_state;
                *current = Arc::new(next);
                !was_stale
            }
        };
        self.changed.notify_all();
        if became_stale {
            self.send(vec![Change::Stale]);
        }
    }

    fn send(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|tx| changes.iter().all(|change| tx.send(change.clone()).is_ok()));
    }

    fn warn_once(&self, path: &str, error: &str, message: &str) {
        if lock(&self.warned).first(path) {
            tracing::warn!(path = %truncate(path), error, "{message}");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
