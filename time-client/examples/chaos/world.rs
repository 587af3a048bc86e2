//! The system under test: the ensemble, the servers, the client and the
//! observer, started together and stopped together: on loopback, or, as
//! root, in a network lab (`net`). What is checked against them lives
//! beside: the registry's invariants (`registry`), the client's
//! (`client`), the servers' lifecycle (`servers`) and the processes'
//! resources (`resources`).

mod client;
mod net;
mod registry;
mod resources;
mod servers;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;
use zkutil::testing::{DelayProxy, TestProcess, TlsMode, ZkEnsemble, ZkOptions, free_ports};
use zkutil::{Change, Discovery, Session};

pub use client::Progress;
pub use net::Net;
pub use resources::check_bounded;
use servers::Server;

/// Where the servers register.
pub const BASE: &str = "/go_servers";
const SERVERS: usize = 3;
const LISTENERS: usize = 3;
/// Each time-server's `--max-connections`: small, so that a fault can fill it.
pub const MAX_CONNECTIONS: usize = 32;

/// A broken invariant: what was going on, what broke, and the last log
/// lines of every process.
#[derive(Debug)]
pub struct Violation {
    fault: String,
    invariant: String,
    logs: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CHAOS VIOLATION during {}: {}\n--- last log lines ---\n{}",
            self.fault, self.invariant, self.logs
        )
    }
}

/// Fields drop in order: the processes and the observer before the
/// ensemble, so that nothing waits on a ZooKeeper that is already gone, and
/// the ensemble before the lab.
pub struct World {
    server_bin: PathBuf,
    pub session_timeout: Duration,
    pub servers: Vec<Server>,
    client: Option<TestProcess>,
    client_lines: usize,
    /// When the client last answered a request (or started).
    last_answer: Option<Instant>,
    /// On loopback, the client's links to ZooKeeper, one per node: held to
    /// cut the client off while the servers and operators still reach
    /// ZooKeeper. In the lab, a partition does it.
    client_links: Vec<DelayProxy>,
    progress: Progress,
    pub observer: Arc<Session>,
    discovery: Discovery,
    changes: Receiver<Change>,
    fault: String,
    /// The watches the ensemble holds once everything is up (`mntr`).
    pub watches: u64,
    /// Each process's first threads and descriptors, by PID.
    baselines: std::collections::BTreeMap<u32, resources::Stats>,
    /// The time-servers' TLS flags (none without `--tls`).
    server_tls: Vec<String>,
    pub zk: ZkEnsemble,
    /// The network lab, when the soak runs in one.
    pub net: Option<Net>,
}

