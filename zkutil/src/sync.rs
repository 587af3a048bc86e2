//! Mutexes and condition variables that outlive a panic elsewhere.
//!
//! Every critical section in this workspace is a plain assignment, a clone
//! or a map update: a thread that panics while holding a lock cannot leave
//! the data half-changed. So a poisoned lock is taken anyway, rather than
//! turning one thread's panic into a panic in every thread that touches the
//! same state afterwards (a registration's keeper, a discovery's readers).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Locks `mutex`, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits on `condvar` for at most `timeout`, poisoned or not; the guard
/// comes back either way (whether the wait timed out, the caller learns by
/// re-checking its condition against its own deadline).
pub fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(PoisonError::into_inner)
        .0
}
