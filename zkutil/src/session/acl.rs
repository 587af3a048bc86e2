//! Access control: the ACL a session gives the nodes it creates, and the
//! check and fix of a parent open to strangers.

use zookeeper_client as zk;

use super::handle::Session;
use crate::error::Result;

/// The ACL of nodes created with digest auth: the creating identity may do
/// anything, everyone else may only read (and so discover). Deleting a
/// child needs DELETE on its parent, so the base path carries it too.
static CREATOR_ALL_WORLD_READ: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

impl Session {
    /// The ACL of the nodes this session creates.
    pub(super) fn acls(&self) -> zk::Acls<'static> {
        if self.inner.config.has_auth() {
            zk::Acls::new(&CREATOR_ALL_WORLD_READ)
        } else {
            zk::Acls::anyone_all()
        }
    }

    /// The ACL of the ephemeral nodes (registrations) this session creates:
    /// [`Session::acls`], and READ and WRITE for the operator identity when
    /// one is configured.
    pub(super) fn registration_acls(&self) -> Vec<zk::Acl> {
        let mut acls = self.acls().to_vec();
        if let (Some((scheme, id)), true) =
            (&self.inner.config.operator, self.inner.config.has_auth())
        {
            acls.push(zk::Acl::new(
                zk::Permission::READ | zk::Permission::WRITE,
                zk::AuthId::new(scheme, id),
            ));
        }
        acls
    }

    /// The ACL of `path`, one `scheme:id:permissions` entry each as zkCli
    /// prints them (`x509:CN=svc:cdrwa`, `world:anyone:r`): who owns a
    /// registration, and who else may touch it.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) or
    /// [`Error::Zk`](crate::Error::Zk) naming the path (no node: see
    /// [`Error::is_no_node`](crate::Error::is_no_node)).
    pub fn acl(&self, path: &str) -> Result<Vec<String>> {
        let owned = path.to_owned();
        let (acls, _) = self.call("read ACL of", path, move |client| async move {
            client.get_acl(&owned).await
        })?;
        Ok(acls.iter().map(entry).collect())
    }

    /// The ACL of `path` as zkCli's `setAcl` takes it, and its ACL
    /// version, when strangers may do more than READ there (create a child,
    /// delete one, write, change the ACL: see `open_to_strangers`); `None`
    /// when they may not, or the node does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path.
    pub(crate) fn open_acl(&self, path: &str) -> Result<Option<(String, i32)>> {
        let owned = path.to_owned();
        let read = self.call("read ACL of", path, move |client| async move {
            client.get_acl(&owned).await
        });
        let (acls, stat) = match read {
            Err(err) if err.is_no_node() => return Ok(None),
            other => other?,
        };
        let open = acls
            .iter()
            .any(|acl| open_to_strangers(acl.scheme(), acl.permission()));
        let text = acls.iter().map(entry).collect::<Vec<_>>().join(",");
        Ok(open.then_some((text, stat.aversion)))
    }

    /// Sets the ACL of `path` to the one this session gives the nodes it
    /// creates (with auth: its identity ALL, the world READ), only if the
    /// ACL version is still `acl_version`. Needs ADMIN on the node.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`]: no permission (`NoAuth`), a changed ACL
    /// (`BadVersion`), no node.
    pub(crate) fn restrict_acl(&self, path: &str, acl_version: i32) -> Result<()> {
        let (owned, acls) = (path.to_owned(), self.acls().to_vec());
        self.call("set ACL of", path, move |client| async move {
            client
                .set_acl(&owned, &acls, Some(acl_version))
                .await
                .map(|_| ())
        })
    }
}

/// Whether an ACL entry of `scheme` granting `permission` lets strangers
/// more than READ: CREATE (a fake instance), DELETE (ours), WRITE or ADMIN
/// (take the node over), given to an identity that needs no secret to hold.
/// `world:anyone` is everyone; an `ip:` entry is every client that connects
/// from its range, authenticated or not (`ip:0.0.0.0/0` is the world again,
/// and even a narrow range holds unauthenticated processes). Identities that
/// need credentials (`digest`, `sasl`, `x509`) are not strangers: ours, or
/// an operator's someone chose to give rights.
fn open_to_strangers(scheme: &str, permission: zk::Permission) -> bool {
    let beyond_read = [
        zk::Permission::CREATE,
        zk::Permission::DELETE,
        zk::Permission::WRITE,
        zk::Permission::ADMIN,
    ]
    .into_iter()
    .any(|bit| permission.has(bit));
    beyond_read && matches!(scheme, "world" | "ip")
}

/// One ACL entry as zkCli writes it: `scheme:id:cdrwa`.
fn entry(acl: &zk::Acl) -> String {
    format!(
        "{}:{}:{}",
        acl.scheme(),
        acl.id(),
        letters(acl.permission())
    )
}

/// Permissions as zkCli writes them: `cdrwa` for ALL.
fn letters(permission: zk::Permission) -> String {
    [
        (zk::Permission::CREATE, 'c'),
        (zk::Permission::DELETE, 'd'),
        (zk::Permission::READ, 'r'),
        (zk::Permission::WRITE, 'w'),
        (zk::Permission::ADMIN, 'a'),
    ]
    .into_iter()
    .filter_map(|(bit, letter)| permission.has(bit).then_some(letter))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_read_for_the_world_or_an_ip_range_is_open_and_credentials_are_not() {
        let read = zk::Permission::READ;
        let create = zk::Permission::CREATE;
        for (scheme, permission, open) in [
            ("world", read, false),
            ("world", zk::Permission::NONE, false),
            ("world", read | create, true),
            ("world", zk::Permission::ADMIN, true),
            ("ip", zk::Permission::ALL, true),
            ("ip", zk::Permission::DELETE, true),
            ("ip", zk::Permission::WRITE, true),
            ("ip", read, false),
            ("digest", zk::Permission::ALL, false),
            ("sasl", zk::Permission::ALL, false),
            ("x509", zk::Permission::ALL, false),
        ] {
            assert_eq!(
                open_to_strangers(scheme, permission),
                open,
                "{scheme}:{}",
                letters(permission)
            );
        }
    }
}
