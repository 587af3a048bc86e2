//! The writes: create (persistent paths, ephemeral and sequential nodes),
//! set data, delete; each one call bounded by a deadline.

use std::time::Instant;

use zookeeper_client as zk;

use super::config::SessionConfig;
use super::handle::Session;
use super::types::NodeStat;
use crate::connect_string::split_chroot;
use crate::error::Result;

impl Session {
    /// Creates `path` and its missing ancestors as persistent nodes (with
    /// this session's ACL). Nodes that exist already are fine, including
    /// ones created concurrently by another client. A missing chroot (the
    /// `/app` of `host:port/app`) is created too.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) or [`Error::Zk`](crate::Error::Zk) naming the path.
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
    /// [`Error::Zk`](crate::Error::Zk) with [`Error::is_node_exists`](crate::Error::is_node_exists) when the node exists
    /// (perhaps created by this very call before a lost connection: callers
    /// check the owner), [`Error::is_no_node`](crate::Error::is_no_node) when the parent is missing.
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
    /// [`Error::Zk`](crate::Error::Zk): no node, a version mismatch, or no permission.
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<NodeStat> {
        let (owned, data) = (path.to_owned(), data.to_vec());
        self.call("write", path, move |client| async move {
            client
                .set_data(&owned, &data, version)
                .await
                .map(|stat| NodeStat::from_stat(&stat))
        })
    }

    /// Deletes a node, only if its version is still `version` when given.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`](crate::Error::Zk) with [`Error::is_no_node`](crate::Error::is_no_node) when it does not exist.
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
}
