//! The watchers of a fan-out, of either kind, and setting them up and
//! tearing them down on a few threads: one after another, each a round
//! trip or two, 2,000 take long enough to matter in the full run's budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::bail;
use zkutil::{BasePath, Change, Discovery, RecursiveWatch, Session, WatchEvent};

/// Threads that connect (and later close) the watchers' sessions.
const SETUP_THREADS: usize = 4;

/// `f(i)` for every `i` in `0..n`, in order, on [`SETUP_THREADS`] threads.
pub fn in_parallel<T: Send>(
    n: usize,
    f: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let chunk = n.div_ceil(SETUP_THREADS).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                scope.spawn(move || (start..(start + chunk).min(n)).map(f).collect())
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for part in parts {
            match part.join() {
                Ok(Ok(items)) => all.extend::<Vec<T>>(items),
                Ok(Err(err)) => return Err(err),
                Err(_) => bail!("a setup thread panicked"),
            }
        }
        Ok(all)
    })
}

/// Drops `items` on [`SETUP_THREADS`] threads: each `Discovery` removes its
/// watch and closes its session, a round trip each.
pub fn drop_in_parallel<T: Send>(mut items: Vec<T>) {
    let chunk = items.len().div_ceil(SETUP_THREADS).max(1);
    let mut parts = Vec::new();
    while items.len() > chunk {
        parts.push(items.split_off(items.len() - chunk));
    }
    parts.push(items);
    std::thread::scope(|scope| {
        for part in parts {
            scope.spawn(move || drop(part));
        }
    });
}

/// What each watcher runs on its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `Discovery`: its own thread applies each event and publishes a
    /// snapshot; timed when its subscription has the change.
    Discovery,
    /// The session's persistent recursive watch alone, its callback
    /// stamping the time on the session's runtime thread: the floor that
    /// ZooKeeper and the sessions set, without the `Discovery`.
    SessionWatch,
}

/// The watchers of one run, of one [`Kind`].
pub enum Watchers {
    Discoveries {
        // Before the discoveries: dropped first.
        subscriptions: Vec<Receiver<Change>>,
        discoveries: Vec<Discovery>,
    },
    Watches {
        /// Nanoseconds after `epoch` of each watcher's last creation event.
        stamps: Vec<Arc<AtomicU64>>,
        epoch: Instant,
        watches: Vec<RecursiveWatch>,
        sessions: Vec<Arc<Session>>,
    },
}

impl Watchers {
    /// Starts a watcher of `kind` on each of `sessions`, following `base`.
    pub fn start(
        kind: Kind,
        sessions: Vec<Arc<Session>>,
        base: &BasePath,
    ) -> anyhow::Result<Watchers> {
        match kind {
            Kind::Discovery => {
                let discoveries: Vec<Discovery> = in_parallel(sessions.len(), |i| {
                    Ok(Discovery::start(sessions[i].clone(), base)?)
                })?;
                let subscriptions = discoveries.iter().map(Discovery::subscribe).collect();
                Ok(Watchers::Discoveries {
                    subscriptions,
                    discoveries,
                })
            }
            Kind::SessionWatch => {
                let epoch = Instant::now();
                let stamps: Vec<Arc<AtomicU64>> =
                    (0..sessions.len()).map(|_| Arc::default()).collect();
                let watches = in_parallel(sessions.len(), |i| {
                    let stamp = stamps[i].clone();
                    Ok(sessions[i].watch_recursive(base.as_str(), move |event| {
                        if event.kind == WatchEvent::Created {
                            let nanos =
                                u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            stamp.store(nanos, Ordering::Release);
                        }
                    })?)
                })?;
                Ok(Watchers::Watches {
                    stamps,
                    epoch,
                    watches,
                    sessions,
                })
            }
        }
    }

    /// Fills the empty slots of `seen` for the watchers that have the
    /// change made at `t`; how many it filled.
    pub fn poll(&self, seen: &mut [Option<Duration>], t: Instant) -> usize {
        let mut filled = 0;
        match self {
            Watchers::Discoveries { subscriptions, .. } => {
                for (slot, changes) in seen.iter_mut().zip(subscriptions) {
                    if slot.is_none() && added(changes) {
                        *slot = Some(t.elapsed());
                        filled += 1;
                    }
                }
            }
            Watchers::Watches { stamps, epoch, .. } => {
                let at = t.saturating_duration_since(*epoch);
                for (slot, stamp) in seen.iter_mut().zip(stamps) {
                    let stamped = Duration::from_nanos(stamp.load(Ordering::Acquire));
                    if slot.is_none() && stamped > at {
                        *slot = Some(stamped - at);
                        filled += 1;
                    }
                }
            }
        }
        filled
    }

    /// Stops every watcher and closes its session, on several threads.
    pub fn close(self) {
        match self {
            Watchers::Discoveries {
                subscriptions,
                discoveries,
            } => {
                drop(subscriptions);
                drop_in_parallel(discoveries);
            }
            Watchers::Watches {
                watches, sessions, ..
            } => {
                drop_in_parallel(watches);
                drop_in_parallel(sessions);
            }
        }
    }
}

/// Whether `changes` holds an addition (taking what is there). An empty
/// channel's `try_recv` is two atomic loads, where a snapshot is a lock
/// and a reference count.
fn added(changes: &Receiver<Change>) -> bool {
    let mut added = false;
    while let Ok(change) = changes.try_recv() {
        added |= matches!(change, Change::Added(_));
    }
    added
}
