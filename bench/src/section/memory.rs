//! Section 8, memory: the resident memory of the time-server idle and
//! under load (measured by the latency and throughput sections) and of the
//! time-client as a process (measured here, run from the scale section).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::Bench;
use crate::bare::BareResponder;
use crate::server::rss_kib;
use crate::stats::verdict;
use crate::summary::Row;

/// Every process's RSS, at most this.
const TARGET_KIB: u64 = 10 * 1024;

/// Peak or idle RSS in KiB; 0 when not measured.
#[derive(Debug, Default)]
pub struct Memory {
    pub server_idle_kib: u64,
    pub server_load_kib: u64,
    pub client_kib: u64,
}

impl Memory {
    fn rows(&self) -> [(&'static str, u64); 3] {
        [
            ("time-server, idle (one listener)", self.server_idle_kib),
            (
                "time-server, under the 4-thread connection load (peak)",
                self.server_load_kib,
            ),
            ("time-client, 300 requests at 5 ms (peak)", self.client_kib),
        ]
    }

    pub fn measured(&self) -> bool {
        self.rows().iter().any(|(_, kib)| *kib > 0)
    }
}

/// A measured figure within the target (0 is a failed measurement).
fn met(kib: u64) -> bool {
    kib <= TARGET_KIB && kib > 0
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The time-client's peak RSS over a short run against a bare responder
/// (300 requests, 5 ms apart); 0 without the binary.
pub fn client_rss(bench: &Bench) -> anyhow::Result<u64> {
    if !bench.client_bin.exists() {
        return Ok(0);
    }
    let owner = bench.session()?;
    let responder = BareResponder::start()?;
    owner.ensure_path("/rss")?;
    owner.create_ephemeral(&format!("/rss/{}", responder.addr), b"{}")?;
    let mut child = Command::new(&bench.client_bin)
        .args([
            "--zk",
            &bench.zk.connect_string(),
            "--base-path",
            "/rss",
            "--count",
            "300",
            "--interval",
            "5ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut max = 0;
    while child.try_wait()?.is_none() {
        max = max.max(rss_kib(child.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(max)
}

pub fn write(md: &mut String, m: &Memory) {
    let _ = writeln!(md, "## 8. Memory\n");
    let _ = writeln!(
        md,
        "| process | RSS | target ≤ {} MiB |\n|---|---:|---|",
        TARGET_KIB / 1024
    );
    for (name, kib) in m.rows() {
        let _ = writeln!(md, "| {name} | {} | {} |", mib(kib), verdict(met(kib)));
    }
    let _ = writeln!(md);
}

pub fn summary(m: &Memory) -> Vec<Row> {
    m.rows()
        .into_iter()
        .filter(|(_, kib)| *kib > 0)
        .map(|(name, kib)| {
            Row::absolute(
                format!("resident memory: {name}"),
                mib(kib),
                &format!("≤ {} MiB", TARGET_KIB / 1024),
                met(kib),
            )
        })
        .collect()
}
