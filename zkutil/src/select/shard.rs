//! Per-thread shards: what every pick writes is kept once per shard, and
//! each thread writes only its own, so that threads sharing a selector
//! do not pass a cache line back and forth on every pick.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many shards: more than the cores of most clients' machines, few
/// enough to cost little (two cache lines each).
pub(super) const SHARDS: usize = 8;

/// Which shard each thread uses, handed out in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// The shard of the calling thread, in `0..SHARDS`; the same for the
/// thread's life (threads beyond `SHARDS` share, still correctly).
pub(super) fn of_this_thread() -> usize {
    thread_local! {
        static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.try_with(|at| *at).unwrap_or(0) % SHARDS
}

/// A value alone on its cache lines (two: the CPU may fetch pairs), so
/// that writing one shard's moves nothing another core reads.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}
