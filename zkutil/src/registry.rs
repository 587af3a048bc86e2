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
//! * the session expired and was rebuilt ([`SessionEvent::Rebuilt`]): the
//!   node is re-created, owned by the new session;
//! * the node was deleted by someone else (an operator with `zkCli`): a
//!   one-shot watch sees it and the node is re-created at once, with a
//!   warning;
//! * the connection dropped and came back with the same session: nothing is
//!   deleted or re-created (watchers of the base path see no flap; compare
//!   Curator, which deletes and re-creates on every reconnect);
//! * a check fails (ZooKeeper down): retried with capped exponential
//!   backoff and jitter, one log line per failed attempt.
//!
//! Deregistration first stops that thread and waits for it, then deletes
//! the node (ours, or one left by our own earlier session): a
//! deregistration racing with a re-registration never resurrects the node.
//! It has one deadline for all of this, and makes no ZooKeeper call while
//! the session is not connected, so a shutdown never waits on an
//! unreachable ZooKeeper (the node then goes with the session).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::session::{NodeStat, Session, SessionEvent, SessionState, WatchEvent};

/// Largest node data we accept as metadata. ZooKeeper allows 1 MiB; a real
/// record is about 150 bytes.
pub const MAX_METADATA_LEN: usize = 16 * 1024;

/// What a registration says about the server behind it: the data of its
/// znode, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The IP address clients connect to.
    pub address: String,
    /// The port clients connect to.
    pub port: u16,
    /// Process id of the server.
    pub pid: u32,
    /// Host name of the machine the server runs on.
    pub hostname: String,
    /// When the server started, RFC 3339 in UTC.
    pub started_at: String,
    /// Version of the software that registered.
    pub version: String,
}

impl Metadata {
    /// Metadata for `endpoint` served by this process, started at `started_at`.
    pub fn for_this_process(endpoint: Endpoint, started_at: SystemTime, version: &str) -> Metadata {
        Metadata {
            address: endpoint.ip().to_string(),
            port: endpoint.port(),
            pid: std::process::id(),
            hostname: hostname(),
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            version: version.to_owned(),
        }
    }

