//! What the load-aware strategy ([`Strategy::P2c`](super::Strategy::P2c))
//! knows of each instance: a decaying average of its latency and its
//! requests in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use super::shard::{self, Padded, SHARDS};
use crate::endpoint::Endpoint;
use crate::sync::lock;

/// What p2c knows of every instance it has been given.
///
/// A pick, `started` and `finished` run on every request, on however many
/// threads share the selector, so they take no exclusive lock. Each
/// instance's figures are atomics; the map that finds them is only
/// written when an endpoint is first seen, and is read through one of
/// [`SHARDS`] read-write locks, the one of the reading thread: a single
/// lock would be written (its reader count) by every reader, and the
/// cache line holding it would move from core to core three times a
/// request (in bench section 19, one lock gave two threads 0.91× of
/// one thread's picks in one run, the shards 1.5–2.05× when a second
/// core was free). Adding endpoints replaces the map in every shard, at
/// most once per pick that meets new instances (all of them at once).
///
/// Endpoints come and go (a redeployed service's instances get new
/// addresses): an endpoint idle for [`FORGET`] is forgotten when the map
/// is next copied after growing to twice its size after the last such
/// pruning, so that a long-lived client's map is bounded by the
/// endpoints it used lately, not by every endpoint it ever met, at an
/// amortised cost. What is forgotten had decayed to nothing anyway: met
/// again, it starts as new, as it would have.
#[derive(Debug)]
pub(super) struct Loads {
    /// What `Load::updated` counts from.
    epoch: Instant,
    /// Each on its own cache lines, so that readers of different shards
    /// write nothing another core reads.
    shards: [Padded<Shard>; SHARDS],
    /// Taken by the (rare) writers, one at a time; the size above which
    /// the next copy forgets idle endpoints.
    adding: Mutex<usize>,
}

/// One reader's copy: the same map in every shard.
#[derive(Debug, Default)]
struct Shard(RwLock<Arc<HashMap<Endpoint, Arc<Load>>>>);

impl Shard {
    fn read(&self) -> RwLockReadGuard<'_, Arc<HashMap<Endpoint, Arc<Load>>>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Loads {
    pub(super) fn new() -> Loads {
        Loads {
            epoch: Instant::now(),
            shards: Default::default(),
            adding: Mutex::new(PRUNE_FROM),
        }
    }

    /// The shard this thread reads.
    fn shard(&self) -> &Shard {
        &self.shards[shard::of_this_thread()]
    }

