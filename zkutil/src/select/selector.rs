//! [`Selector`]: applies a [`Strategy`] to the instances it is given,
//! skipping those marked down.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::down::DownMarks;
use super::load::Loads;
use super::rng::Randomness;
use super::shard::{self, Padded, SHARDS};
use super::smooth::Current;
use super::strategy::Strategy;
use crate::discovery::{Instance, Instances};
use crate::endpoint::Endpoint;
use crate::sync::lock;

/// Picks instances with a [`Strategy`], skipping those marked down; shared
/// between threads.
///
/// A pick is cheap and scales with threads: when no instance is marked
/// down, a pick takes no shared lock and reads no clock, and random
/// choices come from each thread's own generator (a seeded selector, for
/// tests, shares one behind a lock). The turns of round-robin and of
/// smooth weighted round-robin are kept per thread (up to eight, then
/// shared), as nginx keeps them per worker: each thread takes every
/// instance in turn, so the threads together do too, and no pick waits
/// for another thread's. P2c's per-instance figures are shared (atomics):
/// they are what it balances on.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use zkutil::{Endpoint, Instance, Instances, Selector, Strategy};
///
/// // Usually a snapshot's list; any list can be collected into one.
/// let instances: Instances = ["10.0.0.1:80", "10.0.0.2:80"]
///     .iter()
///     .map(|e| Instance::new(e.parse::<Endpoint>().expect("an endpoint")))
///     .collect();
/// let selector = Selector::new(Strategy::RoundRobin).with_cooldown(Duration::from_secs(10));
/// let first = selector.pick(&instances).expect("one").endpoint();
/// // A failed request marks its server down for the cooldown; the retry
/// // goes elsewhere.
/// selector.mark_down(first);
/// let retry = selector.pick_excluding(&instances, &[first]).expect("another").endpoint();
/// assert_ne!(retry, first);
/// ```
#[derive(Debug)]
pub struct Selector {
    strategy: Strategy,
    rng: Randomness,
    /// Round-robin's counters, one per thread shard, each on cache lines
    /// of its own: every pick writes one, and one shared counter moved
    /// between cores on every pick (bench section 19: two threads made
    /// 0.55× the picks of one).
    pub(super) next: [Padded<AtomicUsize>; SHARDS],
    down: DownMarks,
    /// Smooth weighted round-robin: each instance's current weight, one
    /// state per thread shard (its pick reads and writes all of them).
    current: [Padded<Mutex<Current>>; SHARDS],
    /// P2c: each instance's observed latency and requests in flight.
    load: Loads,
    /// Warm-up of the weighted strategies (zero: none).
    warmup: Duration,
}

/// The time of a pick, read from the clocks only if the pick needs it
/// (most need neither: reading them costs more than a pick).
struct Clock {
    instant: Cell<Option<Instant>>,
    wall: Cell<Option<SystemTime>>,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            instant: Cell::new(None),
            wall: Cell::new(None),
        }
    }

    #[cfg(test)]
    fn at(instant: Instant, wall: SystemTime) -> Clock {
        Clock {
            instant: Cell::new(Some(instant)),
            wall: Cell::new(Some(wall)),
        }
    }

    fn instant(&self) -> Instant {
        let at = self.instant.get().unwrap_or_else(Instant::now);
        self.instant.set(Some(at));
        at
    }

    fn wall(&self) -> SystemTime {
        let at = self.wall.get().unwrap_or_else(SystemTime::now);
        self.wall.set(Some(at));
        at
    }
}

/// The instances a pick chooses among: a whole list (the common case,
/// nothing to skip: no list to build) or those left after skipping.
#[derive(Clone, Copy)]
enum Candidates<'a, 'c> {
    All(&'a Instances),
    Only(&'c [&'a Instance]),
}

impl<'a> Candidates<'a, '_> {
    fn len(self) -> usize {
        match self {
            Candidates::All(list) => list.len(),
            Candidates::Only(list) => list.len(),
        }
    }

    fn get(self, at: usize) -> Option<&'a Instance> {
        match self {
            Candidates::All(list) => list.get(at),
            Candidates::Only(list) => list.get(at).copied(),
        }
    }

    /// By index, not with the list's own iterator: that clones the
    /// tree's shared pointers to start and drops them at the end, four
    /// atomic writes on cache lines that every thread's pick then passes
    /// around (bench section 19: weighted picks at two threads 0.90× of
    /// one's).
    fn iter(self) -> impl Iterator<Item = &'a Instance> + Clone {
        let (all, only) = match self {
            Candidates::All(list) => (Some((0..list.len()).filter_map(|at| list.get(at))), None),
            Candidates::Only(list) => (None, Some(list.iter().copied())),
        };
        all.into_iter().flatten().chain(only.into_iter().flatten())
    }
}

