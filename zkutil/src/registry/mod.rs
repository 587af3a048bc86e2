//! `Registration`: one endpoint advertised as an EPHEMERAL znode.
//!
//! A server registers each address it listens on as `<base>/<ip:port>`,
//! with JSON [`Metadata`] as the node's data. The node is ephemeral, so a
//! server that dies without a word still disappears once its session
//! expires; a server that stops cleanly deletes its nodes first
//! ([`Registration::deregister`]), so clients stop picking it at once.
//!
//! Creating is owner-aware. A node of the same name may already exist:
//! created by this session before a lost connection hid the answer (adopt
//! it), or left by an earlier run of the same server whose session has not
//! expired yet (delete exactly the version we read, then create ours). Blind
//! deletes are never made, and deregistration only deletes a node that this
//! session owns.
//!
//! Once created, a registration is kept by its own maintenance thread:
//!
//! * the session expired and was rebuilt ([`SessionEvent::Rebuilt`](crate::SessionEvent::Rebuilt)): the
//!   node is re-created, owned by the new session;
//! * the node was deleted by someone else (an operator with `zkCli`): a
//!   one-shot watch sees it and the node is re-created at once, with a
//!   warning;
//! * the connection dropped and came back with the same session: nothing is
//!   deleted or re-created (watchers of the base path see no flap; compare
//!   Curator, which deletes and re-creates on every reconnect);
//! * a check fails (ZooKeeper down): retried with capped exponential
//!   backoff and jitter, one log line per failed attempt;
//! * whether the node is in place is kept for a health check to read
//!   ([`Registration::status`]);
//! * with auth, before every re-creation the parent is checked again as
//!   [`OpenParent`] says: while we were away (an expiry) a stranger may
//!   have replaced the empty parent by an open one. Refused: not
//!   re-created (one error line naming the path, the ACL and the fix),
//!   retried with backoff until someone fixes it; tightened, then
//!   re-created.
//!
//! Deregistration first stops that thread and waits for it, then deletes
//! the node (ours, or one left by our own earlier session): it never races
//! a re-registration into resurrecting the node. It has one deadline for
//! all of this, and makes no ZooKeeper call while the session is not
//! connected: a shutdown never waits on an unreachable ZooKeeper.

mod claim;
mod keeper;
mod member;
mod open_parent;
mod registrar;
mod status;
mod takeover;

use crate::sync::lock;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use self::claim::Claim;
use self::keeper::{Keeper, KeptData, Maintainer, Target, Wake, create_owned};
use self::member::create_member;
pub use self::open_parent::OpenParent;
use self::open_parent::guard_parent;
pub use self::registrar::Registrar;
pub use self::status::RegistrationStatus;
pub use self::takeover::Takeover;
use crate::base_path::BasePath;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::format::MEMBER_PREFIX;
pub use crate::metadata::{MAX_METADATA_LEN, Metadata};
use crate::session::{Session, SessionId, SessionState};

/// How many times a create (or a parent's ACL check) races with a
/// concurrent delete or create before we give up; each round trip is
/// bounded, so this bounds the whole call.
const CREATE_ATTEMPTS: usize = 5;

/// How [`Registration::register`] came to own its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The node did not exist; we created it.
    Created,
    /// The node was already ours (a create whose answer was lost).
    Adopted,
    /// Another session's node was in the way and [`Takeover`] allowed
    /// replacing it (an earlier run of the same server, not yet expired);
    /// we deleted it and created ours.
    ReplacedStale {
        /// The session that owned the node we deleted.
        previous_owner: SessionId,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Created => f.write_str("created"),
            Outcome::Adopted => f.write_str("adopted (already ours)"),
            Outcome::ReplacedStale { previous_owner } => {
                write!(f, "replaced the node of session {previous_owner}")
            }
        }
    }
}

/// One endpoint's ephemeral node, owned by a session.
///
/// Deleted by [`Registration::deregister`]; dropping it does the same on a
/// best-effort basis and logs a failure.
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use zkutil::{BasePath, Endpoint, Metadata, Outcome, Registration, SessionConfig};
///
/// let session = Arc::new(SessionConfig::new(hosts).connect()?);
/// let endpoint: Endpoint = "10.0.0.5:8897".parse()?;
/// let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "1.0.0");
/// let registration = Registration::register(&session, &BasePath::from_static("/go_servers"), endpoint, &metadata)?;
/// assert_eq!(registration.path(), "/go_servers/10.0.0.5:8897");
/// assert_eq!(registration.outcome(), Outcome::Created);
/// // Kept by its own thread from now on: re-created after an expiry or a
/// // deletion by someone else, until deregistered (or dropped).
/// registration.deregister()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Registration {
    session: Arc<Session>,
    endpoint: Endpoint,
    /// The node's path; a serverset member's changes when it is re-created.
    path: Arc<Mutex<String>>,
    outcome: Outcome,
    /// Our own earlier sessions (the ones this session replaced), whose
    /// leftover nodes of this path are ours to replace or delete.
    previous: Arc<Mutex<Vec<SessionId>>>,
    maintainer: Option<Maintainer>,
    /// The data its keeper re-creates the node with.
    kept: Arc<Mutex<KeptData>>,
    status: RegistrationStatus,
}

