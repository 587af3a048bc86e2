//! Publishing: a new snapshot replaces the current one, waiters are woken
//! and subscribers told what changed; the view marked stale (keeping its
//! instances) when it cannot be refreshed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::instance::Instance;
use super::instances::Instances;
use super::read::truncate;
use super::shared::Shared;
use super::snapshot::{Change, Snapshot};
use crate::endpoint::Endpoint;
use crate::session::SessionState;
use crate::sync::lock;

impl Shared {
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
            // A re-listing still owed (after a reconnect, its reads failed)
            // leaves the view stale, whatever events are applied on it.
            let fresh = session_state == SessionState::Connected
                && !self.reread.load(std::sync::atomic::Ordering::SeqCst);
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
