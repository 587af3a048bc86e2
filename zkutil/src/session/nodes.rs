//! The operations on znodes: create, read, write, delete, list and watch,
//! each one call bounded by a deadline.

use std::time::Instant;

use zookeeper_client as zk;

use super::runtime::{Cancel, forward_recursive};
use super::runtime::{forward_watch, zk_error};
use super::{NodeEvent, NodeStat, Session, SessionConfig, WatchEvent, split_chroot};
use crate::error::{Error, Result};

/// The ACL of nodes created with digest auth: the creating identity may do
/// anything, everyone else may only read (and so discover). Deleting a
/// child needs DELETE on its parent, so the base path carries it too.
static CREATOR_ALL_WORLD_READ: [zk::Acl; 2] = [
    zk::Acl::new_const(zk::Permission::ALL, "auth", ""),
    zk::Acl::new_const(zk::Permission::READ, "world", "anyone"),
];

/// One node's data and stat, or why it could not be read.
type NodeRead = Result<(Vec<u8>, NodeStat)>;

impl Session {
    /// Creates `path` and its missing ancestors as persistent nodes (with
    /// this session's ACL). Nodes that exist already are fine, including
    /// ones created concurrently by another client. A missing chroot (the
    /// `/app` of `host:port/app`) is created too.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path.
    pub fn ensure_path(&self, path: &str) -> Result<()> {
        match self.mkdir(path) {
            Err(err) if err.is_no_node() => match split_chroot(&self.inner.config.hosts) {
                (hosts, Some(chroot)) => {
                    tracing::info!(chroot, "creating the missing chroot");
                    let config = SessionConfig {
                        hosts: hosts.to_owned(),
                        ..self.inner.config.clone()
                    };
                    Session::connect(config)?.mkdir(chroot)?;
                    self.mkdir(path)
                }
                (_, None) => Err(err),
            },
            other => other,
        }
    }

    fn mkdir(&self, path: &str) -> Result<()> {
        let (owned, acls) = (path.to_owned(), self.acls());
        self.call("create", path, move |client| async move {
            let options = zk::CreateMode::Persistent.with_acls(acls);
            client.mkdir(&owned, &options).await
        })
    }

    /// Creates an EPHEMERAL node owned by this session.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_node_exists`] when the node exists
    /// (perhaps created by this very call before a lost connection: callers
    /// check the owner), [`Error::is_no_node`] when the parent is missing.
    pub fn create_ephemeral(&self, path: &str, data: &[u8]) -> Result<NodeStat> {
        let (owned, data, acls) = (path.to_owned(), data.to_vec(), self.registration_acls());
        self.call("create", path, move |client| async move {
            let options = zk::CreateMode::Ephemeral.with_acls(zk::Acls::new(&acls));
            client
                .create(&owned, &data, &options)
                .await
                .map(|(stat, _)| NodeStat::from_stat(&stat))
        })
    }

