//! The keeper of one registration: a thread that keeps the node ours until
//! stopped. It re-arms its watch after every event, re-creates the node
//! after a deletion or a session rebuild (replacing only nodes of our own
//! earlier sessions), retries with backoff, and says in its logs what
//! really happened to the node.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use super::{Claim, OpenParent, Outcome, guard_parent};
use crate::backoff::Backoff;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::session::{NodeStat, Session, SessionEvent, SessionId, WatchEvent};
use crate::sync::lock;

/// The maintenance thread of one registration and how to stop it.
#[derive(Debug)]
pub(super) struct Maintainer {
    stop: Arc<AtomicBool>,
    wake: mpsc::Sender<Wake>,
    /// Disconnected when the thread has ended (it holds the sender).
    ended: mpsc::Receiver<()>,
}

impl Maintainer {
    /// Stops the thread and waits for it until `deadline`: afterwards
    /// nothing re-creates the node. Returns false when the thread was still
    /// in a ZooKeeper call at the deadline; it then ends after that call
    /// (bounded by the request timeout) without another.
    pub(super) fn stop(self, deadline: Instant) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(Wake::Stop);
        let left = deadline.saturating_duration_since(Instant::now());
        matches!(
            self.ended.recv_timeout(left),
            Err(mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

/// Why the maintenance thread woke up.
#[derive(Debug)]
pub(super) enum Wake {
    Watch(WatchEvent),
    Session(SessionEvent),
    Stop,
}

/// How many times a create races with a concurrent delete or create before
/// we give up; each round trip is bounded, so this bounds the whole call.
pub(super) const CREATE_ATTEMPTS: usize = 5;

/// How many of our own earlier sessions we remember; one per rebuild, and
/// a node older than a few rebuilds has expired long ago.
pub(super) const PREVIOUS_SESSIONS: usize = 8;

/// What the maintenance thread keeps: one node, ours, until stopped.
///
/// It re-arms its watch after every event, re-creates the node after a
/// deletion or a session rebuild, retries failed checks with backoff, and
/// says in its logs what actually happened to the node.
pub(super) struct Keeper {
    pub(super) session: Arc<Session>,
    pub(super) base_path: String,
    pub(super) target: Target,
    /// The node's data as last seen: what it is re-created with.
    pub(super) data: Arc<Mutex<KeptData>>,
    pub(super) previous: Arc<Mutex<Vec<SessionId>>>,
    pub(super) wake: mpsc::Sender<Wake>,
    pub(super) stop: Arc<AtomicBool>,
    /// The session that owned the node when it was registered.
    pub(super) registered_by: SessionId,
    /// What the registration was told to do with a parent open to
    /// strangers: applied again before every re-creation, since the parent
    /// may have been deleted and re-created open while we were away (our
    /// expired session's node gone, it was empty).
    pub(super) open_parent: OpenParent,
    pub(super) _claim: Claim,
}

/// The data a keeper re-creates its node with: what the registrant wrote,
/// then whatever an operator changed it to (out of rotation, a weight):
/// a re-created node keeps the operator's last change, not the default.
#[derive(Debug)]
pub(super) struct KeptData {
    pub(super) bytes: Vec<u8>,
    /// The node's data version these bytes are (`None`: not known, read
    /// at the next check).
    pub(super) version: Option<i32>,
}

impl KeptData {
    pub(super) fn new(bytes: Vec<u8>) -> KeptData {
        KeptData {
            bytes,
            version: Some(0),
        }
    }
}

/// The node a keeper keeps.
#[derive(Debug)]
pub(super) enum Target {
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
    pub(super) fn path(&self) -> String {
        match self {
            Target::Fixed(path) => path.clone(),
            Target::Member { current, .. } => lock(current).clone(),
        }
    }

    /// The path as the registration shares it with its keeper.
    pub(super) fn shared_path(&self) -> Arc<Mutex<String>> {
        match self {
            Target::Fixed(path) => Arc::new(Mutex::new(path.clone())),
            Target::Member { current, .. } => current.clone(),
        }
    }
}

/// The node as the keeper last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// Owned by the current session (this one).
    Ours(SessionId),
    /// Left by one of our earlier sessions; we replaced it.
    Replaced(SessionId),
    /// Owned by another live session (watched; taken over when it goes).
    Foreign(SessionId),
}

impl Keeper {
    pub(super) fn start(
        self,
        wake: mpsc::Sender<Wake>,
        woken: mpsc::Receiver<Wake>,
    ) -> Result<Maintainer> {
        let stop = self.stop.clone();
        let (ended_tx, ended) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("register {}", self.target.path()))
            .spawn(move || {
                let _ended = ended_tx;
                self.run(&woken);
            })
            .map_err(|source| Error::Io {
                what: "starting a registration thread",
                source,
            })?;
        Ok(Maintainer { stop, wake, ended })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn run(&self, woken: &mpsc::Receiver<Wake>) {
        let mut backoff = Backoff::default();
        // Whether a one-shot watch is armed on the node; whether to check now.
        let (mut armed, mut check) = (false, true);
        // The node's owner when the watch was armed, to say truly what a
        // deletion was.
        // The registration made the node ours just before this thread.
        let mut seen: Option<Seen> = Some(Seen::Ours(self.registered_by));
        // Our own node was deleted, by its owner session: whether someone
        // else did it or ZooKeeper did, expiring that session (it sends the
        // deletion before the expiry), is known once the node is back.
        let mut deleted_ours: Option<SessionId> = None;
        let mut foreign_warned = None;
        // The open parent we refused to re-register under, said once (as an
        // error) until it changes or is fixed.
        let mut refused: Option<String> = None;
        loop {
            if self.stopped() {
                return;
            }
            let mut wait = None;
            if check {
                match self.ensure(!armed) {
                    Ok((found, recreated)) => {
                        // Found missing with no watch event yet (deleted
                        // before the watch was armed): the same as one.
                        if let (true, Some(Seen::Ours(owner))) = (recreated, seen) {
                            deleted_ours.get_or_insert(owner);
                        }
                        armed = true;
                        check = false;
                        backoff.reset();
                        if refused.take().is_some() {
                            tracing::info!(path = %self.target.path(), "the parent is no longer open to strangers; registration checked again");
                        }
                        match found {
                            Seen::Ours(_) | Seen::Replaced(_) => foreign_warned = None,
                            Seen::Foreign(owner) if foreign_warned != Some(owner) => {
                                foreign_warned = Some(owner);
                                tracing::warn!(path = %self.target.path(), owner = %owner,
                                    "another live session registered this address; taking over when it goes");
                            }
                            Seen::Foreign(_) => {}
                        }
                        if let Some(owner) = deleted_ours.take() {
                            self.log_own_deletion(owner, found);
                        }
                        seen = Some(found);
                    }
                    Err(err @ Error::OpenAcl { .. }) => {
                        let delay = backoff.next_delay();
                        let message = err.to_string();
                        if refused.as_ref() != Some(&message) {
                            tracing::error!(path = %self.target.path(), error = %message,
                                "not re-registering under a parent open to strangers; retrying until it is fixed");
                        } else {
                            tracing::debug!(path = %self.target.path(), attempt = backoff.attempts(),
                                retry_in = %crate::backoff::rounded(delay), "parent still open; retrying");
                        }
                        refused = Some(message);
                        wait = Some(delay);
                    }
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(path = %self.target.path(), attempt = backoff.attempts(), error = %err.chain(),
                            retry_in = %crate::backoff::rounded(delay), "cannot check registration; retrying");
                        wait = Some(delay);
                    }
                }
            }
            let event = match wait {
                Some(delay) => match woken.recv_timeout(delay) {
                    Ok(event) => event,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                },
                None => match woken.recv() {
                    Ok(event) => event,
                    Err(_) => return,
                },
            };
            match event {
                Wake::Stop => return,
                Wake::Watch(event) => {
                    armed = false;
                    check = true;
                    if event == WatchEvent::Deleted && !self.stopped() {
                        match seen {
                            Some(Seen::Ours(owner)) => deleted_ours = Some(owner),
                            other => self.log_deletion(other),
                        }
                    }
                }
                Wake::Session(SessionEvent::Rebuilt { previous, current }) => {
                    // Watches of the old session are gone with it; its node,
                    // if the server has not expired it yet, is ours to
                    // replace. A re-attached session is the same owner.
                    if previous != current {
                        let mut known = lock(&self.previous);
                        if known.len() >= PREVIOUS_SESSIONS {
                            known.remove(0);
                        }
                        known.push(previous);
                    }
                    armed = false;
                    check = true;
                }
                // Same session: the node and its watch are intact; a read
                // confirms it and writes nothing.
                Wake::Session(SessionEvent::Connected) => check = true,
                Wake::Session(_) => {}
            }
        }
    }

    /// Says what the deletion of our own node (owned by `owner`) was, now
    /// that the keeper has acted on it (`found`): if our session is still
    /// `owner`, someone deleted it; otherwise it went with that session,
    /// which ZooKeeper expired. Re-created, or not: another live session
    /// (a serverset registrant of the same address) holds it now, and the
    /// keeper waits for that one to go.
    fn log_own_deletion(&self, owner: SessionId, found: Seen) {
        let path = self.target.path();
        let path = path.as_str();
        let by_someone = self.session.id() == owner;
        match found {
            Seen::Foreign(holder) if by_someone => {
                tracing::warn!(path, holder = %format_args!("{holder:#x}"),
                    "registration deleted by someone else; not re-created: another live session holds this address now");
            }
            Seen::Foreign(holder) => {
                tracing::info!(path, old = %format_args!("{owner:#x}"), holder = %format_args!("{holder:#x}"),
                    "the node went with our expired session; not re-created: another live session holds this address now");
            }
            _ if by_someone => {
                tracing::warn!(path, "registration deleted by someone else; re-created it");
            }
            _ => {
                tracing::info!(path, old = %format_args!("{owner:#x}"),
                    "the node went with our expired session; re-created under the new one");
            }
        }
    }

    /// Says what a deletion seen by the watch was, from who owned the node
    /// (our own: see `log_own_deletion`).
    fn log_deletion(&self, seen: Option<Seen>) {
        let path = self.target.path();
        let path = path.as_str();
        match seen {
            Some(Seen::Ours(_)) | None => {}
            // The deletion was our own replacement of that node.
            Some(Seen::Replaced(_)) => {}
            Some(Seen::Foreign(owner)) if lock(&self.previous).contains(&owner) => {
                tracing::info!(path, owner = %format_args!("{owner:#x}"),
                    "ZooKeeper removed the node of our expired session; re-creating it")
            }
            Some(Seen::Foreign(owner)) => {
                tracing::info!(path, owner = %format_args!("{owner:#x}"),
                    "the other session's node is gone; registering ours")
            }
        }
    }

    /// Makes sure the node exists and is ours, arming a watch on it when
    /// `watch` is set.
    fn ensure(&self, watch: bool) -> Result<(Seen, bool)> {
        let path = match &self.target {
            Target::Fixed(path) => path.as_str(),
            Target::Member { endpoint, current } => {
                return self.ensure_member(*endpoint, current, watch);
            }
        };
        let session = &self.session;
        let stat = if watch {
            let wake = self.wake.clone();
            session.stat_and_watch(path, move |event| {
                let _ = wake.send(Wake::Watch(event));
            })?
        } else {
            session.stat(path)?
        };
        let previous = lock(&self.previous).clone();
        let missing = match stat {
            Some(stat) if stat.ephemeral_owner() == session.id() => {
                self.follow_data(path, stat)?;
                return Ok((Seen::Ours(stat.ephemeral_owner()), false));
            }
            Some(stat) if !previous.contains(&stat.ephemeral_owner()) => {
                return Ok((Seen::Foreign(stat.ephemeral_owner()), false));
            }
            Some(_) => false,
            None => true,
        };
        // Missing, or left by one of our earlier sessions. Should another
        // live session create it meanwhile, it is not ours to replace.
        self.guard_parent()?;
        let data = self.kept_bytes();
        let created = create_owned(session, &self.base_path, path, &data, |owner, _| {
            previous.contains(&owner)
        })?;
        self.created(&created);
        Ok(match created {
            Err(owner) => (Seen::Foreign(owner), false),
            Ok(Outcome::ReplacedStale { previous_owner }) => {
                tracing::info!(path, old = %previous_owner, session = %session.id(),
                    "re-registered, replacing the node of our earlier session");
                (Seen::Replaced(previous_owner), false)
            }
            Ok(outcome) => {
                if missing {
                    tracing::info!(path, session = %session.id(), "re-registered");
                } else {
                    tracing::debug!(path, ?outcome, "node is ours");
                }
                (Seen::Ours(session.id()), missing)
            }
        })
    }
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
    pub(super) fn guard_parent(&self) -> Result<()> {
        guard_parent(&self.session, &self.base_path, self.open_parent)
    }

    /// The data to (re-)create the node with.
    pub(super) fn kept_bytes(&self) -> Vec<u8> {
        lock(&self.data).bytes.clone()
    }

    /// After a create: a node made now holds the kept bytes at version 0;
    /// one adopted may have been changed since (read at the next check).
    pub(super) fn created<E>(&self, created: &std::result::Result<Outcome, E>) {
        lock(&self.data).version = match created {
            Ok(Outcome::Created | Outcome::ReplacedStale { .. }) => Some(0),
            _ => None,
        };
    }

    /// Our node at `stat`: when its data is not the version kept, someone
    /// changed it (an operator's `zkutil disable`, `weight`): read it and
    /// keep it, so that a re-created node carries that change.
    pub(super) fn follow_data(&self, path: &str, stat: NodeStat) -> Result<()> {
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

/// Creates `path` as ours. A node of that name left by another session is
/// replaced (at the version read) only when `may_replace(owner, data)` says
/// so; otherwise that owner is returned as `Err` and its node left alone.
pub(super) fn create_owned(
    session: &Session,
    base_path: &str,
    path: &str,
    data: &[u8],
    may_replace: impl Fn(SessionId, &[u8]) -> bool,
) -> Result<std::result::Result<Outcome, SessionId>> {
    let mut replaced = None;
    let mut last_err = None;
    for _ in 0..CREATE_ATTEMPTS {
        match session.create_ephemeral(path, data) {
            Ok(_) => {
                return Ok(Ok(match replaced {
                    Some(previous_owner) => Outcome::ReplacedStale { previous_owner },
                    None => Outcome::Created,
                }));
            }
            Err(err) if err.is_no_node() => {
                session.ensure_path(base_path)?;
                last_err = Some(err);
            }
            Err(err) if err.is_node_exists() => {
                let (data, stat) = match session.get_data(path) {
                    Ok(read) => read,
                    Err(err) if err.is_no_node() => continue,
                    Err(err) => return Err(err),
                };
                let owner = stat.ephemeral_owner();
                if owner == session.id() {
                    return Ok(Ok(Outcome::Adopted));
                }
                if !may_replace(owner, &data) {
                    return Ok(Err(owner));
                }
                replace_stale(session, path, stat)?;
                replaced = Some(owner);
                last_err = Some(err);
            }
            Err(err) => return Err(err),
        }
    }
    Err(last_err.unwrap_or(Error::Closed))
}

pub(super) fn replace_stale(session: &Session, path: &str, stat: NodeStat) -> Result<()> {
    tracing::warn!(path, owner = %stat.ephemeral_owner(), "replacing the node of another session");
    match session.delete(path, Some(stat.version())) {
        // Gone or changed meanwhile: the next create attempt finds out.
        Err(err) if err.is_no_node() => Ok(()),
        Err(Error::Zk { source, .. }) if source.kind() == crate::error::ZkErrorKind::BadVersion => {
            Ok(())
        }
        other => other,
    }
}
