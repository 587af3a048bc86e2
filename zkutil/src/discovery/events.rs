//! Per-child events: the persistent recursive watch a [`Discovery`]
//! follows its base path with (ZooKeeper 3.6+), each event applied to the
//! snapshot alone, and the fallback to re-listing when ZooKeeper has no
//! such watches.
//!
//! [`Discovery`]: super::Discovery

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use super::instance::Instance;
use super::instances::Instances;
use super::read::{read_decoded, read_instances};
use super::shared::{Shared, Wake};
use super::snapshot::Change;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::session::{NodeEvent, WatchEvent};
use crate::sync::lock;

/// Puts `instance` in its list unless its endpoint is listed already, as
/// a listing would: in service before out of service, else the first one.
fn place(instances: &mut Instances, out_of_service: &mut Instances, instance: Instance) {
    if instances.contains(instance.endpoint) {
        return;
    }
    if instance.enabled {
        out_of_service.remove(instance.endpoint);
        instances.insert(instance);
    } else {
        out_of_service.insert(instance);
    }
}

/// Whether `err` says ZooKeeper does not know persistent watches.
pub(super) fn refuses_persistent_watches(err: &Error) -> bool {
    matches!(err, Error::Zk { source, .. } if source.kind() == crate::error::ZkErrorKind::Unimplemented)
}

