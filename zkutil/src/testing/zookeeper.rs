//! Real ZooKeeper servers for tests: [`ZkServer`] (standalone) and
//! [`ZkEnsemble`] (3 or 5 nodes) as child JVMs on free loopback ports, and
//! what tests ask of them (four-letter words, ZooKeeper's own CLI).

use std::fmt;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::wait::{all_threads_stopped, free_ports, log_tail, poll_until, send_signal};

/// The jars of Debian's `zookeeper` package.
pub const DEFAULT_CLASSPATH: &str =
    "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// How long a node may take to become ready (a cold JVM on a busy 2-core
/// machine is slow; a warm one is ready in under a second).
const READY_DEADLINE: Duration = Duration::from_secs(60);

/// Why a ZooKeeper fixture could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// ZooKeeper's jars are not where the classpath says.
    #[error(
        "ZooKeeper is not installed: {path} is missing (run `scripts/zk.sh install`, or set ZK_CLASSPATH)"
    )]
    NotInstalled {
        /// The missing jar.
        path: String,
    },
    /// The JVM could not be started.
    #[error("running {cmd:?} (is Java installed and on your PATH, or ZK_JAVA set?)")]
    Launcher {
        /// The command.
        cmd: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A node exited before it was ready.
    #[error("ZooKeeper node {node} exited with {status} before it was ready; log tail:\n{log}")]
    Exited {
        /// The node's index.
        node: usize,
        /// How it exited.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// A node did not become ready in time.
    #[error("ZooKeeper node {node} not ready after {waited:?}; log tail:\n{log}")]
    TimedOut {
        /// The node's index.
        node: usize,
        /// How long we waited.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
    /// The temp dir or a config file could not be written.
    #[error("{what}")]
    Io {
        /// What we were doing.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

impl StartError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
        let what = what.into();
        move |source| StartError::Io { what, source }
    }

    fn port_clash(&self) -> bool {
        match self {
            StartError::Exited { log, .. } | StartError::TimedOut { log, .. } => {
                log.contains("Address already in use") || log.contains("BindException")
            }
            _ => false,
        }
    }
}

/// One ZooKeeper process of a fixture.
struct Node {
    dir: PathBuf,
    client_port: u16,
    quorum_ports: Option<(u16, u16)>,
    child: Option<Child>,
}

impl Node {
    fn log_path(&self) -> PathBuf {
        self.dir.join("zookeeper.log")
    }

    fn spawn(&mut self) -> Result<(), StartError> {
        let java = std::env::var("ZK_JAVA").unwrap_or_else(|_| "java".to_owned());
        let classpath =
            std::env::var("ZK_CLASSPATH").unwrap_or_else(|_| DEFAULT_CLASSPATH.to_owned());
        if let Some(first) = classpath.split(':').next() {
            if !Path::new(first).exists() {
                return Err(StartError::NotInstalled {
                    path: first.to_owned(),
                });
            }
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(StartError::io(format!(
                "opening {}",
                self.log_path().display()
            )))?;
        let log2 = log
            .try_clone()
            .map_err(StartError::io("duplicating the log file handle"))?;
        let child = Command::new(&java)
            .args([
                "-Xms16m",
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
            ])
            .arg("-Dzookeeper.jmx.log4j.disable=true")
            .arg("-cp")
            .arg(&classpath)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(self.dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|source| StartError::Launcher {
                cmd: format!("{java} … QuorumPeerMain"),
                source,
            })?;
        self.child = Some(child);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a stopped (paused) process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = send_signal(child.id(), signal);
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log_path(), 40)
    }
}

/// A ZooKeeper ensemble of real nodes on loopback.
pub struct ZkEnsemble {
    nodes: Vec<Node>,
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
        let mut last = None;
        // Free ports are found by binding port 0 and releasing it: a race
        // with other processes, so a clash is retried with new ports.
        for _ in 0..3 {
            match ZkEnsemble::try_start(size.max(1)) {
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

    fn try_start(size: usize) -> Result<ZkEnsemble, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("zkutil-zk-")
            .tempdir()
            .map_err(StartError::io("creating a temp dir for ZooKeeper"))?;
        let ports = free_ports(if size == 1 { 1 } else { size * 3 })
            .map_err(StartError::io("finding free loopback ports"))?;
        let mut nodes = Vec::with_capacity(size);
        for i in 0..size {
            let node_dir = dir.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(node_dir.join("data"))
                .map_err(StartError::io(format!("creating {}", node_dir.display())))?;
            let quorum_ports = (size > 1).then(|| (ports[size + 2 * i], ports[size + 2 * i + 1]));
            nodes.push(Node {
                dir: node_dir,
                client_port: ports[i],
                quorum_ports,
                child: None,
            });
        }
        for (i, node) in nodes.iter().enumerate() {
            write_config(node, i + 1, &nodes)?;
        }
        let mut ensemble = ZkEnsemble { nodes, dir };
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
            .map(|node| format!("127.0.0.1:{}", node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: an ensemble has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
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
        let answer = four_letter_word(self.nodes[i].client_port, "srvr")?;
        crate::admin::parse_srvr(&answer).map(|status| status.mode)
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
            let mntr = four_letter_word(self.nodes[leader].client_port, "mntr")?;
            mntr.lines()
                .find_map(|line| line.strip_prefix("zk_synced_followers"))
                .filter(|count| count.trim() == followers)
                .map(drop)
        });
        let host = format!("127.0.0.1:{}", self.nodes[i].client_port);
        synced.is_some()
            && poll_until(
                deadline.saturating_sub(start.elapsed()),
                Duration::from_millis(100),
                || {
                    crate::SessionConfig::new(&host)
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

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

/// A standalone ZooKeeper server: an ensemble of one.
#[derive(Debug)]
pub struct ZkServer(ZkEnsemble);

impl ZkServer {
    /// Starts a standalone server on a free loopback port and waits until
    /// it serves.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the log tail.
    pub fn start() -> Result<ZkServer, StartError> {
        ZkEnsemble::start(1).map(ZkServer)
    }

    /// `127.0.0.1:port`.
    pub fn connect_string(&self) -> String {
        self.0.connect_string()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.0.port(0)
    }

    /// The JVM's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0.pid(0)
    }

    /// Kills the server with SIGKILL; port and data stay for [`ZkServer::restart`].
    pub fn kill(&mut self) {
        self.0.kill(0);
    }

    /// Starts it again on the same port and data.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the log tail.
    pub fn restart(&mut self) -> Result<(), StartError> {
        self.0.restart(0)
    }

    /// Freezes the server (SIGSTOP).
    pub fn pause(&mut self) {
        self.0.pause(0);
    }

    /// Thaws the server (SIGCONT).
    pub fn resume(&mut self) {
        self.0.resume(0);
    }

    /// Whether it answers `srvr`.
    pub fn is_serving(&self) -> bool {
        self.0.mode(0).is_some()
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        self.0.log_tail(0)
    }

    /// The temp dir holding its config, data and log.
    pub fn dir(&self) -> &Path {
        self.0.dir()
    }
}

fn write_config(node: &Node, myid: usize, all: &[Node]) -> Result<(), StartError> {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=50\nsyncLimit=25\ndataDir={data}\nclientPort={port}\n\
         clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr,cons\n\
         minSessionTimeout=400\nmaxSessionTimeout=60000\nforceSync=no\n",
        data = node.dir.join("data").display(),
        port = node.client_port,
    );
    if all.len() > 1 {
        for (i, other) in all.iter().enumerate() {
            if let Some((peer, election)) = other.quorum_ports {
                cfg.push_str(&format!("server.{}=127.0.0.1:{peer}:{election}\n", i + 1));
            }
        }
        std::fs::write(node.dir.join("data").join("myid"), format!("{myid}\n"))
            .map_err(StartError::io("writing myid"))?;
    }
    std::fs::write(node.dir.join("zoo.cfg"), cfg).map_err(StartError::io("writing zoo.cfg"))
}

/// Sends a four-letter command to a server on loopback; `None` when it
/// does not answer within a second.
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    crate::admin::four_letter_word(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        word,
        Duration::from_secs(1),
    )
    .ok()
}

/// Runs ZooKeeper's own `zkCli.sh` (command mode) against `connect`: an
/// independent client for what zkutil cannot do, such as an ACL without
/// READ. `ZK_CLI` overrides the script's path.
///
/// # Panics
///
/// When the script cannot be run or reports an error, with its output.
pub fn zk_cli(connect: &str, args: &[&str]) -> String {
    let script =
        std::env::var("ZK_CLI").unwrap_or_else(|_| "/usr/share/zookeeper/bin/zkCli.sh".to_owned());
    let output = Command::new(&script)
        .arg("-server")
        .arg(connect)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() || text.contains("Exception") {
        panic!("{script} {args:?} failed ({}):\n{text}", output.status);
    }
    text
}

/// The session ids that `cons` lists as connected to the ZooKeeper node
/// serving on `port` (empty when it does not answer).
pub fn sessions_on(port: u16) -> Vec<crate::SessionId> {
    four_letter_word(port, "cons")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split("sid=0x").nth(1))
        .filter_map(|rest| rest.split([',', ')']).next())
        .filter_map(|hex| i64::from_str_radix(hex, 16).ok().map(crate::SessionId::new))
        .collect()
}
