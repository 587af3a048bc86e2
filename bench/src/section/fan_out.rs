//! Section 11, fan-out: many client sessions (threads of this process, each
//! its own session and `Discovery`) follow one base path on one ZooKeeper
//! or an ensemble; each registration is timed until the last watcher's
//! snapshot has it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use zkutil::{BasePath, Discovery, SessionConfig};

use super::Report;
use crate::Bench;
use crate::packets;
use crate::stats::{Stats, d, ratio_of};

/// Many watching sessions following one base path.
pub struct FanOut {
    pub setup: &'static str,
    pub watchers: usize,
    pub changes: usize,
    /// Registration → each watcher's snapshot.
    pub each: Stats,
    /// Registration → the last watcher's snapshot, per change.
    pub last: Stats,
    /// ZooKeeper's packets (received + sent, all nodes) per change.
    pub packets_per_change: f64,
}

/// `watchers` sessions on `hosts` (the servers on `ports`) follow
/// `/fanout` through `changes` registrations.
fn fan_out_on(
    hosts: &str,
    ports: &[u16],
    setup: &'static str,
    watchers: usize,
    changes: usize,
) -> anyhow::Result<FanOut> {
    let base = BasePath::from_static("/fanout");
    let discoveries: Vec<Discovery> = (0..watchers)
        .map(|_| -> anyhow::Result<Discovery> {
            let session = Arc::new(
                SessionConfig::new(hosts)
                    .with_session_timeout(Duration::from_secs(30))
                    .connect()?,
            );
            Ok(Discovery::start(session, &base)?)
        })
        .collect::<anyhow::Result<_>>()?;
    let writer = Arc::new(SessionConfig::new(hosts).connect()?);
    writer.ensure_path(base.as_str())?;
    let before = packets::of_servers(ports)?;
    let (mut each, mut last) = (Vec::new(), Vec::new());
    for i in 0..changes {
        let path = format!("/fanout/127.0.0.4:{}", 1000 + i);
        let expected = i + 1;
        let t = Instant::now();
        writer.create_ephemeral(&path, b"")?;
        // Polled every 200 µs: a change takes milliseconds to reach 500.
        let mut seen: Vec<Option<Duration>> = vec![None; watchers];
        let deadline = t + Duration::from_secs(60);
        while seen.iter().any(Option::is_none) && Instant::now() < deadline {
            for (slot, discovery) in seen.iter_mut().zip(&discoveries) {
                if slot.is_none() && discovery.snapshot().instances().len() >= expected {
                    *slot = Some(t.elapsed());
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let seen: Vec<Duration> = seen.into_iter().flatten().collect();
        if seen.len() < watchers {
            bail!(
                "{} of {watchers} watchers saw change {i} within 60 s",
                seen.len()
            );
        }
        last.push(seen.iter().copied().max().unwrap_or_default());
        each.extend(seen);
    }
    let per_change = packets::of_servers(ports)?.saturating_sub(before) as f64 / changes as f64;
    drop(discoveries);
    Ok(FanOut {
        setup,
        watchers,
        changes,
        each: Stats::of(&each),
        last: Stats::of(&last),
        packets_per_change: per_change,
    })
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let counts: &[usize] = if bench.sizes.full() {
        &[100, 500]
    } else {
        &[50]
    };
    let changes = if bench.sizes.full() { 20 } else { 5 };
    let zk = &bench.zk;
    for &watchers in counts {
        // A fresh base path per run: each starts empty.
        let owner = bench.session()?;
        if owner.stat("/fanout")?.is_some() {
            for child in owner.children("/fanout")? {
                let _ = owner.delete(&format!("/fanout/{child}"), None);
            }
        }
        report.fan_out.push(fan_out_on(
            &zk.connect_string(),
            &[zk.port()],
            "standalone",
            watchers,
            changes,
        )?);
        eprintln!("bench: fan-out to {watchers} on standalone done");
    }
    let ensemble = zkutil::testing::ZkEnsemble::start(3)
        .map_err(|err| anyhow::anyhow!("starting a 3-node ensemble: {err}"))?;
    let ports: Vec<u16> = (0..3).map(|i| ensemble.port(i)).collect();
    let watchers = *counts.last().unwrap_or(&50);
    report.fan_out.push(fan_out_on(
        &ensemble.connect_string(),
        &ports,
        "3-node ensemble",
        watchers,
        changes,
    )?);
    eprintln!("bench: fan-out to {watchers} on the ensemble done");
    Ok(())
}

pub fn write(md: &mut String, rows: &[FanOut]) {
    let _ = writeln!(
        md,
        "## 11. Fan-out: many watching sessions, one change\n\n\
         W client sessions (threads of one process, each its own session and `Discovery`) follow one base \
         path; each of the changes is one registration, timed from before the create until the last \
         watcher's snapshot has it (snapshots polled every 200 µs). Packets are ZooKeeper's own (`mntr`, \
         received + sent, all nodes) per change: with per-child events a change costs each watcher one \
         notification and nothing else (a plain child needs no read), so they grow as W, not W × N.\n"
    );
    let _ = writeln!(
        md,
        "| setup | watchers | changes | each watcher: median | p99 | last watcher: median | p99 | max | packets per change |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            row.setup,
            row.watchers,
            row.changes,
            d(row.each.p50),
            d(row.each.p99),
            d(row.last.p50),
            d(row.last.p99),
            d(row.last.max),
            row.packets_per_change
        );
    }
    let standalone: Vec<&FanOut> = rows.iter().filter(|r| r.setup == "standalone").collect();
    if let [small, big] = standalone[..] {
        let _ = writeln!(
            md,
            "\nFrom {} to {} watchers the last watcher's median goes from {} to {} ({:.1}×; {:.0} µs per \
             watcher). ZooKeeper sends one notification per watcher per change ({:.0} packets per change at \
             {}), so its own cost grows as W and stays small; the time goes into the watchers' side — here \
             {} sessions in one process on two cores, each with its runtime and discovery threads waking per \
             change. Watchers that re-list (ZooKeeper < 3.6, section 6) would each also fetch the whole \
             list: W × N names per change, which is where a fleet of watchers stops scaling; per-child \
             events keep it at W. The ensemble adds the quorum write before the notifications and spreads \
             the sessions over three servers.",
            small.watchers,
            big.watchers,
            d(small.last.p50),
            d(big.last.p50),
            ratio_of(big.last.p50, small.last.p50),
            big.last.p50.as_secs_f64() * 1e6 / big.watchers as f64,
            big.packets_per_change,
            big.watchers,
            big.watchers,
        );
    }
    let _ = writeln!(md);
}