    /// Nanoseconds from the epoch to `at`, plus one: 0 stays "never".
    fn stamp(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX - 1) + 1
    }

    /// Adds the endpoints not known yet at `now` (each new one costs
    /// nothing, so it is tried), all in one copy of the map; once the map
    /// has doubled, that copy first forgets the endpoints idle for
    /// [`FORGET`] (those of `endpoints` come back as new: every one of
    /// them is known after the call).
    pub(super) fn add(&self, endpoints: impl Iterator<Item = Endpoint> + Clone, now: Instant) {
        let mut prune_above = lock(&self.adding);
        let now = self.stamp(now);
        let current = Arc::clone(&self.shards[0].read());
        if endpoints.clone().all(|e| current.contains_key(&e)) {
            return;
        }
        let mut map = HashMap::clone(&current);
        let prune = map.len() >= *prune_above;
        if prune {
            let forget = u64::try_from(FORGET.as_nanos()).unwrap_or(u64::MAX);
            map.retain(|_, load| !load.idle_for(forget, now));
        }
        for endpoint in endpoints {
            map.entry(endpoint)
                .or_insert_with(|| Arc::new(Load::new(now)));
        }
        // Raised only by a pruning: a copy that grew past the size prunes
        // at the next one (raised without, a map that crossed it by more
        // than one endpoint at a time would never be pruned).
        if prune {
            *prune_above = (map.len() * 2).max(PRUNE_FROM);
        }
        let map = Arc::new(map);
        for shard in &self.shards {
            *shard.0.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&map);
        }
    }

    /// The costs of `a` and `b` at `now`; `None` when one of them is not
    /// known yet.
    pub(super) fn costs(&self, a: Endpoint, b: Endpoint, now: Instant) -> Option<(f64, f64)> {
        let now = self.stamp(now);
        let map = self.shard().read();
        let cost = |e: Endpoint| map.get(&e).map(|load| load.cost_at(now));
        Some((cost(a)?, cost(b)?))
    }

    /// Applies `update` to the figures of `endpoint`, adding them if new.
    /// (One forgotten by a copy made meanwhile loses this update: an
    /// endpoint idle for a minute, so a sample of an estimate.)
    fn update(&self, endpoint: Endpoint, now: impl FnOnce() -> Instant, update: impl Fn(&Load)) {
        if let Some(load) = self.shard().read().get(&endpoint) {
            update(load);
            return;
        }
        self.add(std::iter::once(endpoint), now());
        if let Some(load) = self.shard().read().get(&endpoint) {
            update(load);
        }
    }

    /// A request to `endpoint` starts.
    pub(super) fn started(&self, endpoint: Endpoint) {
        self.update(endpoint, Instant::now, |load| {
            load.in_flight.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// A request to `endpoint` ended at `now` after `latency`.
    pub(super) fn finished(&self, endpoint: Endpoint, latency: Duration, now: Instant) {
        let stamp = self.stamp(now);
        self.update(endpoint, || now, |load| load.finished(latency, stamp));
    }

    /// How many endpoints it knows.
    #[cfg(test)]
    pub(super) fn known(&self) -> usize {
        self.shard().read().len()
    }
}

/// What p2c knows of one instance.
///
/// Updated without a lock: two requests to the same instance that finish
/// at the same moment may each compute the average from the same old
/// value, so that one sample is lost. For an estimate that decays anyway,
/// that is better than making every request wait on the others.
#[derive(Debug, Default)]
// Its own cache line: requests to different instances do not slow each
// other down by writing next to each other.
#[repr(align(64))]
struct Load {
    /// Exponentially weighted moving average of the latency, in ms (the
    /// bits of an `f64`).
    ewma_ms: AtomicU64,
    in_flight: AtomicU32,
    /// When the average was last updated, as [`Loads::stamp`] gives it
    /// (0: never).
    updated: AtomicU64,
    /// When the endpoint was added, as [`Loads::stamp`] gives it: what
    /// its idleness counts from until its first request ends.
    added: u64,
}

impl Load {
    fn new(now: u64) -> Load {
        Load {
            added: now,
            ..Load::default()
        }
    }

    /// Whether nothing is in flight and nothing ended in the `nanos`
    /// before `now`.
    fn idle_for(&self, nanos: u64, now: u64) -> bool {
        let last = self.updated.load(Ordering::Relaxed).max(self.added);
        self.in_flight.load(Ordering::Relaxed) == 0 && now.saturating_sub(last) >= nanos
    }

    /// The average as of `now`: it decays toward zero while the instance
    /// gets no request, with time constant [`DECAY`], so that an instance
    /// once slow is tried again after a while (it may have recovered) —
    /// as Finagle's and Linkerd's peak-EWMA balancers do.
    fn ewma_at(&self, now: u64) -> f64 {
        let ewma = f64::from_bits(self.ewma_ms.load(Ordering::Relaxed));
        let updated = self.updated.load(Ordering::Relaxed);
        let idle = if updated == 0 {
            0.0
        } else {
            now.saturating_sub(updated) as f64 / 1e9
        };
        ewma * (-idle / DECAY.as_secs_f64()).exp()
    }

    /// The cost p2c compares: latency times the requests in flight.
    fn cost_at(&self, now: u64) -> f64 {
        self.ewma_at(now) * f64::from(self.in_flight.load(Ordering::Relaxed).saturating_add(1))
    }

    /// A request to the instance ended at `now` after `latency`: one more
    /// sample in the average, one fewer request in flight.
    fn finished(&self, latency: Duration, now: u64) {
        // Never below zero, even if `finished` came without `started`.
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        let ms = latency.as_secs_f64() * 1e3;
        let average = self.ewma_at(now);
        let ewma = if self.updated.load(Ordering::Relaxed) == 0 || average == 0.0 {
            ms
        } else {
            average * (1.0 - EWMA_WEIGHT) + ms.min(average * MAX_JUMP) * EWMA_WEIGHT
        };
        self.ewma_ms.store(ewma.to_bits(), Ordering::Relaxed);
        self.updated.store(now, Ordering::Relaxed);
    }
}

/// How much a new latency sample counts in the moving average.
const EWMA_WEIGHT: f64 = 0.3;
/// How far one sample may lift the average, as a multiple of it: a single
/// outlier (a scheduling hiccup of the client's own machine) must not make
/// a fast instance look slower than a slow one, or it would be starved —
/// never picked, so never measured again. A real slowdown still shows
/// within a few samples (each may nearly double the average).
const MAX_JUMP: f64 = 4.0;
/// Time constant of the decay of an idle instance's average
/// (Finagle's and Linkerd's default).
pub(super) const DECAY: Duration = Duration::from_secs(10);
/// How long an endpoint stays known without a request: six decay times,
/// after which its average is 0.25% of what it was.
pub(super) const FORGET: Duration = Duration::from_secs(60);
/// The fewest endpoints known before idle ones are forgotten: below it,
/// the map is small, and copying it to forget costs more than it saves.
const PRUNE_FROM: usize = 1024;
