//! The system under test: the ensemble, the servers, the client, the
//! observer, and the invariants checked against them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;
use zkutil::testing::{DelayProxy, TestProcess, ZkEnsemble, free_ports, proc_status, sessions_on};
use zkutil::{Change, Discovery, Session, SessionConfig, SessionId};

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

/// One time-server: its fixed ports and its current process.
pub struct Server {
    ports: Vec<u16>,
    process: Option<TestProcess>,
    frozen: bool,
}

impl Server {
    /// The node names it registers.
    fn names(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }
}

/// The client's progress so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub requests: u64,
    pub failed: u64,
    pub retries: u64,
}

/// Threads, open files and RSS of a process.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub threads: u64,
    pub fds: u64,
    pub rss_kib: u64,
}

/// Each node under [`BASE`]: its owner session and creation time.
pub type Registry = BTreeMap<String, (SessionId, i64)>;

/// Fields drop in order: the processes and the observer before the
/// ensemble, so that nothing waits on a ZooKeeper that is already gone.
pub struct World {
    hosts: String,
    server_bin: PathBuf,
    pub session_timeout: Duration,
    pub servers: Vec<Server>,
    client: Option<TestProcess>,
    client_lines: usize,
    /// The client's links to ZooKeeper, one per node: held to cut the
    /// client off while the servers and operators still reach ZooKeeper.
    client_links: Vec<DelayProxy>,
    progress: Progress,
    pub observer: Arc<Session>,
    discovery: Discovery,
    changes: Receiver<Change>,
    fault: String,
    pub zk: ZkEnsemble,
}

impl World {
    pub fn start(
        server_bin: &Path,
        client_bin: &Path,
        session_timeout: Duration,
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
        let zk = ZkEnsemble::start(3).map_err(|e| setup("starting ZooKeeper", &e))?;
        let hosts = zk.connect_string();
        let ports = free_ports(SERVERS * LISTENERS).map_err(|e| setup("free ports", &e))?;
        let observer = SessionConfig::new(&hosts)
            .with_session_timeout(Duration::from_secs(30))
            .connect()
            .map(Arc::new)
            .map_err(|e| setup("observer session", &e))?;
        let discovery = Discovery::start(observer.clone(), &zkutil::BasePath::from_static(BASE))
            .map_err(|e| setup("observer discovery", &e))?;
        let changes = discovery.subscribe();
        let client_links = (0..zk.len())
            .map(|i| DelayProxy::start(([127, 0, 0, 1], zk.port(i)).into(), Duration::ZERO))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| setup("client links", &e))?;
        let client_hosts: Vec<String> = client_links.iter().map(|l| l.addr().to_string()).collect();
        let mut world = World {
            zk,
            hosts,
            server_bin: server_bin.to_owned(),
            session_timeout,
            servers: ports
                .chunks(LISTENERS)
                .map(|ports| Server {
                    ports: ports.to_vec(),
                    process: None,
                    frozen: false,
                })
                .collect(),
            client: None,
            client_lines: 0,
            client_links,
            progress: Progress::default(),
            observer,
            discovery,
            changes,
            fault: "setup".into(),
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
        world.client = Some(TestProcess::start(
            client_bin,
            &[
                "--zk",
                &client_hosts.join(","),
                "--session-timeout",
                &timeout,
                "--count",
                "1000000000",
                "--interval",
                "10ms",
                "--json",
                "--timeout",
                "1s",
            ],
            &[("RUST_LOG", "info"), ("NO_COLOR", "1")],
        ));
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
        Violation {
            fault: self.fault.clone(),
            invariant: invariant.into(),
            logs,
        }
    }

    pub fn start_server(&mut self, k: usize) {
        let listen = self.servers[k].names().join(",");
        let timeout = humantime::format_duration(self.session_timeout).to_string();
        let process = TestProcess::start(
            &self.server_bin,
            &[
                "--zk",
                &self.hosts,
                "--session-timeout",
                &timeout,
                "--listen",
                &listen,
                "--drain",
                "500ms",
                "--max-connections",
                &MAX_CONNECTIONS.to_string(),
                "--metrics-listen",
                "127.0.0.1:0",
            ],
            &[("RUST_LOG", "info")],
        );
        self.servers[k].process = Some(process);
        self.servers[k].frozen = false;
    }

    /// Sends `signal` to server `k`.
    pub fn signal_server(&mut self, k: usize, signal: &str) {
        if let Some(process) = &self.servers[k].process {
            process.signal(signal);
        }
        match signal {
            "STOP" => self.servers[k].frozen = true,
            "CONT" => self.servers[k].frozen = false,
            _ => {}
        }
    }

    /// Stops server `k` with `signal` (a SIGTERM must end in exit 0) and
    /// starts it again on the same ports.
    pub fn restart_server(&mut self, k: usize, signal: &str) -> Result<(), Violation> {
        self.signal_server(k, signal);
        self.reap_server(k, signal == "KILL")?;
        self.start_server(k);
        Ok(())
    }