    /// Creates an EPHEMERAL_SEQUENTIAL node `<prefix><sequence>` owned by
    /// this session (a serverset member): its path and stat. A create whose
    /// answer was lost leaves a member we do not know of: callers find their
    /// members again by owner and data.
    ///
    /// # Errors
    ///
    /// As [`Session::create_ephemeral`], but never "node exists".
    pub fn create_ephemeral_sequential(
        &self,
        prefix: &str,
        data: &[u8],
    ) -> Result<(String, NodeStat)> {
        let (owned, data, acls) = (prefix.to_owned(), data.to_vec(), self.registration_acls());
        self.call("create", prefix, move |client| async move {
            let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::new(&acls));
            client
                .create(&owned, &data, &options)
                .await
                .map(|(stat, sequence)| (format!("{owned}{sequence}"), NodeStat::from_stat(&stat)))
        })
    }

    /// Replaces a node's data, only if its version is still `version` when
    /// given.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`]: no node, a version mismatch, or no permission.
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<NodeStat> {
        let (owned, data) = (path.to_owned(), data.to_vec());
        self.call("write", path, move |client| async move {
            client
                .set_data(&owned, &data, version)
                .await
                .map(|stat| NodeStat::from_stat(&stat))
        })
    }

    /// The ACL of the nodes this session creates.
    fn acls(&self) -> zk::Acls<'static> {
        if self.inner.config.digest_auth.is_some() {
            zk::Acls::new(&CREATOR_ALL_WORLD_READ)
        } else {
            zk::Acls::anyone_all()
        }
    }

    /// The ACL of the ephemeral nodes (registrations) this session creates:
    /// [`Session::acls`], and READ and WRITE for the operator identity when
    /// one is configured.
    fn registration_acls(&self) -> Vec<zk::Acl> {
        let mut acls = self.acls().to_vec();
        if let (Some(operator), true) = (
            &self.inner.config.operator,
            self.inner.config.digest_auth.is_some(),
        ) {
            acls.push(zk::Acl::new(
                zk::Permission::READ | zk::Permission::WRITE,
                zk::AuthId::new("digest", operator),
            ));
        }
        acls
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
        let text = acls
            .iter()
            .map(|acl| {
                format!(
                    "{}:{}:{}",
                    acl.scheme(),
                    acl.id(),
                    letters(acl.permission())
                )
            })
            .collect::<Vec<_>>()
            .join(",");
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

    /// Deletes a node, only if its version is still `version` when given.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when it does not exist.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.delete_by(path, version, self.default_deadline())
    }

    /// [`Session::delete`] with its own deadline.
    pub(crate) fn delete_by(
        &self,
        path: &str,
        version: Option<i32>,
        deadline: Instant,
    ) -> Result<()> {
        let owned = path.to_owned();
        self.call_by("delete", path, deadline, move |client| async move {
            client.delete(&owned, version).await
        })
    }

    /// Reads a node's data and stat.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when it does not exist.
    pub fn get_data(&self, path: &str) -> Result<(Vec<u8>, NodeStat)> {
        let owned = path.to_owned();
        self.call("read", path, move |client| async move {
            client
                .get_data(&owned)
                .await
                .map(|(data, stat)| (data, NodeStat::from_stat(&stat)))
        })
    }

    /// Reads the data of many nodes at once, each with its own result (in
    /// the order of `paths`). The requests are pipelined on the connection,
    /// so N reads cost about one round trip, not N; the whole batch is
    /// bounded by one request timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] (naming the first path) when the batch does not
    /// complete in time; per-path errors are in the inner results.
    pub fn get_data_many(&self, paths: &[String]) -> Result<Vec<NodeRead>> {
        let Some(first) = paths.first() else {
            return Ok(Vec::new());
        };
        let owned = paths.to_vec();
        let results = self.call("read", first, move |client| async move {
            // Each request is sent when its future is made: all go out now.
            let pending: Vec<_> = owned.iter().map(|path| client.get_data(path)).collect();
            let mut results = Vec::with_capacity(pending.len());
            for read in pending {
                results.push(read.await);
            }
            Ok(results)
        })?;
        Ok(results
            .into_iter()
            .zip(paths)
            .map(|(result, path)| {
                result
                    .map(|(data, stat)| (data, NodeStat::from_stat(&stat)))
                    .map_err(|err| Error::Zk {
                        op: "read",
                        path: path.clone(),
                        source: zk_error(err),
                    })
            })
            .collect())
    }

    /// A node's stat, or `None` when it does not exist.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path.
    pub fn stat(&self, path: &str) -> Result<Option<NodeStat>> {
        self.stat_by(path, self.default_deadline())
    }

    /// [`Session::stat`] with its own deadline.
    pub(crate) fn stat_by(&self, path: &str, deadline: Instant) -> Result<Option<NodeStat>> {
        let owned = path.to_owned();
        self.call_by("stat", path, deadline, move |client| async move {
            client
                .check_stat(&owned)
                .await
                .map(|stat| stat.as_ref().map(NodeStat::from_stat))
        })
    }

    /// A node's stat (or `None`), and a one-shot watch on it: `notify` is
    /// called once, on the runtime thread, when the node is created,
    /// deleted or changed, or the session ends. It must not block.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] or [`Error::Zk`] naming the path; no watch is set.
    pub fn stat_and_watch(
        &self,
        path: &str,
        notify: impl FnOnce(WatchEvent) + Send + 'static,
    ) -> Result<Option<NodeStat>> {
        let owned = path.to_owned();
        self.call("watch", path, move |client| async move {
            let (stat, watcher) = client.check_and_watch_stat(&owned).await?;
            forward_watch(watcher, notify);
            Ok(stat.as_ref().map(NodeStat::from_stat))
        })
    }

    /// Adds a persistent recursive watch on `path` (ZooKeeper 3.6+): `notify`
    /// is called, on the runtime thread, for every creation, deletion and
    /// data change of `path` and of every node below it, with its path, and
    /// the watch stays armed, until the returned handle is dropped (the
    /// watch is then removed) or the session ends (`SessionEnded`, last).
    /// `notify` must not block.
    ///
    /// The client does not restore such a watch after a reconnect: add it
    /// again after every [`SessionEvent::Connected`](crate::SessionEvent::Connected) or `Rebuilt`, and
    /// re-read what may have changed meanwhile.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`ZkErrorKind::Unimplemented`](crate::ZkErrorKind)
    /// from a ZooKeeper older than 3.6; [`Error::Timeout`] and the others
    /// naming the path.
    ///
    /// # Example
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let zk = zkutil::testing::zookeeper();
    /// # let hosts = zk.connect_string();
    /// use std::time::Duration;
    /// use zkutil::{NodeEvent, SessionConfig, WatchEvent};
    ///
    /// let session = SessionConfig::new(hosts).connect()?;
    /// session.ensure_path("/app")?;
    /// let (tx, events) = std::sync::mpsc::channel::<NodeEvent>();
    /// let watch = session.watch_recursive("/app", move |event| {
    ///     let _ = tx.send(event);
    /// })?;
    /// session.create_ephemeral("/app/a", b"")?;
    /// let event = events.recv_timeout(Duration::from_secs(5))?;
    /// assert_eq!((event.kind, event.path.as_str()), (WatchEvent::Created, "/app/a"));
    /// drop(watch); // removes the watch
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch_recursive(
        &self,
        path: &str,
        notify: impl FnMut(NodeEvent) + Send + 'static,
    ) -> Result<RecursiveWatch> {
        let owned = path.to_owned();
        let stop = Cancel::new();
        let handle = RecursiveWatch { stop: stop.clone() };
        self.call("watch", path, move |client| async move {
            let watcher = client
                .watch(&owned, zk::AddWatchMode::PersistentRecursive)
                .await?;
            forward_recursive(watcher, &stop, notify);
            Ok(())
        })?;
        Ok(handle)
    }

    /// The names of a node's children, in no particular order.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when the node does not exist.
    pub fn children(&self, path: &str) -> Result<Vec<String>> {
        let owned = path.to_owned();
        self.call("list", path, move |client| async move {
            client.list_children(&owned).await
        })
    }

    /// A node's children and a one-shot watch on them: `notify` is called
    /// once, on the runtime thread, when a child is added or removed, the
    /// node is deleted, or the session ends. It must not block.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] with [`Error::is_no_node`] when the node does not
    /// exist (no watch is set then).
    pub fn children_and_watch(
        &self,
        path: &str,
        notify: impl FnOnce(WatchEvent) + Send + 'static,
    ) -> Result<Vec<String>> {
        let owned = path.to_owned();
        self.call("list", path, move |client| async move {
            let (children, watcher) = client.list_and_watch_children(&owned).await?;
            forward_watch(watcher, notify);
            Ok(children)
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

/// A persistent recursive watch ([`Session::watch_recursive`]); dropping it
/// removes the watch.
pub struct RecursiveWatch {
    stop: Cancel,
}

impl std::fmt::Debug for RecursiveWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecursiveWatch")
    }
}

impl Drop for RecursiveWatch {
    fn drop(&mut self) {
        self.stop.trigger();
    }
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
