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

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::metadata::Metadata;
use crate::registry::{check_base_path, node_path};
use crate::session::{Session, SessionEvent, SessionState, WatchEvent};

/// One registered server: where to connect, and what it said about itself
/// when that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    endpoint: Endpoint,
    metadata: Option<Metadata>,
}

impl Instance {
    /// An instance known only by its endpoint.
    pub fn new(endpoint: Endpoint) -> Instance {
        Instance {
            endpoint,
            metadata: None,
        }
    }

    /// An instance with its registration metadata.
    pub fn with_metadata(endpoint: Endpoint, metadata: Metadata) -> Instance {
        Instance {
            endpoint,
            metadata: Some(metadata),
        }
    }

    /// Where to connect.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The registration's metadata, when it was read and valid.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }
}

/// A consistent view of the registered instances at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    instances: Arc<[Instance]>,
    version: u64,
    refreshed_at: Option<Instant>,
    stale_since: Option<Instant>,
    session_state: SessionState,
}

impl Snapshot {
    /// The instances, sorted by endpoint.
    pub fn instances(&self) -> &Arc<[Instance]> {
        &self.instances
    }

    /// Bumped every time the set of instances changes (0: never listed).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether this may be out of date: ZooKeeper unreachable, the session
    /// being rebuilt, or the last refresh failed. The instances are then the
    /// last known good list.
    pub fn is_stale(&self) -> bool {
        self.stale_since.is_some()
    }

    /// How long the view has been stale, if it is.
    pub fn stale_for(&self) -> Option<Duration> {
        self.stale_since.map(|since| since.elapsed())
    }

    /// Time since the last successful listing (`None`: never listed).
    pub fn age(&self) -> Option<Duration> {
        self.refreshed_at.map(|at| at.elapsed())
    }

    /// The session state when this snapshot was taken.
    pub fn session_state(&self) -> SessionState {
        self.session_state
    }
}

/// A change seen by [`Discovery`], for subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// A new instance was registered.
    Added(Instance),
    /// An instance went away.
    Removed(Instance),
    /// The view can no longer be refreshed; it keeps the last known list.
    Stale,
    /// The view was refreshed again.
    Fresh,
}

/// Why the refresh thread woke up.
enum Wake {
    /// A one-shot watch fired (it is spent: the next listing re-arms one).
    Watch,
    Session(SessionEvent),
    Stop,
}

struct Shared {
    session: Arc<Session>,
    base_path: String,
    with_metadata: bool,
    current: Mutex<Arc<Snapshot>>,
    changed: Condvar,
    subscribers: Mutex<Vec<mpsc::Sender<Change>>>,
    warned: Mutex<WarnOnce>,
    /// Whether a one-shot watch is armed on the base path (or on its
    /// absence). A listing while one is armed arms no other: re-listing
    /// after every reconnect must not pile up watchers in the client.
    armed: std::sync::atomic::AtomicBool,
}

/// Paths already warned about, so that a bad child is logged once, not on
/// every refresh. Bounded: only children still present are remembered, and
/// never more than [`WarnOnce::MAX`] (a hostile stream of bad names cannot
/// grow it without limit; past it, a few warnings may repeat).
#[derive(Debug, Default)]
struct WarnOnce {
    paths: HashSet<String>,
}

impl WarnOnce {
    const MAX: usize = 4096;

    /// True the first time `path` is seen.
    fn first(&mut self, path: &str) -> bool {
        if self.paths.contains(path) {
            return false;
        }
        if self.paths.len() >= WarnOnce::MAX {
            self.paths.clear();
        }
        self.paths.insert(truncate(path).to_owned())
    }

    /// Forgets paths that are no longer children of `base_path`.
    fn retain_children(&mut self, base_path: &str, names: &HashSet<&str>) {
        let prefix = format!("{}/", base_path.trim_end_matches('/'));
        self.paths.retain(|path| {
            path.strip_prefix(&prefix)
                .is_some_and(|name| names.contains(name))
        });
    }
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
    pub fn start(session: Arc<Session>, base_path: &str) -> Result<Discovery> {
        Discovery::start_inner(session, base_path, false)
    }

    /// Like [`Discovery::start`], and also reads each instance's metadata
    /// (once per new instance, not on every refresh).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a malformed base path.
    pub fn start_with_metadata(session: Arc<Session>, base_path: &str) -> Result<Discovery> {
        Discovery::start_inner(session, base_path, true)
    }