impl Shared {
    /// Adds the persistent recursive watch, or learns that ZooKeeper has
    /// none (older than 3.6) and falls back to re-listing.
    pub(super) fn add_recursive_watch(&self, wake: &mpsc::Sender<Wake>) -> Result<()> {
        let tx = wake.clone();
        let added = self
            .session
            .watch_recursive(self.base_path.as_str(), move |event| {
                let _ = tx.send(Wake::Node(event));
            });
        match added {
            Ok(watch) => {
                *lock(&self.recursive) = Some(watch);
                Ok(())
            }
            Err(err) if refuses_persistent_watches(&err) => {
                self.events.store(false, Ordering::SeqCst);
                tracing::info!(path = %self.base_path, "ZooKeeper has no persistent watches (older than 3.6): re-listing on every change");
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Applies one event of the persistent watch: a child of the base path
    /// created, deleted or changed. Deeper nodes and the base path itself
    /// are not instances.
    pub(super) fn apply(&self, event: &NodeEvent) -> Result<()> {
        if event.path == self.base_path.as_str() {
            // Its children's deletions came first; what is left to say is
            // whether it exists.
            match event.kind {
                WatchEvent::Deleted => self.base_missing.store(true, Ordering::SeqCst),
                WatchEvent::Created => self.base_missing.store(false, Ordering::SeqCst),
                _ => {}
            }
            return Ok(());
        }
        let prefix = format!("{}/", self.base_path);
        let Some(name) = event
            .path
            .strip_prefix(&prefix)
            .filter(|n| !n.contains('/'))
        else {
            return Ok(());
        };
        // Where the child's instance was, if it had one: its name says for
        // a plain child, its data (remembered) for the others.
        let was_at = match Endpoint::from_node_name(name) {
            Ok(endpoint) => Some(endpoint),
            Err(_) => lock(&self.decoded)
                .get(name)
                .and_then(|i| i.as_ref().map(|i| i.endpoint)),
        };
        let new = match event.kind {
            WatchEvent::Deleted => {
                lock(&self.decoded).remove(name);
                None
            }
            WatchEvent::Created | WatchEvent::DataChanged => {
                self.base_missing.store(false, Ordering::SeqCst);
                self.read_child(name)?
            }
            _ => return Ok(()),
        };
        let now_at = new.as_ref().map(|i| i.endpoint);
        lock(&self.holders).moved(name, was_at, now_at);
        self.publish_child(name, was_at, new)
    }

    /// Replaces the instance of child `name` (listed at `was_at`, if it
    /// was) by `new` (none: it is gone), telling subscribers what that
    /// changed. One child's change costs O(log N): the lists are
    /// persistent, and the old entry is found by its endpoint. Where
    /// another child names the same endpoint (one server registered in two
    /// formats during a migration), that endpoint is decided again as a
    /// listing would: an instance in service before one out of it.
    fn publish_child(
        &self,
        name: &str,
        was_at: Option<Endpoint>,
        new: Option<Instance>,
    ) -> Result<()> {
        let before = {
            let current = self.current();
            (current.instances.clone(), current.out_of_service.clone())
        };
        let (mut instances, mut out_of_service) = before.clone();
        let old = was_at.and_then(|endpoint| {
            instances
                .remove_node(endpoint, name)
                .or_else(|| out_of_service.remove_node(endpoint, name))
        });
        let now_at = new.as_ref().map(|i| i.endpoint);
        // Once each: a child rewritten at the same endpoint must not read
        // another child of that endpoint twice.
        let mut affected: Vec<Endpoint> = was_at.into_iter().chain(now_at).collect();
        affected.dedup();
        let others: Vec<(Endpoint, String)> = {
            let holders = lock(&self.holders);
            affected
                .iter()
                .flat_map(|e| holders.others(*e, name).into_iter().map(move |n| (*e, n)))
                .collect()
        };
        if old == new && others.is_empty() {
            // Data rewritten as it was: the lists stay as they are.
            self.publish_with(before.0, before.1, Vec::new(), false);
            return Ok(());
        }
        if let Some(new) = &new {
            place(&mut instances, &mut out_of_service, new.clone());
        }
        for (endpoint, other) in &others {
            // The other child's instance, as listed or as read now.
            let listed = before
                .0
                .find(*endpoint)
                .into_iter()
                .chain(before.1.find(*endpoint))
                .find(|i| &*i.node == other)
                .cloned();
            let instance = match listed {
                Some(instance) => Some(instance),
                None => match Endpoint::from_node_name(other) {
                    Ok(_) => self.read_child(other)?,
                    Err(_) => lock(&self.decoded).get(other).cloned().flatten(),
                },
            };
            if let Some(instance) = instance.filter(|i| i.endpoint == *endpoint) {
                place(&mut instances, &mut out_of_service, instance);
            }
        }
        // What changed in service, endpoint by endpoint.
        let mut changes = Vec::new();
        for endpoint in &affected {
            match (before.0.find(*endpoint), instances.find(*endpoint)) {
                (Some(gone), None) => changes.push(Change::Removed(gone.clone())),
                (None, Some(came)) => changes.push(Change::Added(came.clone())),
                _ => {}
            }
        }
        changes.sort_by_key(|c| !matches!(c, Change::Removed(_)));
        self.publish_with(instances, out_of_service, changes, true);
        Ok(())
    }

    /// One child's instance, read now: `None` when it is gone or none of
    /// the formats (warned once).
    fn read_child(&self, name: &str) -> Result<Option<Instance>> {
        let warn = |path: &str, error: &str, message: &str| self.warn_once(path, error, message);
        let canonical = Endpoint::from_node_name(name)
            .ok()
            .filter(|e| e.node_name() == name);
        if let Some(endpoint) = canonical {
            if !self.with_metadata {
                return Ok(Some(Instance::new(endpoint)));
            }
            return Ok(read_instances(&self.session, &self.base_path, &[endpoint], warn)?.pop());
        }
        let read = read_decoded(&self.session, &self.base_path, &[name.to_owned()], warn)?;
        let mut decoded = lock(&self.decoded);
        match read.into_iter().next() {
            Some((_, instance)) => {
                decoded.insert(name.to_owned(), instance.clone());
                Ok(instance)
            }
            // Gone already: its deletion event follows.
            None => {
                decoded.remove(name);
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ZkError, ZkErrorKind};

    fn zk(kind: ZkErrorKind) -> Error {
        Error::Zk {
            op: "watch",
            path: "/go_servers".into(),
            source: ZkError::new(kind, false, std::io::Error::other("from the server")),
        }
    }

    #[test]
    fn only_a_request_zookeeper_does_not_know_falls_back_to_re_listing() {
        // A ZooKeeper older than 3.6 answers addWatch with UNIMPLEMENTED.
        assert!(refuses_persistent_watches(&zk(ZkErrorKind::Unimplemented)));
        for kind in [
            ZkErrorKind::NoAuth,
            ZkErrorKind::ConnectionLoss,
            ZkErrorKind::Other,
        ] {
            assert!(
                !refuses_persistent_watches(&zk(kind)),
                "{kind:?} is retried, not a fallback"
            );
        }
        assert!(!refuses_persistent_watches(&Error::Closed));
    }
}
