//! What the client tells the user: per request on stdout, as the post did
//! (`connect host: <ip:port>`, then the server's reply), so it can be
//! piped; failures and the final summary on stderr.

use std::collections::BTreeMap;
use std::io::Write;

use zkutil::Endpoint;

/// Counts of a run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Requests answered correctly.
    pub ok: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Answered requests per server.
    pub per_server: BTreeMap<Endpoint, usize>,
}

impl Summary {
    /// Records an answered request.
    pub fn record_ok(&mut self, endpoint: Endpoint) {
        self.ok += 1;
        *self.per_server.entry(endpoint).or_default() += 1;
    }

    /// Records a failed request.
    pub fn record_failure(&mut self) {
        self.failed += 1;
    }

    /// All requests made.
    pub fn total(&self) -> usize {
        self.ok + self.failed
    }

    /// The summary as one line.
    pub fn line(&self) -> String {
        let servers: Vec<String> = self
            .per_server
            .iter()
            .map(|(e, n)| format!("{e}={n}"))
            .collect();
        format!(
            "summary: {} requests, {} ok, {} failed; per server: {}",
            self.total(),
            self.ok,
            self.failed,
            if servers.is_empty() {
                "none".to_owned()
            } else {
                servers.join(" ")
            }
        )
    }
}

/// Writes `connect host: X` for the request about to be made.
pub fn connecting(out: &mut impl Write, endpoint: Endpoint) {
    // A closed stdout (a pipe to `head`) must not stop the run.
    let _ = writeln!(out, "connect host: {endpoint}");
    let _ = out.flush();
}

/// Writes the server's reply line.
pub fn replied(out: &mut impl Write, line: &str) {
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
