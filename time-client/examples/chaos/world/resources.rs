//! The processes' resources: threads, open files and RSS of the client and
//! each server, which must stay bounded over the soak.

use std::collections::BTreeMap;

use zkutil::testing::proc_status;

use super::{Violation, World};

/// Threads, open files and RSS of a process.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
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
