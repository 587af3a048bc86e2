//! Serverset members: sequential names (`member_` and a number ZooKeeper
//! gives), so a registration cannot find its node again by name. It finds
//! its members by owner and by the endpoint in their data, and never leaves
//! two live members for one endpoint.

use std::sync::Mutex;

use super::CREATE_ATTEMPTS;
use super::Outcome;
use super::keeper::{Keeper, Seen, Wake, replace_stale};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::format::{MEMBER_PREFIX, member_endpoint};
use crate::session::{Session, SessionId};
use crate::sync::lock;

impl Keeper {
    /// [`Keeper::ensure`] for a serverset member: the member we know if it
    /// is still ours; otherwise ours found again, our earlier sessions'
    /// deleted, or a new one created. A watch is armed on the member kept
    /// (or on the other live session's, to take over when it goes).
    pub(super) fn ensure_member(
        &self,
        endpoint: Endpoint,
        current: &Mutex<String>,
        watch: bool,
    ) -> Result<(Seen, bool)> {
        let session = &self.session;
        let known = lock(current).clone();
        let arm = |path: &str| {
            let wake = self.wake.clone();
            session.stat_and_watch(path, move |event| {
                let _ = wake.send(Wake::Watch(event));
            })
        };
        let stat = if watch {
            arm(&known)?
        } else {
            session.stat(&known)?
        };
        if let Some(stat) = stat.filter(|stat| stat.ephemeral_owner() == session.id()) {
            self.follow_data(&known, stat)?;
            return Ok((Seen::Ours(session.id()), false));
        }
        let previous = lock(&self.previous).clone();
        let data = self.kept_bytes();
        self.guard_parent()?;
        // The member that wins (the other session's, or ours) is read, then
        // watched: gone in between (its registrant stopped, an operator
        // deleted it), the watch would wait for the creation of that very
        // name, which never comes (sequential names), and nobody would hold
        // the address. So look again at once.
        let mut attempts = 0;
        let created = loop {
            let created = create_member(session, &self.base_path, endpoint, &data, |owner, _| {
                previous.contains(&owner)
            })?;
            let (Err((_, winner)) | Ok((_, winner))) = &created;
            if arm(winner)?.is_some() {
                break created;
            }
            attempts += 1;
            if attempts >= CREATE_ATTEMPTS {
                // Back to the keeper's backoff, which tries again.
                return Err(Error::Conflict {
                    path: format!("{}/{MEMBER_PREFIX}", self.base_path),
                    attempts,
                });
            }
            tracing::debug!(endpoint = %endpoint, "the member holding this address went before it was watched; looking again");
        };
        self.created(&created.as_ref().map(|(outcome, _)| *outcome));
        Ok(match created {
            Err((owner, _)) => (Seen::Foreign(owner), false),
            Ok((outcome, path)) => {
                *lock(current) = path.clone();
                match outcome {
                    Outcome::ReplacedStale { previous_owner } => {
                        tracing::info!(path, old = %previous_owner, session = %session.id(),
                            "re-registered, replacing the member of our earlier session");
                        (Seen::Replaced(previous_owner), false)
                    }
                    Outcome::Adopted => (Seen::Ours(session.id()), false),
                    Outcome::Created => {
                        tracing::info!(path, session = %session.id(), "re-registered");
                        (Seen::Ours(session.id()), true)
                    }
                }
            }
        })
    }
}

/// The sequence number ZooKeeper gave member `path` (`…/member_0000000042`);
/// a name without one sorts last.
fn sequence(path: &str) -> u64 {
    path.rsplit('/')
        .next()
        .and_then(|name| name.strip_prefix(MEMBER_PREFIX))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(u64::MAX)
}

/// Whether member `a` was created before member `b`.
fn older(a: &str, b: &str) -> bool {
    (sequence(a), a) < (sequence(b), b)
}

/// Makes a serverset member for `endpoint` under `parent` ours: one of
/// ours is adopted (any other of ours deleted: a create whose answer was
/// lost leaves one), members of other sessions are replaced when
/// `may_replace(owner, data)` says so. Of the live members left, the oldest
/// (lowest sequence number) wins: when it is another session's, it is
/// returned as `Err` (owner, path) and ours, if any, deleted: never two
/// live members for one endpoint. With none left, one is created, and the
/// members looked at again: a registrant that created one at the same
/// moment is then seen, and exactly one of the two yields.
pub(super) fn create_member(
    session: &Session,
    parent: &str,
    endpoint: Endpoint,
    data: &[u8],
    may_replace: impl Fn(SessionId, &[u8]) -> bool,
) -> Result<std::result::Result<(Outcome, String), (SessionId, String)>> {
    let mut replaced = None;
    let mut created = false;
    let mut last_err = None;
    // One round more than creates: the last one adopts what it created.
    for _ in 0..=CREATE_ATTEMPTS {
        let names = match session.children(parent) {
            Ok(names) => names,
            Err(err) if err.is_no_node() => Vec::new(),
            Err(err) => return Err(err),
        };
        let paths: Vec<String> = names
            .iter()
            .filter(|name| name.starts_with(MEMBER_PREFIX))
            .map(|name| format!("{parent}/{name}"))
            .collect();
        let mut ours = Vec::new();
        let mut foreign: Option<(SessionId, String)> = None;
        // A read lost with the connection fails the round: taken as
        // absent, another session's member would be missed and a second
        // one created for the endpoint. Read in parts, each dropped once
        // looked at: members of a megabyte each are not all held at once.
        session.get_data_each(&paths, |at, read| {
            let path = &paths[at];
            let Ok((held, stat)) = read else {
                return Ok(());
            };
            if member_endpoint(&held) != Some(endpoint) {
                return Ok(());
            }
            let owner = stat.ephemeral_owner();
            if owner == session.id() {
                ours.push((path.clone(), stat));
            } else if may_replace(owner, &held) {
                replace_stale(session, path, stat)?;
                replaced = Some(owner);
            } else if foreign.as_ref().is_none_or(|(_, f)| older(path, f)) {
                foreign = Some((owner, path.clone()));
            }
            Ok(())
        })?;
        // Two registrants that created at the same moment each see the
        // other's member: the oldest member (the lowest sequence number)
        // wins, the same for both, so exactly one yields.
        ours.sort_by_key(|(path, _)| sequence(path));
        let ours_first = ours.first().map(|(path, _)| path.clone());
        if let Some(foreign) =
            foreign.filter(|(_, f)| ours_first.as_ref().is_none_or(|o| older(f, o)))
        {
            for (path, stat) in &ours {
                replace_stale(session, path, *stat)?;
            }
            return Ok(Err(foreign));
        }
        let mut ours = ours.into_iter();
        if let Some((path, _)) = ours.next() {
            for (extra, stat) in ours {
                replace_stale(session, &extra, stat)?;
            }
            let outcome = match (replaced, created) {
                (Some(previous_owner), _) => Outcome::ReplacedStale { previous_owner },
                (None, true) => Outcome::Created,
                (None, false) => Outcome::Adopted,
            };
            return Ok(Ok((outcome, path)));
        }
        match session.create_ephemeral_sequential(&format!("{parent}/{MEMBER_PREFIX}"), data) {
            // Looked at again by the next round, which adopts it.
            Ok(_) => created = true,
            Err(err) if err.is_no_node() => {
                session.ensure_path(parent)?;
                last_err = Some(err);
            }
            Err(err) => return Err(err),
        }
    }
    Err(last_err.unwrap_or(Error::Closed))
}
