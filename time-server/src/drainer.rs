//! `drainer`: the one thread that waits for every answered client to
//! finish.
//!
//! After the reply, the protocol reads and discards what the client sent
//! until its EOF (bounded in bytes and time) before closing: closing
//! earlier could reset the connection and destroy the reply in flight.
//! That wait is all a connection needs after the acceptor has replied, so
//! instead of a blocked thread per connection, one thread waits for all of
//! them at once: the acceptors stay blocking threads, only the wait for
//! EOF is multiplexed.
//!
//! An acceptor hands its answered connection over by pushing it on a
//! pending list (no system call). Every millisecond while connections
//! arrive, the drain thread reads each pending connection once: most
//! clients have read their reply and closed by then, so the read finds
//! their EOF and the connection is closed at once. Only those that would
//! block are registered with the operating system's poller (epoll, through
//! `mio`) and wait there for their EOF, the byte cap or their deadline.
//! A wake-up serves many connections, and no thread is handed a
//! connection, so no context switch per connection.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zkutil::cli::lock;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::metrics::ServerMetrics;
use crate::reply::ReplyLimits;

/// The token of the waker (connections count up from 0).
const WAKE: Token = Token(usize::MAX);
/// How long the drain thread lets connections and EOFs gather after
/// serving some: the longest a pending connection waits for its first
/// read. Without it, at one client's pace every EOF woke the thread on its
/// own (a third busy thread on two cores, next to the client and the
/// acceptor): the connection rate at one client thread went from
/// 0.82–0.91× the bare responder's to 0.91–0.98× with 0.5–2 ms
/// (bench/RESULTS.md, section 4). A close is put off at most this long;
/// the clients have their replies already.
const COALESCE: Duration = Duration::from_millis(1);
/// How long the thread waits before polling again after its poller failed.
const POLL_RETRY: Duration = Duration::from_millis(100);

/// One answered connection waiting for the client's EOF.
struct Waiting {
    stream: TcpStream,
    deadline: Instant,
    read: usize,
}

/// The connections handed over by the acceptors and not yet read.
#[derive(Default)]
struct Pending {
    conns: Vec<Waiting>,
    /// The drain thread is (about to be) in a wait without a pending
    /// connection to come back for: the next hand-over must wake it. Under
    /// the same lock as `conns`, so that a hand-over either is seen by the
    /// thread before it waits or sees that it must wake it.
    parked: bool,
}

/// What the acceptors and the drain thread share.
pub(crate) struct Drainer {
    waker: Waker,
    pending: Mutex<Pending>,
    /// Acceptors still running: the thread ends when none is and no
    /// connection waits.
    acceptors: AtomicUsize,
    limits: ReplyLimits,
    /// Connections served at once (shared with the acceptors' cap).
    active: Arc<AtomicUsize>,
    metrics: Option<Arc<ServerMetrics>>,
}

