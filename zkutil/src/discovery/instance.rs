//! [`Instance`]: one registered server, as a discovery hands it out.

use std::sync::Arc;
use std::time::Duration;

use super::node_name::NodeName;
use crate::endpoint::Endpoint;
use crate::format::Format;
use crate::metadata::Metadata;

/// [`Instance::registered_ms`] when its data was not read.
pub(crate) const UNKNOWN: i64 = i64::MIN;

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
    pub(super) node: NodeName,
    /// Its share of the requests under the weighted strategies.
    pub(crate) weight: u32,
    /// Why an operator took it out of rotation, when said.
    pub(super) reason: Option<Arc<str>>,
    /// When its node was created (ms since the epoch, ZooKeeper's clock),
    /// when its data was read: where warm-up counts from. [`UNKNOWN`] when
    /// not read (no `Option`: 8 bytes less per instance, issue 33).
    pub(crate) registered_ms: i64,
}

impl Instance {
    /// An instance known only by its endpoint.
    pub fn new(endpoint: Endpoint) -> Instance {
        Instance {
            endpoint,
            metadata: None,
            format: Format::Plain,
            enabled: true,
            node: endpoint.node_name().as_str().into(),
            weight: DEFAULT_WEIGHT,
            reason: None,
            registered_ms: UNKNOWN,
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
            registered_ms: ctime_ms,
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
        if self.registered_ms == UNKNOWN {
            return None;
        }
        let ms = u64::try_from(self.registered_ms).ok()?;
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
    /// [`Snapshot::out_of_service`](super::Snapshot::out_of_service), never picked).
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
            node: endpoint.node_name().as_str().into(),
            reason: None,
            registered_ms: UNKNOWN,
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
