//! `Backoff`: capped exponential delays with jitter, for every retry loop.
//!
//! Retrying at once when ZooKeeper is down turns every client into a busy
//! loop (the old `zookeeper` crate made 25,000 attempts in 5 s here);
//! retrying in lockstep makes a fleet of clients hit a recovering ensemble
//! together. So delays double from `initial` up to `max`, and each is drawn
//! at random from its upper half ("equal jitter").

use std::time::Duration;

use rand::Rng;

/// The delays of one retry loop.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// let mut backoff = zkutil::Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
/// let first = backoff.next_delay();
/// assert!(first <= Duration::from_millis(100)); // jittered, never above the cap
/// backoff.reset(); // after a success
/// assert_eq!(backoff.attempts(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    attempts: u32,
}

impl Default for Backoff {
    /// 100 ms doubling up to 10 s.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
    }
}

impl Backoff {
    /// Delays from `initial`, doubling, capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
            attempts: 0,
        }
    }

    /// The delay before the next attempt: in `[d/2, d]` where `d` doubles
    /// each call up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=ceiling - half)
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts again from the initial delay, after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempts = 0;
    }
}

/// A duration for a log line or a message, rounded to what a reader can
/// use: `80ms`, `1.25s`, `4m 10s` (not `79.779517ms`).
pub fn rounded(duration: Duration) -> impl std::fmt::Display {
    let rounded = if duration < Duration::from_secs(1) {
        Duration::from_millis(duration.as_millis() as u64)
    } else if duration < Duration::from_secs(60) {
        Duration::from_millis(duration.as_millis() as u64 / 10 * 10)
    } else {
        Duration::from_secs(duration.as_secs())
    };
    humantime::format_duration(rounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::default();
        let mut ceiling = Duration::from_millis(100);
        for _ in 0..12 {
            let delay = backoff.next_delay();
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(Duration::from_secs(10));
        }
        assert_eq!(backoff.attempts(), 12);
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn durations_are_rounded_for_people() {
        assert_eq!(
            rounded(Duration::from_nanos(79_779_517)).to_string(),
            "79ms"
        );
        assert_eq!(
            rounded(Duration::from_millis(1_256)).to_string(),
            "1s 250ms"
        );
        assert_eq!(
            rounded(Duration::from_millis(250_700)).to_string(),
            "4m 10s"
        );
    }
}
