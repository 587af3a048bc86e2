//! The values a session reports: node stats, session events and states,
//! and what a one-shot watch saw.

use std::fmt;

use zookeeper_client as zk;

/// A ZooKeeper session id. Shown in hex (`0x1000a2b3c4d0001`), as
/// ZooKeeper's own logs and `cons` show it, so the two can be matched.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(i64);

impl SessionId {
    /// The id as ZooKeeper sends it (0 in a stat: no owner).
    pub fn new(id: i64) -> SessionId {
        SessionId(id)
    }

    /// The id as a number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::LowerHex for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// The parts of a znode's `Stat` that the registry cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStat {
    version: i32,
    ephemeral_owner: i64,
    ctime_ms: i64,
    mtime_ms: i64,
    data_length: i32,
    num_children: i32,
}

impl NodeStat {
    pub(super) fn from_stat(stat: &zk::Stat) -> NodeStat {
        NodeStat {
            version: stat.version,
            ephemeral_owner: stat.ephemeral_owner,
            ctime_ms: stat.ctime,
            mtime_ms: stat.mtime,
            data_length: stat.data_length,
            num_children: stat.num_children,
        }
    }

    /// The data version, for conditional writes and deletes.
    pub fn version(&self) -> i32 {
        self.version
    }

    /// The session that owns this node if it is ephemeral, else id 0.
    pub fn ephemeral_owner(&self) -> SessionId {
        SessionId(self.ephemeral_owner)
    }

    /// Creation time, milliseconds since the Unix epoch (server clock).
    pub fn ctime_ms(&self) -> i64 {
        self.ctime_ms
    }

    /// Last modification time, milliseconds since the Unix epoch.
    pub fn mtime_ms(&self) -> i64 {
        self.mtime_ms
    }

    /// Length of the node's data in bytes.
    pub fn data_length(&self) -> i32 {
        self.data_length
    }

    /// Number of children.
    pub fn num_children(&self) -> i32 {
        self.num_children
    }
}

/// What happened to a session, as told to its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Connected again after a disconnection: the same session, its
    /// ephemeral nodes intact. Watches may be re-checked; nothing needs
    /// re-creating.
    Connected,
    /// The connection is lost; the session may still be alive.
    Disconnected,
    /// The session expired and was replaced by `current` (equal to
    /// `previous` when the old session could be re-attached): ephemeral
    /// nodes of `previous` may be gone and watches lost. Re-create, re-arm.
    Rebuilt {
        /// The session that expired.
        previous: SessionId,
        /// The session now in use.
        current: SessionId,
    },
    /// ZooKeeper rejected our credentials: fatal.
    AuthFailed,
}

/// A session's state as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// Connected to a server.
    Connected,
    /// Connection lost; the client is reconnecting within the session timeout.
    Disconnected,
    /// The session expired; a new one is being built.
    Rebuilding,
    /// Authentication failed; the session is unusable.
    AuthFailed,
    /// Closed by us.
    Closed,
}

/// What a persistent recursive watch saw: one node's event, with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEvent {
    /// What happened (`SessionEnded`: the watch is gone with the session).
    pub kind: WatchEvent,
    /// The node's path (empty for `SessionEnded`).
    pub path: String,
}

/// What a one-shot watch saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The watched node was created.
    Created,
    /// The watched node was deleted.
    Deleted,
    /// The watched node's data changed.
    DataChanged,
    /// A child was added or removed.
    ChildrenChanged,
    /// The session ended (expired or closed): the watch is gone.
    SessionEnded,
}
