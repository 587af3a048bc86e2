//! Section 11, fan-out: many client sessions (threads of this process, each
//! its own session and `Discovery`) follow one base path on one ZooKeeper
//! or an ensemble; each registration is timed until the last watcher has
//! it. The ensemble's rows also give ZooKeeper's live heap per watch and
//! per session, and the CPU each side spends per change: where the time of
//! a change goes, and so where fan-out stops scaling.

mod probe;
mod setup;
mod text;

use self::setup::{Kind, Watchers};
pub use self::text::{summary, write};

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use zkutil::{BasePath, Session, SessionConfig};

use super::Report;
use crate::Bench;
use crate::packets;
use crate::stats::Stats;

/// The last watcher's p99 at this many watchers on the ensemble, at most
/// [`TARGET`] (issue 33).
const TARGET_WATCHERS: usize = 2_000;
const TARGET: Duration = Duration::from_millis(200);
/// How often the watchers' subscriptions are looked at while a change
/// spreads.
const POLL: Duration = Duration::from_micros(200);

/// ZooKeeper's memory for the watchers, from its live heap (`jcmd`,
/// after a full collection) and `mntr`'s watch count, all nodes summed.
#[derive(Debug, Clone, Copy)]
pub struct WatchMemory {
    /// Watches set by the watchers (`zk_watch_count` after − before).
    pub watches: u64,
    /// Live heap growth per session (connected, no watch yet), bytes.
    pub per_session: f64,
    /// Live heap growth per watch (the `Discovery` started), bytes.
    pub per_watch: f64,
}

/// Many watching sessions following one base path.
pub struct FanOut {
    pub setup: &'static str,
    pub kind: Kind,
    pub watchers: usize,
    pub changes: usize,
    /// Registration → each watcher's subscription has it.
    pub each: Stats,
    /// Registration → the last watcher has it, per change.
    pub last: Stats,
    /// ZooKeeper's packets (received + sent, all nodes) per change.
    pub packets_per_change: f64,
    /// The sessions on each server (`mntr`'s connections, less the
    /// writer's and the asking one).
    pub per_server: Vec<u64>,
    /// CPU time per change: this process (the watchers, the writer and the
    /// poll), and the ZooKeeper servers.
    pub cpu_ours: Duration,
    pub cpu_zk: Duration,
    /// CPU time per change of the poll itself (its passes over the
    /// subscriptions, measured by the clock around them).
    pub cpu_poll: Duration,
    /// Wall time per change (create to last watcher).
    pub wall: Duration,
    pub memory: Option<WatchMemory>,
}

/// The servers a fan-out runs on.
struct Target {
    hosts: String,
    ports: Vec<u16>,
    pids: Vec<u32>,
    setup: &'static str,
}

/// `mntr`'s `key` on each server of `ports`.
fn mntr_each(ports: &[u16], key: &str) -> Vec<u64> {
    ports
        .iter()
        .map(|&port| zkutil::testing::mntr_value(port, key).unwrap_or(0))
        .collect()
}

