//! [`Selector`]: applies a [`Strategy`] to the instances it is given,
//! skipping those marked down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::down::DownMarks;
use super::load::Load;
use super::strategy::Strategy;
use crate::discovery::{Instance, Instances};
use crate::endpoint::Endpoint;
use crate::sync::lock;

/// Picks instances with a [`Strategy`], skipping those marked down; shared
/// between threads.
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
    rng: Mutex<StdRng>,
    pub(super) next: AtomicUsize,
    down: DownMarks,
    /// Smooth weighted round-robin: each instance's current weight.
    current: Mutex<HashMap<Endpoint, i64>>,
    /// P2c: each instance's observed latency and requests in flight.
    load: Mutex<HashMap<Endpoint, Load>>,
    /// Warm-up of the weighted strategies (zero: none).
    warmup: Duration,
}

impl Selector {
    /// A selector seeded from the operating system, with a 10 s cooldown.
    pub fn new(strategy: Strategy) -> Selector {
        Selector::with_rng(strategy, StdRng::from_os_rng())
    }

    /// A selector whose random choices repeat for the same seed (tests).
    pub fn with_seed(strategy: Strategy, seed: u64) -> Selector {
        Selector::with_rng(strategy, StdRng::seed_from_u64(seed))
    }

    fn with_rng(strategy: Strategy, rng: StdRng) -> Selector {
        Selector {
            strategy,
            rng: Mutex::new(rng),
            next: AtomicUsize::new(0),
            down: DownMarks::new(Duration::from_secs(10)),
            current: Mutex::new(HashMap::new()),
            load: Mutex::new(HashMap::new()),
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

    /// `instance`'s weight as of `now`, warm-up applied.
    fn effective_weight(&self, instance: &Instance, now: SystemTime) -> i64 {
        let weight = i64::from(instance.weight());
        if self.warmup.is_zero() {
            return weight;
        }
        let Some(registered) = instance.registered_at() else {
            return weight;
        };
        let age = now.duration_since(registered).unwrap_or(Duration::ZERO);
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
        self.pick_excluding_at(instances, exclude, Instant::now(), SystemTime::now())
    }

    /// [`Selector::pick_excluding`] as of `now`: down marks older than the
    /// cooldown at `now` have lapsed. Time is a parameter so that tests
    /// need not sleep through a cooldown.
    pub(super) fn pick_excluding_at<'a>(
        &self,
        instances: &'a Instances,
        exclude: &[Endpoint],
        now: Instant,
        wall: SystemTime,
    ) -> Option<&'a Instance> {
        let down = self.down.in_force(now);
        let by_position = matches!(self.strategy, Strategy::Random | Strategy::RoundRobin);
        if down.is_empty() && exclude.is_empty() && by_position {
            // The common case: nothing to skip, no list to build.
            drop(down);
            return instances.get(self.index(instances.len())?);
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
        if by_position {
            return up.get(self.index(up.len())?).copied();
        }
        up.get(self.choose(&up, now, wall)?).copied()
    }

    /// The index of the candidate the weighted and load-aware strategies
    /// choose; `None` when there is none.
    fn choose(&self, candidates: &[&Instance], now: Instant, wall: SystemTime) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        // Weight 0: never picked while another instance has a weight.
        let weights: Vec<i64> = candidates
            .iter()
            .map(|i| self.effective_weight(i, wall))
            .collect();
        let total: i64 = weights.iter().sum();
        match self.strategy {
            Strategy::Weighted if total > 0 => {
                let mut point = self.rng().random_range(0..total);
                weights.iter().position(|w| {
                    point -= w;
                    point < 0
                })
            }
            Strategy::SmoothWeighted if total > 0 => {
                let mut current = lock(&self.current);
                let present: std::collections::HashSet<Endpoint> =
                    candidates.iter().map(|i| i.endpoint()).collect();
                current.retain(|endpoint, _| present.contains(endpoint));
                let mut best: Option<(usize, i64)> = None;
                for (at, (instance, weight)) in candidates.iter().zip(&weights).enumerate() {
                    let value = current.entry(instance.endpoint()).or_insert(0);
                    *value += weight;
                    if best.is_none_or(|(_, top)| *value > top) {
                        best = Some((at, *value));
                    }
                }
                let (at, _) = best?;
                *current.entry(candidates[at].endpoint()).or_insert(0) -= total;
                Some(at)
            }
            Strategy::P2c if candidates.len() > 1 => {
                let (a, b) = {
                    let mut rng = self.rng();
                    let a = rng.random_range(0..candidates.len());
                    let b = (a + rng.random_range(1..candidates.len())) % candidates.len();
                    (a, b)
                };
                let load = lock(&self.load);
                let cost = |i: usize| {
                    load.get(&candidates[i].endpoint())
                        .copied()
                        .unwrap_or_default()
                        .cost_at(now)
                };
                Some(if cost(b) < cost(a) { b } else { a })
            }
            _ => self.index(candidates.len()),
        }
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        lock(&self.rng)
    }

    /// A request to `endpoint` starts (p2c counts requests in flight; the
    /// other strategies ignore it).
    pub fn started(&self, endpoint: Endpoint) {
        if self.strategy != Strategy::P2c {
            return;
        }
        lock(&self.load).entry(endpoint).or_default().started();
    }

    /// A request to `endpoint` ended after `latency` (a failure counts
    /// with the time it took).
    pub fn finished(&self, endpoint: Endpoint, latency: Duration) {
        self.finished_at(endpoint, latency, Instant::now());
    }

    pub(super) fn finished_at(&self, endpoint: Endpoint, latency: Duration, now: Instant) {
        if self.strategy != Strategy::P2c {
            return;
        }
        lock(&self.load)
            .entry(endpoint)
            .or_default()
            .finished(latency, now);
    }

    /// An index in `0..len` by the strategy; `None` when `len` is 0.
    fn index(&self, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        Some(match self.strategy {
            // An unsigned counter that wraps: no `abs(counter) % n` overflow.
            Strategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % len,
            _ => self.rng().random_range(0..len),
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
