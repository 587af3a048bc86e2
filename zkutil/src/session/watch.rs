//! The watches: one-shot watches on a node or its children, and the
//! persistent recursive watch, whose handle removes it when dropped.

use zookeeper_client as zk;

use super::cancel::Cancel;
use super::handle::Session;
use super::runtime::{forward_recursive, forward_watch};
use super::types::{NodeEvent, NodeStat, WatchEvent};
use crate::error::Result;

impl Session {
    /// A node's stat (or `None`), and a one-shot watch on it: `notify` is
    /// called once, on the runtime thread, when the node is created,
    /// deleted or changed, or the session ends. It must not block.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) or [`Error::Zk`](crate::Error::Zk) naming the path; no watch is set.
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
    /// [`Error::Zk`](crate::Error::Zk) with [`ZkErrorKind::Unimplemented`](crate::ZkErrorKind)
    /// from a ZooKeeper older than 3.6; [`Error::Timeout`](crate::Error::Timeout) and the others
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

    /// A node's children and a one-shot watch on them: `notify` is called
    /// once, on the runtime thread, when a child is added or removed, the
    /// node is deleted, or the session ends. It must not block.
    ///
    /// # Errors
    ///
    /// [`Error::Zk`](crate::Error::Zk) with [`Error::is_no_node`](crate::Error::is_no_node) when the node does not
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
