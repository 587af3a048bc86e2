//! Down marks: an instance whose request failed is skipped for a cooldown
//! (like Curator's DownInstancePolicy). A crashed server's node stays
//! listed until its session times out, and without the mark every request
//! would have a chance to hit it first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::sync::lock;

/// The instances marked down, each with when it was marked.
#[derive(Debug)]
pub(super) struct DownMarks {
    /// How long a mark lasts.
    pub(super) cooldown: Duration,
    /// How many marks `marks` holds, lapsed or not; set under its lock.
    /// Usually none is: then a pick, and the `mark_up` after each
    /// successful request, need neither the lock nor the clock.
    count: AtomicUsize,
    marks: Mutex<HashMap<Endpoint, Instant>>,
}

impl DownMarks {
    pub(super) fn new(cooldown: Duration) -> DownMarks {
        DownMarks {
            cooldown,
            count: AtomicUsize::new(0),
            marks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any mark may be in force. A mark made while a pick runs
    /// may be missed by it, as if the pick had come first.
    pub(super) fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) != 0
    }

    /// The marks in force at `now` (those older than the cooldown are
    /// dropped), locked while the caller picks.
    pub(super) fn in_force(&self, now: Instant) -> MutexGuard<'_, HashMap<Endpoint, Instant>> {
        let mut marks = lock(&self.marks);
        marks.retain(|_, since| now.saturating_duration_since(*since) < self.cooldown);
        self.count.store(marks.len(), Ordering::Release);
        marks
    }

    /// Marks `endpoint` down as of `at`.
    pub(super) fn mark(&self, endpoint: Endpoint, at: Instant) {
        let mut marks = lock(&self.marks);
        marks.insert(endpoint, at);
        self.count.store(marks.len(), Ordering::Release);
    }

    /// Clears the mark of `endpoint`, if any.
    pub(super) fn clear(&self, endpoint: Endpoint) {
        if !self.any() {
            return;
        }
        let mut marks = lock(&self.marks);
        marks.remove(&endpoint);
        self.count.store(marks.len(), Ordering::Release);
    }

    /// Whether `endpoint` is marked down at `now`.
    pub(super) fn is_down(&self, endpoint: Endpoint, now: Instant) -> bool {
        self.any()
            && lock(&self.marks)
                .get(&endpoint)
                .is_some_and(|since| now.saturating_duration_since(*since) < self.cooldown)
    }
}
