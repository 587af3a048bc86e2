//! What a discovery hands out: [`Instance`]s in a consistent [`Snapshot`],
//! and the [`Change`]s between two of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Instances;
use crate::endpoint::Endpoint;
use crate::format::Format;
use crate::metadata::Metadata;
use crate::session::SessionState;

/// The weight of an instance whose registration gives none.
pub const DEFAULT_WEIGHT: u32 = 100;

/// One registered server: where to connect, and what it said about itself
/// when that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub(super) endpoint: Endpoint,
    /// Shared, not copied: several snapshots and changes hold the same
    /// instance.
    pub(super) metadata: Option<Arc<Metadata>>,
    pub(super) format: Format,
    pub(super) enabled: bool,
    /// The child's name under the base path.
    pub(super) node: Arc<str>,
    /// Its share of the requests under the weighted strategies.
    pub(crate) weight: u32,
    /// Why an operator took it out of rotation, when said.
    pub(super) reason: Option<Arc<str>>,
    /// When its node was created (ms since the epoch, ZooKeeper's clock),
    /// when its data was read: where warm-up counts from.
    pub(crate) registered_ms: Option<i64>,
}

impl Instance {
    /// An instance known only by its endpoint.
    pub fn new(endpoint: Endpoint) -> Instance {
        Instance {
            endpoint,
            metadata: None,
            format: Format::Plain,
            enabled: true,
            node: endpoint.node_name().into(),
            weight: DEFAULT_WEIGHT,
            reason: None,
            registered_ms: None,
        }
    }

    /// An instance read from child `node` (created at `ctime_ms`), as its
    /// data says.
    pub(crate) fn decoded(node: &str, decoded: crate::format::Decoded, ctime_ms: i64) -> Instance {
        Instance {
            endpoint: decoded.endpoint,
            metadata: None,
            format: decoded.format,
            enabled: decoded.enabled,
            node: node.into(),
            weight: decoded.weight.unwrap_or(DEFAULT_WEIGHT),
            reason: decoded.reason.map(Arc::from),
            registered_ms: Some(ctime_ms),
        }
    }

    /// Why an operator took it out of rotation (`zkutil disable --reason`),
    /// when the format has room for it and one was given.
    pub fn disabled_reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// When it was registered (its node's creation, by ZooKeeper's clock),
    /// when its data was read; warm-up counts from there.
    pub fn registered_at(&self) -> Option<std::time::SystemTime> {
        let ms = u64::try_from(self.registered_ms?).ok()?;
        std::time::UNIX_EPOCH.checked_add(Duration::from_millis(ms))
    }

    /// The name of its node under the base path (`ip:port` for a plain
    /// registration, the instance id or `member_…` for the others).
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// Its weight: the registration's `weight` (0 = picked only when
    /// nothing else is up), 100 when it says none.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The registry format of the child it was read from.
    pub fn format(&self) -> Format {
        self.format
    }

    /// False when its registration marks it out of service (it is then in
    /// [`Snapshot::out_of_service`], never picked).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// An instance with its registration metadata.
    pub fn with_metadata(endpoint: Endpoint, metadata: Metadata) -> Instance {
        Instance {
            endpoint,
            weight: metadata.weight().unwrap_or(DEFAULT_WEIGHT),
            metadata: Some(Arc::new(metadata)),
            format: Format::Plain,
            enabled: true,
            node: endpoint.node_name().into(),
            reason: None,
            registered_ms: None,
        }
    }

    /// Where to connect.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The registration's metadata, when it was read and valid.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_deref()
    }
}

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
