//! Real ZooKeeper servers for tests: [`ZkServer`] (standalone) and
//! [`ZkEnsemble`] (3 or 5 nodes) as child JVMs on free loopback ports, and
//! how tests break them (kill, restart, pause).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::certs::FIXTURE_NAME;
use super::node::{Node, StartError, write_config};
use super::security::{Security, ZkOptions};
use super::wait::{all_threads_stopped, free_ports, poll_until};

/// How long a node may take to become ready (a cold JVM on a busy 2-core
/// machine is slow; a warm one is ready in under a second).
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// A ZooKeeper ensemble of real nodes on loopback.
///
/// # Example
///
/// ```
/// let mut ensemble = zkutil::testing::ZkEnsemble::start(3).expect("ZooKeeper is installed");
/// let leader = ensemble.leader().expect("a leader");
/// ensemble.kill(leader); // the two others elect a new one
/// let session = zkutil::SessionConfig::new(ensemble.connect_string()).connect().expect("a quorum");
/// session.ensure_path("/still-writable").expect("written");
/// ```
pub struct ZkEnsemble {
    nodes: Vec<Node>,
    security: Option<Arc<Security>>,
    // Declared last: removed after the nodes are dead.
    dir: tempfile::TempDir,
}

impl fmt::Debug for ZkEnsemble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkEnsemble")
            .field("connect", &self.connect_string())
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl ZkEnsemble {
    /// Starts `size` nodes (1 is standalone) and waits until they serve.
    ///
    /// # Errors
    ///
    /// [`StartError`], with the log tail of the node that failed.
    pub fn start(size: usize) -> Result<ZkEnsemble, StartError> {
        ZkEnsemble::start_secured(size, &ZkOptions::default())
    }

    pub(super) fn start_secured(
        size: usize,
        options: &ZkOptions,
    ) -> Result<ZkEnsemble, StartError> {
        let mut last = None;
        // Free ports are found by binding port 0 and releasing it: a race
        // with other processes, so a clash is retried with new ports.
        for _ in 0..3 {
            match ZkEnsemble::try_start(size.max(1), options) {
                Ok(ensemble) => return Ok(ensemble),
                Err(err) if err.port_clash() => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| StartError::Io {
            what: "starting ZooKeeper".into(),
            source: std::io::Error::other("no attempt made"),
        }))
    }

    fn try_start(size: usize, options: &ZkOptions) -> Result<ZkEnsemble, StartError> {
        let ports = free_ports(if size == 1 { 1 } else { size * 3 })
            .map_err(StartError::io("finding free loopback ports"))?;
        let sites = (0..size)
            .map(|i| Site {
                address: Ipv4Addr::LOCALHOST,
                launcher: Vec::new(),
                client_port: ports[i],
                quorum_ports: (size > 1).then(|| (ports[size + 2 * i], ports[size + 2 * i + 1])),
                observer: false,
                peer_routes: None,
            })
            .collect();
        ZkEnsemble::start_at_with(sites, options)
    }

    /// Starts one node at each of `sites` (their addresses and ports, in
    /// `server.N` order) and waits until they serve: the network lab's
    /// ensembles, one node per host.
    pub(super) fn start_at(sites: Vec<Site>) -> Result<ZkEnsemble, StartError> {
        ZkEnsemble::start_at_with(sites, &ZkOptions::default())
    }

    fn start_at_with(sites: Vec<Site>, options: &ZkOptions) -> Result<ZkEnsemble, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("zkutil-zk-")
            .tempdir()
            .map_err(StartError::io("creating a temp dir for ZooKeeper"))?;
        let security = Security::prepare(dir.path(), options)
            .map_err(StartError::io("making the certificates and JAAS file"))?;
        let size = sites.len();
        let plaintext_ports = match options.tls.is_some() && options.plaintext_too {
            true => free_ports(size).map_err(StartError::io("finding free loopback ports"))?,
            false => Vec::new(),
        };
        let mut nodes = Vec::with_capacity(size);
        for (i, site) in sites.into_iter().enumerate() {
            let node_dir = dir.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(node_dir.join("data"))
                .map_err(StartError::io(format!("creating {}", node_dir.display())))?;
            nodes.push(Node {
                dir: node_dir,
                address: site.address,
                launcher: site.launcher,
                client_port: site.client_port,
                plaintext_port: plaintext_ports.get(i).copied(),
                quorum_ports: site.quorum_ports,
                observer: site.observer,
                peer_routes: site.peer_routes,
                security: security.clone(),
                heap_mib: options.heap_mib.unwrap_or(256),
                child: None,
            });
        }
        for (i, node) in nodes.iter().enumerate() {
            write_config(node, i + 1, &nodes)?;
        }
        let mut ensemble = ZkEnsemble {
            nodes,
            security,
            dir,
        };
        for node in &mut ensemble.nodes {
            node.spawn()?;
        }
        let all: Vec<usize> = (0..size).collect();
        ensemble.wait_ready(&all)?;
        Ok(ensemble)
    }

    /// Waits until each of `indices` answers `srvr` with a mode, and, for an
    /// ensemble, until exactly one live node is the leader.
    fn wait_ready(&mut self, indices: &[usize]) -> Result<(), StartError> {
        // ZooKeeper announces nothing: readiness is polled, with a deadline.
        let start = Instant::now();
        let ready = poll_until(READY_DEADLINE, Duration::from_millis(50), || {
            for &i in indices {
                if let Some(status) = self.nodes[i].exited() {
                    return Some(Err(StartError::Exited {
                        node: i,
                        status,
                        log: self.nodes[i].log_tail(),
                    }));
                }
            }
            let all_serving = indices.iter().all(|&i| self.mode(i).is_some());
            let leaders = (0..self.nodes.len())
                .filter(|&i| self.mode(i).as_deref() == Some("leader"))
                .count();
            (all_serving && (self.nodes.len() == 1 || leaders == 1)).then_some(Ok(()))
        });
        ready.unwrap_or_else(|| {
            let node = indices
                .iter()
                .copied()
                .find(|&i| self.mode(i).is_none())
                .unwrap_or(indices[0]);
            Err(StartError::TimedOut {
                node,
                waited: start.elapsed(),
                log: self.nodes[node].log_tail(),
            })
        })
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,…` for every node, live or not.
    pub fn connect_string(&self) -> String {
        self.nodes
            .iter()
            .map(|node| node.client_addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The connect string of the plaintext ports of a TLS fixture started
    /// with [`ZkOptions::plaintext_too`]; `None` for any other.
    pub fn plaintext_connect_string(&self) -> Option<String> {
        self.nodes
            .iter()
            .map(|node| Some(format!("{}:{}", node.address, node.plaintext_port?)))
            .collect::<Option<Vec<_>>>()
            .map(|hosts| hosts.join(","))
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: an ensemble has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s client address (loopback, or its host's in the lab).
    pub fn client_addr(&self, i: usize) -> std::net::SocketAddr {
        self.nodes[i].client_addr()
    }

    /// The session ids node `i` lists as connected to it (`cons`); empty
    /// when it does not answer within a second.
    pub fn sessions_on(&self, i: usize) -> Vec<crate::SessionId> {
        self.four_letter_word(i, "cons")
            .map(|cons| super::inspect::cons_sessions(&cons))
            .unwrap_or_default()
    }

    /// One number of node `i`'s `mntr` (`zk_watch_count`: the watches its
    /// connections set), `None` when it does not answer.
    pub fn mntr_value(&self, i: usize, key: &str) -> Option<u64> {
        super::inspect::mntr_field(&self.four_letter_word(i, "mntr")?, key)
    }

    /// The client port of node `i`.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].client_port
    }

    /// The PID of node `i`'s JVM, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Node `i`'s mode from `srvr` (`standalone`, `leader`, `follower`), or
    /// `None` when it does not serve.
    pub fn mode(&self, i: usize) -> Option<String> {
        let answer = self.four_letter_word(i, "srvr")?;
        crate::admin::parse_srvr(&answer).map(|status| status.mode)
    }

    /// Node `i`'s answer to a four-letter word, `None` within a second;
    /// over TLS for a TLS fixture, which has no plaintext port.
    pub fn four_letter_word(&self, i: usize, word: &str) -> Option<String> {
        let addr = self.nodes[i].client_addr();
        let timeout = Duration::from_secs(1);
        match (self.fixture_tls(), self.security()) {
            (Some(tls), Some(security)) => {
                let name = addr.ip().to_string();
                let config = tls.rustls_client_at(security.check_clock()).ok()?;
                crate::admin::four_letter_word_rustls(addr, &name, word, timeout, config).ok()
            }
            _ => crate::admin::four_letter_word(addr, word, timeout).ok(),
        }
    }

    /// The fixture's own TLS identity, for a TLS fixture.
    fn fixture_tls(&self) -> Option<crate::TlsConfig> {
        self.security()?.tls_config(Some(FIXTURE_NAME))
    }

    pub(super) fn security(&self) -> Option<&Security> {
        self.security.as_deref()
    }

    /// The index of the current leader, if one is serving.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.mode(i).as_deref() == Some("leader"))
    }

    /// Kills node `i` with SIGKILL and waits for it; its port and data stay.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on the same port and data dir (sessions are
    /// restored from its log) and waits until it serves.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the node's log tail.
    pub fn restart(&mut self, i: usize) -> Result<(), StartError> {
        self.nodes[i].kill();
        self.nodes[i].spawn()?;
        self.wait_ready(&[i])
    }

    /// Waits (at most `deadline`) until node `i` is back in the ensemble
    /// and serves a session of its own. A node thawed after a freeze longer
    /// than the sync limit still says `follower` in `srvr` until it notices
    /// that the leader dropped it, then re-syncs, refusing sessions
    /// meanwhile: so this waits for the leader to count every follower as
    /// synced (`mntr`), then for a session on `i`. Returns whether all of
    /// it happened in time.
    pub fn wait_serving(&self, i: usize, deadline: Duration) -> bool {
        let start = Instant::now();
        let followers = self.nodes.len().saturating_sub(1).to_string();
        let synced = poll_until(deadline, Duration::from_millis(100), || {
            let leader = self.leader()?;
            let mntr = self.four_letter_word(leader, "mntr")?;
            mntr.lines()
                .find_map(|line| line.strip_prefix("zk_synced_followers"))
                .filter(|count| count.trim() == followers)
                .map(drop)
        });
        let host = self.nodes[i].client_addr().to_string();
        synced.is_some()
            && poll_until(
                deadline.saturating_sub(start.elapsed()),
                Duration::from_millis(100),
                || {
                    crate::SessionConfig::new(&host)
                        .with_tls(self.fixture_tls())
                        .with_connect_timeout(Duration::from_secs(1))
                        .with_request_timeout(Duration::from_secs(1))
                        .connect()
                        .ok()
                        .and_then(|session| session.children("/").ok())
                },
            )
            .is_some()
    }

    /// Starts the nodes `indices` again together (each killed first if it
    /// still runs) and waits until they serve: after a total outage no node
    /// can become ready alone, for want of a quorum.
    ///
    /// # Errors
    ///
    /// As [`ZkEnsemble::start`].
    pub fn restart_nodes(&mut self, indices: &[usize]) -> Result<(), StartError> {
        for &i in indices {
            self.nodes[i].kill();
            self.nodes[i].spawn()?;
        }
        self.wait_ready(indices)
    }

    /// Freezes node `i` (SIGSTOP): it holds its connections but answers nothing.
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].signal("STOP");
        // A signal is delivered after `kill` returns: wait until the
        // process is seen stopped, so that the caller's next step meets a
        // frozen server.
        if let Some(pid) = self.pid(i) {
            poll_until(Duration::from_secs(5), Duration::from_millis(2), || {
                all_threads_stopped(pid).then_some(())
            });
        }
    }

    /// Thaws node `i` (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        self.nodes[i].signal("CONT");
    }

    /// The last lines of node `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        self.nodes[i].log_tail()
    }

    /// The temp dir holding every node's config, data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Where one node of an ensemble runs: its address, the command that
/// launches it there (empty: none), and its ports.
pub(super) struct Site {
    pub(super) address: Ipv4Addr,
    pub(super) launcher: Vec<String>,
    pub(super) client_port: u16,
    pub(super) quorum_ports: Option<(u16, u16)>,
    pub(super) observer: bool,
    pub(super) peer_routes: Option<Vec<(Ipv4Addr, u16, u16)>>,
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
