//! `connect`: a session for the long-running subcommands (`render`,
//! `console`), retried while ZooKeeper is unreachable.

use std::sync::Arc;
use std::time::Duration;

use zkutil::{Backoff, Session};

/// A session from `zk`'s flags. A failure that another attempt may cure is
/// logged with `meanwhile` (what holds while it waits) and retried after a
/// growing delay, which `wait` spends (true: a stop came, give up);
/// with `retry` false, or a failure no retry cures, it is the error.
/// `None`: stopped first (a signal during the attempt, or `wait`).
pub fn retrying(
    zk: &zkutil::cli::ZkArgs,
    retry: bool,
    meanwhile: &str,
    mut wait: impl FnMut(Duration) -> bool,
) -> anyhow::Result<Option<Arc<Session>>> {
    let config = zk.session_config();
    let mut backoff = Backoff::default();
    loop {
        match config.clone().connect() {
            Ok(session) => return Ok(Some(Arc::new(session))),
            Err(zkutil::Error::Interrupted) => return Ok(None),
            Err(err) if retry && err.is_retryable() => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, retry_in = %zkutil::rounded(delay),
                    "ZooKeeper unreachable; {meanwhile}");
                if wait(delay) {
                    return Ok(None);
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
}
