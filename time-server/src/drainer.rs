//! `drainer`: the one thread that waits for every answered client to
//! finish.
//!
//! After the reply, the protocol reads and discards what the client sent
//! until its EOF (bounded in bytes and time) before closing: closing
//! earlier could reset the connection and destroy the reply in flight.
//! That wait is all a connection needs after the acceptor has replied, so
//! instead of a blocked thread per connection, one thread waits for all of
//! them at once with the operating system's poller (epoll, through `mio`):
//! the acceptors stay blocking threads, only the wait for EOF is
//! multiplexed. A wake-up serves many connections (after serving some,
//! the thread lets more gather for a millisecond), and no thread is handed
//! a connection, so no context switch per connection.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zkutil::cli::lock;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::metrics::ServerMetrics;
use crate::reply::ReplyLimits;

/// The token of the waker (connections count up from 0).
const WAKE: Token = Token(usize::MAX);
/// How long the drain thread lets EOFs gather after serving some. Without
/// it, at one client's pace every EOF woke the thread on its own (a third
/// busy thread on two cores, next to the client and the acceptor): the
/// connection rate at one client thread went from 0.82–0.91× the bare
/// responder's to 0.91–0.98× with 0.5–2 ms (bench/RESULTS.md, section 4).
const COALESCE: Duration = Duration::from_millis(1);
/// How often deadlines are checked while connections wait.
const SWEEP: Duration = Duration::from_millis(100);

/// One answered connection waiting for the client's EOF.
struct Waiting {
    stream: TcpStream,
    deadline: Instant,
    read: usize,
}

/// What the acceptors and the drain thread share.
pub(crate) struct Drainer {
    registry: Registry,
    waker: Waker,
    waiting: Mutex<HashMap<Token, Waiting>>,
    next: AtomicUsize,
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
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        Ok((
            Drainer {
                registry,
                waker,
                waiting: Mutex::new(HashMap::new()),
                next: AtomicUsize::new(0),
                acceptors: AtomicUsize::new(acceptors),
                limits,
                active,
                metrics,
            },
            poll,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Token, Waiting>> {
        lock(&self.waiting)
    }

    /// Waits for `stream` (answered, write side shut, non-blocking) to
    /// finish; counted in `active` until it has.
    pub(crate) fn add(&self, stream: TcpStream) -> std::io::Result<()> {
        // Wrapping around would take centuries; the waker's token is never
        // given out.
        let token = Token(self.next.fetch_add(1, Ordering::Relaxed) % (usize::MAX - 1));
        let deadline = Instant::now() + self.limits.drain_timeout;
        let fd = stream.as_raw_fd();
        // In the map before it is registered, so that its first event finds
        // it; no system call is made under the lock (the drain thread
        // takes it for every event: holding it across one made the two
        // threads wait on each other, measured as 2.5 futex calls per
        // connection).
        let was_empty = {
            let mut waiting = self.lock();
            let was_empty = waiting.is_empty();
            waiting.insert(
                token,
                Waiting {
                    stream,
                    deadline,
                    read: 0,
                },
            );
            was_empty
        };
        if let Err(err) = self
            .registry
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
        {
            self.lock().remove(&token);
            return Err(err);
        }
        if was_empty {
            // The drain thread may be asleep without a deadline (nothing
            // was waiting): a client that never sends and never closes
            // gives it no event, so without this wake-up its deadline
            // would never be checked and it would hold its place under
            // the cap forever. Later connections find the thread already
            // sweeping every `SWEEP`.
            // (The connection is ours now: a failed wake-up is logged,
            // not returned, or the caller would count it out twice.)
            if let Err(err) = self.waker.wake() {
                tracing::warn!(error = %err, "cannot wake the drain thread");
            }
        }
        Ok(())
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
        let mut last_sweep = Instant::now();
        loop {
            let empty = self.lock().is_empty();
            if empty && self.acceptors.load(Ordering::SeqCst) == 0 {
                return;
            }
            // Deadlines only matter while connections wait; `add` wakes
            // the thread when the first one arrives.
            let timeout = (!empty).then_some(SWEEP);
            if let Err(err) = poll.poll(&mut events, timeout) {
                if err.kind() != ErrorKind::Interrupted {
                    tracing::error!(error = %err, "the drain poller failed; closing connections at their deadline");
                    std::thread::sleep(SWEEP);
                }
            }
            let mut served = 0;
            for event in &events {
                if event.token() != WAKE {
                    self.service(event.token());
                    served += 1;
                }
            }
            if served > 0 {
                // Lets more clients finish before the next wake-up, so
                // that one wake-up serves many: not a wait for anything
                // (a close is put off at most this long; the clients have
                // their replies already).
                std::thread::sleep(COALESCE);
            }
            if last_sweep.elapsed() >= SWEEP {
                last_sweep = Instant::now();
                self.sweep(last_sweep);
            }
        }
    }

    /// Reads what is there (outside the lock); closes the connection once
    /// it is finished.
    fn service(&self, token: Token) {
        let Some(mut conn) = self.lock().remove(&token) else {
            return;
        };
        let mut buf = [0u8; 4096];
        let finished = loop {
            match conn.stream.read(&mut buf) {
                Ok(0) => break Some(Ok(())),
                Ok(n) => {
                    conn.read += n;
                    if conn.read >= self.limits.drain_max_bytes {
                        break Some(Err("request larger than the drain limit".to_owned()));
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => break None,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => break Some(Err(err.to_string())),
            }
        };
        match finished {
            Some(result) => self.close(conn, result),
            // Only this thread takes connections out: it is still ours.
            None => {
                self.lock().insert(token, conn);
            }
        }
    }

    /// Closes the connections whose deadline has passed.
    fn sweep(&self, now: Instant) {
        let expired: Vec<Waiting> = {
            let mut waiting = self.lock();
            let tokens: Vec<Token> = waiting
                .iter()
                .filter(|(_, conn)| conn.deadline <= now)
                .map(|(token, _)| *token)
                .collect();
            tokens
                .iter()
                .filter_map(|token| waiting.remove(token))
                .collect()
        };
        for conn in expired {
            self.close(
                conn,
                Err("client did not finish sending in time".to_owned()),
            );
        }
    }

    fn close(&self, conn: Waiting, result: Result<(), String>) {
        if let Err(error) = result {
            tracing::debug!(peer = ?conn.stream.peer_addr().ok(), error, "connection ended early");
        }
        // Closing the socket (its only descriptor) takes it out of epoll's
        // interest list: no `deregister` call, one system call less per
        // connection.
        drop(conn);
        self.active.fetch_sub(1, Ordering::SeqCst);
        if let Some(m) = &self.metrics {
            m.in_flight.dec();
        }
    }
}
