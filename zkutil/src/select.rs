//! `Selector`: which of the registered instances gets the next request.
//!
//! The post picked `rand.Intn(3)` over the list: it panics below three
//! servers and never uses a fourth. Every strategy here picks among **all**
//! instances of the snapshot it is given, and an empty snapshot is `None`,
//! never a panic.
//!
//! An instance whose request failed is marked down for a cooldown (like
//! Curator's DownInstancePolicy) and skipped meanwhile: a crashed server's
//! node stays listed until its session times out, and without this every
//! request would have a chance to hit it first. When every instance is
//! down, the one that failed longest ago is tried.

use crate::sync::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::discovery::{Instance, Instances};
use crate::endpoint::Endpoint;

/// How to choose an instance.
///
/// # Example
///
/// ```
/// let strategy: zkutil::Strategy = "p2c".parse().expect("a strategy");
/// assert_eq!(strategy, zkutil::Strategy::P2c);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Uniformly at random, independently for every request.
    #[default]
    Random,
    /// Each instance in turn.
    RoundRobin,
    /// At random, in proportion to each instance's weight
    /// ([`Instance::weight`]).
    Weighted,
    /// In proportion to the weights, deterministically and evenly
    /// interleaved (nginx's smooth weighted round-robin).
    SmoothWeighted,
    /// The less loaded of two random choices, by an exponentially weighted
    /// moving average of each instance's observed latency times its
    /// requests in flight (as Finagle's and Linkerd's balancers do); needs
    /// [`Selector::started`] and [`Selector::finished`].
    P2c,
}

impl std::str::FromStr for Strategy {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Strategy, crate::Error> {
        match s {
            "random" => Ok(Strategy::Random),
            "round-robin" => Ok(Strategy::RoundRobin),
            "weighted" => Ok(Strategy::Weighted),
            "smooth-weighted" => Ok(Strategy::SmoothWeighted),
            "p2c" => Ok(Strategy::P2c),
            other => Err(crate::Error::invalid(
                "--strategy",
                other,
                "unknown strategy; use random, round-robin, weighted, smooth-weighted or p2c",
            )),
        }
    }
}

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
    next: AtomicUsize,
    cooldown: Duration,
    down: Mutex<HashMap<Endpoint, Instant>>,
    /// Smooth weighted round-robin: each instance's current weight.
    current: Mutex<HashMap<Endpoint, i64>>,
    /// P2c: each instance's observed latency and requests in flight.
    load: Mutex<HashMap<Endpoint, Load>>,
    /// Warm-up of the weighted strategies (zero: none).
    warmup: Duration,
}

/// What p2c knows of one instance.
#[derive(Debug, Clone, Copy, Default)]
struct Load {
    /// Exponentially weighted moving average of the latency, in ms.
    ewma_ms: f64,
    in_flight: u32,
    /// When the average was last updated.
    updated: Option<Instant>,
}

impl Load {
    /// The average as of `now`: it decays toward zero while the instance
    /// gets no request, with time constant [`DECAY`], so that an instance
    /// once slow is tried again after a while (it may have recovered) —
    /// as Finagle's and Linkerd's peak-EWMA balancers do.
    fn ewma_at(&self, now: Instant) -> f64 {
        let idle = self
            .updated
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.ewma_ms * (-idle.as_secs_f64() / DECAY.as_secs_f64()).exp()
    }

