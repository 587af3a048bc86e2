//! The time-servers' lifecycle: started on fixed ports (a restart reuses
//! them), signalled, reaped (a clean exit and no panic, or a violation).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use zkutil::testing::TestProcess;
use zkutil::testing::lab::Host;

use super::{MAX_CONNECTIONS, Violation, World};

/// One time-server: where it runs, its fixed ports and its current
/// process.
pub struct Server {
    pub(super) ports: Vec<u16>,
    address: Ipv4Addr,
    /// Its ZooKeeper connect string.
    connect: String,
    /// Its host in the network lab (none on loopback).
    pub host: Option<Host>,
    pub(super) process: Option<TestProcess>,
    pub(super) frozen: bool,
    /// Cut off from ZooKeeper by a network fault for longer than its
    /// session: running, but not expected in the registry.
    pub cut_off: bool,
}

impl Server {
    pub(super) fn new(
        ports: Vec<u16>,
        address: Ipv4Addr,
        connect: String,
        host: Option<Host>,
    ) -> Server {
        Server {
            ports,
            address,
            connect,
            host,
            process: None,
            frozen: false,
            cut_off: false,
        }
    }

    /// Its listeners' addresses.
    pub(super) fn listeners(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|p| SocketAddr::from((self.address, *p)))
            .collect()
    }

    /// The node names it registers.
    pub(super) fn names(&self) -> Vec<String> {
        self.listeners().iter().map(ToString::to_string).collect()
    }
}

impl World {
    pub fn start_server(&mut self, k: usize) {
        let server = &self.servers[k];
        let listen = server.names().join(",");
        let metrics = SocketAddr::from((server.address, 0)).to_string();
        let timeout = humantime::format_duration(self.session_timeout).to_string();
        let max_connections = MAX_CONNECTIONS.to_string();
        let mut args = vec![
            "--zk",
            &server.connect,
            "--session-timeout",
            &timeout,
            "--listen",
            &listen,
            "--drain",
            "500ms",
            "--max-connections",
            &max_connections,
            "--metrics-listen",
            &metrics,
        ];
        args.extend(self.server_tls.iter().map(String::as_str));
        let envs = [("RUST_LOG", "info")];
        let process = match &server.host {
            Some(host) => host.start(&self.server_bin, &args, &envs),
            None => TestProcess::start(&self.server_bin, &args, &envs),
        };
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
    pub fn server_listeners(&self, k: usize) -> Vec<SocketAddr> {
        self.servers[k].listeners()
    }
}
