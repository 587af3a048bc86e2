//! The fallback: the last known instances, offered for a while when every
//! one of them vanishes soon after a reconnect or a session rebuild (see
//! [`Snapshot::fallback`]).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::instance::Instance;
use super::instances::Instances;
use super::shared::Shared;
use super::snapshot::Snapshot;
use crate::sync::lock;

/// How long after a reconnect or a session rebuild the vanishing of every
/// instance is taken for the aftermath of a partition of ZooKeeper rather
/// than a decommission: the servers' sessions, expired by ZooKeeper while it
/// was cut off, may end up to their own session timeout after ours (40 s is
/// ZooKeeper's default maximum).
pub(super) const RECONNECT_WINDOW: Duration = Duration::from_secs(60);

/// The shortest offer of the last known instances: the servers re-register
/// within their own session timeout of reaching ZooKeeper again, which may
/// be longer than this client's (10 s is the binaries' default).
const FALLBACK_AT_LEAST: Duration = Duration::from_secs(10);

impl Shared {
    /// The fallback the next snapshot offers (see [`Snapshot::fallback`]):
    /// set when every in-service instance vanishes (not merely out of
    /// rotation) within [`RECONNECT_WINDOW`] of a reconnect or a session
    /// rebuild, whether the listing right after it says so or per-child
    /// events a little later (the servers' sessions may expire after ours);
    /// kept while the registry lists nothing in service and the offer
    /// lasts, without any instance the registry now lists out of rotation;
    /// dropped as soon as it lists one in service.
    pub(super) fn fallback(
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
}
