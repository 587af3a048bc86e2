//! Section 9, picking around a slow server: one of three slowed about 10x,
//! random against p2c, the same requests interleaved.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use time_client::request::{RequestLimits, request};
use zkutil::{BasePath, Discovery, Endpoint, Selector, Strategy};

use super::Report;
use crate::Bench;
use crate::server::ServerProcess;
use crate::stats::{Stats, d, ratio_of};
use crate::summary::Row;

/// One strategy's requests with one of three servers slowed.
pub struct Picking {
    pub strategy: &'static str,
    pub latency: Stats,
    /// Share of the requests sent to the slow server.
    pub to_slow: f64,
}

/// The servers' own latencies and each strategy's.
pub struct SlowServer {
    /// Median latency of a normal server alone, and of the slowed one.
    pub normal_p50: Duration,
    pub slow_p50: Duration,
    pub delay: Duration,
    pub rows: Vec<Picking>,
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let base = BasePath::from_static("/slow");
    let normal = ServerProcess::start(bench, &base, 2, "10s")?;
    let limits = RequestLimits::default();
    let timed = |endpoint: Endpoint| {
        let t = Instant::now();
        request(endpoint, &limits).map(|_| t.elapsed())
    };
    let n = bench.sizes.requests / 5;
    let normal_p50 = Stats::of(
        &(0..n)
            .map(|_| timed(Endpoint::new(normal.addrs[0])))
            .collect::<Result<Vec<_>, _>>()?,
    )
    .p50;
    // Slowed so that its latency is about 10x the others'.
    let delay = (normal_p50 * 9).max(Duration::from_micros(100));
    let delay_flag = format!("{}us", delay.as_micros());
    let slow = ServerProcess::start_with(bench, &base, 1, "10s", &["--reply-delay", &delay_flag])?;
    let slow_endpoint = Endpoint::new(slow.addrs[0]);
    let slow_p50 = Stats::of(
        &(0..n.min(500))
            .map(|_| timed(slow_endpoint))
            .collect::<Result<Vec<_>, _>>()?,
    )
    .p50;
    let discovery = Discovery::start(bench.session()?, &base)?;
    discovery
        .wait_for(Duration::from_secs(30), |s| s.instances().len() == 3)
        .context("the three servers are discovered")?;
    let strategies = [("random", Strategy::Random), ("p2c", Strategy::P2c)];
    let selectors: Vec<Selector> = strategies.iter().map(|(_, s)| Selector::new(*s)).collect();
    let mut samples = vec![Vec::new(); strategies.len()];
    let mut to_slow = vec![0usize; strategies.len()];
    for _ in 0..bench.sizes.requests {
        for (i, selector) in selectors.iter().enumerate() {
            let snapshot = discovery.snapshot();
            let Some(endpoint) = selector.pick(snapshot.instances()).map(|i| i.endpoint()) else {
                bail!("no server to pick");
            };
            let t = Instant::now();
            selector.started(endpoint);
            request(endpoint, &limits)?;
            let took = t.elapsed();
            selector.finished(endpoint, took);
            samples[i].push(took);
            to_slow[i] += usize::from(endpoint == slow_endpoint);
        }
    }
    let rows = strategies
        .iter()
        .zip(samples.iter().zip(&to_slow))
        .map(|((name, _), (sample, slow))| Picking {
            strategy: name,
            latency: Stats::of(sample),
            to_slow: *slow as f64 / sample.len().max(1) as f64,
        })
        .collect();
    report.slow_server = Some(SlowServer {
        normal_p50,
        slow_p50,
        delay,
        rows,
    });
    drop((normal, slow));
    Ok(())
}

pub fn write(md: &mut String, slow: &SlowServer) {
    let _ = writeln!(
        md,
        "## 9. Picking around a slow server: p2c against random\n\n\
         Three time-servers, one slowed by an artificial reply delay of {} (its median {} against {} \
         for the others: {:.1}x). The same {} sequential requests per strategy, interleaved so that both \
         see the same machine; p2c picks the less loaded of two by each server's EWMA latency x requests in \
         flight.\n",
        d(slow.delay),
        d(slow.slow_p50),
        d(slow.normal_p50),
        ratio_of(slow.slow_p50, slow.normal_p50),
        slow.rows.first().map_or(0, |r| r.latency.n),
    );
    let _ = writeln!(
        md,
        "| strategy | median | p99 | max | share to the slow server |\n|---|---:|---:|---:|---:|"
    );
    for row in &slow.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} % |",
            row.strategy,
            d(row.latency.p50),
            d(row.latency.p99),
            d(row.latency.max),
            row.to_slow * 100.0
        );
    }
    if let [random, p2c] = &slow.rows[..] {
        let _ = writeln!(
            md,
            "\np99 p2c : random = {:.2}; median p2c : random = {:.2}.",
            ratio_of(p2c.latency.p99, random.latency.p99),
            ratio_of(p2c.latency.p50, random.latency.p50),
        );
    }
    let _ = writeln!(md);
}

pub fn summary(slow: &SlowServer) -> Vec<Row> {
    let [random, p2c] = &slow.rows[..] else {
        return Vec::new();
    };
    vec![Row::against(
        "request latency with one of three servers slowed about 10x, p99: p2c : random",
        d(p2c.latency.p99),
        d(random.latency.p99),
        format!("{:.2}×", ratio_of(p2c.latency.p99, random.latency.p99)),
        "—",
        None,
    )]
}
