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
//! Deregistration first stops and joins that thread, then deletes: a
//! deregistration racing with a re-registration never resurrects the node.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::session::{NodeStat, Session, SessionEvent, WatchEvent};

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
    maintainer: Option<Maintainer>,
}

/// The maintenance thread of one registration and how to stop it.
#[derive(Debug)]
struct Maintainer {
    stop: Arc<AtomicBool>,
    wake: mpsc::Sender<Wake>,
    thread: JoinHandle<()>,
}

impl Maintainer {
    /// Stops the thread and waits for it: afterwards nothing re-creates
    /// the node. Its ZooKeeper calls are bounded, so this is too.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(Wake::Stop);
        let _ = self.thread.join();
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

impl Registration {
    /// Creates `<base_path>/<endpoint>` as an EPHEMERAL node with `metadata`
    /// as its data, creating `base_path` when missing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a bad base path or an endpoint that
    /// cannot be connected to (port 0, `0.0.0.0`); otherwise ZooKeeper
    /// errors naming the path ([`Error::is_retryable`] tells whether to try
    /// again).
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
        let maintainer =
            Maintainer::start(session.clone(), base_path.to_owned(), path.clone(), data)?;
        Ok(Registration {
            session: session.clone(),
            endpoint,
            path,
            outcome,
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

    /// Deletes the node, if it is still ours. A node already gone is fine.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors naming the path; the node then goes when the
    /// session closes or expires.
    pub fn deregister(mut self) -> Result<()> {
        if let Some(maintainer) = self.maintainer.take() {
            maintainer.stop();
        }
        delete_owned(&self.session, &self.path)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(maintainer) = self.maintainer.take() {
            maintainer.stop();
            if let Err(err) = delete_owned(&self.session, &self.path) {
                tracing::warn!(path = %self.path, error = %err, "could not deregister on drop");
            }
        }
    }
}

impl Maintainer {
    fn start(
        session: Arc<Session>,
        base_path: String,
        path: String,
        data: Vec<u8>,
    ) -> Result<Maintainer> {
        let stop = Arc::new(AtomicBool::new(false));
        let (wake, woken) = mpsc::channel();
        let events = wake.clone();
        // Unsubscribes itself once the thread (the receiver) is gone.
        session.subscribe(move |event| events.send(Wake::Session(event)).is_ok());
        let (flag, sender) = (stop.clone(), wake.clone());
        let thread = std::thread::Builder::new()
            .name(format!("register {path}"))
            .spawn(move || maintain(&session, &base_path, &path, &data, &woken, &sender, &flag))
            .map_err(|source| Error::Io {
                what: "starting a registration thread",
                source,
            })?;
        Ok(Maintainer { stop, wake, thread })
    }
}

/// Keeps `path` ours until stopped: re-arms its watch, re-creates it after
/// a deletion or a session rebuild, retries with backoff.
fn maintain(
    session: &Session,
    base_path: &str,
    path: &str,
    data: &[u8],
    woken: &mpsc::Receiver<Wake>,
    wake: &mpsc::Sender<Wake>,
    stop: &AtomicBool,
) {
    let mut backoff = Backoff::default();
    // Whether a one-shot watch is armed on the node; whether to check now.
    let (mut armed, mut check) = (false, true);
    // Our earlier sessions, whose leftover nodes we replace; a few suffice.
    let mut previous: Vec<i64> = Vec::new();
    let mut foreign_warned = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut wait = None;
        if check {
            match ensure(
                session,
                base_path,
                path,
                data,
                &previous,
                (!armed).then_some(wake),
            ) {
                Ok(found) => {
                    armed = true;
                    check = false;
                    backoff.reset();
                    match found {
                        Check::Ours => foreign_warned = None,
                        Check::Recreated(outcome) => {
                            foreign_warned = None;
                            tracing::warn!(path, ?outcome, session = %format_args!("{:#x}", session.id()), "re-registered");
                        }
                        Check::Foreign(owner) if foreign_warned != Some(owner) => {
                            foreign_warned = Some(owner);
                            tracing::warn!(path, owner = %format_args!("{owner:#x}"),
                                "another live session registered this address; taking over when it goes");
                        }
                        Check::Foreign(_) => {}
                    }
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(path, attempt = backoff.attempts(), error = %err, retry_in = ?delay,
                        "cannot check registration; retrying");
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
                if event == WatchEvent::Deleted && !stop.load(Ordering::SeqCst) {
                    tracing::warn!(path, "registration deleted by someone else; re-creating it");
                }
            }
            Wake::Session(SessionEvent::Rebuilt { previous: old, .. }) => {
                // Watches of the old session are gone with it; its node, if
                // the server has not expired it yet, is ours to replace.
                if previous.len() >= 8 {
                    previous.remove(0);
                }
                previous.push(old);
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

/// What [`ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The node is ours.
    Ours,
    /// It was missing or left by one of our earlier sessions: re-created.
    Recreated(Outcome),
    /// Another live session owns a node of that name (a second server
    /// advertising the same address): not ours to delete. Watched; taken
    /// over when it goes.
    Foreign(i64),
}

/// Makes sure the node exists and is ours, arming a watch on it when
/// `watch` is given. `previous` are our own earlier session ids, whose
/// nodes we may replace.
fn ensure(
    session: &Session,
    base_path: &str,
    path: &str,
    data: &[u8],
    previous: &[i64],
    watch: Option<&mpsc::Sender<Wake>>,
) -> Result<Check> {
    let stat = match watch {
        Some(wake) => {
            let wake = wake.clone();
            session.stat_and_watch(path, move |event| {
                let _ = wake.send(Wake::Watch(event));
            })?
        }
        None => session.stat(path)?,
    };
    match stat {
        Some(stat) if stat.ephemeral_owner() == session.id() => Ok(Check::Ours),
        Some(stat) if !previous.contains(&stat.ephemeral_owner()) => {
            Ok(Check::Foreign(stat.ephemeral_owner()))
        }
        // Missing, or left by one of our earlier sessions. Should another
        // live session create it meanwhile, it is not ours to replace.
        _ => create_owned(session, base_path, path, data, |owner| {
            previous.contains(&owner)
        })
        .map(|created| created.map_or_else(Check::Foreign, Check::Recreated)),
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

fn delete_owned(session: &Session, path: &str) -> Result<()> {
    let stat = match session.stat(path)? {
        Some(stat) if stat.ephemeral_owner() == session.id() => stat,
        // Gone already, or someone else's now: not ours to delete.
        _ => return Ok(()),
    };
    match session.delete(path, Some(stat.version())) {
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
