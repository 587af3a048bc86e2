//! The time-servers' lifecycle: started on fixed ports (a restart reuses
//! them), signalled, reaped (a clean exit and no panic, or a violation).

use std::time::Duration;

use zkutil::testing::TestProcess;

use super::{MAX_CONNECTIONS, Violation, World};

/// One time-server: its fixed ports and its current process.
pub struct Server {
    pub(super) ports: Vec<u16>,
    pub(super) process: Option<TestProcess>,
    pub(super) frozen: bool,
}

impl Server {
    pub(super) fn new(ports: Vec<u16>) -> Server {
        Server {
            ports,
            process: None,
            frozen: false,
        }
    }

    /// The node names it registers.
    pub(super) fn names(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }
}

impl World {
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
}
