//! `OpenParent`: a registrant with auth keeps the parent of its nodes
//! closed to strangers, before its first create and before every
//! re-creation.

use super::CREATE_ATTEMPTS;
use crate::error::{Error, Result};
use crate::session::Session;

/// What a registrant with digest auth does when the parent of its nodes
/// already exists with an ACL that lets strangers do more than READ
/// (`world:anyone`, or any `ip:` entry, such as `ip:0.0.0.0/0`, granting
/// CREATE, DELETE, WRITE or ADMIN; left by the seed Go servers, a run
/// without auth, another tool): there, any unauthenticated client could
/// register a fake instance, or delete ours (deleting a child needs DELETE
/// on the parent), so registering there "protected" would be a false
/// promise. Applied at registration and again before every re-creation by
/// the registration's keeper. Without auth every node is open anyway (and
/// a warning says so): nothing is checked.
///
/// # Example
///
/// ```
/// use zkutil::{BasePath, OpenParent, Registrar};
/// // The operator has decided: an open /go_servers becomes ours (world: READ).
/// let registrar = Registrar::new(BasePath::from_static("/go_servers")).open_parent(OpenParent::Tighten);
/// # let _ = registrar;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OpenParent {
    /// Registering fails with [`Error::OpenAcl`], naming the path, its ACL
    /// and the fix.
    #[default]
    Refuse,
    /// Its ACL is set to the one this session gives the nodes it creates
    /// (its identity ALL, the world READ: discovery still works, and an
    /// operator identity needs no more than READ on a parent); needs ADMIN
    /// on the node, else [`Error::OpenAcl`].
    Tighten,
}

/// Makes sure `parent` exists and, with auth, is not open to strangers:
/// refused or tightened as `open_parent` says. Called before the first
/// create and before every re-creation (the parent may have been replaced
/// meanwhile). The check is made once the
/// path can be read, so a ZooKeeper that is down is still a retryable error.
pub(super) fn guard_parent(session: &Session, parent: &str, open_parent: OpenParent) -> Result<()> {
    if !session.config().has_auth() {
        return Ok(());
    }
    session.ensure_path(parent)?;
    for _ in 0..CREATE_ATTEMPTS {
        let Some((acl, acl_version)) = session.open_acl(parent)? else {
            return Ok(());
        };
        let open = |tighten_denied| Error::OpenAcl {
            path: parent.to_owned(),
            acl: acl.clone(),
            tighten_denied,
        };
        if open_parent == OpenParent::Refuse {
            return Err(open(false));
        }
        match session.restrict_acl(parent, acl_version) {
            Ok(()) => {
                tracing::warn!(path = parent, was = %acl, "tightened the open ACL of the parent: this identity ALL, the world READ");
                return Ok(());
            }
            Err(err) if err.is_no_auth() => return Err(open(true)),
            // Changed (or deleted) meanwhile: look again.
            Err(Error::Zk { source, .. })
                if matches!(
                    source.kind(),
                    crate::error::ZkErrorKind::BadVersion | crate::error::ZkErrorKind::NoNode
                ) => {}
            Err(err) => return Err(err),
        }
    }
    Err(Error::Conflict {
        path: parent.to_owned(),
        attempts: CREATE_ATTEMPTS,
    })
}
