//! The reads: data, stats and children, each one call bounded by a
//! deadline (a batch of reads is one call: multi-reads, pipelined).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

use zookeeper_client::{Error as ZkClientError, MultiReadResult, Stat};

use super::handle::Session;
use super::runtime::zk_error;
use super::types::NodeStat;
use crate::error::{Error, Result};

/// The most nodes one multi-read of [`Session::get_data_many`] asks for.
/// ZooKeeper builds a multi-read's whole answer in memory, in a buffer that
/// grows by doubling, and a node may hold up to a megabyte: 40 such nodes
/// in one multi-read (a 40 MB answer) brought down a ZooKeeper with a
/// 256 MB heap. Registrations of a few hundred bytes in batches of 16
/// still take 16 times fewer requests than one read each (10,000 re-read
/// in about 0.1 s instead of 1.4 s).
const MULTI_READ: usize = 16;

/// What one multi-read's answer is planned to hold, from the largest node
/// read so far in the same call: a batch is as many nodes of that size as
/// fit (a call starts with one node alone, to learn it). Registrations of
/// a few hundred bytes go 16 at a time; nodes of 64 KB or more, one read
/// each, as they went before multi-reads.
const ANSWER_BUDGET: usize = 64 * 1024;

/// The most path bytes one multi-read request carries: ZooKeeper closes
/// the connection of a request over its `jute.maxbuffer` (1 MB by
/// default), and a child's name may be hundreds of KB long (two such
/// names in one request cut the connection at every listing).
const REQUEST_BUDGET: usize = 128 * 1024;

/// About how much data [`Session::get_data_each`] reads before its
/// caller decodes it: registrations of a few hundred bytes, tens of
/// thousands of them, come in one part (no pause in the pipeline); nodes
/// of a megabyte, 16 at a time (plus those in flight when the budget is
/// reached, at most 64 MB: [`MULTI_WINDOW`]).
const PART_BYTES: usize = 16 * 1024 * 1024;

/// Requests of one call in flight at once: enough to keep a connection
/// busy.
const WINDOW: usize = 8;

/// Multi-reads of one call in flight at once: a call surprised by large
/// nodes (small ones read first, then nodes of a megabyte) has at most
/// this many answers of [`MULTI_READ`] nodes under way, 64 MB, which
/// ZooKeeper builds in memory (one read per node, as before multi-reads,
/// had every node in flight). Two in flight took 230 ms to re-read
/// 10,000 Curator records, four 138 ms, eight 98–138 ms (bench section 18).
const MULTI_WINDOW: usize = 4;

/// How many of `paths` (not empty) the next request reads: one node
/// alone while the size of the nodes is unknown, without multi-reads, or
/// when they are large; else as many as the answer and request budgets
/// allow, at most [`MULTI_READ`].
fn batch_len(paths: &[String], largest: Option<usize>, multi: bool) -> usize {
    let most = match largest {
        Some(size) if multi => (ANSWER_BUDGET / size.max(1)).clamp(1, MULTI_READ),
        _ => 1,
    };
    let mut bytes = 0;
    let mut len = 0;
    for path in paths.iter().take(most) {
        bytes += path.len();
        if len > 0 && bytes > REQUEST_BUDGET {
            break;
        }
        len += 1;
    }
    len.max(1)
}

/// A request of [`Session::get_data_many`] in flight.
enum Read<One, Many> {
    One(One),
    Many(Many),
    /// The client refused to build the multi-read (a path it rejects).
    Refused,
}

/// One node's data and stat, or why it could not be read.
type NodeRead = Result<(Vec<u8>, NodeStat)>;

