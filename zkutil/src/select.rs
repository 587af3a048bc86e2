//! `Selector`: which of the registered instances gets the next request.
//!
//! The post picked `rand.Intn(3)` over the list: it panics below three
//! servers and never uses a fourth. Every strategy here picks among **all**
//! instances of the snapshot it is given, and an empty snapshot is `None`,
//! never a panic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How to choose an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Uniformly at random, independently for every request.
    #[default]
    Random,
    /// Each instance in turn.
    RoundRobin,
}

/// Picks instances with a [`Strategy`]; shared between threads.
#[derive(Debug)]
pub struct Selector {
    strategy: Strategy,
    rng: Mutex<StdRng>,
    next: AtomicUsize,
}

impl Selector {
    /// A selector seeded from the operating system.
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
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// One of `items`, or `None` when there is none.
    pub fn pick<'a, T>(&self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let index = match self.strategy {
            Strategy::Random => self
                .rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .random_range(0..items.len()),
            // An unsigned counter that wraps: no `abs(counter) % n` overflow.
            Strategy::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % items.len(),
        };
        items.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_list_picks_nothing() {
        let selector = Selector::with_seed(Strategy::Random, 1);
        assert_eq!(selector.pick::<u8>(&[]), None);
        assert_eq!(Selector::new(Strategy::RoundRobin).pick::<u8>(&[]), None);
    }

    #[test]
    fn random_uses_every_instance_of_a_long_list() {
        // The post's Intn(3) would never reach items 3..10.
        let selector = Selector::with_seed(Strategy::Random, 7);
        let items: Vec<usize> = (0..10).collect();
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            let picked = selector.pick(&items).copied().unwrap_or(usize::MAX);
            counts[picked] += 1;
        }
        // Expected 1000 each; sd ≈ 30. ±200 is more than 6 sd.
        for (item, count) in counts.iter().enumerate() {
            assert!(
                (800..=1200).contains(count),
                "item {item} picked {count} times: {counts:?}"
            );
        }
    }

    #[test]
    fn random_works_with_a_single_instance() {
        let selector = Selector::with_seed(Strategy::Random, 3);
        for _ in 0..100 {
            assert_eq!(selector.pick(&["only"]), Some(&"only"));
        }
    }

    #[test]
    fn round_robin_visits_each_instance_once_per_cycle() {
        let selector = Selector::new(Strategy::RoundRobin);
        let items = ["a", "b", "c"];
        let picked: Vec<&str> = (0..9)
            .filter_map(|_| selector.pick(&items).copied())
            .collect();
        assert_eq!(picked, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn round_robin_counter_wraps_without_panic() {
        let selector = Selector::new(Strategy::RoundRobin);
        selector.next.store(usize::MAX, Ordering::Relaxed);
        assert!(selector.pick(&[1, 2, 3]).is_some());
        assert!(selector.pick(&[1, 2, 3]).is_some());
    }
}
