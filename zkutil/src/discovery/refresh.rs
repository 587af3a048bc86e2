//! `refresh`: the thread that keeps a [`Discovery`](super::Discovery)'s
//! snapshot current: per-child events applied one by one (or, without
//! them, a listing on every watch event), a listing that reads every
//! child's data again after each reconnect and session rebuild, failures
//! retried with backoff, changes published to subscribers.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, mpsc};
use std::time::Instant;

use super::read::{parse_children, read_decoded, read_instances, sorted_distinct, truncate};
use super::{Change, Instance, Instances, Shared, Snapshot, Wake};
use crate::backoff::Backoff;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::session::{SessionEvent, SessionState, WatchEvent};
use crate::sync::lock;

/// How long after a reconnect or a session rebuild the vanishing of every
/// instance is taken for the aftermath of a partition of ZooKeeper rather
/// than a decommission: the servers' sessions, expired by ZooKeeper while it
/// was cut off, may end up to their own session timeout after ours (40 s is
/// ZooKeeper's default maximum).
pub(super) const RECONNECT_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// The shortest offer of the last known instances: the servers re-register
/// within their own session timeout of reaching ZooKeeper again, which may
/// be longer than this client's (10 s is the binaries' default).
const FALLBACK_AT_LEAST: std::time::Duration = std::time::Duration::from_secs(10);

