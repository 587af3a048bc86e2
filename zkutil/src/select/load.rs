//! What the load-aware strategy ([`Strategy::P2c`](super::Strategy::P2c))
//! knows of each instance: a decaying average of its latency and its
//! requests in flight.

use std::time::{Duration, Instant};

/// What p2c knows of one instance.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Load {
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
    pub(super) fn cost_at(&self, now: Instant) -> f64 {
        self.ewma_at(now) * f64::from(self.in_flight + 1)
    }

    /// A request to the instance starts.
    pub(super) fn started(&mut self) {
        self.in_flight += 1;
    }

    /// A request to the instance ended at `now` after `latency`: one more
    /// sample in the average, one fewer request in flight.
    pub(super) fn finished(&mut self, latency: Duration, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let ms = latency.as_secs_f64() * 1e3;
        let average = self.ewma_at(now);
        self.ewma_ms = if self.updated.is_none() || average == 0.0 {
            ms
        } else {
            average * (1.0 - EWMA_WEIGHT) + ms.min(average * MAX_JUMP) * EWMA_WEIGHT
        };
        self.updated = Some(now);
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
