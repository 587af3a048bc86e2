//! The reads: data, stats and children, each one call bounded by a
//! deadline (a batch of reads is one call, pipelined).

use std::time::Instant;

use super::handle::Session;
use super::runtime::zk_error;
use super::types::NodeStat;
use crate::error::{Error, Result};

/// One node's data and stat, or why it could not be read.
type NodeRead = Result<(Vec<u8>, NodeStat)>;

impl Session {
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
}