impl Registration {
    /// Creates `<base_path>/<endpoint>` as an EPHEMERAL node with `metadata`
    /// as its data, creating `base_path` when missing. A node of another
    /// session in the way is left alone ([`Takeover::Refuse`]).
    ///
    /// # Errors
    ///
    /// [`Error::Taken`] when another session holds the node;
    /// [`Error::OpenAcl`] when, with auth, `base_path` exists open to the
    /// world ([`OpenParent::Refuse`]);
    /// [`Error::InvalidArgument`] for an endpoint that cannot be connected
    /// to (port 0, `0.0.0.0`), or one that this session registers already
    /// (two maintainers would fight over one node); otherwise ZooKeeper
    /// errors naming the path ([`Error::is_retryable`] tells whether to try
    /// again).
    pub fn register(
        session: &Arc<Session>,
        base_path: &BasePath,
        endpoint: Endpoint,
        metadata: &Metadata,
    ) -> Result<Registration> {
        Registration::register_with(
            session,
            base_path,
            endpoint,
            metadata.to_json(),
            Takeover::Refuse,
        )
    }

    /// Like [`Registration::register`] with `data` stored as is (the
    /// `zkutil register` sidecar stores the caller's JSON), and `takeover`
    /// deciding about another session's node in the way.
    ///
    /// # Errors
    ///
    /// As [`Registration::register`]; also [`Error::Metadata`] for data
    /// over [`MAX_METADATA_LEN`].
    pub fn register_with(
        session: &Arc<Session>,
        base_path: &BasePath,
        endpoint: Endpoint,
        data: Vec<u8>,
        takeover: Takeover,
    ) -> Result<Registration> {
        let path = base_path.node_path(&endpoint);
        Registration::register_at(
            session,
            base_path.as_str(),
            Some(path),
            endpoint,
            data,
            (takeover, OpenParent::Refuse),
        )
    }

