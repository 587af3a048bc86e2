//! The time-server under test: the release binary, started through the
//! tests' process harness on free ports and awaited until registered.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use zkutil::BasePath;
use zkutil::testing::{TestProcess, free_ports, wait_until};

use crate::Bench;

/// A time-server process on free ports, registered; killed on drop
/// (SIGKILL ends a stopped one too).
pub struct ServerProcess {
    process: TestProcess,
    pub addrs: Vec<SocketAddr>,
}

impl ServerProcess {
    /// A server with `listeners` listeners registered under `base`.
    pub fn start(
        bench: &Bench,
        base: &BasePath,
        listeners: usize,
        session_timeout: &str,
    ) -> anyhow::Result<ServerProcess> {
        ServerProcess::start_with(bench, base, listeners, session_timeout, &[])
    }

    /// Like [`ServerProcess::start`], with `extra` flags.
    pub fn start_with(
        bench: &Bench,
        base: &BasePath,
        listeners: usize,
        session_timeout: &str,
        extra: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        if !bench.server_bin.exists() {
            bail!(
                "no {} (run scripts/bench.sh, which builds it)",
                bench.server_bin.display()
            );
        }
        let addrs: Vec<SocketAddr> = free_ports(listeners)?
            .into_iter()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .collect();
        let listen = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let hosts = bench.zk.connect_string();
        let mut flags = vec![
            "--zk",
            &hosts,
            "--base-path",
            base.as_str(),
            "--listen",
            &listen,
            "--session-timeout",
            session_timeout,
            "--drain",
            "1s",
        ];
        flags.extend_from_slice(extra);
        let process = TestProcess::start(&bench.server_bin, &flags, &[("RUST_LOG", "warn")]);
        let observer = bench.session()?;
        let expected: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        wait_until(
            Duration::from_secs(30),
            "the bench server registers",
            || {
                let names = observer.children(base.as_str()).unwrap_or_default();
                expected.iter().all(|e| names.contains(e)).then_some(())
            },
        );
        Ok(ServerProcess { process, addrs })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// The resident memory of process `pid`, 0 when it cannot be read.
pub fn rss_kib(pid: u32) -> u64 {
    zkutil::testing::proc_status(pid, "VmRSS:").unwrap_or(0)
}
