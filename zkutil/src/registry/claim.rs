//! [`Claim`]: one maintainer per node and session.

use std::sync::Arc;

use crate::session::Session;

/// A path that one [`Registration`](super::Registration) of a session maintains: two maintainers
/// of one node would delete and re-create it in turn. Released on drop.
#[derive(Debug)]
pub(super) struct Claim {
    session: Arc<Session>,
    path: String,
}

impl Claim {
    pub(super) fn take(session: &Arc<Session>, path: &str) -> Option<Claim> {
        session.claim(path).then(|| Claim {
            session: session.clone(),
            path: path.to_owned(),
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.session.release(&self.path);
    }
}