    /// Creates `path` (a child of `parent`, created when missing, and
    /// guarded as `open_parent` says) for `endpoint`, holding `data`, and
    /// keeps it; with no `path`, a serverset member `<parent>/member_…`,
    /// found again by owner and endpoint.
    fn register_at(
        session: &Arc<Session>,
        parent: &str,
        path: Option<String>,
        endpoint: Endpoint,
        data: Vec<u8>,
        (takeover, open_parent): (Takeover, OpenParent),
    ) -> Result<Registration> {
        let claimed = path
            .clone()
            .unwrap_or_else(|| format!("{parent}/{MEMBER_PREFIX}{endpoint}"));
        if Endpoint::from_node_name(&endpoint.node_name()).is_err() {
            return Err(Error::invalid(
                "endpoint",
                &endpoint.to_string(),
                "not an address clients can connect to",
            ));
        }
        if !session.config().has_auth() {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!("no ZooKeeper auth: registrations use an open ACL, anyone who can reach ZooKeeper can delete or overwrite them");
            });
        }
        if data.len() > MAX_METADATA_LEN {
            return Err(Error::Metadata {
                path: claimed,
                reason: format!("{} bytes, more than {MAX_METADATA_LEN}", data.len()),
            });
        }
        guard_parent(session, parent, open_parent)?;
        let claim = Claim::take(session, &claimed).ok_or_else(|| {
            Error::invalid(
                "endpoint",
                &endpoint.to_string(),
                "registered already by this session",
            )
        })?;
        // Subscribed before the first create: a session rebuilt meanwhile
        // is seen by the maintainer, which then re-checks the node.
        let (wake, woken) = mpsc::channel();
        let events = wake.clone();
        // Unsubscribes itself once the thread (the receiver) is gone.
        session.subscribe(move |event| events.send(Wake::Session(event)).is_ok());
        let (outcome, target) = match path {
            Some(path) => {
                let created = create_owned(session, parent, &path, &data, |_, held| {
                    takeover.allows(held)
                })?;
                let outcome = created.map_err(|owner| Error::Taken { endpoint, owner })?;
                (outcome, Target::Fixed(path))
            }
            None => {
                // A member naming the very endpoint a SameHost registrant
                // has just bound is proof enough: that port is ours now.
                let may_replace = |_, _: &[u8]| takeover != Takeover::Refuse;
                let created = create_member(session, parent, endpoint, &data, may_replace)?;
                let (outcome, path) =
                    created.map_err(|(owner, _)| Error::Taken { endpoint, owner })?;
                let current = Arc::new(Mutex::new(path));
                (outcome, Target::Member { endpoint, current })
            }
        };
        let path = target.shared_path();
        let previous = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::new(Mutex::new(KeptData::new(data)));
        let status = RegistrationStatus::in_place();
        let keeper = Keeper {
            session: session.clone(),
            base_path: parent.to_owned(),
            target,
            data: kept.clone(),
            previous: previous.clone(),
            wake: wake.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            registered_by: session.id(),
            open_parent,
            status: status.clone(),
            _claim: claim,
        };
        let maintainer = keeper.start(wake, woken)?;
        Ok(Registration {
            session: session.clone(),
            endpoint,
            path,
            outcome,
            previous,
            maintainer: Some(maintainer),
            kept,
            status,
        })
    }

    /// The registered endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The znode path (a serverset member's is new after each re-creation).
    pub fn path(&self) -> String {
        lock(&self.path).clone()
    }

    /// The node's data as its keeper last saw it: what it registered, or
    /// an operator's later change ([`Control`](crate::Control)) — what a
    /// re-created node will hold. The keeper learns of a change one watch
    /// round trip after it is written; a node deleted within that window is
    /// re-created as it was before the change.
    pub fn data(&self) -> Vec<u8> {
        lock(&self.kept).bytes.clone()
    }

    /// How the node came to be ours.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The session that owns the node.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Deletes the node if it is ours (or left by one of our own earlier
    /// sessions). A node already gone is fine. Takes at most the session's
    /// request timeout.
    ///
    /// # Errors
    ///
    /// As [`Registration::deregister_within`].
    pub fn deregister(self) -> Result<()> {
        let timeout = self.session.config().request_timeout();
        self.deregister_within(timeout)
    }

    /// Deletes the node like [`Registration::deregister`], all within
    /// `timeout` (for shutdowns with one overall deadline). Makes no
    /// ZooKeeper call while the session is not connected.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] when the session is not connected, a timeout
    /// when the deadline passed, or another ZooKeeper error naming the path;
    /// the node then goes when the session closes or expires.
    pub fn deregister_within(mut self, timeout: Duration) -> Result<()> {
        let deadline = crate::session::deadline_after(timeout);
        self.stop_and_delete(deadline)
    }

    fn stop_and_delete(&mut self, deadline: Instant) -> Result<()> {
        let Some(maintainer) = self.maintainer.take() else {
            return Ok(());
        };
        self.status.set(false);
        if !maintainer.stop(deadline) {
            tracing::debug!(path = %self.path(), "registration thread still in a ZooKeeper call");
        }
        // Again: the thread may have set it back in the moment before it
        // saw the stop.
        self.status.set(false);
        if self.session.state() != SessionState::Connected {
            return Err(Error::Unreachable {
                op: "delete",
                path: self.path(),
            });
        }
        let previous = lock(&self.previous).clone();
        delete_owned(&self.session, &self.path(), &previous, deadline)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let deadline = crate::session::deadline_after(self.session.config().request_timeout());
        if let Err(err) = self.stop_and_delete(deadline) {
            tracing::warn!(path = %self.path(), error = %err.chain(), "could not deregister on drop");
        }
    }
}

/// Deletes `path` if this session or one of our `previous` sessions owns
/// it, all before `deadline`.
fn delete_owned(
    session: &Session,
    path: &str,
    previous: &[SessionId],
    deadline: Instant,
) -> Result<()> {
    let stat = match session.stat_by(path, deadline)? {
        Some(stat)
            if stat.ephemeral_owner() == session.id()
                || previous.contains(&stat.ephemeral_owner()) =>
        {
            stat
        }
        // Gone already, or someone else's now: not ours to delete.
        _ => return Ok(()),
    };
    match session.delete_by(path, Some(stat.version()), deadline) {
        Err(err) if err.is_no_node() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "testing")]
    #[test]
    fn deregistration_deletes_a_node_of_our_own_earlier_session_and_no_other() {
        let zk = crate::testing::zookeeper();
        let current = crate::testing::connect(&zk, Duration::from_secs(10));
        let earlier = crate::testing::connect(&zk, Duration::from_secs(10));
        earlier.create_ephemeral("/n", b"").expect("create");
        let deadline = crate::session::deadline_after(Duration::from_secs(10));
        delete_owned(&current, "/n", &[], deadline).expect("delete");
        assert!(
            earlier.stat("/n").expect("stat").is_some(),
            "another session's node is not ours to delete"
        );
        delete_owned(&current, "/n", &[earlier.id()], deadline).expect("delete");
        assert!(
            earlier.stat("/n").expect("stat").is_none(),
            "the node of our earlier session is deleted"
        );
    }
}