/// `watchers` sessions on `target` follow `/fanout` through `changes`
/// registrations, each with a watcher of `kind`; `memory` also weighs
/// ZooKeeper's heap before and after.
fn fan_out_on(
    target: &Target,
    kind: Kind,
    watchers: usize,
    changes: usize,
    memory: bool,
) -> anyhow::Result<FanOut> {
    let base = BasePath::from_static("/fanout");
    // The base path exists before the watchers start: one that appears
    // later has each `Discovery` list it again (2 packets and a wake-up
    // per watcher), which ran into the first changes' figures.
    let writer = Arc::new(SessionConfig::new(target.hosts.as_str()).connect()?);
    writer.ensure_path(base.as_str())?;
    let heap = || {
        memory
            .then(|| probe::live_heap_total_kib(&target.pids))
            .flatten()
    };
    let heap_before = heap();
    let sessions: Vec<Arc<Session>> = setup::in_parallel(watchers, |_| {
        Ok(Arc::new(
            SessionConfig::new(target.hosts.as_str())
                .with_session_timeout(Duration::from_secs(30))
                .connect()?,
        ))
    })?;
    let heap_sessions = heap();
    let watches_before: u64 = mntr_each(&target.ports, "zk_watch_count").iter().sum();
    let set = Watchers::start(kind, sessions, &base)?;
    let watches: u64 = mntr_each(&target.ports, "zk_watch_count").iter().sum();
    let memory = match (heap_before, heap_sessions, heap()) {
        (Some(before), Some(sessions), Some(after)) => {
            let set = watches.saturating_sub(watches_before);
            Some(WatchMemory {
                watches: set,
                per_session: (sessions as f64 - before as f64) * 1024.0 / watchers as f64,
                per_watch: (after as f64 - sessions as f64) * 1024.0 / set.max(1) as f64,
            })
        }
        _ => None,
    };
    // The writer's connection and the asking one are not watchers'.
    let per_server = mntr_each(&target.ports, "zk_num_alive_connections")
        .into_iter()
        .map(|n| n.saturating_sub(1))
        .collect();
    let (mut before, mut ours_before, mut zk_before) = (0, Duration::ZERO, Duration::ZERO);
    let (mut each, mut last) = (Vec::new(), Vec::new());
    let (mut polling, mut wall) = (Duration::ZERO, Duration::ZERO);
    // Change 0 is a warm-up, not counted: the first notification to every
    // watcher also runs ZooKeeper's just-in-time compiler and fills the
    // caches (once the single slowest change of a row).
    for i in 0..=changes {
        if i == 1 {
            before = packets::of_servers(&target.ports)?;
            (ours_before, zk_before) = (
                probe::cpu_time(std::process::id()),
                probe::cpu_time_of(&target.pids),
            );
            (polling, wall) = (Duration::ZERO, Duration::ZERO);
        }
        let path = format!("/fanout/127.0.0.4:{}", 1000 + i);
        let t = Instant::now();
        writer.create_ephemeral(&path, b"")?;
        // Every watcher looked at every `POLL`.
        let mut seen: Vec<Option<Duration>> = vec![None; watchers];
        let mut left = watchers;
        let deadline = t + Duration::from_secs(60);
        while left > 0 && Instant::now() < deadline {
            let pass = Instant::now();
            left = left.saturating_sub(set.poll(&mut seen, t));
            polling += pass.elapsed();
            if left > 0 {
                std::thread::sleep(POLL);
            }
        }
        wall += t.elapsed();
        let seen: Vec<Duration> = seen.into_iter().flatten().collect();
        if seen.len() < watchers {
            bail!(
                "{} of {watchers} watchers saw change {i} within 60 s",
                seen.len()
            );
        }
        if i > 0 {
            last.push(seen.iter().copied().max().unwrap_or_default());
            each.extend(seen);
        }
    }
    let per = |total: Duration| total / changes.max(1) as u32;
    let cpu_ours = per(probe::cpu_time(std::process::id()).saturating_sub(ours_before));
    let cpu_zk = per(probe::cpu_time_of(&target.pids).saturating_sub(zk_before));
    let per_change =
        packets::of_servers(&target.ports)?.saturating_sub(before) as f64 / changes as f64;
    set.close();
    Ok(FanOut {
        setup: target.setup,
        kind,
        watchers,
        changes,
        each: Stats::of(&each),
        last: Stats::of(&last),
        packets_per_change: per_change,
        per_server,
        cpu_ours,
        cpu_zk,
        cpu_poll: per(polling),
        wall: per(wall),
        memory,
    })
}

/// Deletes what a previous run left under `/fanout` on the standalone
/// server: each run starts empty.
fn empty_base(bench: &Bench) -> anyhow::Result<()> {
    let owner = bench.session()?;
    if owner.stat("/fanout")?.is_some() {
        for child in owner.children("/fanout")? {
            let _ = owner.delete(&format!("/fanout/{child}"), None);
        }
    }
    Ok(())
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let full = bench.sizes.full();
    // The session-watch row is the floor under the `Discovery` row of the
    // same size: what ZooKeeper and the sessions take without it.
    let (standalone, on_ensemble): (&[usize], &[(usize, Kind)]) = if full {
        (
            &[100, 500],
            &[
                (500, Kind::Discovery),
                (TARGET_WATCHERS, Kind::SessionWatch),
                (TARGET_WATCHERS, Kind::Discovery),
            ],
        )
    } else {
        (&[50], &[(50, Kind::Discovery)])
    };
    let changes = if full { 20 } else { 5 };
    let zk = &bench.zk;
    for &watchers in standalone {
        empty_base(bench)?;
        let target = Target {
            hosts: zk.connect_string(),
            ports: vec![zk.port()],
            pids: zk.pid().into_iter().collect(),
            setup: "standalone",
        };
        report.fan_out.push(fan_out_on(
            &target,
            Kind::Discovery,
            watchers,
            changes,
            false,
        )?);
        eprintln!("bench: fan-out to {watchers} on standalone done");
    }
    for &(watchers, kind) in on_ensemble {
        // A fresh ensemble per size: the last run's sessions and watches
        // are gone from its heap and its counters.
        let ensemble = zkutil::testing::ZkEnsemble::start(3)
            .map_err(|err| anyhow::anyhow!("starting a 3-node ensemble: {err}"))?;
        let target = Target {
            hosts: ensemble.connect_string(),
            ports: (0..3).map(|i| ensemble.port(i)).collect(),
            pids: (0..3).filter_map(|i| ensemble.pid(i)).collect(),
            setup: "3-node ensemble",
        };
        report
            .fan_out
            .push(fan_out_on(&target, kind, watchers, changes, true)?);
        eprintln!("bench: fan-out to {watchers} ({kind:?}) on the ensemble done");
    }
    Ok(())
}
