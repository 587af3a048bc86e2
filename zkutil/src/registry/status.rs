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

    /// Whether the node's record, as its keeper last saw it ([`data`](Self::data)),
    /// puts the instance in rotation, and the reason given when it does
    /// not (an operator's [`Control::Disable`](crate::Control::Disable), or
    /// a health check's): what clients go by. `None` when the record cannot
    /// be read (not this crate's format).
    pub fn rotation(&self) -> Option<(bool, Option<String>)> {
        let path = self.path();
        let name = path
            .rsplit_once('/')
            .map_or(path.as_str(), |(_, name)| name);
        let (_, rotation) = crate::format::read(name, &self.data()).ok()?;
        Some((rotation.enabled, rotation.reason))
    }

    /// As [`rotation`](Self::rotation), read from ZooKeeper now rather than
    /// from the keeper's last sight of the node, which is a watch round
    /// trip behind a change: for a decision that must see an operator's
    /// write made a moment ago.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors of the read (the node gone: [`Error::is_no_node`](crate::Error::is_no_node)).
    pub fn rotation_now(&self) -> crate::Result<Option<(bool, Option<String>)>> {
        let path = self.path();
        let (data, _) = self.session().get_data(&path)?;
        let name = path
            .rsplit_once('/')
            .map_or(path.as_str(), |(_, name)| name);
        Ok(crate::format::read(name, &data)
            .ok()
            .map(|(_, rotation)| (rotation.enabled, rotation.reason)))
    }
}