impl Drainer {
    /// A drainer for `acceptors` acceptor threads, and its poll for
    /// [`Drainer::run`].
    pub(crate) fn new(
        acceptors: usize,
        limits: ReplyLimits,
        active: Arc<AtomicUsize>,
        metrics: Option<Arc<ServerMetrics>>,
    ) -> std::io::Result<(Drainer, Poll)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        Ok((
            Drainer {
                waker,
                pending: Mutex::new(Pending::default()),
                acceptors: AtomicUsize::new(acceptors),
                limits,
                active,
                metrics,
            },
            poll,
        ))
    }

    /// Waits for `stream` (answered, write side shut, non-blocking) to
    /// finish; counted in `active` until it has.
    pub(crate) fn add(&self, stream: TcpStream) {
        let conn = Waiting {
            stream,
            deadline: Instant::now() + self.limits.drain_timeout,
            read: 0,
        };
        let wake = {
            let mut pending = lock(&self.pending);
            pending.conns.push(conn);
            std::mem::take(&mut pending.parked)
        };
        if wake {
            // The thread waits without coming back for this connection:
            // its first read (and, for a client that never sends and never
            // closes, its deadline) would never come. Only the first
            // hand-over after the thread parked pays this call: while
            // connections keep coming, the thread comes back every
            // `COALESCE` on its own. (The connection is ours now: a failed
            // wake-up is logged, not returned, or the caller would count
            // it out twice.)
            if let Err(err) = self.waker.wake() {
                tracing::warn!(error = %err, "cannot wake the drain thread");
            }
        }
    }

    /// An acceptor has stopped; the last one lets the thread end once the
    /// connections in flight have finished.
    pub(crate) fn acceptor_done(&self) {
        if self.acceptors.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ = self.waker.wake();
        }
    }

    /// The drain thread: reads what each client sends until its EOF, the
    /// byte cap or the deadline, then closes it.
    pub(crate) fn run(&self, mut poll: Poll) {
        let mut events = Events::with_capacity(256);
        // The connections registered with the poller: only this thread
        // touches them, so no lock.
        let mut waiting: HashMap<Token, Waiting> = HashMap::new();
        // Their deadlines, soonest first (with those already closed, taken
        // out once they come first): the poller waits until the soonest,
        // so that no connection is read past its deadline.
        let mut deadlines: BinaryHeap<Reverse<(Instant, Token)>> = BinaryHeap::new();
        let mut next = 0usize;
        let mut batch = Vec::new();
        loop {
            let soonest = self.expire(&mut waiting, &mut deadlines, Instant::now());
            // Read before the pending list: a hand-over seen empty under
            // the lock by an acceptor that has stopped since cannot be
            // followed by another.
            let stopped = self.acceptors.load(Ordering::SeqCst) == 0;
            let has_pending = {
                let mut pending = lock(&self.pending);
                let has_pending = !pending.conns.is_empty();
                if !has_pending {
                    if stopped && waiting.is_empty() {
                        return;
                    }
                    pending.parked = true;
                }
                has_pending
            };
            // With connections pending, only what is ready now (or
            // nothing, when none is registered: no system call); without,
            // the poller's events, deadlines only while connections wait
            // (`add` wakes the thread when one is handed over).
            let timeout = match (has_pending, waiting.is_empty()) {
                (true, true) => None,
                (true, false) => Some(Some(Duration::ZERO)),
                (false, true) => Some(None),
                (false, false) => Some(Some(soonest.unwrap_or(POLL_RETRY))),
            };
            if let Some(timeout) = timeout {
                if let Err(err) = poll.poll(&mut events, timeout) {
                    events.clear();
                    if err.kind() != ErrorKind::Interrupted {
                        tracing::error!(error = %err, "the drain poller failed; closing connections at their deadline");
                        std::thread::sleep(POLL_RETRY);
                    }
                }
            } else {
                events.clear();
            }
            {
                let mut pending = lock(&self.pending);
                pending.parked = false;
                std::mem::swap(&mut batch, &mut pending.conns);
            }
            let mut served = batch.len();
            for event in &events {
                if event.token() == WAKE {
                    continue;
                }
                served += 1;
                if let Some(mut conn) = waiting.remove(&event.token()) {
                    match self.read_some(&mut conn) {
                        Some(result) => self.close(conn, result),
                        None => {
                            waiting.insert(event.token(), conn);
                        }
                    }
                }
            }
            for mut conn in batch.drain(..) {
                match self.read_some(&mut conn) {
                    Some(result) => self.close(conn, result),
                    None => {
                        // Wrapping around would take centuries; the
                        // waker's token is never given out.
                        let token = Token(next);
                        next = (next + 1) % (usize::MAX - 1);
                        let fd = conn.stream.as_raw_fd();
                        match poll.registry().register(
                            &mut SourceFd(&fd),
                            token,
                            Interest::READABLE,
                        ) {
                            Ok(()) => {
                                deadlines.push(Reverse((conn.deadline, token)));
                                waiting.insert(token, conn);
                                forget_finished(&mut deadlines, &waiting);
                            }
                            Err(err) => self.close(
                                conn,
                                Err(format!("cannot wait for the client to finish: {err}")),
                            ),
                        }
                    }
                }
            }
            if served > 0 {
                // Lets more clients finish, and more connections be handed
                // over, before the next round, so that one round serves
                // many: not a wait for anything.
                std::thread::sleep(COALESCE);
            }
        }
    }

    /// Reads what is there: `Some` once the connection is finished (EOF,
    /// over the byte cap, or failed), `None` while the client may still
    /// send.
    fn read_some(&self, conn: &mut Waiting) -> Option<Result<(), String>> {
        let mut buf = [0u8; 4096];
        loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => return Some(Ok(())),
                Ok(n) => {
                    conn.read += n;
                    if conn.read >= self.limits.drain_max_bytes {
                        return Some(Err("request larger than the drain limit".to_owned()));
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return None,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Some(Err(err.to_string())),
            }
        }
    }

    /// Closes the registered connections whose deadline has passed (a
    /// pending one is read within `COALESCE`, and registered if it must
    /// wait, long before its deadline); returns how long until the next
    /// deadline of one still waiting.
    fn expire(
        &self,
        waiting: &mut HashMap<Token, Waiting>,
        deadlines: &mut BinaryHeap<Reverse<(Instant, Token)>>,
        now: Instant,
    ) -> Option<Duration> {
        while let Some(&Reverse((deadline, token))) = deadlines.peek() {
            if !waiting.contains_key(&token) {
                // Finished before its deadline.
                deadlines.pop();
            } else if deadline <= now {
                deadlines.pop();
                if let Some(conn) = waiting.remove(&token) {
                    self.close(
                        conn,
                        Err("client did not finish sending in time".to_owned()),
                    );
                }
            } else {
                return Some(deadline - now);
            }
        }
        None
    }

    fn close(&self, conn: Waiting, result: Result<(), String>) {
        if let Err(error) = result {
            tracing::debug!(peer = ?conn.stream.peer_addr().ok(), error, "connection ended early");
        }
        // Closing the socket (its only descriptor) takes it out of epoll's
        // interest list, if it was in it: no `deregister` call.
        drop(conn);
        self.active.fetch_sub(1, Ordering::SeqCst);
        if let Some(m) = &self.metrics {
            m.in_flight.dec();
        }
    }
}

/// Drops the deadlines of connections that finished before them, once they
/// outnumber those still waiting: otherwise each stays until its deadline,
/// as many as connections registered in the last drain timeout, whatever
/// the cap.
fn forget_finished(
    deadlines: &mut BinaryHeap<Reverse<(Instant, Token)>>,
    waiting: &HashMap<Token, Waiting>,
) {
    if deadlines.len() > 2 * waiting.len() + 1024 {
        deadlines.retain(|Reverse((_, token))| waiting.contains_key(token));
        deadlines.shrink_to(2 * deadlines.len() + 1024);
    }
}
