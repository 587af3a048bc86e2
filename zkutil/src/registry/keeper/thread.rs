//! The keeper's thread: it waits for a watch or session event, checks the
//! node after each (re-arming the watch), retries failed checks with
//! backoff, and says in its logs what really happened to the node; and the
//! [`Maintainer`] that stops it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use super::node::{Keeper, PREVIOUS_SESSIONS, Seen, Wake};
use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::session::{SessionEvent, SessionId, WatchEvent};
use crate::sync::lock;

/// The maintenance thread of one registration and how to stop it.
#[derive(Debug)]
pub(in crate::registry) struct Maintainer {
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
    pub(in crate::registry) fn stop(self, deadline: Instant) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(Wake::Stop);
        let left = deadline.saturating_duration_since(Instant::now());
        matches!(
            self.ended.recv_timeout(left),
            Err(mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

impl Keeper {
    pub(in crate::registry) fn start(
        self,
        wake: mpsc::Sender<Wake>,
        woken: mpsc::Receiver<Wake>,
    ) -> Result<Maintainer> {
        let stop = self.stop.clone();
        let (ended_tx, ended) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name(format!("register {}", self.target.path()))
            .spawn(move || {
                self.run(&woken);
                // The keeper (and its claim on the path) goes before the end
                // is told: whoever waits for the end (a deregistration, a
                // drop) may register the same path again at once, and must
                // not find it still claimed.
                drop(self);
                drop(ended_tx);
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
                        // Never back in place once stopping: the node is
                        // about to be deleted.
                        self.status.set(
                            !self.stopped() && matches!(found, Seen::Ours(_) | Seen::Replaced(_)),
                        );
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
                        self.status.set(false);
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
                        self.status.set(false);
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
                        // The node went with the old session, or is left
                        // to replace: not in place until re-created.
                        self.status.set(false);
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
}
