//! Section 5, failover: one of three servers gets SIGTERM, SIGKILL or
//! SIGSTOP while a client sends a request every 10 ms.

use std::fmt::Write as _;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use time_client::request::RequestLimits;
use zkutil::BasePath;
use zkutil::testing::{LineRecorder, send_signal, wait_until};

use super::Report;
use crate::Bench;
use crate::server::ServerProcess;
use crate::stats::d;

pub struct Failover {
    pub signal: String,
    /// The servers' session timeout (shorter with `--quick`: the SIGKILL
    /// and SIGSTOP rounds each wait it out).
    pub session_timeout: &'static str,
    pub requests: usize,
    pub failed: usize,
    pub retries: usize,
    pub first_success: Option<Duration>,
    pub stale_window: Duration,
    pub p99: Option<Duration>,
    pub max: Option<Duration>,
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let session_timeout = if bench.sizes.full() { "4s" } else { "2s" };
    for signal in ["TERM", "KILL", "STOP"] {
        let base = BasePath::new(&format!("/failover_{}", signal.to_lowercase()))?;
        let servers: Vec<ServerProcess> = (0..3)
            .map(|_| ServerProcess::start(bench, &base, 1, session_timeout))
            .collect::<anyhow::Result<_>>()?;
        let victim = servers[0].addrs[0].to_string();
        let out = LineRecorder::new();
        let config = time_client::Config {
            base_path: base.clone(),
            count: bench.sizes.failover_requests,
            interval: Duration::from_millis(10),
            limits: RequestLimits {
                timeout: Duration::from_millis(500),
                ..RequestLimits::default()
            },
            ..time_client::Config::new(bench.zk.connect_string())
        };
        let mut sink = out.clone();
        let (keep, stop) = mpsc::channel::<i32>();
        let client = std::thread::spawn(move || time_client::run(&config, &mut sink, &stop));
        out.wait_for_lines(60, Duration::from_secs(30));
        let observer = bench.session()?;
        let fault = Instant::now();
        send_signal(servers[0].pid(), signal)?;
        let victim_path = format!("{base}/{victim}");
        let stale = wait_until(
            Duration::from_secs(60),
            "the victim's node vanishes",
            || {
                observer
                    .stat(&victim_path)
                    .ok()
                    .flatten()
                    .is_none()
                    .then(|| fault.elapsed())
            },
        );
        let summary = client
            .join()
            .map_err(|_| anyhow::anyhow!("client panicked"))??;
        drop(keep);
        let first_success = out
            .lines()
            .iter()
            .find(|(at, line)| *at > fault && !line.contains("FAILED"))
            .map(|(at, _)| at.duration_since(fault));
        report.failover.push(Failover {
            signal: signal.into(),
            session_timeout,
            requests: summary.total(),
            failed: summary.failed,
            retries: summary.retries,
            first_success,
            stale_window: stale,
            p99: summary.latency_quantile(0.99),
            max: summary.latency_quantile(1.0),
        });
        drop(servers);
    }
    Ok(())
}

pub fn write(md: &mut String, rows: &[Failover]) {
    let _ = writeln!(md, "## 5. Failover under a 10 ms-interval client\n");
    let _ = writeln!(
        md,
        "One of three servers (session timeout {}) gets the signal while a client sends a request every 10 ms.\n\n\
         | signal | requests | failed | retries | first success after the fault | stale-listing window | p99 | max |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        rows.first().map_or("4s", |f| f.session_timeout)
    );
    for f in rows {
        let _ = writeln!(
            md,
            "| SIG{} | {} | {} | {} | {} | {} | {} | {} |",
            f.signal,
            f.requests,
            f.failed,
            f.retries,
            f.first_success.map(d).unwrap_or_else(|| "-".into()),
            d(f.stale_window),
            f.p99.map(d).unwrap_or_default(),
            f.max.map(d).unwrap_or_default()
        );
    }
    let _ = writeln!(
        md,
        "\nSIGTERM deregisters first, so the listing is stale only for the time the deregistration takes; SIGKILL \
         and SIGSTOP leave the node listed until the session times out, and the client's down-marking (one failed \
         attempt, then skipped for the cooldown) keeps requests from failing meanwhile. A frozen server accepts \
         (the kernel does) and never answers, so the one request that tries it waits for the client's reply \
         deadline (500 ms here) before its retry succeeds: that is the max latency after SIGSTOP, and the \
         first-success time too when that request is the first one after the fault.\n"
    );
}
