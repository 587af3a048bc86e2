//! The supervisor: one thread per session that turns the client's state
//! changes into [`SessionEvent`]s and rebuilds an expired session
//! (re-attaching it while ZooKeeper cannot be reached). It never runs a
//! ZooKeeper call on the runtime thread, and never inside a watcher.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zookeeper_client as zk;

use super::config::SessionConfig;
use super::deadline::deadline_after;
use super::probe::{ConnectWatch, Verdict};
use super::runtime::{Runtime, close_client, connect_client};
use super::state::{Current, Inner};
use super::types::{SessionEvent, SessionId, SessionState};
use crate::backoff::Backoff;
use crate::error::Error;

/// Messages to the supervisor thread.
pub(super) enum Msg {
    State(u64, zk::SessionState),
    Shutdown,
}

/// Forwards every state change of `client` to the supervisor, tagged with
/// the client's generation. Runs on the runtime thread; only sends.
pub(super) fn spawn_forwarder(
    runtime: &Runtime,
    client: &zk::Client,
    generation: u64,
    messages: mpsc::Sender<Msg>,
) {
    let mut watcher = client.state_watcher();
    runtime
        .executor
        .spawn(async move {
            loop {
                let state = watcher.changed().await;
                if messages.send(Msg::State(generation, state)).is_err() || state.is_terminated() {
                    break;
                }
            }
        })
        .detach();
}

/// The supervisor thread's body, until `Shutdown` (or a close during a
/// rebuild).
pub(super) fn supervise(
    inner: &Inner,
    received: &mpsc::Receiver<Msg>,
    messages: &mpsc::Sender<Msg>,
) {
    while let Ok(Msg::State(generation, state)) = received.recv() {
        if inner.closing.load(Ordering::SeqCst) || generation != inner.current().generation {
            continue;
        }
        match state {
            zk::SessionState::Disconnected => {
                inner.set_state(SessionState::Disconnected);
                tracing::warn!(hosts = %inner.config.hosts, "disconnected from ZooKeeper; reconnecting within the session timeout");
                inner.notify(SessionEvent::Disconnected);
            }
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                if inner.set_state(SessionState::Connected) != SessionState::Connected {
                    tracing::info!(session = %format_args!("{:#x}", inner.current().id), "reconnected to ZooKeeper");
                    inner.notify(SessionEvent::Connected);
                }
            }
            zk::SessionState::AuthFailed => {
                inner.set_state(SessionState::AuthFailed);
                tracing::error!(hosts = %inner.config.hosts, "ZooKeeper authentication failed");
                inner.notify(SessionEvent::AuthFailed);
            }
            zk::SessionState::Expired | zk::SessionState::Closed => {
                if !rebuild(inner, received, messages) {
                    return;
                }
            }
        }
    }
}