/// Re-lists on every watch event and session change; retries failures
/// with backoff. Pending wake-ups are coalesced into one listing.
pub(super) fn refresh_loop(
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
                    retry_in = %crate::backoff::rounded(delay), "cannot list instances; keeping the last known list");
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
                // Applied in order; a failure re-lists (after a backoff).
                Wake::Node(event) if !need => {
                    if let Err(err) = shared.apply(&event) {
                        result = Some(Err(err));
                        need = true;
                    }
                }
                // A re-listing is due anyway: it covers this change.
                Wake::Node(_) => {}
                // Re-list after every reconnect: a change made while
                // disconnected must not be missed. The one-shot watch of
                // the same session survives a reconnect (the client sends
                // it again); a rebuilt session's watches are gone.
                // The persistent watch is not restored by the client: add it
                // again (the listing does).
                Wake::Session(SessionEvent::Connected) => {
                    lock(&shared.recursive).take();
                    shared.reread.store(true, Ordering::SeqCst);
                    shared.note_reconnect();
                    need = true
                }
                Wake::Session(SessionEvent::Rebuilt { .. }) => {
                    shared.armed.store(false, Ordering::SeqCst);
                    lock(&shared.recursive).take();
                    shared.reread.store(true, Ordering::SeqCst);
                    shared.note_reconnect();
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
    pub(super) fn current(&self) -> MutexGuard<'_, Arc<Snapshot>> {
        lock(&self.current)
    }

    /// Lists the children (arming a watch unless one is armed), parses
    /// them, reads the metadata of new ones, and publishes the result.
    pub(super) fn refresh(&self, wake: &mpsc::Sender<Wake>) -> Result<()> {
        if self.events.load(Ordering::SeqCst) && lock(&self.recursive).is_none() {
            self.add_recursive_watch(wake)?;
        }
        if self.events.load(Ordering::SeqCst) {
            // Added before the listing: a change after it is an event. A
            // listing here follows a reconnect, when the data of any child
            // may have changed unseen: read them all again.
            self.listings.fetch_add(1, Ordering::SeqCst);
            self.reread.store(true, Ordering::SeqCst);
            let names = match self.session.children(self.base_path.as_str()) {
                Ok(names) => names,
                Err(err) if err.is_no_node() => {
                    // Nobody registered yet; its creation is an event too.
                    self.base_missing.store(true, Ordering::SeqCst);
                    return self.publish_names(&[]);
                }
                Err(err) => return Err(err),
            };
            self.base_missing.store(false, Ordering::SeqCst);
            return self.publish_names(&names);
        }
        let names = match self.list_children(wake) {
            Ok(names) => {
                self.base_missing.store(false, Ordering::SeqCst);
                names
            }
            Err(err) if err.is_no_node() => {
                // No base path yet: nobody registered. Watch for it.
                self.base_missing.store(true, Ordering::SeqCst);
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
        self.publish_names(&names)
    }

    /// Publishes the instances of the children `names`: parsed, new ones'
    /// data read, and every one's after a reconnect or a rebuild.
    fn publish_names(&self, names: &[String]) -> Result<()> {
        // Cleared only once the listing is published: a failed one is
        // retried with the same need.
        let reread = self.reread.load(Ordering::SeqCst);
        if reread {
            lock(&self.decoded).clear();
        }
        {
            let present: HashSet<&str> = names.iter().map(String::as_str).collect();
            lock(&self.warned).retain_children(&self.base_path, &present);
        }
        let warn = |path: &str, error: &str, message: &str| self.warn_once(path, error, message);
        let (endpoints, others) = parse_children(names);
        let decoded = self.decode_others(&others, warn)?;
        if self.events.load(Ordering::SeqCst) {
            let plain = endpoints.iter().map(|e| (*e, e.node_name()));
            let others = decoded.iter().map(|i| (i.endpoint, i.node.to_string()));
            *lock(&self.holders) = plain.chain(others).collect();
        }
        let instances = if self.with_metadata {
            // Metadata is read once per new instance, not on every refresh
            // (one without it, unreadable last time, is read again).
            let previous = self.current().clone();
            let known: BTreeMap<Endpoint, &Instance> = previous
                .instances
                .iter()
                // A plain child's own (another format's child may hold its
                // endpoint's place).
                .filter(|i| !reread && i.metadata.is_some() && i.format == crate::Format::Plain)
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
        let mut instances: Vec<Instance> = instances;
        instances.extend(decoded);
        self.publish(sorted_distinct(instances));
        self.reread.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// The instances of the children that are not plain names, each read
    /// and decoded once (a child's data is not followed after that: it is
    /// re-read when it is re-created); a child that is none of the formats
    /// is remembered as such, and warned about once.
    fn decode_others(
        &self,
        others: &[String],
        warn: impl Fn(&str, &str, &str),
    ) -> Result<Vec<Instance>> {
        let mut cache = lock(&self.decoded);
        let present: HashSet<&str> = others.iter().map(String::as_str).collect();
        cache.retain(|name, _| present.contains(name.as_str()));
        let new: Vec<String> = others
            .iter()
            .filter(|name| !cache.contains_key(*name))
            .cloned()
            .collect();
        drop(cache);
        let read = read_decoded(&self.session, &self.base_path, &new, warn)?;
        let mut cache = lock(&self.decoded);
        cache.extend(read);
        Ok(others
            .iter()
            .filter_map(|name| cache.get(name).cloned().flatten())
            .collect())
    }

    /// The children of the base path, with a one-shot watch unless one is
    /// armed already.
    pub(super) fn list_children(&self, wake: &mpsc::Sender<Wake>) -> Result<Vec<String>> {
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

    /// Replaces the snapshot by the listing's instances `all`, tells
    /// subscribers what changed.
    pub(super) fn publish(&self, all: Vec<Instance>) {
        let (instances, out_of_service): (Vec<Instance>, Vec<Instance>) =
            all.into_iter().partition(Instance::is_enabled);
        let (instances, out_of_service) =
            (Instances::from(instances), Instances::from(out_of_service));
        let mut changes = Vec::new();
        let differs = {
            let current = self.current();
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
            // An instance's weight or reason may change with no instance
            // coming or going: the lists are compared too.
            current.instances != instances || current.out_of_service != out_of_service
        };
        self.publish_with(instances, out_of_service, changes, differs);
    }

    /// Replaces the snapshot by `instances` and `out_of_service` (a new
    /// version when they `differ` from the current ones), tells
    /// subscribers `changes` (and whether the view is fresh again).
    pub(super) fn publish_with(
        &self,
        instances: Instances,
        out_of_service: Instances,
        mut changes: Vec<Change>,
        differ: bool,
    ) {
        let replaced = {
            let mut current = self.current();
            let fallback = self.fallback(&current, &instances, &out_of_service);
            let session_state = self.session.state();
            let fresh = session_state == SessionState::Connected;
            if fresh && current.stale_since.is_some() {
                changes.push(Change::Fresh);
            }
            let changed = differ
                || !changes.iter().all(|c| *c == Change::Fresh)
                || current.refreshed_at.is_none();
            let next = Arc::new(Snapshot {
                out_of_service,
                instances: if changed {
                    instances
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
                fallback,
            });
            std::mem::replace(&mut *current, next)
        };
        self.changed.notify_all();
        self.send(changes);
        // What only the old snapshot held is freed after the news is out.
        drop(replaced);
    }

    /// The fallback the next snapshot offers (see [`Snapshot::fallback`]):
    /// set when every in-service instance vanishes (not merely out of
    /// rotation) within [`RECONNECT_WINDOW`] of a reconnect or a session
    /// rebuild, whether the listing right after it says so or per-child
    /// events a little later (the servers' sessions may expire after ours);
    /// kept while the registry lists nothing in service and the offer
    /// lasts, without any instance the registry now lists out of rotation;
    /// dropped as soon as it lists one in service.
    fn fallback(
        &self,
        current: &Snapshot,
        instances: &Instances,
        out_of_service: &Instances,
    ) -> Option<(Instances, Instant)> {
        let since_reconnect = {
            let mut reconnected = lock(&self.reconnected_at);
            // Whatever was seen out of rotation since is never offered,
            // even once its node is gone.
            if let Some((at, _, drained)) = reconnected.as_mut() {
                if at.elapsed() < RECONNECT_WINDOW {
                    drained.extend(out_of_service.iter().map(|i| i.endpoint));
                }
            }
            if !instances.is_empty() {
                return None;
            }
            reconnected
                .as_ref()
                .filter(|(at, _, _)| at.elapsed() < RECONNECT_WINDOW)
                .map(|(_, known, drained)| (known.clone(), drained.clone()))
        };
        let drained_since = since_reconnect
            .as_ref()
            .map(|(_, drained)| drained.clone())
            .unwrap_or_default();
        let previous = match (&current.fallback, since_reconnect) {
            (Some((kept, until)), _) if Instant::now() < *until => Some((kept.clone(), *until)),
            // What the view held when the session came back, and what it
            // learnt since: one by one, per-child events empty it.
            (_, Some((known, drained))) if !current.instances.is_empty() => {
                let mut last: Vec<Instance> = known.iter().cloned().collect();
                last.extend(
                    current
                        .instances
                        .iter()
                        .filter(|i| !known.contains(i.endpoint))
                        .cloned(),
                );
                last.retain(|i| !drained.contains(&i.endpoint));
                last.sort_by_key(|i| i.endpoint);
                let window = self
                    .session
                    .negotiated_timeout()
                    .max(self.session.config().session_timeout())
                    .max(FALLBACK_AT_LEAST);
                tracing::warn!(path = %self.base_path, vanished = last.len(),
                    window = %crate::backoff::rounded(window),
                    "every instance vanished soon after a reconnect; offering the last known list as a fallback");
                Some((Instances::from(last), Instant::now() + window))
            }
            _ => None,
        };
        // An operator's word is honoured at once: what the registry lists
        // out of rotation is never offered.
        let (kept, until) = previous?;
        let kept: Instances = kept
            .iter()
            .filter(|i| {
                !out_of_service.contains(i.endpoint) && !drained_since.contains(&i.endpoint)
            })
            .cloned()
            .collect();
        (!kept.is_empty()).then_some((kept, until))
    }

    /// Notes a reconnect or a session rebuild, with the instances the view
    /// held then: the fallback offers them if every one vanishes soon after.
    pub(super) fn note_reconnect(&self) {
        let known = self.current().instances.clone();
        *lock(&self.reconnected_at) = Some((Instant::now(), known, HashSet::new()));
    }

    /// Marks the view stale (keeping its instances), once.
    pub(super) fn mark_stale(&self) {
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

    pub(super) fn send(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        lock(&self.subscribers)
            .retain(|tx| changes.iter().all(|change| tx.send(change.clone()).is_ok()));
    }

    pub(super) fn warn_once(&self, path: &str, error: &str, message: &str) {
        if lock(&self.warned).first(path) {
            tracing::warn!(path = %truncate(path), error, "{message}");
        }
    }
}