    /// The JSON encoding stored in the znode.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses node data read from `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Metadata`] when the data is too large or not our JSON.
    pub fn from_json(path: &str, data: &[u8]) -> Result<Metadata> {
        if data.len() > MAX_METADATA_LEN {
            return Err(Error::Metadata {
                path: path.to_owned(),
                reason: format!(
                    "{} bytes, more than the {MAX_METADATA_LEN} allowed",
                    data.len()
                ),
            });
        }
        serde_json::from_slice(data).map_err(|err| Error::Metadata {
            path: path.to_owned(),
            reason: err.to_string(),
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Checks that `path` is an absolute znode path usable as a base path.
///
/// # Errors
///
/// [`Error::InvalidArgument`] saying what is wrong.
pub fn check_base_path(path: &str) -> Result<()> {
    let reason = if !path.starts_with('/') {
        "must start with '/'"
    } else if path.len() > 1 && path.ends_with('/') {
        "must not end with '/'"
    } else if path
        .split('/')
        .skip(1)
        .any(|part| part.is_empty() && path != "/")
    {
        "has an empty component"
    } else if path.split('/').any(|part| part == "." || part == "..") {
        "has a '.' or '..' component"
    } else if path.chars().any(char::is_control) {
        "has a control character"
    } else {
        return Ok(());
    };
    Err(Error::invalid("base path", path, reason))
}

/// The znode path of `endpoint` under `base_path`.
pub fn node_path(base_path: &str, endpoint: &Endpoint) -> String {
    if base_path == "/" {
        format!("/{endpoint}")
    } else {
        format!("{base_path}/{endpoint}")
    }
}

/// How [`Registration::register`] came to own its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The node did not exist; we created it.
    Created,
    /// The node was already ours (a create whose answer was lost).
    Adopted,
    /// Another session's node was in the way (an earlier run of the same
    /// server, not yet expired); we deleted it and created ours.
    ReplacedStale {
        /// The session that owned the node we deleted.
        previous_owner: i64,
    },
}

/// One endpoint's ephemeral node, owned by a session.
///
/// Deleted by [`Registration::deregister`]; dropping it does the same on a
/// best-effort basis and logs a failure.
#[derive(Debug)]
pub struct Registration {
    session: Arc<Session>,
    endpoint: Endpoint,
    path: String,
    outcome: Outcome,
    /// Our own earlier sessions (the ones this session replaced), whose
    /// leftover nodes of this path are ours to replace or delete.
    previous: Arc<Mutex<Vec<i64>>>,
    maintainer: Option<Maintainer>,
}

/// The maintenance thread of one registration and how to stop it.
#[derive(Debug)]
struct Maintainer {
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
    fn stop(self, deadline: Instant) -> bool {
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
enum Wake {
    Watch(WatchEvent),
    Session(SessionEvent),
    Stop,
}

/// How many times a create races with a concurrent delete or create before
/// we give up; each round trip is bounded, so this bounds the whole call.
const CREATE_ATTEMPTS: usize = 5;

/// How many of our own earlier sessions we remember; one per rebuild, and
/// a node older than a few rebuilds has expired long ago.
const PREVIOUS_SESSIONS: usize = 8;

impl Registration {
    /// Creates `<base_path>/<endpoint>` as an EPHEMERAL node with `metadata`
    /// as its data, creating `base_path` when missing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad base path, an endpoint that
    /// cannot be connected to (port 0, `0.0.0.0`), or one that this session
    /// registers already (two maintainers would fight over one node);
    /// otherwise ZooKeeper errors naming the path ([`Error::is_retryable`]
    /// tells whether to try again).
    pub fn register(
        session: &Arc<Session>,
        base_path: &str,
        endpoint: Endpoint,
        metadata: &Metadata,
    ) -> Result<Registration> {
        Registration::register_data(session, base_path, endpoint, metadata.to_json())
    }

    /// Like [`Registration::register`] with `data` stored as is (the
    /// `zkutil register` sidecar stores the caller's JSON).
    ///
    /// # Errors
    ///
    /// As [`Registration::register`]; also [`Error::Metadata`] for data
    /// over [`MAX_METADATA_LEN`].
    pub fn register_data(
        session: &Arc<Session>,
        base_path: &str,
        endpoint: Endpoint,
        data: Vec<u8>,
    ) -> Result<Registration> {
        check_base_path(base_path)?;
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
        let path = node_path(base_path, &endpoint);
        if data.len() > MAX_METADATA_LEN {
            return Err(Error::Metadata {
                path,
                reason: format!("{} bytes, more than {MAX_METADATA_LEN}", data.len()),
            });
        }
        let claim = Claim::take(session, &path).ok_or_else(|| {
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
        // At registration any other owner is a stale node of an earlier run
        // of this server (its address is ours now): replace it.
        let outcome = match create_owned(session, base_path, &path, &data, |_| true)? {
            Ok(outcome) => outcome,
            Err(owner) => {
                return Err(Error::invalid(
                    "endpoint",
                    &endpoint.to_string(),
                    format!("registered by session {owner:#x}"),
                ));
            }
        };
        let previous = Arc::new(Mutex::new(Vec::new()));
        let keeper = Keeper {
            session: session.clone(),
            base_path: base_path.to_owned(),
            path: path.clone(),
            data,
            previous: previous.clone(),
            wake: wake.clone(),
            stop: Arc::new(AtomicBool::new(false)),
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
        })
    }

    /// The registered endpoint.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The znode path.
    pub fn path(&self) -> &str {
        &self.path
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
        if !maintainer.stop(deadline) {
            tracing::debug!(path = %self.path, "registration thread still in a ZooKeeper call");
        }
        if self.session.state() != SessionState::Connected {
            return Err(Error::Unreachable {
                op: "delete",
                path: self.path.clone(),
            });
        }
        let previous = lock(&self.previous).clone();
        delete_owned(&self.session, &self.path, &previous, deadline)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let deadline = crate::session::deadline_after(self.session.config().request_timeout());
        if let Err(err) = self.stop_and_delete(deadline) {
            tracing::warn!(path = %self.path, error = %err.chain(), "could not deregister on drop");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A path that one [`Registration`] of a session maintains: two maintainers
/// of one node would delete and re-create it in turn. Released on drop.
#[derive(Debug)]
struct Claim {
    session: Arc<Session>,
    path: String,
}

impl Claim {
    fn take(session: &Arc<Session>, path: &str) -> Option<Claim> {
        session.claim(path).then(|| Claim {
            session: session.clone(),
            path: path.to_owned(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.session.release(&self.path);
    }
}

/// What the maintenance thread keeps: one node, ours, until stopped.
///
/// It re-arms its watch after every event, re-creates the node after a
/// deletion or a session rebuild, retries failed checks with backoff, and
/// says in its logs what actually happened to the node.
struct Keeper {
    session: Arc<Session>,
    base_path: String,
    path: String,
    data: Vec<u8>,
    previous: Arc<Mutex<Vec<i64>>>,
    wake: mpsc::Sender<Wake>,
    stop: Arc<AtomicBool>,
    _claim: Claim,
}

/// The node as the keeper last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Owned by the current session (this one).
    Ours(i64),
    /// Left by one of our earlier sessions; we replaced it.
    Replaced(i64),
    /// Owned by another live session (watched; taken over when it goes).
    Foreign(i64),
}

impl Keeper {
    fn start(self, wake: mpsc::Sender<Wake>, woken: mpsc::Receiver<Wake>) -> Result<Maintainer> {
        let stop = self.stop.clone();
        let (ended_tx, ended) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("register {}", self.path))
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
        let path = self.path.as_str();
        let mut backoff = Backoff::default();
        // Whether a one-shot watch is armed on the node; whether to check now.
        let (mut armed, mut check) = (false, true);
        // The node's owner when the watch was armed, to say truly what a
        // deletion was.
        let mut seen: Option<Seen> = None;
        // Our own node was deleted, by its owner session: whether someone
        // else did it or ZooKeeper did, expiring that session (it sends the
        // deletion before the expiry), is known once the node is back.
        let mut deleted_ours: Option<i64> = None;
        let mut foreign_warned = None;
        loop {
            if self.stopped() {
                return;
            }
            let mut wait = None;
            if check {
                match self.ensure(!armed) {
                    Ok(found) => {
                        armed = true;
                        check = false;
                        backoff.reset();
                        match found {
                            Seen::Ours(_) | Seen::Replaced(_) => foreign_warned = None,
                            Seen::Foreign(owner) if foreign_warned != Some(owner) => {
                                foreign_warned = Some(owner);
                                tracing::warn!(path, owner = %format_args!("{owner:#x}"),
                                    "another live session registered this address; taking over when it goes");
                            }
                            Seen::Foreign(_) => {}
                        }
                        if let Some(owner) = deleted_ours.take() {
                            self.log_own_deletion(owner);
                        }
                        seen = Some(found);
                    }
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(path, attempt = backoff.attempts(), error = %err.chain(),
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
    /// that it is back: if our session is still `owner`, someone deleted it;
    /// otherwise it went with that session, which ZooKeeper expired.
    fn log_own_deletion(&self, owner: i64) {
        let path = self.path.as_str();
        if self.session.id() == owner {
            tracing::warn!(path, "registration deleted by someone else; re-created it");
        } else {
            tracing::info!(path, old = %format_args!("{owner:#x}"),
                "the node went with our expired session; re-created under the new one");
        }
    }

    /// Says what a deletion seen by the watch was, from who owned the node
    /// (our own: see `log_own_deletion`).
    fn log_deletion(&self, seen: Option<Seen>) {
        let path = self.path.as_str();
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
    fn ensure(&self, watch: bool) -> Result<Seen> {
        let session = &self.session;
        let path = self.path.as_str();
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
                return Ok(Seen::Ours(stat.ephemeral_owner()));
            }
            Some(stat) if !previous.contains(&stat.ephemeral_owner()) => {
                return Ok(Seen::Foreign(stat.ephemeral_owner()));
            }
            Some(_) => false,
            None => true,
        };
        // Missing, or left by one of our earlier sessions. Should another
        // live session create it meanwhile, it is not ours to replace.
        let created = create_owned(session, &self.base_path, path, &self.data, |owner| {
            previous.contains(&owner)
        })?;
        Ok(match created {
            Err(owner) => Seen::Foreign(owner),
            Ok(Outcome::ReplacedStale { previous_owner }) => {
                tracing::info!(path, old = %format_args!("{previous_owner:#x}"), session = %format_args!("{:#x}", session.id()),
                    "re-registered, replacing the node of our earlier session");
                Seen::Replaced(previous_owner)
            }
            Ok(outcome) => {
                if missing {
                    tracing::info!(path, session = %format_args!("{:#x}", session.id()), "re-registered");
                } else {
                    tracing::debug!(path, ?outcome, "node is ours");
                }
                Seen::Ours(session.id())
            }
        })
    }
}

/// Creates `path` as ours. A node of that name left by another session is
/// replaced (at the version read) only when `may_replace(owner)` says so;
/// otherwise that owner is returned as `Err` and its node left alone.
fn create_owned(
    session: &Session,
    base_path: &str,
    path: &str,
    data: &[u8],
    may_replace: impl Fn(i64) -> bool,
) -> Result<std::result::Result<Outcome, i64>> {
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
                let Some(stat) = session.stat(path)? else {
                    continue;
                };
                let owner = stat.ephemeral_owner();
                if owner == session.id() {
                    return Ok(Ok(Outcome::Adopted));
                }
                if !may_replace(owner) {
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

fn replace_stale(session: &Session, path: &str, stat: NodeStat) -> Result<()> {
    tracing::warn!(path, owner = %format_args!("{:#x}", stat.ephemeral_owner()),
        "replacing a node left by another session");
    match session.delete(path, Some(stat.version())) {
        // Gone or changed meanwhile: the next create attempt finds out.
        Err(err) if err.is_no_node() => Ok(()),
        Err(Error::Zk { source, .. }) if source.kind() == crate::error::ZkErrorKind::BadVersion => {
            Ok(())
        }
        other => other,
    }
}

/// Deletes `path` if this session or one of our `previous` sessions owns
/// it, all before `deadline`.
fn delete_owned(session: &Session, path: &str, previous: &[i64], deadline: Instant) -> Result<()> {
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

    #[test]
    fn metadata_round_trips_through_json() {
        let endpoint: Endpoint = "127.0.0.1:8897".parse().unwrap_or_else(|e| panic!("{e}"));
        let metadata = Metadata::for_this_process(endpoint, SystemTime::UNIX_EPOCH, "1.2.3");
        assert_eq!(metadata.started_at, "1970-01-01T00:00:00.000Z");
        let json = metadata.to_json();
        let text = String::from_utf8_lossy(&json);
        for key in [
            "address",
            "port",
            "pid",
            "hostname",
            "started_at",
            "version",
        ] {
            assert!(
                text.contains(&format!("\"{key}\"")),
                "{key} missing from {text}"
            );
        }
        assert_eq!(Metadata::from_json("/x", &json).ok(), Some(metadata));
    }

    #[test]
    fn metadata_that_is_not_json_or_too_large_is_an_error() {
        assert!(matches!(
            Metadata::from_json("/x", b"not json"),
            Err(Error::Metadata { .. })
        ));
        let huge = vec![b' '; MAX_METADATA_LEN + 1];
        assert!(matches!(
            Metadata::from_json("/x", &huge),
            Err(Error::Metadata { .. })
        ));
    }

    #[test]
    fn base_paths_must_be_absolute_and_clean() {
        for good in ["/", "/go_servers", "/a/b"] {
            assert!(check_base_path(good).is_ok(), "{good}");
        }
        for bad in ["", "go_servers", "/a/", "/a//b", "/a/../b", "/a\nb"] {
            assert!(check_base_path(bad).is_err(), "{bad:?}");
        }
        let endpoint: Endpoint = "[::1]:80".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(node_path("/", &endpoint), "/[::1]:80");
        assert_eq!(node_path("/go_servers", &endpoint), "/go_servers/[::1]:80");
    }
}
