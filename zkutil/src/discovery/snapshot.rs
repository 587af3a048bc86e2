//! What a discovery hands out: [`Instance`]s in a consistent [`Snapshot`],
//! and the [`Change`]s between two of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::metadata::Metadata;
use crate::session::SessionState;

/// One registered server: where to connect, and what it said about itself
/// when that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub(super) endpoint: Endpoint,
    pub(super) metadata: Option<Metadata>,
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
    pub(super) instances: Arc<[Instance]>,
    pub(super) version: u64,
    pub(super) refreshed_at: Option<Instant>,
    pub(super) stale_since: Option<Instant>,
    pub(super) session_state: SessionState,
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