    /// Waits for server `k` to exit; a violation unless it exits with 0
    /// (or was killed with `killed`).
    pub fn reap_server(&mut self, k: usize, killed: bool) -> Result<(), Violation> {
        let Some(mut process) = self.servers[k].process.take() else {
            return Ok(());
        };
        let status = process.wait(Duration::from_secs(30));
        if !killed && !status.success() {
            let log = process.stderr_text();
            self.servers[k].process = Some(process);
            return Err(self.violation(format!("server{} exited with {status}:\n{log}", k + 1)));
        }
        if process.stderr_text().contains("panicked") {
            let log = process.stderr_text();
            return Err(self.violation(format!("server{} panicked:\n{log}", k + 1)));
        }
        Ok(())
    }

    /// The nodes the registry should hold now: every listener of every
    /// server that runs and is not frozen, by server.
    fn expected(&self) -> BTreeMap<String, usize> {
        self.servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.process.is_some() && !s.frozen)
            .flat_map(|(k, s)| s.names().into_iter().map(move |name| (name, k)))
            .collect()
    }

    /// Each node under the base path with its owner and creation time.
    pub fn registry(&self) -> Result<Registry, zkutil::Error> {
        let names = match self.observer.children(BASE) {
            Ok(names) => names,
            Err(err) if err.is_no_node() => Vec::new(),
            Err(err) => return Err(err),
        };
        let mut registry = Registry::new();
        for name in names {
            if let Some(stat) = self.observer.stat(&format!("{BASE}/{name}"))? {
                registry.insert(name, (stat.ephemeral_owner(), stat.ctime_ms()));
            }
        }
        Ok(registry)
    }

    /// The sessions connected to the ensemble now.
    fn live_sessions(&self) -> BTreeSet<SessionId> {
        (0..self.zk.len())
            .flat_map(|i| sessions_on(self.zk.port(i)))
            .collect()
    }

    /// Why the registry is not yet what it should be, if it is not.
    fn mismatch(&self) -> Option<String> {
        let registry = match self.registry() {
            Ok(registry) => registry,
            Err(err) => return Some(format!("cannot read the registry: {}", err.chain())),
        };
        let expected = self.expected();
        let found: BTreeSet<&String> = registry.keys().collect();
        let wanted: BTreeSet<&String> = expected.keys().collect();
        if found != wanted {
            return Some(format!("nodes {found:?}, expected {wanted:?}"));
        }
        let mut owners: BTreeMap<usize, BTreeSet<SessionId>> = BTreeMap::new();
        for (name, (owner, _)) in &registry {
            owners.entry(expected[name]).or_default().insert(*owner);
        }
        if owners.values().any(|o| o.len() != 1) {
            return Some(format!("a server's nodes have several owners: {owners:?}"));
        }
        let distinct: BTreeSet<SessionId> = owners.values().flatten().copied().collect();
        if distinct.len() != owners.len() {
            return Some(format!("two servers share an owner: {owners:?}"));
        }
        let live = self.live_sessions();
        if let Some(dead) = distinct.iter().find(|o| !live.contains(o)) {
            return Some(format!(
                "a node of session {dead:#x}, which is not connected"
            ));
        }
        // The observer's cache caught up too, so its change events are all in.
        let cached: BTreeSet<String> = self
            .discovery
            .snapshot()
            .instances()
            .iter()
            .map(|i| i.endpoint().to_string())
            .collect();
        if cached.iter().collect::<BTreeSet<_>>() != wanted {
            return Some(format!("a watcher's cache has {cached:?}"));
        }
        None
    }

    /// The deadline for convergence after a fault: the session timeout + 1 s.
    pub fn settle_deadline(&self) -> Instant {
        Instant::now() + self.session_timeout + Duration::from_secs(1)
    }

    /// Waits until the registry equals the live listeners (checking the
    /// client all along); how long that took, or a violation at `deadline`.
    pub fn converge(&mut self, what: &str, deadline: Instant) -> Result<Duration, Violation> {
        let started = Instant::now();
        loop {
            self.check_client()?;
            let Some(reason) = self.mismatch() else {
                return Ok(started.elapsed());
            };
            if Instant::now() > deadline {
                return Err(self.violation(format!(
                    "{what}: the registry did not converge within {:?}: {reason}",
                    deadline.saturating_duration_since(started)
                )));
            }
            // Nothing announces convergence of all of these at once: poll.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Registry changes seen by the observer's watch since the last call.
    pub fn drain_changes(&self) -> Vec<Change> {
        self.changes
            .try_iter()
            .filter(|c| matches!(c, Change::Added(_) | Change::Removed(_)))
            .collect()
    }

    /// Lets `duration` pass while checking the client and that the registry
    /// does not change.
    pub fn watch_for(&mut self, duration: Duration) -> Result<(), Violation> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.check_client()?;
            let changes = self.drain_changes();
            if !changes.is_empty() {
                return Err(
                    self.violation(format!("the registry changed with no fault: {changes:?}"))
                );
            }
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        Ok(())
    }

    /// Lets `duration` pass while a fault is in progress: the client is
    /// checked, registry changes are allowed.
    pub fn during(&mut self, duration: Duration) -> Result<(), Violation> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.check_client()?;
            std::thread::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50)),
            );
        }
        Ok(())
    }

    /// Reads the client's new output: every request must have succeeded.
    fn check_client(&mut self) -> Result<(), Violation> {
        let Some(client) = &mut self.client else {
            return Ok(());
        };
        let lines = client.stdout().lines();
        let exited = client.try_status();
        for (_, line) in &lines[self.client_lines.min(lines.len())..] {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                return Err(self.violation(format!("the client printed {line:?}")));
            };
            if value["type"] != "request" {
                continue;
            }
            self.progress.requests += 1;
            let attempts = value["attempts"].as_u64().unwrap_or(1);
            self.progress.retries += attempts.saturating_sub(1);
            if value["ok"] != true {
                self.progress.failed += 1;
                return Err(self.violation(format!("a request was lost: {line}")));
            }
        }
        self.client_lines = lines.len();
        if let Some(status) = exited {
            return Err(self.violation(format!("the client exited with {status}")));
        }
        Ok(())
    }

    /// Cuts the client off from every ZooKeeper node (`true`) or lets it
    /// back (`false`).
    pub fn cut_client(&self, cut: bool) {
        for link in &self.client_links {
            if cut {
                link.hold();
            } else {
                link.release();
            }
        }
    }

    /// How many lines the client has logged to stderr, and printed to stdout.
    pub fn client_marks(&self) -> (usize, usize) {
        self.client
            .as_ref()
            .map_or((0, 0), |c| (c.stderr().len(), c.stdout().len()))
    }

    /// Waits (checking the client all along) until the client logs a line
    /// containing `text` after its first `after` stderr lines; the number of
    /// stdout lines it had printed by then.
    pub fn client_logs(
        &mut self,
        text: &str,
        after: usize,
        deadline: Instant,
    ) -> Result<usize, Violation> {
        loop {
            self.check_client()?;
            if let Some(client) = &self.client {
                let lines = client.stderr().lines();
                if lines.iter().skip(after).any(|(_, l)| l.contains(text)) {
                    return Ok(client.stdout().len());
                }
            }
            if Instant::now() > deadline {
                return Err(self.violation(format!("the client did not log {text:?} in time")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The servers the client's requests went to, from stdout line `from` on.
    pub fn client_servers_since(&self, from: usize) -> Vec<String> {
        self.client.as_ref().map_or_else(Vec::new, |c| {
            c.stdout()
                .lines()
                .iter()
                .skip(from)
                .filter_map(|(_, l)| serde_json::from_str::<Value>(l).ok())
                .filter_map(|v| v["server"].as_str().map(str::to_owned))
                .collect()
        })
    }

    /// Server `k`'s metrics address, once it has logged it.
    pub fn metrics_addr(&self, k: usize) -> Option<std::net::SocketAddr> {
        let process = self.servers[k].process.as_ref()?;
        process
            .stderr()
            .lines()
            .iter()
            .filter_map(|(_, line)| line.split("metrics=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .find_map(|addr| addr.parse().ok())
    }

    /// Server `k`'s listener addresses.
    pub fn server_listeners(&self, k: usize) -> Vec<std::net::SocketAddr> {
        self.servers[k]
            .ports
            .iter()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    /// The names of the listeners registered now.
    pub fn listener_names(&self) -> Vec<String> {
        self.expected().into_keys().collect()
    }

    pub fn client_progress(&mut self) -> Result<Progress, Violation> {
        self.check_client()?;
        Ok(self.progress)
    }

    /// Threads, open files and RSS of the client and each running server.
    pub fn process_stats(&self) -> BTreeMap<String, Stats> {
        let mut stats = BTreeMap::new();
        let mut add = |name: String, pid: u32| {
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
            if let (Some(threads), Some(rss_kib)) =
                (proc_status(pid, "Threads:"), proc_status(pid, "VmRSS:"))
            {
                stats.insert(
                    name,
                    Stats {
                        threads,
                        fds,
                        rss_kib,
                    },
                );
            }
        };
        if let Some(client) = &self.client {
            add("client".into(), client.pid());
        }
        for (k, server) in self.servers.iter().enumerate() {
            if let Some(process) = &server.process {
                add(format!("server{}", k + 1), process.pid());
            }
        }
        stats
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

/// Threads, files and memory of the long-lived processes stayed bounded.
pub fn check_bounded(stats: &BTreeMap<String, Stats>) -> Result<(), Violation> {
    for (name, s) in stats {
        let (threads, fds) = if name == "client" {
            (16, 64)
        } else {
            (64, 128)
        };
        if s.threads > threads || s.fds > fds || s.rss_kib > 64 * 1024 {
            return Err(Violation {
                fault: "the final check".into(),
                invariant: format!(
                    "{name} grew: {} threads (at most {threads}), {} open files (at most {fds}), {} KiB RSS (at most 64 MiB)",
                    s.threads, s.fds, s.rss_kib
                ),
                logs: String::new(),
            });
        }
    }
    Ok(())
}
