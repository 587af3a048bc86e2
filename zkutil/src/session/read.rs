//! The reads: data, stats and children, each one call bounded by a
//! deadline (a batch of reads is one call: multi-reads, pipelined).

use std::time::Instant;

use zookeeper_client::{Error as ZkClientError, MultiReadResult};

use super::handle::Session;
use super::runtime::zk_error;
use super::types::NodeStat;
use crate::error::{Error, Result};

/// How many nodes one multi-read of [`Session::get_data_many`] asks for.
/// ZooKeeper builds a multi-read's whole answer in memory, in a buffer that
/// grows by doubling, and a node may hold up to a megabyte: 40 such nodes
/// in one multi-read (a 40 MB answer) brought down a ZooKeeper with a
/// 256 MB heap, 20 did not. 16 keeps the worst answer at 16 MB, while
/// registrations of a few hundred bytes still need 16 times fewer requests
/// than one read each (10,000 re-read in about 0.2 s instead of 1.4 s).
pub const MULTI_READ: usize = 16;

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
    /// the order of `paths`). The reads go as multi-reads of
    /// [`MULTI_READ`] nodes each (ZooKeeper 3.6+), all sent at once: N
    /// reads cost about one round trip, not N, and ZooKeeper handles each
    /// batch as one request. One request per read, pipelined as well, was
    /// the way before: ZooKeeper passes every request through its request
    /// processors' queues, one thread hand-off after another, and that
    /// capped a connection near 10,000 reads a second on two cores (issue
    /// 33: 10,000 re-read after a reconnect took about a second). A server
    /// that does not know multi-reads gets one request per read. The whole
    /// call is bounded by one request timeout.
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
            // Each batch is sent when its commit is made: all go out now.
            let mut pending = Vec::new();
            for batch in owned.chunks(MULTI_READ) {
                let mut reader = client.new_multi_reader();
                let added: std::result::Result<(), _> =
                    batch.iter().try_for_each(|path| reader.add_get_data(path));
                pending.push((batch, added.map(|()| reader.commit())));
            }
            let mut results = Vec::with_capacity(owned.len());
            for (batch, commit) in pending {
                let answers = match commit {
                    Ok(commit) => commit.await,
                    Err(err) => Err(err),
                };
                match answers {
                    Ok(answers) if answers.len() == batch.len() => {
                        results.extend(answers.into_iter().map(|answer| match answer {
                            MultiReadResult::Data { data, stat } => Ok((data, stat)),
                            MultiReadResult::Error { err } => Err(err),
                            // Only data was asked for.
                            _ => Err(ZkClientError::UnexpectedError(
                                "children in answer to a data read".into(),
                            )),
                        }));
                    }
                    // A server without multi-reads (older than 3.6), a
                    // path the batch refused, or an answer of another
                    // length: one read each, pipelined.
                    Ok(_) | Err(ZkClientError::Unimplemented | ZkClientError::BadArguments(_)) => {
                        let reads: Vec<_> =
                            batch.iter().map(|path| client.get_data(path)).collect();
                        for read in reads {
                            results.push(read.await);
                        }
                    }
                    Err(err) => results.extend(batch.iter().map(|_| Err(err.clone()))),
                }
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