    fn start_inner(
        session: Arc<Session>,
        base_path: &str,
        with_metadata: bool,
    ) -> Result<Discovery> {
        check_base_path(base_path)?;
        let empty = Snapshot {
            instances: Arc::from(Vec::new()),
            version: 0,
            refreshed_at: None,
            stale_since: None,
            session_state: session.state(),
        };
        let shared = Arc::new(Shared {
            session,
            base_path: base_path.to_owned(),
            with_metadata,
            current: Mutex::new(Arc::new(empty)),
            changed: Condvar::new(),
            subscribers: Mutex::new(Vec::new()),
            warned: Mutex::new(WarnOnce::default()),
            armed: std::sync::atomic::AtomicBool::new(false),
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

    /// The base path.
    pub fn base_path(&self) -> &str {
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
                    let exists = self
                        .session
                        .stat_and_watch(&self.base_path, move |event| {
                            if event != WatchEvent::SessionEnded {
                                let _ = tx.send(Wake::Watch);
                            }
                        })
                        .inspect_err(|_| self.armed.store(false, Ordering::SeqCst))?;
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
        if self.armed.swap(true, Ordering::SeqCst) {
            return self.session.children(&self.base_path);
        }
        let tx = wake.clone();
        self.session
            .children_and_watch(&self.base_path, move |_| {
                let _ = tx.send(Wake::Watch);
            })
            .inspect_err(|_| self.armed.store(false, Ordering::SeqCst))
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

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(128) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// The instances registered under `base_path` now, read directly (one
/// listing, plus one read per instance with `with_metadata`); malformed
/// names are skipped with a warning. For one-off inspection; clients use
/// [`Discovery`].
///
/// # Errors
///
/// ZooKeeper errors naming the base path; a missing base path is an empty list.
pub fn list(session: &Session, base_path: &str, with_metadata: bool) -> Result<Vec<Instance>> {
    check_base_path(base_path)?;
    let names = match session.children(base_path) {
        Ok(names) => names,
        Err(err) if err.is_no_node() => Vec::new(),
        Err(err) => return Err(err),
    };
    let warn = |path: &str, error: &str, message: &str| tracing::warn!(path = %truncate(path), error, "{message}");
    let endpoints = parse_children(base_path, &names, warn);
    if !with_metadata {
        return Ok(endpoints.into_iter().map(Instance::new).collect());
    }
    read_instances(session, base_path, &endpoints, warn)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The valid endpoints among child `names`, sorted and distinct; `warn`
/// gets (path, error, message) for each malformed one.
fn parse_children(
    base_path: &str,
    names: &[String],
    warn: impl Fn(&str, &str, &str),
) -> Vec<Endpoint> {
    let mut endpoints: Vec<Endpoint> = names
        .iter()
        .filter_map(|name| {
            Endpoint::from_node_name(name)
                .map_err(|err| {
                    let path = format!("{}/{name}", base_path.trim_end_matches('/'));
                    warn(&path, &err.to_string(), "skipping malformed child");
                })
                .ok()
        })
        .collect();
    endpoints.sort();
    endpoints.dedup();
    endpoints
}

/// The instances of `endpoints` with their metadata, read in one pipelined
/// batch. A node gone since the listing is left out; one whose data cannot
/// be read (no READ permission, malformed JSON, a failed read) is listed by
/// its name alone, reported to `warn`: one bad child never hides the others.
///
/// # Errors
///
/// Only when the batch as a whole gets no answer in time.
fn read_instances(
    session: &Session,
    base_path: &str,
    endpoints: &[Endpoint],
    warn: impl Fn(&str, &str, &str),
) -> Result<Vec<Instance>> {
    let paths: Vec<String> = endpoints.iter().map(|e| node_path(base_path, e)).collect();
    let results = session.get_data_many(&paths)?;
    let mut instances = Vec::with_capacity(endpoints.len());
    for ((endpoint, path), result) in endpoints.iter().zip(&paths).zip(results) {
        match result {
            Ok((data, _)) => instances.push(match Metadata::from_json(path, &data) {
                Ok(metadata) => Instance::with_metadata(*endpoint, metadata),
                Err(err) => {
                    warn(path, &err.to_string(), "skipping malformed metadata");
                    Instance::new(*endpoint)
                }
            }),
            Err(err) if err.is_no_node() => {}
            Err(err) => {
                warn(
                    path,
                    &err.chain().to_string(),
                    "cannot read metadata; listed by its name alone",
                );
                instances.push(Instance::new(*endpoint));
            }
        }
    }
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_once_remembers_a_bounded_number_of_present_paths() {
        let mut warned = WarnOnce::default();
        assert!(warned.first("/b/x"));
        assert!(!warned.first("/b/x"), "warned twice");
        for i in 0..WarnOnce::MAX * 3 {
            warned.first(&format!("/b/bad-{i}"));
            assert!(warned.paths.len() <= WarnOnce::MAX);
        }
        warned.first("/b/x");
        warned.retain_children("/b", &HashSet::from(["x"]));
        assert_eq!(
            warned.paths.len(),
            1,
            "only present children are remembered"
        );
    }
}