impl Selector {
    /// A selector seeded from the operating system, with a 10 s cooldown.
    pub fn new(strategy: Strategy) -> Selector {
        Selector::with_rng(strategy, Randomness::PerThread)
    }

    /// A selector whose random choices repeat for the same seed (tests).
    /// They come from one generator behind a lock: threads sharing this
    /// selector wait on each other, which [`Selector::new`]'s do not.
    pub fn with_seed(strategy: Strategy, seed: u64) -> Selector {
        let rng = StdRng::seed_from_u64(seed);
        Selector::with_rng(strategy, Randomness::Seeded(Box::new(Mutex::new(rng))))
    }

    fn with_rng(strategy: Strategy, rng: Randomness) -> Selector {
        Selector {
            strategy,
            rng,
            next: Default::default(),
            down: DownMarks::new(Duration::from_secs(10)),
            current: Default::default(),
            load: Loads::new(),
            warmup: Duration::ZERO,
        }
    }

    /// Warm-up for the weighted strategies: a newly registered instance's
    /// effective weight ramps linearly from a tenth of its weight (at
    /// least 1) to its weight over `warmup` from its registration time
    /// ([`Instance::registered_at`], read with its data), so that a cold
    /// server (empty caches, a JIT not yet warm) is not sent its full share
    /// at once. As Dubbo does, over 10 minutes by default there; off here
    /// unless asked. Computed from data the client has: no extra ZooKeeper
    /// traffic. Clocks matter: the registration time is ZooKeeper's.
    pub fn with_warmup(mut self, warmup: Duration) -> Self {
        self.warmup = warmup;
        self
    }

    /// `instance`'s weight as of `clock`, warm-up applied.
    fn effective_weight(&self, instance: &Instance, clock: &Clock) -> i64 {
        let weight = i64::from(instance.weight());
        if self.warmup.is_zero() {
            return weight;
        }
        let Some(registered) = instance.registered_at() else {
            return weight;
        };
        let age = clock
            .wall()
            .duration_since(registered)
            .unwrap_or(Duration::ZERO);
        if age >= self.warmup || weight == 0 {
            return weight;
        }
        let floor = (weight / 10).max(1);
        let ramp = (weight - floor) as f64 * age.as_secs_f64() / self.warmup.as_secs_f64();
        floor + ramp as i64
    }

