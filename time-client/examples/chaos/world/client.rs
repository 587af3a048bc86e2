//! The client's invariant: it loses no request, ever (retries allowed),
//! and never stalls (some server is always reachable from it);
//! and what the faults need of it: its progress, its logs, cutting it off
//! from ZooKeeper.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Violation, World};

/// The longest the client may go without answering a request: its
/// `--timeout` is 1 s a try, and some server is always reachable.
const STALL: Duration = Duration::from_secs(5);

/// The client's progress so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub requests: u64,
    pub failed: u64,
    pub retries: u64,
}

impl World {
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
    pub(super) fn check_client(&mut self) -> Result<(), Violation> {
        let Some(client) = &mut self.client else {
            return Ok(());
        };
        let lines = client.stdout().lines();
        let exited = client.try_status();
        for (at, line) in &lines[self.client_lines.min(lines.len())..] {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                return Err(self.violation(format!("the client printed {line:?}")));
            };
            if value["type"] != "request" {
                continue;
            }
            self.progress.requests += 1;
            // Between two answers, not only since the last: a stall that
            // ended while the soak was busy elsewhere counts too.
            if let Some(gap) = self
                .last_answer
                .map(|last| at.saturating_duration_since(last))
            {
                if gap > STALL {
                    return Err(self.violation(format!(
                        "the client answered no request for {gap:?} (until {line})"
                    )));
                }
            }
            self.last_answer = Some(*at);
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
        if let Some(stalled) = self
            .last_answer
            .map(|at| at.elapsed())
            .filter(|s| *s > STALL)
        {
            return Err(self.violation(format!("the client answered no request for {stalled:?}")));
        }
        Ok(())
    }

    /// Cuts the client off from every ZooKeeper node (`true`) or lets it
    /// back (`false`): in the lab, a partition between its host and
    /// ZooKeeper's; on loopback, its links held down.
    pub fn cut_client(&mut self, cut: bool) {
        if let Some(net) = &mut self.net {
            let client = net.client.clone();
            if cut {
                let zk: Vec<_> = net.zk.clone();
                net.lab
                    .partition(&[&client], &zk.iter().collect::<Vec<_>>());
            } else {
                net.lab.heal_host(&client);
            }
            return;
        }
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

    pub fn client_progress(&mut self) -> Result<Progress, Violation> {
        self.check_client()?;
        Ok(self.progress)
    }
}
