//! The registry's invariants: after a fault it converges to the listeners
//! of the servers that run and reach ZooKeeper, each owned by its server's
//! live session, within the session timeout + 1 s; with no fault it does
//! not change at all; and the ensemble's watches come back to their count
//! (none leaked, none lost).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use zkutil::{Change, SessionId};

use super::{BASE, Violation, World};

/// Each node under [`BASE`]: its owner session and creation time.
pub type Registry = BTreeMap<String, (SessionId, i64)>;

impl World {
    /// The nodes the registry should hold now: every listener of every
    /// server that runs, is not frozen and is not cut off from ZooKeeper,
    /// by server.
    fn expected(&self) -> BTreeMap<String, usize> {
        self.servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.process.is_some() && !s.frozen && !s.cut_off)
            .flat_map(|(k, s)| s.names().into_iter().map(move |name| (name, k)))
            .collect()
    }

    /// Each node under the base path with its owner and creation time.
    pub fn registry(&self) -> Result<Registry, zkutil::Error> {
        let names = match self.observer.children(BASE) {
            Ok(names) => names,
            Err(err) if err.is_no_node() => Vec::new(),
            Err(err) => return Err(err),
        };
        let mut registry = Registry::new();
        for name in names {
            if let Some(stat) = self.observer.stat(&format!("{BASE}/{name}"))? {
                registry.insert(name, (stat.ephemeral_owner(), stat.ctime_ms()));
            }
        }
        Ok(registry)
    }

    /// The sessions connected to the ensemble now.
    fn live_sessions(&self) -> BTreeSet<SessionId> {
        (0..self.zk.len())
            .flat_map(|i| self.zk.sessions_on(i))
            .collect()
    }

    /// Why the registry is not yet what it should be, if it is not.
    pub(super) fn mismatch(&self) -> Option<String> {
        let registry = match self.registry() {
            Ok(registry) => registry,
            Err(err) => return Some(format!("cannot read the registry: {}", err.chain())),
        };
        let expected = self.expected();
        let found: BTreeSet<&String> = registry.keys().collect();
        let wanted: BTreeSet<&String> = expected.keys().collect();
        if found != wanted {
            return Some(format!("nodes {found:?}, expected {wanted:?}"));
        }
        let mut owners: BTreeMap<usize, BTreeSet<SessionId>> = BTreeMap::new();
        for (name, (owner, _)) in &registry {
            owners.entry(expected[name]).or_default().insert(*owner);
        }
        if owners.values().any(|o| o.len() != 1) {
            return Some(format!("a server's nodes have several owners: {owners:?}"));
        }
        let distinct: BTreeSet<SessionId> = owners.values().flatten().copied().collect();
        if distinct.len() != owners.len() {
            return Some(format!("two servers share an owner: {owners:?}"));
        }
        let live = self.live_sessions();
        if let Some(dead) = distinct.iter().find(|o| !live.contains(o)) {
            return Some(format!(
                "a node of session {dead:#x}, which is not connected"
            ));
        }
        // The observer's cache caught up too, so its change events are all in.
        let cached: BTreeSet<String> = self
            .discovery
            .snapshot()
            .instances()
            .iter()
            .map(|i| i.endpoint().to_string())
            .collect();
        if cached.iter().collect::<BTreeSet<_>>() != wanted {
            return Some(format!("a watcher's cache has {cached:?}"));
        }
        None
    }

    /// The deadline for convergence after a fault: the session timeout + 1 s.
    pub fn settle_deadline(&self) -> Instant {
        Instant::now() + self.session_timeout + Duration::from_secs(1)
    }

    /// Waits until the registry equals the live listeners (checking the
    /// client all along); how long that took, or a violation at `deadline`.
    pub fn converge(&mut self, what: &str, deadline: Instant) -> Result<Duration, Violation> {
        let started = Instant::now();
        loop {
            self.check_client()?;
            let Some(reason) = self.mismatch() else {
                return Ok(started.elapsed());
            };
            if Instant::now() > deadline {
                return Err(self.violation(format!(
                    "{what}: the registry did not converge within {:?}: {reason}",
                    deadline.saturating_duration_since(started)
                )));
            }
            // Nothing announces convergence of all of these at once: poll.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The watches set on the ensemble, all nodes together (`mntr`); `None`
    /// when a node does not answer.
    pub fn watch_count(&self) -> Option<u64> {
        (0..self.zk.len())
            .map(|i| self.zk.mntr_value(i, "zk_watch_count"))
            .sum()
    }

    /// Records the watches the ensemble holds once everything is up: once
    /// the client has answered a request (its list, and so its watches, are
    /// set) and the count held for half a second.
    pub fn count_watches(&mut self) -> Result<(), Violation> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        loop {
            let progress = self.client_progress()?;
            let now = self.watch_count();
            if progress.requests > 0 && now.is_some() && now == last {
                self.watches = now.unwrap_or_default();
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.violation(format!("the watch count did not settle: {now:?}")));
            }
            last = now;
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until the ensemble holds as many watches as once everything
    /// was up: a watch a fault leaked, or lost, shows as a count that does
    /// not come back. Watches are re-set as events fire and sessions move,
    /// so the count is polled.
    pub fn check_watches(&mut self, deadline: Instant) -> Result<(), Violation> {
        loop {
            self.check_client()?;
            let now = self.watch_count();
            if now == Some(self.watches) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.violation(format!(
                    "the ensemble holds {now:?} watches, {} once everything was up",
                    self.watches
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Registry changes seen by the observer's watch since the last call.
    pub fn drain_changes(&self) -> Vec<Change> {
        self.changes
            .try_iter()
            .filter(|c| matches!(c, Change::Added(_) | Change::Removed(_)))
            .collect()
    }

    /// Lets `duration` pass while checking the client and that the registry
    /// does not change.
    pub fn watch_for(&mut self, duration: Duration) -> Result<(), Violation> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.check_client()?;
            let changes = self.drain_changes();
            if !changes.is_empty() {
                return Err(
                    self.violation(format!("the registry changed with no fault: {changes:?}"))
                );
            }
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        Ok(())
    }

    /// The names of the listeners registered now.
    pub fn listener_names(&self) -> Vec<String> {
        self.expected().into_keys().collect()
    }
}
