//! Listing the base path: its children parsed, the data of the new ones
//! read (and every one's after a reconnect or a session rebuild), the
//! result published. With per-child events a listing adds the persistent
//! watch first; without, it arms a one-shot watch on the children, or on
//! the base path while it is missing.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use super::instance::Instance;
use super::read::{parse_children, read_decoded, read_instances, sorted_distinct};
use super::shared::{Shared, Wake};
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::format::Format;
use crate::session::WatchEvent;
use crate::sync::lock;

impl Shared {
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
        // retried with the same need (and, meanwhile, the view is stale and
        // the decoded children kept, so that events still find what a
        // changed child was).
        let reread = self.reread.load(Ordering::SeqCst);
        {
            let present: HashSet<&str> = names.iter().map(String::as_str).collect();
            lock(&self.warned).retain_children(&self.base_path, &present);
        }
        let warn = |path: &str, error: &str, message: &str| self.warn_once(path, error, message);
        let (endpoints, others) = parse_children(names);
        let decoded = self.decode_others(&others, reread, warn)?;
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
                .filter(|i| !reread && i.metadata.is_some() && i.format == Format::Plain)
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
        if reread {
            // Before the publish, which is then fresh.
            self.reread.store(false, Ordering::SeqCst);
        }
        self.publish(sorted_distinct(instances));
        Ok(())
    }

    /// The instances of the children that are not plain names, each read
    /// and decoded once (a child's data is not followed after that: it is
    /// re-read when it is re-created), or every one again when `reread`
    /// (after a reconnect: changes may have been missed); a child that is
    /// none of the formats is remembered as such, and warned about once.
    /// What was decoded before is replaced only once the reads succeed.
    fn decode_others(
        &self,
        others: &[String],
        reread: bool,
        warn: impl Fn(&str, &str, &str),
    ) -> Result<Vec<Instance>> {
        let new: Vec<String> = if reread {
            others.to_vec()
        } else {
            let cache = lock(&self.decoded);
            others
                .iter()
                .filter(|name| !cache.contains_key(*name))
                .cloned()
                .collect()
        };
        let read = read_decoded(&self.session, &self.base_path, &new, warn)?;
        let mut cache = lock(&self.decoded);
        if reread {
            cache.clear();
        } else {
            let present: HashSet<&str> = others.iter().map(String::as_str).collect();
            cache.retain(|name, _| present.contains(name.as_str()));
        }
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
}
