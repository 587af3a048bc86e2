//! Deadlines: every wait of the library is bounded by one.

use std::time::{Duration, Instant};

/// `timeout` from now; far in the future when that cannot be represented
/// (durations are checked at parse time, this is the last guard).
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}