    /// How long an instance marked down is skipped.
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.down.cooldown = cooldown;
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// One of `instances`, or `None` when there is none.
    pub fn pick<'a>(&self, instances: &'a Instances) -> Option<&'a Instance> {
        self.pick_excluding(instances, &[])
    }

    /// One of `instances` not in `exclude` (those already tried for this
    /// request), preferring instances not marked down; `None` when every
    /// instance is excluded.
    pub fn pick_excluding<'a>(
        &self,
        instances: &'a Instances,
        exclude: &[Endpoint],
    ) -> Option<&'a Instance> {
        self.pick_with(instances, exclude, &Clock::now())
    }

    /// [`Selector::pick_excluding`] as of `now`: down marks older than the
    /// cooldown at `now` have lapsed. Time is a parameter so that tests
    /// need not sleep through a cooldown.
    #[cfg(test)]
    pub(super) fn pick_excluding_at<'a>(
        &self,
        instances: &'a Instances,
        exclude: &[Endpoint],
        now: Instant,
        wall: SystemTime,
    ) -> Option<&'a Instance> {
        self.pick_with(instances, exclude, &Clock::at(now, wall))
    }

    fn pick_with<'a>(
        &self,
        instances: &'a Instances,
        exclude: &[Endpoint],
        clock: &Clock,
    ) -> Option<&'a Instance> {
        if exclude.is_empty() && !self.down.any() {
            // The common case: nothing to skip, no lock, no list to build.
            return self.choose(Candidates::All(instances), clock);
        }
        let down = self.down.in_force(clock.instant());
        if down.is_empty() && exclude.is_empty() {
            drop(down);
            return self.choose(Candidates::All(instances), clock);
        }
        let allowed: Vec<&Instance> = instances
            .iter()
            .filter(|i| !exclude.contains(&i.endpoint()))
            .collect();
        let up: Vec<&Instance> = allowed
            .iter()
            .copied()
            .filter(|i| !down.contains_key(&i.endpoint()))
            .collect();
        if up.is_empty() {
            // All down: the one that failed longest ago.
            return allowed
                .into_iter()
                .min_by_key(|i| down.get(&i.endpoint()).copied());
        }
        drop(down);
        self.choose(Candidates::Only(&up), clock)
    }

    /// The candidate the strategy chooses; `None` when there is none.
    fn choose<'a>(&self, candidates: Candidates<'a, '_>, clock: &Clock) -> Option<&'a Instance> {
        let len = candidates.len();
        let weighted = matches!(self.strategy, Strategy::Weighted | Strategy::SmoothWeighted);
        if weighted {
            // Weight 0: never picked while another instance has a weight.
            let weight = |i: &Instance| self.effective_weight(i, clock);
            let total: i64 = candidates.iter().map(weight).sum();
            if total > 0 && self.strategy == Strategy::Weighted {
                let mut point = self.rng.below_i64(total);
                return candidates.iter().find(|i| {
                    point -= weight(i);
                    point < 0
                });
            }
            if total > 0 {
                let current = &self.current[shard::of_this_thread()];
                let at = lock(current).pick(candidates.iter(), weight, total);
                return candidates.get(at?);
            }
        }
        if self.strategy == Strategy::P2c && len > 1 {
            let (a, b) = self.rng.pair(len);
            let (a, b) = (candidates.get(a)?, candidates.get(b)?);
            let now = clock.instant();
            let costs = match self.load.costs(a.endpoint(), b.endpoint(), now) {
                Some(costs) => costs,
                None => {
                    // New instances: added all at once, not one per pick.
                    self.load
                        .add(candidates.iter().map(Instance::endpoint), now);
                    match self.load.costs(a.endpoint(), b.endpoint(), now) {
                        Some(costs) => costs,
                        // Forgotten again by another thread's copy (idle
                        // ones are): nothing known of either, so either.
                        None => return Some(a),
                    }
                }
            };
            return Some(if costs.1 < costs.0 { b } else { a });
        }
        candidates.get(self.index(len)?)
    }

    /// A request to `endpoint` starts (p2c counts requests in flight; the
    /// other strategies ignore it).
    pub fn started(&self, endpoint: Endpoint) {
        if self.strategy == Strategy::P2c {
            self.load.started(endpoint);
        }
    }

    /// A request to `endpoint` ended after `latency` (a failure counts
    /// with the time it took).
    pub fn finished(&self, endpoint: Endpoint, latency: Duration) {
        self.finished_at(endpoint, latency, Instant::now());
    }

    pub(super) fn finished_at(&self, endpoint: Endpoint, latency: Duration, now: Instant) {
        if self.strategy == Strategy::P2c {
            self.load.finished(endpoint, latency, now);
        }
    }

    /// How many endpoints p2c keeps figures for.
    #[cfg(test)]
    pub(super) fn known_loads(&self) -> usize {
        self.load.known()
    }

    /// An index in `0..len` by the strategy; `None` when `len` is 0.
    fn index(&self, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        Some(match self.strategy {
            // An unsigned counter that wraps: no `abs(counter) % n` overflow.
            Strategy::RoundRobin => {
                self.next[shard::of_this_thread()].fetch_add(1, Ordering::Relaxed) % len
            }
            _ => self.rng.below(len),
        })
    }

    /// Skips `endpoint` for the cooldown, after a failed request.
    pub fn mark_down(&self, endpoint: Endpoint) {
        self.mark_down_at(endpoint, Instant::now());
    }

    pub(super) fn mark_down_at(&self, endpoint: Endpoint, at: Instant) {
        self.down.mark(endpoint, at);
    }

    /// Clears a down mark, after a successful request.
    pub fn mark_up(&self, endpoint: Endpoint) {
        self.down.clear(endpoint);
    }

    /// Whether `endpoint` is marked down now.
    pub fn is_down(&self, endpoint: Endpoint) -> bool {
        self.is_down_at(endpoint, Instant::now())
    }

    pub(super) fn is_down_at(&self, endpoint: Endpoint, now: Instant) -> bool {
        self.down.is_down(endpoint, now)
    }
}
