//! `refresh`: the thread that keeps a [`Discovery`](super::Discovery)'s
//! snapshot current. With per-child events (ZooKeeper 3.6+) it applies
//! each event to the snapshot alone, and lists the base path only after a
//! reconnect or a session rebuild (reading every child's data again) or a
//! failure; without them (an older ZooKeeper) each one-shot watch event
//! calls for a listing. A failed listing is retried with backoff; what
//! changed goes to subscribers (`publish`).

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use super::shared::{Shared, Wake};
use crate::backoff::Backoff;
use crate::error::Result;
use crate::session::SessionEvent;
use crate::sync::lock;

/// The thread's loop: applies per-child events in order, lists after a
/// one-shot watch event, a reconnect, a session rebuild or a failed event,
/// marks the view stale on a disconnect, and retries a failed listing
/// after a backoff. Wake-ups pending together make at most one listing.
/// Returns at `Stop`, without finishing the wake-ups queued after it.
pub(super) fn refresh_loop(
    shared: &Shared,
    woken: &mpsc::Receiver<Wake>,
    wake: &mpsc::Sender<Wake>,
    first: Result<()>,
) {
    let mut backoff = Backoff::default();
    let mut result = Some(first);
    let mut need = false;
    loop {
        if need {
            result = Some(shared.refresh(wake));
            need = false;
        }
        let mut wait = None;
        match result.take() {
            Some(Ok(())) => backoff.reset(),
            Some(Err(err)) => {
                let delay = backoff.next_delay();
                tracing::warn!(path = %shared.base_path, attempt = backoff.attempts(), error = %err.chain(),
                    retry_in = %crate::backoff::rounded(delay), "cannot list instances; keeping the last known list");
                shared.mark_stale();
                wait = Some(delay);
            }
            None => {}
        }
        let first = match wait {
            Some(delay) => match woken.recv_timeout(delay) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    need = true;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match woken.recv() {
                Ok(event) => event,
                Err(_) => return,
            },
        };
        for event in std::iter::once(first).chain(woken.try_iter()) {
            match event {
                Wake::Stop => return,
                Wake::Watch => {
                    shared.armed.store(false, Ordering::SeqCst);
                    need = true
                }
                // Applied in order; a failure calls for a listing, which
                // covers this change and the ones skipped after it.
                Wake::Node(event) if !need => {
                    if let Err(err) = shared.apply(&event) {
                        // A change known and not applied: stale until the
                        // listing that covers it is published.
                        shared.mark_stale();
                        result = Some(Err(err));
                        need = true;
                    }
                }
                // A re-listing is due anyway: it covers this change.
                Wake::Node(_) => {}
                // Re-list after every reconnect: a change made while
                // disconnected must not be missed. The one-shot watch of
                // the same session survives a reconnect (the client sends
                // it again); a rebuilt session's watches are gone.
                // The persistent watch is not restored by the client: add it
                // again (the listing does).
                Wake::Session(SessionEvent::Connected) => {
                    lock(&shared.recursive).take();
                    shared.reread.store(true, Ordering::SeqCst);
                    shared.note_reconnect();
                    need = true
                }
                Wake::Session(SessionEvent::Rebuilt { .. }) => {
                    shared.armed.store(false, Ordering::SeqCst);
                    lock(&shared.recursive).take();
                    shared.reread.store(true, Ordering::SeqCst);
                    shared.note_reconnect();
                    need = true
                }
                Wake::Session(_) => shared.mark_stale(),
            }
        }
        if !need && wait.is_some() {
            // Woken early from a backoff by something that needs no listing
            // (a disconnect): the failed listing is still due.
            need = true;
        }
    }
}