    /// The cost p2c compares: latency times the requests in flight.
    fn cost_at(&self, now: Instant) -> f64 {
        self.ewma_at(now) * f64::from(self.in_flight + 1)
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
const DECAY: Duration = Duration::from_secs(10);

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
            cooldown: Duration::from_secs(10),
            down: Mutex::new(HashMap::new()),
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
        self.cooldown = cooldown;
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
    fn pick_excluding_at<'a>(
        &self,
        instances: &'a Instances,
        exclude: &[Endpoint],
        now: Instant,
        wall: SystemTime,
    ) -> Option<&'a Instance> {
        let mut down = lock(&self.down);
        down.retain(|_, since| now.saturating_duration_since(*since) < self.cooldown);
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
        let mut load = lock(&self.load);
        load.entry(endpoint).or_default().in_flight += 1;
    }

    /// A request to `endpoint` ended after `latency` (a failure counts
    /// with the time it took).
    pub fn finished(&self, endpoint: Endpoint, latency: Duration) {
        self.finished_at(endpoint, latency, Instant::now());
    }

    fn finished_at(&self, endpoint: Endpoint, latency: Duration, now: Instant) {
        if self.strategy != Strategy::P2c {
            return;
        }
        let mut load = lock(&self.load);
        let entry = load.entry(endpoint).or_default();
        entry.in_flight = entry.in_flight.saturating_sub(1);
        let ms = latency.as_secs_f64() * 1e3;
        let average = entry.ewma_at(now);
        entry.ewma_ms = if entry.updated.is_none() || average == 0.0 {
            ms
        } else {
            average * (1.0 - EWMA_WEIGHT) + ms.min(average * MAX_JUMP) * EWMA_WEIGHT
        };
        entry.updated = Some(now);
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

    fn mark_down_at(&self, endpoint: Endpoint, at: Instant) {
        lock(&self.down).insert(endpoint, at);
    }

    /// Clears a down mark, after a successful request.
    pub fn mark_up(&self, endpoint: Endpoint) {
        lock(&self.down).remove(&endpoint);
    }

    /// Whether `endpoint` is marked down now.
    pub fn is_down(&self, endpoint: Endpoint) -> bool {
        self.is_down_at(endpoint, Instant::now())
    }

    fn is_down_at(&self, endpoint: Endpoint, now: Instant) -> bool {
        let down = lock(&self.down);
        down.get(&endpoint)
            .is_some_and(|since| now.saturating_duration_since(*since) < self.cooldown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances(n: u16) -> Instances {
        (1..=n)
            .map(|port| Instance::new(Endpoint::new(([127, 0, 0, 1], port).into())))
            .collect()
    }

    fn port(instance: Option<&Instance>) -> u16 {
        instance.map(|i| i.endpoint().port()).unwrap_or(0)
    }

    #[test]
    fn empty_list_picks_nothing() {
        assert_eq!(
            Selector::with_seed(Strategy::Random, 1).pick(&Instances::default()),
            None
        );
        assert_eq!(
            Selector::new(Strategy::RoundRobin).pick(&Instances::default()),
            None
        );
    }

    #[test]
    fn random_uses_every_instance_of_a_long_list_uniformly() {
        // The post's Intn(3) would never reach instances 4..10.
        let selector = Selector::with_seed(Strategy::Random, 7);
        let list = instances(10);
        let mut counts = [0usize; 11];
        for _ in 0..10_000 {
            counts[usize::from(port(selector.pick(&list)))] += 1;
        }
        // Expected 1000 each; sd ≈ 30. ±150 is 5 sd.
        for (p, count) in counts.iter().enumerate().skip(1) {
            assert!(
                (850..=1150).contains(count),
                "port {p} picked {count} times: {counts:?}"
            );
        }
        assert_eq!(counts[0], 0);
    }

    #[test]
    fn random_works_with_a_single_instance() {
        let selector = Selector::with_seed(Strategy::Random, 3);
        let list = instances(1);
        for _ in 0..100 {
            assert_eq!(port(selector.pick(&list)), 1);
        }
    }

    #[test]
    fn round_robin_visits_each_instance_exactly_once_per_cycle() {
        let selector = Selector::new(Strategy::RoundRobin);
        let list = instances(3);
        let picked: Vec<u16> = (0..9).map(|_| port(selector.pick(&list))).collect();
        assert_eq!(picked, [1, 2, 3, 1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn round_robin_counter_wraps_without_panic() {
        let selector = Selector::new(Strategy::RoundRobin);
        selector.next.store(usize::MAX, Ordering::Relaxed);
        let list = instances(3);
        assert_ne!(port(selector.pick(&list)), 0);
        assert_ne!(port(selector.pick(&list)), 0);
    }

    #[test]
    fn instances_marked_down_are_skipped() {
        let list = instances(3);
        for strategy in [Strategy::Random, Strategy::RoundRobin] {
            let selector = Selector::with_seed(strategy, 5);
            selector.mark_down(list[0].endpoint());
            selector.mark_down(list[2].endpoint());
            for _ in 0..100 {
                assert_eq!(port(selector.pick(&list)), 2, "{strategy:?}");
            }
            selector.mark_up(list[0].endpoint());
            assert!(
                (0..100).any(|_| port(selector.pick(&list)) == 1),
                "{strategy:?}"
            );
        }
    }

    #[test]
    fn when_every_instance_is_down_the_one_that_failed_longest_ago_is_tried() {
        let selector = Selector::with_seed(Strategy::Random, 5);
        let list = instances(3);
        let first = Instant::now();
        selector.mark_down_at(list[1].endpoint(), first);
        selector.mark_down_at(list[0].endpoint(), first + Duration::from_millis(5));
        selector.mark_down_at(list[2].endpoint(), first + Duration::from_millis(5));
        assert_eq!(
            port(selector.pick_excluding_at(
                &list,
                &[],
                first + Duration::from_millis(6),
                SystemTime::now()
            )),
            2
        );
    }

    #[test]
    fn the_cooldown_expires() {
        let selector =
            Selector::with_seed(Strategy::Random, 5).with_cooldown(Duration::from_millis(50));
        let list = instances(2);
        let marked = Instant::now();
        selector.mark_down_at(list[0].endpoint(), marked);
        assert!(selector.is_down_at(list[0].endpoint(), marked + Duration::from_millis(49)));
        let later = marked + Duration::from_millis(50);
        assert!(!selector.is_down_at(list[0].endpoint(), later));
        assert!((0..100).any(|_| port(selector.pick_excluding_at(
            &list,
            &[],
            later,
            SystemTime::now()
        )) == 1));
    }

    fn weighted(weights: &[u32]) -> Instances {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let mut instance =
                    Instance::new(Endpoint::new(([127, 0, 0, 1], i as u16 + 1).into()));
                instance.weight = *w;
                instance
            })
            .collect()
    }

    #[test]
    fn a_new_instances_share_grows_monotonically_through_warm_up() {
        let warmup = Duration::from_secs(600);
        let registered = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut list = weighted(&[100, 100]).to_vec();
        // The first has run for a day; the second registered at `registered`.
        list[0].registered_ms = Some(1_000_000_000_000);
        list[1].registered_ms = Some(1_800_000_000_000);
        let list = Instances::from(list);
        for strategy in [Strategy::Weighted, Strategy::SmoothWeighted] {
            let selector = Selector::with_seed(strategy, 5).with_warmup(warmup);
            let mut shares = Vec::new();
            for tenth in 0..=11 {
                let wall = registered + warmup * tenth / 10;
                let picks = 20_000;
                let new = (0..picks)
                    .filter(|_| {
                        port(selector.pick_excluding_at(&list, &[], Instant::now(), wall)) == 2
                    })
                    .count();
                shares.push(new as f64 / f64::from(picks));
            }
            // From the floor (10 of 110) to an equal share, never down.
            assert!(
                (shares[0] - 10.0 / 110.0).abs() < 0.02,
                "{strategy:?}: {shares:?}"
            );
            assert!((shares[10] - 0.5).abs() < 0.02, "{strategy:?}: {shares:?}");
            assert!(
                shares.windows(2).all(|w| w[1] >= w[0] - 0.01),
                "{strategy:?}: {shares:?}"
            );
            assert!(shares[5] > shares[1] + 0.1, "{strategy:?}: {shares:?}");
        }
        // Without warm-up, a new instance gets its full share at once.
        let selector = Selector::with_seed(Strategy::Weighted, 5);
        let new = (0..20_000)
            .filter(|_| {
                port(selector.pick_excluding_at(&list, &[], Instant::now(), registered)) == 2
            })
            .count();
        assert!((new as f64 / 20_000.0 - 0.5).abs() < 0.02);
    }

    #[test]
    fn weighted_strategies_share_within_two_percent_of_the_weights() {
        let list = weighted(&[100, 200, 300, 400]);
        for strategy in [Strategy::Weighted, Strategy::SmoothWeighted] {
            let selector = Selector::with_seed(strategy, 11);
            let mut counts = [0usize; 5];
            for _ in 0..100_000 {
                counts[usize::from(port(selector.pick(&list)))] += 1;
            }
            for (i, weight) in [100.0, 200.0, 300.0, 400.0].iter().enumerate() {
                let share = counts[i + 1] as f64 / 100_000.0;
                let want = weight / 1000.0;
                assert!(
                    (share - want).abs() <= 0.02 * want,
                    "{strategy:?}: {counts:?}"
                );
            }
        }
    }

    #[test]
    fn smooth_weighted_interleaves_equal_weights_and_skips_weight_zero() {
        let selector = Selector::with_seed(Strategy::SmoothWeighted, 1);
        let list = weighted(&[100, 100, 0]);
        let picks: Vec<u16> = (0..1000).map(|_| port(selector.pick(&list))).collect();
        assert!(picks.windows(2).all(|w| w[0] != w[1]), "twice in a row");
        assert!(
            !picks.contains(&3),
            "weight 0 is never picked while others are up"
        );
        let only_zero = weighted(&[0]);
        assert_eq!(
            port(selector.pick(&only_zero)),
            1,
            "unless nothing else is up"
        );
    }

    #[test]
    fn p2c_sends_most_requests_away_from_a_slow_instance() {
        let selector = Selector::with_seed(Strategy::P2c, 3);
        let list = instances(3);
        let latency = |port: u16| Duration::from_millis(if port == 1 { 10 } else { 1 });
        let mut slow = 0;
        for _ in 0..10_000 {
            let picked = selector
                .pick(&list)
                .map(Instance::endpoint)
                .expect("an instance");
            selector.started(picked);
            slow += usize::from(picked.port() == 1);
            selector.finished(picked, latency(picked.port()));
        }
        assert!(
            slow <= 2_000,
            "{slow} of 10000 went to the instance 10x slower"
        );
    }

    /// `picks` p2c requests over `list` at `now`, each taking what
    /// `latency(port)` says; how many went to each port.
    fn p2c_run(
        selector: &Selector,
        list: &Instances,
        now: Instant,
        picks: usize,
        latency: impl Fn(u16) -> Duration,
    ) -> HashMap<u16, usize> {
        let mut counts = HashMap::new();
        for _ in 0..picks {
            let picked = selector
                .pick_excluding_at(list, &[], now, SystemTime::now())
                .map(Instance::endpoint)
                .expect("an instance");
            selector.started(picked);
            *counts.entry(picked.port()).or_default() += 1;
            selector.finished_at(picked, latency(picked.port()), now);
        }
        counts
    }

    #[test]
    fn one_latency_spike_does_not_starve_a_fast_instance() {
        let selector = Selector::with_seed(Strategy::P2c, 7);
        let list = instances(3);
        let now = Instant::now();
        let usual = |port: u16| Duration::from_micros(if port == 1 { 600 } else { 40 });
        p2c_run(&selector, &list, now, 300, usual);
        // A hiccup of the client's machine: one request to port 2 took 5 ms.
        selector.started(list[1].endpoint());
        selector.finished_at(list[1].endpoint(), Duration::from_millis(5), now);
        let after = p2c_run(&selector, &list, now, 3_000, usual);
        let share = |port| *after.get(&port).unwrap_or(&0) as f64 / 3_000.0;
        assert!(
            share(2) > 0.3,
            "the fast instance that spiked is used again: {after:?}"
        );
        assert!(share(1) < 0.05, "the slow one stays avoided: {after:?}");
    }

    #[test]
    fn a_slow_instance_is_tried_again_after_the_decay_and_used_once_fast() {
        let selector = Selector::with_seed(Strategy::P2c, 9);
        let list = instances(3);
        let start = Instant::now();
        let slow_then = |port: u16| Duration::from_micros(if port == 1 { 600 } else { 40 });
        p2c_run(&selector, &list, start, 300, slow_then);
        // Port 1 has recovered; the others are as before. Within a second
        // it is still avoided; after a few decay times it is probed, found
        // fast, and used like the others.
        let recovered = |_: u16| Duration::from_micros(40);
        let soon = p2c_run(
            &selector,
            &list,
            start + Duration::from_secs(1),
            300,
            recovered,
        );
        assert!(soon.get(&1).copied().unwrap_or(0) < 15, "{soon:?}");
        let later = p2c_run(&selector, &list, start + DECAY * 4, 3_000, recovered);
        let share = *later.get(&1).unwrap_or(&0) as f64 / 3_000.0;
        assert!(
            share > 0.2,
            "the recovered instance is used again: {later:?}"
        );
    }

    #[test]
    fn strategies_parse_by_name() {
        for (name, strategy) in [
            ("random", Strategy::Random),
            ("round-robin", Strategy::RoundRobin),
            ("weighted", Strategy::Weighted),
            ("smooth-weighted", Strategy::SmoothWeighted),
            ("p2c", Strategy::P2c),
        ] {
            assert_eq!(name.parse::<Strategy>().ok(), Some(strategy));
        }
        assert!("fastest".parse::<Strategy>().is_err());
    }

    #[test]
    fn excluded_instances_are_never_picked_and_all_excluded_is_none() {
        let selector = Selector::with_seed(Strategy::Random, 9);
        let list = instances(3);
        let tried = [list[0].endpoint(), list[1].endpoint()];
        for _ in 0..50 {
            assert_eq!(port(selector.pick_excluding(&list, &tried)), 3);
        }
        let all: Vec<Endpoint> = list.iter().map(Instance::endpoint).collect();
        assert_eq!(selector.pick_excluding(&list, &all), None);
    }
}
