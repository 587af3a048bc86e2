//! [`Follower`]: what brings a registration in line with its service's
//! health, interval after interval, and what it must not forget meanwhile:
//! an operator's out-of-rotation (kept across a deregistration while
//! failing, and handed to a re-registration), and a node whose delete
//! failed (deleted at a later interval, not left in rotation).

use zkutil::cli::check::Health;
use zkutil::{Control, Registration};

use super::{REASON_PREFIX, Registered};
use crate::args::OnFail;

/// The longest reason written: a record has a size limit, and readers cut
/// reasons shorter anyway.
const MAX_REASON: usize = 200;

/// An operator's out-of-rotation and its reason (`None`: not given).
pub type OperatorOut = Option<Option<String>>;

/// The registration of one service, as its health goes.
pub struct Follower {
    pub registration: Option<Registration>,
    /// An operator took it out of rotation (their reason): stays so.
    pub operator_out: OperatorOut,
    /// A node of ours whose delete failed (ZooKeeper away): deleted at the
    /// next intervals, before anything else.
    leftover: Option<String>,
}

/// `health check failing: CAUSE`, cut to [`MAX_REASON`].
pub fn reason_of(cause: &str) -> String {
    let mut reason = format!("{REASON_PREFIX}{cause}");
    if let Some((at, _)) = reason.char_indices().nth(MAX_REASON) {
        reason.truncate(at);
        reason.push('…');
    }
    reason
}

impl Follower {
    pub fn new(registration: Option<Registration>, operator_out: OperatorOut) -> Follower {
        Follower {
            registration,
            operator_out,
            leftover: None,
        }
    }

    /// What the node says of an operator: refreshed while registered, from
    /// the keeper's sight of it, or (`now`) read from ZooKeeper, for a
    /// hand-over that must not miss a disable made a moment ago.
    fn observe_operator(&mut self, now: bool) {
        let Some(registration) = self.registration.as_ref() else {
            return;
        };
        let rotation = if now {
            registration
                .rotation_now()
                .ok()
                .flatten()
                .or_else(|| registration.rotation())
        } else {
            registration.rotation()
        };
        let Some((in_rotation, reason)) = rotation else {
            return;
        };
        let ours = reason
            .as_deref()
            .is_some_and(|r| r.starts_with(REASON_PREFIX));
        self.operator_out = (!in_rotation && !ours).then_some(reason);
    }

    /// The reason to register with: the operator's if they took it out,
    /// else the health check's when failing.
    fn initial_reason(&self, healthy: bool, cause: &str) -> Option<Option<String>> {
        match &self.operator_out {
            Some(reason) => Some(reason.clone()),
            None => (!healthy).then(|| Some(reason_of(cause))),
        }
    }

    /// Brings the registration in line with `state`: errors are logged and
    /// the next interval tries again, with the state as it is then.
    pub fn follow(&mut self, state: &Health, cause: &str, on_fail: OnFail, what: &Registered<'_>) {
        self.observe_operator(false);
        if let Some(path) = self.leftover.clone() {
            match delete_ours(what, &path) {
                Ok(()) => {
                    tracing::info!(%path, "deleted the node a failed deregistration left");
                    self.leftover = None;
                }
                Err(err) => {
                    tracing::warn!(%path, error = %err, "cannot delete it yet; retrying at the next check");
                    return;
                }
            }
        }
        let healthy = state.is_healthy();
        match (on_fail, healthy, self.registration.as_ref()) {
            (OnFail::Deregister, true, None) | (OnFail::Disable, _, None) => {
                match what.register_with(self.initial_reason(healthy, cause)) {
                    Ok(made) => self.registration = Some(made),
                    Err(err) => tracing::warn!(error = %format!("{err:#}"),
                        "cannot register yet; retrying at the next check"),
                }
            }
            (OnFail::Deregister, false, Some(_)) => {
                // What the operator said a moment ago goes with it.
                self.observe_operator(true);
                if let Some(gone) = self.registration.take() {
                    let path = gone.path();
                    match gone.deregister() {
                        Ok(()) => tracing::info!(%path, "deregistered while failing"),
                        Err(err) => {
                            tracing::warn!(%path, error = %err.chain(), "cannot deregister yet; retrying at the next check");
                            self.leftover = Some(path);
                        }
                    }
                }
            }
            (OnFail::Disable, healthy, Some(current)) => {
                let Some((in_rotation, reason)) = current.rotation() else {
                    return;
                };
                let ours = reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(REASON_PREFIX));
                let wanted = reason_of(cause);
                let change = match (healthy, in_rotation) {
                    (true, false) if ours => Control::Enable,
                    (false, true) => Control::Disable {
                        reason: Some(wanted),
                    },
                    // Still failing, for another cause now: say it.
                    (false, false) if ours && reason.as_deref() != Some(wanted.as_str()) => {
                        Control::Disable {
                            reason: Some(wanted),
                        }
                    }
                    _ => return,
                };
                match change.apply_to(what.session, &base_of(current), what.endpoint) {
                    Ok(_) => tracing::info!(endpoint = %what.endpoint, "{change}"),
                    Err(err) => tracing::warn!(endpoint = %what.endpoint, error = %err.chain(),
                        "cannot write the health state yet; retrying at the next check"),
                }
            }
            _ => {}
        }
    }

    /// Deregisters at a stop; the operator's out-of-rotation, for whoever
    /// registers the service next (a SIGHUP's new settings).
    pub fn stop(mut self, what: &Registered<'_>) -> anyhow::Result<OperatorOut> {
        self.observe_operator(true);
        if let Some(path) = self.leftover.take() {
            if let Err(err) = delete_ours(what, &path) {
                tracing::warn!(%path, error = %err, "cannot delete it; its session's end will");
            }
        }
        if let Some(registration) = self.registration.take() {
            let path = registration.path();
            registration
                .deregister()
                .map_err(|err| anyhow::anyhow!("deregistering {path}: {}", err.chain()))?;
            tracing::info!(%path, "deregistered");
        }
        Ok(self.operator_out)
    }
}

/// Deletes `path` if this session owns it (gone already: fine).
fn delete_ours(what: &Registered<'_>, path: &str) -> Result<(), String> {
    match what.session.stat(path) {
        Ok(Some(stat)) if stat.ephemeral_owner() == what.session.id() => what
            .session
            .delete(path, Some(stat.version()))
            .or_else(|err| if err.is_no_node() { Ok(()) } else { Err(err) })
            .map_err(|err| err.chain().to_string()),
        Ok(_) => Ok(()),
        Err(err) => Err(err.chain().to_string()),
    }
}

/// The parent of `registration`'s node.
fn base_of(registration: &Registration) -> zkutil::BasePath {
    let path = registration.path();
    let parent = path.rsplit_once('/').map_or("/", |(parent, _)| parent);
    zkutil::BasePath::new(parent).unwrap_or_else(|_| zkutil::BasePath::from_static("/"))
}