/// Replaces an expired session: re-attach it if the server still knows it,
/// else open a new one; with backoff, until it works. Returns false when the
/// session was closed meanwhile (a `Shutdown` arrived during a backoff, or
/// the close cancelled the connect).
///
/// The client declares `Expired` on its own after 1.4× the session timeout
/// without contact, while the server may still hold the session (a
/// restarted ZooKeeper restores sessions from its log, with a fresh
/// timeout). So re-attaching is tried for as long as ZooKeeper cannot be
/// reached: when it returns, either the old session resumes (same owner,
/// nothing deleted or re-created, no flap seen by watchers) or the server
/// answers that it expired, and only then is a new session opened.
fn rebuild(inner: &Inner, received: &mpsc::Receiver<Msg>, messages: &mpsc::Sender<Msg>) -> bool {
    inner.set_state(SessionState::Rebuilding);
    let (previous, mut reattach) = {
        let current = inner.current();
        (current.id, current.info.clone())
    };
    tracing::warn!(session = %format_args!("{previous:#x}"), "ZooKeeper session expired (as far as the client can tell); re-attaching or rebuilding it");
    // Short attempts, short pauses: the client backs off on its own inside
    // one connect attempt (doubling past seconds while every host refuses),
    // so a long attempt would still be asleep when ZooKeeper returns. A
    // fresh attempt starts its own backoff from zero; ours is capped at 1 s.
    // Together they bound the time from ZooKeeper's return to the session
    // being back (measured in the chaos soak).
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let attempt = SessionConfig {
        connect_timeout: inner
            .config
            .connect_timeout
            .min((inner.config.session_timeout / 2).max(Duration::from_secs(2))),
        ..inner.config.clone()
    };
    let hosts = crate::connect_string::connect_string_hosts(&attempt.hosts);
    while !inner.closing.load(Ordering::SeqCst) {
        // The probe of the first connect, for its words only: a TLS
        // rejection (an expired or rotated certificate, a revoked server)
        // is logged as what it is, not as the client crate's "timed out".
        // It cancels nothing: the next attempt may succeed.
        let watch = ConnectWatch::start_quietly(hosts.clone(), attempt.tls.clone());
        let connected = connect_client(
            &inner.runtime,
            &attempt,
            reattach.clone(),
            &inner.cancel,
            None,
        );
        let verdict = watch.verdict();
        drop(watch);
        match connected {
            Ok(client) => {
                let current = client.session_id().0;
                {
                    let mut slot = inner.current();
                    if inner.closing.load(Ordering::SeqCst) {
                        // Closed while connecting: this session must not
                        // outlive the close (its nodes would linger).
                        drop(slot);
                        close_client(&inner.runtime, client, inner.config.request_timeout);
                        return false;
                    }
                    let generation = slot.generation + 1;
                    spawn_forwarder(&inner.runtime, &client, generation, messages.clone());
                    *slot = Current::of(client, generation);
                }
                inner.set_state(SessionState::Connected);
                if current == previous {
                    tracing::info!(session = %format_args!("{current:#x}"), "ZooKeeper session re-attached");
                } else {
                    tracing::warn!(old = %format_args!("{previous:#x}"), new = %format_args!("{current:#x}"),
                        "ZooKeeper session expired and was replaced");
                }
                inner.notify(SessionEvent::Rebuilt {
                    previous: SessionId::new(previous),
                    current: SessionId::new(current),
                });
                return true;
            }
            Err(Error::Closed) => return false,
            Err(err) if reattach.is_some() && (err.is_session_expired() || !err.is_retryable()) => {
                // The server says the old session is gone (or refuses it):
                // a new one, at once. Owner-aware registration replaces
                // whatever the old one left.
                tracing::info!(session = %format_args!("{previous:#x}"), error = %err.chain(),
                    "cannot re-attach the expired session; opening a new one");
                reattach = None;
            }
            Err(err) => {
                let delay = backoff.next_delay();
                let what = if reattach.is_some() {
                    "ZooKeeper unreachable; will re-attach the session when it answers"
                } else {
                    "cannot rebuild the ZooKeeper session"
                };
                let error = match verdict {
                    Some(Verdict::Refused(cause) | Verdict::Rejected(cause)) => cause,
                    None => err.chain().to_string(),
                };
                tracing::warn!(attempt = backoff.attempts(), %error, retry_in = %crate::backoff::rounded(delay), "{what}");
                if !wait_unless_shutdown(received, delay) {
                    return false;
                }
            }
        }
    }
    false
}

/// Waits out a backoff `delay` on the supervisor's channel: false as soon
/// as `Shutdown` arrives. State changes of the expired client that arrive
/// meanwhile are stale and dropped.
fn wait_unless_shutdown(received: &mpsc::Receiver<Msg>, delay: Duration) -> bool {
    let until = deadline_after(delay);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(Msg::State(..)) => {}
            Ok(Msg::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            Err(mpsc::RecvTimeoutError::Timeout) => return true,
        }
    }
}