/// The reads of [`Session::get_data_many`], unless one failed for the
/// connection's sake rather than the node's (connection lost, timed out,
/// session expired): then that error, so that the caller fails whole.
/// Taken one by one, those nodes would look absent: a listing would drop
/// them (or list them without their data) until the next one, and a
/// registrant looking for another's member would create a second one.
fn whole(mut results: Vec<NodeRead>) -> Result<Vec<NodeRead>> {
    if let Some(at) = results
        .iter()
        .position(|r| r.as_ref().is_err_and(Error::is_retryable))
    {
        results.swap_remove(at)?;
    }
    Ok(results)
}

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
    /// the order of `paths`). The reads go as multi-reads (ZooKeeper 3.6+)
    /// of up to 16 nodes each, sized by the nodes already read (the first
    /// alone; large nodes one per request), with up to four multi-reads or
    /// eight single reads in flight: N small reads cost a few round trips,
    /// not N, and ZooKeeper
    /// handles each batch as one request. One request per read, pipelined
    /// as well, was the way before: ZooKeeper passes every request through
    /// its request processors' queues, one thread hand-off after another,
    /// and that capped a connection near 10,000 reads a second on two
    /// cores (issue 33: 10,000 re-read after a reconnect took about a
    /// second). A server that does not know multi-reads gets one request
    /// per read (from its first refusal on, for the session's life). Each
    /// answer must come within one request timeout of the one before it
    /// (a long read of many or large nodes is not cut off while it moves;
    /// one that stalls is).
    ///
    /// # Errors
    ///
    /// [`Error::Zk`] (a timeout, naming the first path) when an answer does
    /// not come in time; per-path errors are in the inner results.
    pub fn get_data_many(&self, paths: &[String]) -> Result<Vec<NodeRead>> {
        // No budget: every path in one part.
        self.get_data_part(paths, usize::MAX)
    }

    /// [`Session::get_data_many`] in parts of about [`PART_BYTES`] of data
    /// each, each read handed to `each` with the index of its path, a
    /// part's before the next part is read; a part fails whole (`whole`)
    /// when a read is lost with the connection. The caller decodes a read
    /// and drops its bytes: a base path where someone put thousands of
    /// nodes of a megabyte is not held in memory all at once.
    pub(crate) fn get_data_each(
        &self,
        paths: &[String],
        mut each: impl FnMut(usize, NodeRead) -> Result<()>,
    ) -> Result<()> {
        let mut at = 0;
        while at < paths.len() {
            for read in whole(self.get_data_part(&paths[at..], PART_BYTES)?)? {
                each(at, read)?;
                at += 1;
            }
        }
        Ok(())
    }

    /// The reads of a prefix of `paths` (one path at least, all of them
    /// if their data comes to less than `budget` bytes): no request is
    /// sent once the answers hold `budget` bytes, and those in flight are
    /// awaited.
    fn get_data_part(&self, paths: &[String], budget: usize) -> Result<Vec<NodeRead>> {
        let Some(first) = paths.first() else {
            return Ok(Vec::new());
        };
        let owned = paths.to_vec();
        let inner = std::sync::Arc::clone(&self.inner);
        let stall = inner.config.request_timeout;
        // Each answer has its own timeout (below), and the call as a whole
        // one per node. (One per 256 nodes, two at least, was tried: a
        // re-read cut at the wrong moment then ran into it, and the session
        // took more than 20 s to reconnect.)
        let share = u32::try_from(paths.len()).unwrap_or(u32::MAX);
        let deadline = Instant::now() + stall.saturating_mul(share).min(MOST_WAIT);
        let connected_by = self.default_deadline();
        let results = self.call_long(
            "read",
            first,
            connected_by,
            deadline,
            move |client| async move {
                let mut results = Vec::with_capacity(owned.len());
                let mut flight = VecDeque::with_capacity(WINDOW);
                let (mut next, mut largest, mut received) = (0, None::<usize>, 0usize);
                while (next < owned.len() && received < budget) || !flight.is_empty() {
                    // Requests go out when made: the window's fill is sent now.
                    // The first read alone, to learn the nodes' size; then
                    // at most four multi-reads at once, or eight reads.
                    let most = if largest.is_some() { WINDOW } else { 1 };
                    while flight.len() < most && next < owned.len() && received < budget {
                        let multis = flight
                            .iter()
                            .filter(|(_, read)| matches!(read, Read::Many(_)))
                            .count();
                        let multi = !inner.no_multi_read.load(Ordering::Relaxed);
                        let len = batch_len(&owned[next..], largest, multi);
                        if len > 1 && multis >= MULTI_WINDOW {
                            // Small nodes: their multi-reads, not single
                            // reads beside them (each a request of its own).
                            break;
                        }
                        let batch = next..next + len;
                        next = batch.end;
                        let read = if batch.len() == 1 {
                            Read::One(client.get_data(&owned[batch.start]))
                        } else {
                            let mut reader = client.new_multi_reader();
                            match owned[batch.clone()]
                                .iter()
                                .try_for_each(|path| reader.add_get_data(path))
                            {
                                Ok(()) => Read::Many(reader.commit()),
                                Err(_) => Read::Refused,
                            }
                        };
                        flight.push_back((batch, read));
                    }
                    let Some((batch, read)) = flight.pop_front() else {
                        break;
                    };
                    let answers = match read {
                        Read::One(read) => Ok(vec![within(stall, read).await?]),
                        Read::Many(commit) => match within(stall, commit).await? {
                            Ok(answers) if answers.len() == batch.len() => {
                                Ok(answers.into_iter().map(data_of).collect())
                            }
                            Err(ZkClientError::Unimplemented) => {
                                inner.no_multi_read.store(true, Ordering::Relaxed);
                                Err(())
                            }
                            // A path the batch refused, or an answer of
                            // another length: one read each.
                            Ok(_) | Err(ZkClientError::BadArguments(_)) => Err(()),
                            Err(err) => Ok(batch.clone().map(|_| Err(err.clone())).collect()),
                        },
                        Read::Refused => Err(()),
                    };
                    let answers = match answers {
                        Ok(answers) => answers,
                        Err(()) => {
                            let reads: Vec<_> = owned[batch]
                                .iter()
                                .map(|path| client.get_data(path))
                                .collect();
                            let mut answers = Vec::with_capacity(reads.len());
                            for read in reads {
                                answers.push(within(stall, read).await?);
                            }
                            answers
                        }
                    };
                    for (data, _) in answers.iter().flatten() {
                        largest = Some(largest.unwrap_or(0).max(data.len()));
                        received = received.saturating_add(data.len());
                    }
                    results.extend(answers);
                }
                Ok(results)
            },
        )?;
        // The prefix read: every request sent was awaited.
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

/// The longest a [`Session::get_data_many`] call may take in all (a day:
/// the bound is each answer's timeout; this only keeps the sum finite).
const MOST_WAIT: std::time::Duration = std::time::Duration::from_secs(86_400);

/// `answer`, wrapped, unless it takes longer than `limit`: then a timeout
/// (the outer error; retryable, as a lost connection is).
async fn within<T>(
    limit: std::time::Duration,
    answer: impl std::future::Future<Output = T>,
) -> std::result::Result<T, ZkClientError> {
    futures_lite::future::or(async { Ok(answer.await) }, async {
        async_io::Timer::after(limit).await;
        Err(ZkClientError::Timeout)
    })
    .await
}

/// One answer of a multi-read of data.
fn data_of(answer: MultiReadResult) -> std::result::Result<(Vec<u8>, Stat), ZkClientError> {
    match answer {
        MultiReadResult::Data { data, stat } => Ok((data, stat)),
        MultiReadResult::Error { err } => Err(err),
        // Only data was asked for.
        _ => Err(ZkClientError::UnexpectedError(
            "children in answer to a data read".into(),
        )),
    }
}
