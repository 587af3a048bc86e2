//! Down marks: an instance whose request failed is skipped for a cooldown
//! (like Curator's DownInstancePolicy). A crashed server's node stays
//! listed until its session times out, and without the mark every request
//! would have a chance to hit it first.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::endpoint::Endpoint;
use crate::sync::lock;

/// The instances marked down, each with when it was marked.
#[derive(Debug)]
pub(super) struct DownMarks {
    /// How long a mark lasts.
    pub(super) cooldown: Duration,
    marks: Mutex<HashMap<Endpoint, Instant>>,
}

impl DownMarks {
    pub(super) fn new(cooldown: Duration) -> DownMarks {
        DownMarks {
            cooldown,
            marks: Mutex::new(HashMap::new()),
        }
    }

    /// The marks in force at `now` (those older than the cooldown are
    /// dropped), locked while the caller picks.
    pub(super) fn in_force(&self, now: Instant) -> MutexGuard<'_, HashMap<Endpoint, Instant>> {
        let mut marks = lock(&self.marks);
        marks.retain(|_, since| now.saturating_duration_since(*since) < self.cooldown);
        marks
    }

    /// Marks `endpoint` down as of `at`.
    pub(super) fn mark(&self, endpoint: Endpoint, at: Instant) {
        lock(&self.marks).insert(endpoint, at);
    }

    /// Clears the mark of `endpoint`, if any.
    pub(super) fn clear(&self, endpoint: Endpoint) {
        lock(&self.marks).remove(&endpoint);
    }

    /// Whether `endpoint` is marked down at `now`.
    pub(super) fn is_down(&self, endpoint: Endpoint, now: Instant) -> bool {
        lock(&self.marks)
            .get(&endpoint)
            .is_some_and(|since| now.saturating_duration_since(*since) < self.cooldown)
    }
}
