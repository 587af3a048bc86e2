//! The processes' resources: threads, open files and RSS of the client and
//! each server, which must stay bounded over the soak: each process against
//! its own first figures (a leak of one descriptor per reconnect shows
//! after a few faults), and all of them against fixed caps at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zkutil::testing::proc_status;

use super::{Violation, World};

/// How much a process may grow past its first figures (taken once the
/// registry has converged after a fault): a connection in flight, a
/// thread serving it.
const SLACK_THREADS: u64 = 2;
const SLACK_FDS: u64 = 4;
/// How long a process may take to shed what a fault left in flight (idle
/// clients let go, a thread per connection ending).
const SHED: Duration = Duration::from_secs(5);

/// Threads, open files and RSS of a process.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub pid: u32,
    pub threads: u64,
    pub fds: u64,
    pub rss_kib: u64,
}

impl World {
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
                        pid,
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

    /// Compares each process with its first figures (recorded the first
    /// time it is seen here): more threads or descriptors than those and
    /// the slack, still after [`SHED`], is a leak.
    pub fn check_growth(&mut self) -> Result<(), Violation> {
        let deadline = Instant::now() + SHED;
        loop {
            self.check_client()?;
            let grown: Vec<String> = self
                .process_stats()
                .into_iter()
                .filter_map(|(name, now)| {
                    let first = *self.baselines.entry(now.pid).or_insert(now);
                    (now.threads > first.threads + SLACK_THREADS || now.fds > first.fds + SLACK_FDS)
                        .then(|| {
                            format!(
                                "{name} (pid {}): {} threads and {} open files, {} and {} at first",
                                now.pid, now.threads, now.fds, first.threads, first.fds
                            )
                        })
                })
                .collect();
            if grown.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.violation(format!("grew: {}", grown.join("; "))));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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
