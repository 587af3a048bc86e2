//! Where a [`Selector`](super::Selector)'s random choices come from.

use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, RngCore};

use crate::sync::lock;

/// The random numbers of one selector.
#[derive(Debug)]
pub(super) enum Randomness {
    /// One seeded sequence, so that a test's choices repeat; behind a lock,
    /// so threads that share the selector contend on it (tests pick from
    /// one thread).
    Seeded(Box<Mutex<StdRng>>),
    /// Each thread's own generator (`rand::rng()`, seeded from the
    /// operating system): picks on several threads share no state, so a
    /// random pick takes no lock and writes nothing another core reads.
    PerThread,
}

impl Randomness {
    /// Runs `draw` with this selector's generator; one lock at most, for
    /// all the numbers `draw` takes.
    fn with<T>(&self, draw: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        match self {
            Randomness::Seeded(rng) => draw(&mut *lock(rng)),
            Randomness::PerThread => draw(&mut rand::rng()),
        }
    }

    /// Uniform in `0..len`; `len` is at least 1.
    pub(super) fn below(&self, len: usize) -> usize {
        self.with(|rng| rng.random_range(0..len))
    }

    /// Uniform in `0..total`; `total` is at least 1.
    pub(super) fn below_i64(&self, total: i64) -> i64 {
        self.with(|rng| rng.random_range(0..total))
    }

    /// Two different indices in `0..len`, uniform; `len` is at least 2.
    pub(super) fn pair(&self, len: usize) -> (usize, usize) {
        self.with(|rng| {
            let a = rng.random_range(0..len);
            let b = (a + rng.random_range(1..len)) % len;
            (a, b)
        })
    }
}
