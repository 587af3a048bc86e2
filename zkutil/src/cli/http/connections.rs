//! `connections`: the table of open connections, what each is doing,
//! and which one is closed when a new one needs its place.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{IDLE_TIMEOUT, MAX_CONNECTIONS, WRITE_TIMEOUT};
use crate::sync::lock;

/// A connection's watchdog looks again at least this often, so a deadline
/// that moved earlier while it slept is still met within this.
const RECHECK: Duration = Duration::from_secs(1);
/// How long a new or just-answered connection is left to send its next
/// request before it counts as idle for eviction.
const GRACE: Duration = Duration::from_secs(1);

/// What the watchdog and the eviction know of one connection.
#[derive(Debug)]
pub(super) struct Activity {
    /// Response bodies alive: requests being answered.
    pub(super) answering: usize,
    /// A request has arrived and waits for its turn to be answered.
    pub(super) pending: bool,
    /// Answers made on this connection.
    pub(super) answered: usize,
    /// Since when nothing is being answered (the accept, or the end of the
    /// last answer).
    pub(super) idle_since: Instant,
    /// Since when a write has been waiting for the client to read.
    pub(super) write_blocked_since: Option<Instant>,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            answering: 0,
            pending: false,
            answered: 0,
            idle_since: Instant::now(),
            write_blocked_since: None,
        }
    }

    /// No request is being answered or waits for its turn.
    fn is_idle(&self) -> bool {
        self.answering == 0 && !self.pending
    }

    /// Where the connection stands in the order of eviction at `now` (the
    /// least first); `None` while an answer is being made or goes out:
    ///
    /// 1. its answer waiting for a client that does not read, the longest
    ///    first;
    /// 2. idle for [`GRACE`] or more, the longest first;
    /// 3. a request waiting for its turn, or a new connection within its
    ///    grace: the connection answered most first. Under a flood of
    ///    clients that pipeline requests (and reconnect), a new `/healthz`
    ///    is then the last one evicted.
    fn eviction_rank(&self, now: Instant) -> Option<(u8, Reverse<usize>, Instant)> {
        if let Some(blocked) = self.write_blocked_since {
            return Some((0, Reverse(0), blocked));
        }
        if self.is_idle() && now.saturating_duration_since(self.idle_since) >= GRACE {
            return Some((1, Reverse(0), self.idle_since));
        }
        (self.answering == 0).then_some((2, Reverse(self.answered), self.idle_since))
    }

    /// When to look again.
    pub(super) fn next_check(&self, now: Instant) -> Instant {
        let due = match self.write_blocked_since {
            Some(since) => since + WRITE_TIMEOUT,
            None if self.is_idle() => self.idle_since + IDLE_TIMEOUT,
            None => now + RECHECK,
        };
        due.min(now + RECHECK)
    }

    /// Why the connection must be closed now, if it must.
    pub(super) fn expired(&self, now: Instant) -> Option<&'static str> {
        if self
            .write_blocked_since
            .is_some_and(|since| now >= since + WRITE_TIMEOUT)
        {
            return Some("the client did not read its answer in time");
        }
        if self.is_idle() && now >= self.idle_since + IDLE_TIMEOUT {
            return Some("idle");
        }
        None
    }
}

pub(super) type Shared = Arc<Mutex<Activity>>;

/// A connection's socket, shared by its task and the table, so that an
/// eviction closes it at once: the new connection takes its place without
/// waiting for the evicted task's turn (behind every busy connection).
pub(super) type Socket = Arc<Mutex<Option<tokio::net::TcpStream>>>;

/// One connection in the table.
pub(super) struct Entry {
    pub(super) activity: Shared,
    pub(super) socket: Socket,
    /// Ends the evicted connection's task.
    pub(super) evict: Arc<Notify>,
}

/// Every connection open: at most [`MAX_CONNECTIONS`].
#[derive(Default)]
pub(super) struct Table {
    pub(super) conns: Mutex<HashMap<u64, Entry>>,
}

impl Table {
    /// Whether a new connection may take a place: there is room, or the
    /// first in the order of eviction ([`Activity::eviction_rank`]) has
    /// been closed for it. `false` when every connection is making or
    /// sending an answer.
    pub(super) fn make_room(&self) -> bool {
        let mut conns = lock(&self.conns);
        if conns.len() < MAX_CONNECTIONS {
            return true;
        }
        let now = Instant::now();
        let oldest = conns
            .iter()
            .filter_map(|(id, entry)| {
                let rank = lock(&entry.activity).eviction_rank(now);
                rank.map(|rank| (rank, *id))
            })
            .min()
            .and_then(|(_, id)| conns.remove(&id));
        match oldest {
            Some(entry) => {
                // Closed now (its descriptor freed); its task ends on the
                // notification, or at the latest on its next read or write.
                drop(lock(&entry.socket).take());
                entry.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's place in the table, given back when its task ends, even
/// by a panic (an evicted one has given it back already).
pub(super) struct Place {
    pub(super) table: Arc<Table>,
    pub(super) id: u64,
}

impl Drop for Place {
    fn drop(&mut self) {
        lock(&self.table.conns).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_expires_after_the_idle_timeout_and_a_blocked_writer_after_the_write_timeout()
     {
        let mut activity = Activity::new();
        let start = activity.idle_since;
        assert_eq!(activity.expired(start + IDLE_TIMEOUT / 2), None);
        assert_eq!(activity.expired(start + IDLE_TIMEOUT), Some("idle"));
        activity.answering = 1;
        assert_eq!(activity.expired(start + IDLE_TIMEOUT * 10), None, "busy");
        activity.write_blocked_since = Some(start);
        assert!(activity.expired(start + WRITE_TIMEOUT).is_some());
        assert!(activity.next_check(start) <= start + RECHECK);
    }

    #[test]
    fn eviction_takes_stuck_then_idle_connections_first_then_the_most_answered_waiting_one() {
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let now = at(10);
        let idle = Activity {
            idle_since: at(2),
            ..Activity::new()
        };
        let stuck = Activity {
            answering: 1,
            write_blocked_since: Some(at(3)),
            ..Activity::new()
        };
        let answering = Activity {
            answering: 1,
            ..Activity::new()
        };
        let fresh = Activity {
            idle_since: now,
            ..Activity::new()
        };
        let busy_waiting = Activity {
            pending: true,
            answered: 50,
            idle_since: at(9),
            ..Activity::new()
        };
        assert_eq!(answering.eviction_rank(now), None, "never evicted");
        let mut order = [
            ("fresh", fresh.eviction_rank(now)),
            ("busy_waiting", busy_waiting.eviction_rank(now)),
            ("idle", idle.eviction_rank(now)),
            ("stuck", stuck.eviction_rank(now)),
        ];
        order.sort_by_key(|(_, rank)| *rank);
        let names: Vec<&str> = order.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["stuck", "idle", "busy_waiting", "fresh"]);
    }
}
