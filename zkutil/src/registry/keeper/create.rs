//! Creating the node as ours: the keeper's check-and-create, and the
//! create that replaces a node of another session only when allowed.

use super::node::{Keeper, Seen, Target, Wake};
use crate::error::{Error, Result};
use crate::registry::{CREATE_ATTEMPTS, Outcome};
use crate::session::{NodeStat, Session, SessionId};
use crate::sync::lock;

impl Keeper {
    /// Makes sure the node exists and is ours, arming a watch on it when
    /// `watch` is set.
    pub(super) fn ensure(&self, watch: bool) -> Result<(Seen, bool)> {
        let path = match &self.target {
            Target::Fixed(path) => path.as_str(),
            Target::Member { endpoint, current } => {
                return self.ensure_member(*endpoint, current, watch);
            }
        };
        let session = &self.session;
        let stat = if watch {
            let wake = self.wake.clone();
            session.stat_and_watch(path, move |event| {
                let _ = wake.send(Wake::Watch(event));
            })?
        } else {
            session.stat(path)?
        };
        let previous = lock(&self.previous).clone();
        let missing = match stat {
            Some(stat) if stat.ephemeral_owner() == session.id() => {
                self.follow_data(path, stat)?;
                return Ok((Seen::Ours(stat.ephemeral_owner()), false));
            }
            Some(stat) if !previous.contains(&stat.ephemeral_owner()) => {
                return Ok((Seen::Foreign(stat.ephemeral_owner()), false));
            }
            Some(_) => false,
            None => true,
        };
        // Missing, or left by one of our earlier sessions. Should another
        // live session create it meanwhile, it is not ours to replace.
        self.guard_parent()?;
        let data = self.kept_bytes();
        let created = create_owned(session, &self.base_path, path, &data, |owner, _| {
            previous.contains(&owner)
        })?;
        self.created(&created);
        Ok(match created {
            Err(owner) => (Seen::Foreign(owner), false),
            Ok(Outcome::ReplacedStale { previous_owner }) => {
                tracing::info!(path, old = %previous_owner, session = %session.id(),
                    "re-registered, replacing the node of our earlier session");
                (Seen::Replaced(previous_owner), false)
            }
            Ok(outcome) => {
                if missing {
                    tracing::info!(path, session = %session.id(), "re-registered");
                } else {
                    tracing::debug!(path, ?outcome, "node is ours");
                }
                (Seen::Ours(session.id()), missing)
            }
        })
    }
}

/// Creates `path` as ours. A node of that name left by another session is
/// replaced (at the version read) only when `may_replace(owner, data)` says
/// so; otherwise that owner is returned as `Err` and its node left alone.
pub(in crate::registry) fn create_owned(
    session: &Session,
    base_path: &str,
    path: &str,
    data: &[u8],
    may_replace: impl Fn(SessionId, &[u8]) -> bool,
) -> Result<std::result::Result<Outcome, SessionId>> {
    let mut replaced = None;
    let mut last_err = None;
    for _ in 0..CREATE_ATTEMPTS {
        match session.create_ephemeral(path, data) {
            Ok(_) => {
                return Ok(Ok(match replaced {
                    Some(previous_owner) => Outcome::ReplacedStale { previous_owner },
                    None => Outcome::Created,
                }));
            }
            Err(err) if err.is_no_node() => {
                session.ensure_path(base_path)?;
                last_err = Some(err);
            }
            Err(err) if err.is_node_exists() => {
                let (data, stat) = match session.get_data(path) {
                    Ok(read) => read,
                    Err(err) if err.is_no_node() => continue,
                    Err(err) => return Err(err),
                };
                let owner = stat.ephemeral_owner();
                if owner == session.id() {
                    return Ok(Ok(Outcome::Adopted));
                }
                if !may_replace(owner, &data) {
                    return Ok(Err(owner));
                }
                replace_stale(session, path, stat)?;
                replaced = Some(owner);
                last_err = Some(err);
            }
            Err(err) => return Err(err),
        }
    }
    Err(last_err.unwrap_or(Error::Closed))
}

pub(in crate::registry) fn replace_stale(
    session: &Session,
    path: &str,
    stat: NodeStat,
) -> Result<()> {
    tracing::warn!(path, owner = %stat.ephemeral_owner(), "replacing the node of another session");
    match session.delete(path, Some(stat.version())) {
        // Gone or changed meanwhile: the next create attempt finds out.
        Err(err) if err.is_no_node() => Ok(()),
        Err(Error::Zk { source, .. }) if source.kind() == crate::error::ZkErrorKind::BadVersion => {
            Ok(())
        }
        other => other,
    }
}
