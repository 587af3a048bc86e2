//! What a keeper keeps: the [`Keeper`] itself, its node ([`Target`]),
//! the data it re-creates it with ([`KeptData`]), how it last saw it
//! ([`Seen`]) and why its thread wakes ([`Wake`]); and the data and
//! parent checks made before every (re-)create.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};

use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::registry::{Claim, OpenParent, Outcome, RegistrationStatus, guard_parent};
use crate::session::{NodeStat, Session, SessionEvent, SessionId, WatchEvent};
use crate::sync::lock;

/// Why the maintenance thread woke up.
#[derive(Debug)]
pub(in crate::registry) enum Wake {
    Watch(WatchEvent),
    Session(SessionEvent),
    Stop,
}

/// How many of our own earlier sessions we remember; one per rebuild, and
/// a node older than a few rebuilds has expired long ago.
pub(super) const PREVIOUS_SESSIONS: usize = 8;

/// What the maintenance thread keeps: one node, ours, until stopped
/// (what it does with it: see the module `keeper`).
pub(in crate::registry) struct Keeper {
    pub(in crate::registry) session: Arc<Session>,
    pub(in crate::registry) base_path: String,
    pub(in crate::registry) target: Target,
    /// The node's data as last seen: what it is re-created with.
    pub(in crate::registry) data: Arc<Mutex<KeptData>>,
    pub(in crate::registry) previous: Arc<Mutex<Vec<SessionId>>>,
    pub(in crate::registry) wake: mpsc::Sender<Wake>,
    pub(in crate::registry) stop: Arc<AtomicBool>,
    /// The session that owned the node when it was registered.
    pub(in crate::registry) registered_by: SessionId,
    /// What the registration was told to do with a parent open to
    /// strangers: applied again before every re-creation, since the parent
    /// may have been deleted and re-created open while we were away (our
    /// expired session's node gone, it was empty).
    pub(in crate::registry) open_parent: OpenParent,
    /// Whether the node is in place, for the registration's holder.
    pub(in crate::registry) status: RegistrationStatus,
    pub(in crate::registry) _claim: Claim,
}

/// The data a keeper re-creates its node with: what the registrant wrote,
/// then whatever an operator changed it to (out of rotation, a weight):
/// a re-created node keeps the operator's last change, not the default.
#[derive(Debug)]
pub(in crate::registry) struct KeptData {
    pub(in crate::registry) bytes: Vec<u8>,
    /// The node's data version these bytes are (`None`: not known, read
    /// at the next check).
    pub(in crate::registry) version: Option<i32>,
}

impl KeptData {
    pub(in crate::registry) fn new(bytes: Vec<u8>) -> KeptData {
        KeptData {
            bytes,
            version: Some(0),
        }
    }
}

/// The node a keeper keeps.
#[derive(Debug)]
pub(in crate::registry) enum Target {
    /// A node of a fixed name (plain, Curator, Spring).
    Fixed(String),
    /// A serverset member: a sequential name that changes when it is
    /// re-created; found again by its owner and the endpoint in its data.
    Member {
        endpoint: Endpoint,
        current: Arc<Mutex<String>>,
    },
}

impl Target {
    /// The node's path now.
    pub(in crate::registry) fn path(&self) -> String {
        match self {
            Target::Fixed(path) => path.clone(),
            Target::Member { current, .. } => lock(current).clone(),
        }
    }

    /// The path as the registration shares it with its keeper.
    pub(in crate::registry) fn shared_path(&self) -> Arc<Mutex<String>> {
        match self {
            Target::Fixed(path) => Arc::new(Mutex::new(path.clone())),
            Target::Member { current, .. } => current.clone(),
        }
    }
}

/// The node as the keeper last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::registry) enum Seen {
    /// Owned by the current session (this one).
    Ours(SessionId),
    /// Left by one of our earlier sessions; we replaced it.
    Replaced(SessionId),
    /// Owned by another live session (watched; taken over when it goes).
    Foreign(SessionId),
}

impl Keeper {
    /// Before a (re-)create: the parent, with auth, is not open to
    /// strangers, or is tightened, as the registration was told
    /// ([`OpenParent`]); a missing one is created with our ACL.
    ///
    /// # Errors
    ///
    /// [`Error::OpenAcl`] when it is open and refused (or cannot be
    /// tightened): the caller retries with backoff, so the node comes back
    /// once someone fixes the parent.
    pub(in crate::registry) fn guard_parent(&self) -> Result<()> {
        guard_parent(&self.session, &self.base_path, self.open_parent)
    }

    /// The data to (re-)create the node with.
    pub(in crate::registry) fn kept_bytes(&self) -> Vec<u8> {
        lock(&self.data).bytes.clone()
    }

    /// After a create: a node made now holds the kept bytes at version 0;
    /// one adopted may have been changed since (read at the next check).
    pub(in crate::registry) fn created<E>(&self, created: &std::result::Result<Outcome, E>) {
        lock(&self.data).version = match created {
            Ok(Outcome::Created | Outcome::ReplacedStale { .. }) => Some(0),
            _ => None,
        };
    }

    /// Our node at `stat`: when its data is not the version kept, someone
    /// changed it (an operator's `zkutil disable`, `weight`): read it and
    /// keep it, so that a re-created node carries that change.
    pub(in crate::registry) fn follow_data(&self, path: &str, stat: NodeStat) -> Result<()> {
        if lock(&self.data).version == Some(stat.version()) {
            return Ok(());
        }
        let (bytes, read) = match self.session.get_data(path) {
            Ok(read) => read,
            // Gone meanwhile: its deletion event follows.
            Err(err) if err.is_no_node() => return Ok(()),
            Err(err) => return Err(err),
        };
        if read.ephemeral_owner() != self.session.id() {
            return Ok(());
        }
        let mut kept = lock(&self.data);
        if kept.bytes != bytes {
            let state = crate::control::describe(&self.target.path(), &bytes);
            tracing::info!(path, version = read.version(), state = %state,
                "registration changed by someone else; kept for any re-creation");
            kept.bytes = bytes;
        }
        kept.version = Some(read.version());
        Ok(())
    }
}
