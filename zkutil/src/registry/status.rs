//! [`RegistrationStatus`]: whether a registration's node is in place now,
//! as its keeper last saw it, for a health check to read from any thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Registration;

/// Whether a [`Registration`]'s node is ours and in ZooKeeper, as its
/// keeper last checked: false from the moment the node is known gone (a
/// deletion seen, the session that owned it ended, another session holding
/// the address, a re-creation refused under an open parent) until the
/// keeper has it back. A lost connection alone does not clear it (the node
/// may well be there): a health check also asks the session.
///
/// Cheap to clone; every clone reads the same state.
#[derive(Debug, Clone)]
pub struct RegistrationStatus(Arc<AtomicBool>);

impl RegistrationStatus {
    /// In place: the registration just made the node ours.
    pub(super) fn in_place() -> RegistrationStatus {
        RegistrationStatus(Arc::new(AtomicBool::new(true)))
    }

    /// Whether the node is in place, as its keeper last saw it.
    pub fn is_in_place(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub(super) fn set(&self, in_place: bool) {
        self.0.store(in_place, Ordering::SeqCst);
    }
}

impl Registration {
    /// A handle on whether this registration's node is in place now; it
    /// stays valid (and false) once the registration is gone.
    pub fn status(&self) -> RegistrationStatus {
        self.status.clone()
    }
}
