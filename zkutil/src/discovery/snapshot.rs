//! What a discovery hands out: a consistent [`Snapshot`] of the
//! instances, and the [`Change`]s between two of them.

use std::time::{Duration, Instant};

use super::instance::Instance;
use super::instances::Instances;
use crate::session::SessionState;

/// A consistent view of the registered instances at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(super) instances: Instances,
    pub(super) out_of_service: Instances,
    pub(super) version: u64,
    pub(super) refreshed_at: Option<Instant>,
    pub(super) stale_since: Option<Instant>,
    pub(super) session_state: SessionState,
    /// The last known instances, and until when they are offered, after a
    /// listing right after a reconnect found every one of them gone.
    pub(super) fallback: Option<(Instances, Instant)>,
}

impl Snapshot {
    /// The instances in service, sorted by endpoint: what clients pick from.
    pub fn instances(&self) -> &Instances {
        &self.instances
    }

    /// The instances registered but marked out of service (Curator
    /// `enabled: false`, Spring `instance_status` not `UP`, serverset
    /// `status` not `ALIVE`), sorted by endpoint.
    pub fn out_of_service(&self) -> &Instances {
        &self.out_of_service
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

    /// The last known instances, offered while [`Snapshot::instances`] is
    /// empty because every one of them vanished soon after a reconnect or
    /// a session rebuild (within a minute).
    ///
    /// That is what a partition of ZooKeeper itself looks like: cut off
    /// from everyone, ZooKeeper expires every session, and after the heal a
    /// client may list before the servers have registered again, or see
    /// their sessions end after its own came back, although they kept
    /// running (Synapse's `use_previous_backends`). The offer lasts the
    /// session timeout (at least 10 s), or until the registry lists an
    /// instance in service again. `instances()` stays the true listing;
    /// whether to use this is the caller's choice, and a server that fails
    /// is skipped as usual. Instances the registry lists out of rotation
    /// are never in it.
    pub fn fallback(&self) -> Option<&Instances> {
        self.fallback
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(instances, _)| instances)
    }
}

/// A change seen by [`Discovery`](super::Discovery), for subscribers.
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