impl World {
    pub fn start(
        server_bin: &Path,
        client_bin: &Path,
        session_timeout: Duration,
        network: bool,
        tls: bool,
    ) -> Result<World, Violation> {
        let setup = |what: &str, err: &dyn std::fmt::Display| Violation {
            fault: "setup".into(),
            invariant: format!("{what}: {err}"),
            logs: String::new(),
        };
        for bin in [server_bin, client_bin] {
            if !bin.exists() {
                return Err(setup("missing binary", &bin.display()));
            }
        }
        let net = if network {
            Some(Net::build(SERVERS).map_err(|e| setup("the network lab", &e))?)
        } else {
            None
        };
        let zk = match &net {
            Some(net) => net.lab.ensemble(&net.zk.iter().collect::<Vec<_>>()),
            // TLS only, client certificates needed: the servers are alice,
            // the client and the soak's observer bob and alice.
            None if tls => ZkEnsemble::start_with(
                3,
                ZkOptions {
                    tls: Some(TlsMode::Need),
                    ..ZkOptions::default()
                },
            ),
            None => ZkEnsemble::start(3),
        }
        .map_err(|e| setup("starting ZooKeeper", &e))?;
        let hosts = zk.connect_string();
        let ports = free_ports(SERVERS * LISTENERS).map_err(|e| setup("free ports", &e))?;
        let observer = zk
            .session_config(tls.then_some("alice"))
            .with_session_timeout(Duration::from_secs(30))
            .connect()
            .map(Arc::new)
            .map_err(|e| setup("observer session", &e))?;
        let discovery = Discovery::start(observer.clone(), &zkutil::BasePath::from_static(BASE))
            .map_err(|e| setup("observer discovery", &e))?;
        let changes = discovery.subscribe();
        let client_links = if net.is_some() {
            Vec::new()
        } else {
            (0..zk.len())
                .map(|i| DelayProxy::start(zk.client_addr(i), Duration::ZERO))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(|e| setup("client links", &e))?
        };
        let client_hosts = match &net {
            Some(net) => net.client_connect(),
            None => client_links
                .iter()
                .map(|l| l.addr().to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        let servers = ports
            .chunks(LISTENERS)
            .enumerate()
            .map(|(k, ports)| match &net {
                Some(net) => Server::new(
                    ports.to_vec(),
                    net.servers[k].address(),
                    net.server_connect(k),
                    Some(net.servers[k].clone()),
                ),
                None => Server::new(ports.to_vec(), Ipv4Addr::LOCALHOST, hosts.clone(), None),
            })
            .collect();
        let (server_tls, client_tls) = (zk.cli_tls_flags("alice"), zk.cli_tls_flags("bob"));
        let mut world = World {
            zk,
            net,
            server_bin: server_bin.to_owned(),
            session_timeout,
            servers,
            client: None,
            client_lines: 0,
            last_answer: None,
            client_links,
            progress: Progress::default(),
            observer,
            discovery,
            changes,
            fault: "setup".into(),
            watches: 0,
            baselines: std::collections::BTreeMap::new(),
            server_tls,
        };
        for k in 0..SERVERS {
            world.start_server(k);
        }
        // The client starts once every server is registered: before, it
        // would rightly fail for want of servers.
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(reason) = world.mismatch() {
            if Instant::now() > deadline {
                return Err(world.violation(format!("the servers did not register: {reason}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let timeout = humantime::format_duration(session_timeout).to_string();
        let mut args = vec![
            "--zk",
            &client_hosts,
            "--session-timeout",
            &timeout,
            "--count",
            "1000000000",
            "--interval",
            "10ms",
            "--json",
            "--timeout",
            "1s",
        ];
        args.extend(client_tls.iter().map(String::as_str));
        let envs = [("RUST_LOG", "info"), ("NO_COLOR", "1")];
        world.last_answer = Some(Instant::now());
        world.client = Some(match &world.net {
            Some(net) => net.client.start(client_bin, &args, &envs),
            None => TestProcess::start(client_bin, &args, &envs),
        });
        Ok(world)
    }

    /// Names the fault now going on, for violation reports.
    pub fn begin(&mut self, fault: &str) {
        self.fault = fault.to_owned();
    }

    pub fn violation(&self, invariant: impl Into<String>) -> Violation {
        let mut logs = String::new();
        let tail = |text: String, n: usize| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        if let Some(client) = &self.client {
            logs.push_str(&format!("[client]\n{}\n", tail(client.stderr_text(), 15)));
        }
        for (k, server) in self.servers.iter().enumerate() {
            if let Some(process) = &server.process {
                logs.push_str(&format!(
                    "[server{}]\n{}\n",
                    k + 1,
                    tail(process.stderr_text(), 15)
                ));
            }
        }
        if let Some(net) = &self.net {
            logs.push_str(&format!("[network faults]\n{}\n", net.lab.fault_log()));
        }
        Violation {
            fault: self.fault.clone(),
            invariant: invariant.into(),
            logs,
        }
    }

    /// Stops everything cleanly: the client with SIGINT (it finishes the
    /// current request and prints its summary), the servers with SIGTERM.
    /// Returns the client's summary line.
    pub fn stop(&mut self) -> Result<String, Violation> {
        self.begin("the final stop");
        self.check_client()?;
        let Some(mut client) = self.client.take() else {
            return Err(self.violation("no client"));
        };
        client.signal("INT");
        let status = client.wait(Duration::from_secs(30));
        let stdout = client.stdout().lines();
        let stderr = client.stderr_text();
        self.client = Some(client);
        if !matches!(status.code(), Some(0 | 130)) {
            return Err(self.violation(format!("the client exited with {status}")));
        }
        let summary = stdout
            .iter()
            .rev()
            .find(|(_, l)| l.contains("\"summary\""))
            .map(|(_, l)| l.clone())
            .ok_or_else(|| self.violation("the client printed no summary"))?;
        let parsed: Value = serde_json::from_str(&summary).unwrap_or(Value::Null);
        if parsed["failed"] != 0 {
            return Err(self.violation(format!("the client's summary counts failures: {summary}")));
        }
        if stderr.contains("panicked") {
            return Err(self.violation("the client panicked"));
        }
        for k in 0..self.servers.len() {
            if self.servers[k].frozen {
                self.signal_server(k, "CONT");
            }
            self.signal_server(k, "TERM");
            self.reap_server(k, false)?;
        }
        Ok(summary)
    }
}
