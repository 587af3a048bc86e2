//! `fdlimit`: file descriptors enough for the connection cap.
//!
//! Every connection held open costs a file descriptor, and the default
//! soft limit (often 1024, 256 on some systems) is far below what the hard
//! limit allows. Like Go's runtime, the server raises its soft
//! `RLIMIT_NOFILE` to the hard limit at start; then it keeps
//! `--max-connections` below what still fits, so that an `accept` never
//! fails for want of a descriptor: connections over the cap take the
//! overflow path (a reply, then closed at once) instead.

/// Descriptors kept for everything but held connections and what the
/// caller counts as held elsewhere: stdio, ZooKeeper, the signal pipe, the
/// overflow path's short-lived sockets, and a margin.
const RESERVED: u64 = 64;

/// Raises the soft limit on open files to the hard limit; returns the soft
/// limit in force afterwards (`None` when it cannot be read).
pub fn raise() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if soft < hard {
        match rlimit::increase_nofile_limit(hard) {
            Ok(raised) => {
                tracing::debug!(from = soft, to = raised, "raised the open-file limit");
                return Some(raised);
            }
            Err(err) => {
                tracing::warn!(soft, hard, error = %err, "cannot raise the open-file limit")
            }
        }
    }
    Some(soft)
}

/// The largest connection cap that fits in `soft_limit` descriptors next
/// to `held_elsewhere`, what the other parts may hold at most (the
/// listeners with their blocked acceptors, the metrics server's
/// connections): `max_connections` itself
/// when it fits. The metrics port's descriptors are counted here, never
/// taken from the descriptors kept for the rest (64), which ZooKeeper
/// reconnects and the overflow path need whatever a client of the metrics
/// port does.
pub fn fit(max_connections: usize, soft_limit: u64, held_elsewhere: usize) -> usize {
    let reserved = RESERVED.saturating_add(held_elsewhere as u64);
    let room = soft_limit.saturating_sub(reserved).max(1);
    usize::try_from(room).map_or(max_connections, |room| max_connections.min(room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_lowered_only_when_it_does_not_fit() {
        assert_eq!(fit(1024, 1_048_576, 3), 1024);
        assert_eq!(fit(1024, 256, 3), 256 - 64 - 3);
        assert_eq!(fit(1024, 10, 3), 1, "never zero");
    }

    #[test]
    fn the_metrics_servers_descriptors_come_on_top_of_the_reserve() {
        let metrics = zkutil::cli::metrics::MetricsServer::MAX_DESCRIPTORS;
        assert_eq!(fit(1024, 256, 3 + metrics), 256 - 64 - 3 - metrics);
    }
}
