//! One ZooKeeper process of a fixture: its configuration, its launch as a
//! plain JVM, its signals and log; and why a start can fail.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::security::Security;
use super::wait::{log_tail, send_signal};

/// The jars of Debian's `zookeeper` package.
pub const DEFAULT_CLASSPATH: &str =
    "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// Why a ZooKeeper fixture could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
///
/// # Example
///
/// ```
/// match zkutil::testing::ZkServer::start() {
///     Ok(_zk) => {}
///     Err(err @ zkutil::testing::StartError::NotInstalled { .. }) => panic!("{err}"), // says how to install
///     Err(err) => panic!("{err}"),
/// }
/// ```
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
    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
        let what = what.into();
        move |source| StartError::Io { what, source }
    }

    pub(super) fn port_clash(&self) -> bool {
        match self {
            StartError::Exited { log, .. } | StartError::TimedOut { log, .. } => {
                log.contains("Address already in use") || log.contains("BindException")
            }
            _ => false,
        }
    }
}

/// One ZooKeeper process of a fixture.
pub(super) struct Node {
    pub(super) dir: PathBuf,
    /// Where it listens, for clients and for its peers: loopback, or a
    /// network lab host's address.
    pub(super) address: Ipv4Addr,
    /// A command the JVM's command line is appended to (a lab host's
    /// `ip netns exec …`); empty to run it directly.
    pub(super) launcher: Vec<String>,
    pub(super) client_port: u16,
    /// A plaintext port beside a TLS `client_port` ([`super::ZkOptions::plaintext_too`]).
    pub(super) plaintext_port: Option<u16>,
    pub(super) quorum_ports: Option<(u16, u16)>,
    /// A non-voting member (`peerType=observer`): it follows the leader's
    /// commits and serves reads and watches, but no quorum waits for it.
    pub(super) observer: bool,
    /// How this node reaches each member's quorum and election ports, in
    /// `server.N` order, where that is not the member's own address: a
    /// remote region's relays.
    pub(super) peer_routes: Option<Vec<(Ipv4Addr, u16, u16)>>,
    /// TLS-only and SASL settings, shared by the ensemble's nodes.
    pub(super) security: Option<std::sync::Arc<Security>>,
    /// The JVM's heap, in MiB.
    pub(super) heap_mib: u32,
    pub(super) child: Option<Child>,
}

impl Node {
    pub(super) fn log_path(&self) -> PathBuf {
        self.dir.join("zookeeper.log")
    }

    pub(super) fn spawn(&mut self) -> Result<(), StartError> {
        let java = std::env::var("ZK_JAVA").unwrap_or_else(|_| "java".to_owned());
        let mut classpath =
            std::env::var("ZK_CLASSPATH").unwrap_or_else(|_| DEFAULT_CLASSPATH.to_owned());
        if let Some(first) = classpath.split(':').next() {
            if !Path::new(first).exists() {
                return Err(StartError::NotInstalled {
                    path: first.to_owned(),
                });
            }
        }
        if let Some(security) = &self.security {
            classpath = security.classpath(&classpath);
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
        let mut command = match self.launcher.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(&java);
                command
            }
            None => Command::new(&java),
        };
        let child = command
            .arg("-Xms16m")
            .arg(format!("-Xmx{}m", self.heap_mib))
            .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dzookeeper.jmx.log4j.disable=true")
            // Empty CONTAINER parents (Curator makes them) are removed
            // within a second, not a minute: tests can see it happen.
            .arg("-Dznode.container.checkIntervalMs=500")
            .args(
                self.security
                    .iter()
                    .flat_map(|security| security.jvm_args()),
            )
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

    pub(super) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a stopped (paused) process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(super) fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = send_signal(child.id(), signal);
        }
    }

    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    pub(super) fn log_tail(&self) -> String {
        log_tail(&self.log_path(), 40)
    }

    /// `address:client_port`, the node's entry in a connect string.
    pub(super) fn client_addr(&self) -> std::net::SocketAddr {
        (self.address, self.client_port).into()
    }
}

pub(super) fn write_config(node: &Node, myid: usize, all: &[Node]) -> Result<(), StartError> {
    let mut cfg = format!(
        "tickTime=200\ninitLimit=50\nsyncLimit=25\ndataDir={data}\n{client_port}\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,wchp\n\
         minSessionTimeout=400\nmaxSessionTimeout=60000\nforceSync=no\n\
         maxClientCnxns=0\n",
        data = node.dir.join("data").display(),
        client_port = match &node.security {
            Some(security) =>
                security.client_port_config(&node.address.to_string(), node.client_port),
            None => format!(
                "clientPort={}\nclientPortAddress={}\n",
                node.client_port, node.address
            ),
        },
    );
    if let Some(port) = node.plaintext_port {
        cfg.push_str(&format!(
            "clientPort={port}\nclientPortAddress={}\n",
            node.address
        ));
    }
    if node.observer {
        cfg.push_str("peerType=observer\n");
    }
    if all.len() > 1 {
        for (i, other) in all.iter().enumerate() {
            if let Some((peer, election)) = other.quorum_ports {
                let (address, peer, election) = match &node.peer_routes {
                    Some(routes) if i + 1 != myid => routes[i],
                    _ => (other.address, peer, election),
                };
                let role = if other.observer { ":observer" } else { "" };
                cfg.push_str(&format!(
                    "server.{}={address}:{peer}:{election}{role}\n",
                    i + 1
                ));
            }
        }
        std::fs::write(node.dir.join("data").join("myid"), format!("{myid}\n"))
            .map_err(StartError::io("writing myid"))?;
    }
    std::fs::write(node.dir.join("zoo.cfg"), cfg).map_err(StartError::io("writing zoo.cfg"))
}
