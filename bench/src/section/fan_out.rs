//! Section 11, fan-out: many client sessions (threads of this process, each
//! its own session and `Discovery`) follow one base path on one ZooKeeper
//! or an ensemble; each registration is timed until the last watcher has
//! it. The ensemble's rows also give ZooKeeper's live heap per watch and
//! per session, and the CPU each side spends per change: where the time of
//! a change goes, and so where fan-out stops scaling.

mod probe;
mod setup;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::bail;
use zkutil::{BasePath, Change, Discovery, Session, SessionConfig};

use super::Report;
use crate::Bench;
use crate::packets;
use crate::stats::{Stats, d, ratio_of};
use crate::summary::Row;

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

/// Whether `changes` holds an addition (taking what is there).
fn added(changes: &Receiver<Change>) -> bool {
    let mut added = false;
    while let Ok(change) = changes.try_recv() {
        added |= matches!(change, Change::Added(_));
    }
    added
}

/// `watchers` sessions on `target` follow `/fanout` through `changes`
/// registrations; `memory` also weighs ZooKeeper's heap before and after.
fn fan_out_on(
    target: &Target,
    watchers: usize,
    changes: usize,
    memory: bool,
) -> anyhow::Result<FanOut> {
    let base = BasePath::from_static("/fanout");
    let heap_before = memory
        .then(|| probe::live_heap_total_kib(&target.pids))
        .flatten();
    let sessions: Vec<Arc<Session>> = setup::in_parallel(watchers, |_| {
        Ok(Arc::new(
            SessionConfig::new(target.hosts.as_str())
                .with_session_timeout(Duration::from_secs(30))
                .connect()?,
        ))
    })?;
    let heap_sessions = memory
        .then(|| probe::live_heap_total_kib(&target.pids))
        .flatten();
    let watches_before: u64 = mntr_each(&target.ports, "zk_watch_count").iter().sum();
    let discoveries: Vec<Discovery> = setup::in_parallel(watchers, |i| {
        Ok(Discovery::start(sessions[i].clone(), &base)?)
    })?;
    drop(sessions);
    let watches: u64 = mntr_each(&target.ports, "zk_watch_count").iter().sum();
    let heap_watches = memory
        .then(|| probe::live_heap_total_kib(&target.pids))
        .flatten();
    let memory = match (heap_before, heap_sessions, heap_watches) {
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
    let subscriptions: Vec<Receiver<Change>> =
        discoveries.iter().map(Discovery::subscribe).collect();
    let writer = Arc::new(SessionConfig::new(target.hosts.as_str()).connect()?);
    writer.ensure_path(base.as_str())?;
    // The writer's connection and the asking one are not watchers'.
    let per_server = mntr_each(&target.ports, "zk_num_alive_connections")
        .into_iter()
        .map(|n| n.saturating_sub(1))
        .collect();
    let before = packets::of_servers(&target.ports)?;
    let (ours_before, zk_before) = (
        probe::cpu_time(std::process::id()),
        probe::cpu_time_of(&target.pids),
    );
    let (mut each, mut last) = (Vec::new(), Vec::new());
    let (mut polling, mut wall) = (Duration::ZERO, Duration::ZERO);
    for i in 0..changes {
        let path = format!("/fanout/127.0.0.4:{}", 1000 + i);
        let t = Instant::now();
        writer.create_ephemeral(&path, b"")?;
        // Each watcher's subscription, looked at every `POLL` (an empty
        // channel's `try_recv` is two atomic loads, where a snapshot is a
        // lock and a reference count each).
        let mut seen: Vec<Option<Duration>> = vec![None; watchers];
        let mut left = watchers;
        let deadline = t + Duration::from_secs(60);
        while left > 0 && Instant::now() < deadline {
            let pass = Instant::now();
            for (slot, changes) in seen.iter_mut().zip(&subscriptions) {
                if slot.is_none() && added(changes) {
                    *slot = Some(t.elapsed());
                    left -= 1;
                }
            }
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
        last.push(seen.iter().copied().max().unwrap_or_default());
        each.extend(seen);
    }
    let per = |total: Duration| total / changes.max(1) as u32;
    let cpu_ours = per(probe::cpu_time(std::process::id()).saturating_sub(ours_before));
    let cpu_zk = per(probe::cpu_time_of(&target.pids).saturating_sub(zk_before));
    let per_change =
        packets::of_servers(&target.ports)?.saturating_sub(before) as f64 / changes as f64;
    drop(subscriptions);
    setup::drop_in_parallel(discoveries);
    Ok(FanOut {
        setup: target.setup,
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
    let (standalone, on_ensemble): (&[usize], &[usize]) = if full {
        (&[100, 500], &[500, TARGET_WATCHERS])
    } else {
        (&[50], &[50])
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
        report
            .fan_out
            .push(fan_out_on(&target, watchers, changes, false)?);
        eprintln!("bench: fan-out to {watchers} on standalone done");
    }
    for &watchers in on_ensemble {
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
            .push(fan_out_on(&target, watchers, changes, true)?);
        eprintln!("bench: fan-out to {watchers} on the ensemble done");
    }
    Ok(())
}

/// CPU time per watcher per change, in µs.
fn per_watcher_us(cpu: Duration, watchers: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / watchers.max(1) as f64
}

pub fn write(md: &mut String, rows: &[FanOut]) {
    let _ = writeln!(
        md,
        "## 11. Fan-out: many watching sessions, one change\n\n\
         W client sessions (threads of one process, each its own session and `Discovery`) follow one base \
         path; each of the changes is one registration, timed from before the create until the watcher's \
         subscription has it (every watcher's subscription is looked at every {} µs; an empty one's \
         `try_recv` costs two atomic loads). Packets are ZooKeeper's own (`mntr`, received + sent, all \
         nodes) per change: with per-child events a change costs each watcher one notification and nothing \
         else (a plain child needs no read), so they grow as W, not W × N. Each ensemble row starts a fresh \
         3-node ensemble.\n",
        POLL.as_micros()
    );
    let _ = writeln!(
        md,
        "| setup | watchers | sessions per server | changes | each watcher: median | p99 | last watcher: median | p99 | max | packets per change |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let servers: Vec<String> = row.per_server.iter().map(u64::to_string).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | **{}** | {} | {:.0} |",
            row.setup,
            row.watchers,
            servers.join(" / "),
            row.changes,
            d(row.each.p50),
            d(row.each.p99),
            d(row.last.p50),
            d(row.last.p99),
            d(row.last.max),
            row.packets_per_change
        );
    }
    let _ = writeln!(
        md,
        "\nWhere a change's time goes: CPU time per change (`/proc/<pid>/stat`, user + system, 10 ms ticks \
         over all changes) of the three ZooKeeper servers and of this process (the watchers' sessions and \
         discoveries, the writer and the poll; the poll's own share timed around its passes), against the \
         wall time of a change (create to last watcher) on 2 cores. ZooKeeper's memory: its live heap \
         (`jcmd GC.run`, then `GC.heap_info`, all nodes summed) before the sessions, after them, and after \
         the watches, divided by the sessions and by the watches `mntr` counts (`zk_watch_count`: one persistent \
         recursive watch per watcher). `mntr` has no memory figure of its own: its `zk_watch_bytes` stays 0 \
         with persistent watches.\n\n\
         | setup | watchers | wall per change | ZooKeeper CPU | ours | of it the poll | per watcher: ZooKeeper | ours | 2 cores busy | watches | heap per session | heap per watch |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let memory = row.memory.map_or_else(
            || "— | — | —".to_owned(),
            |m| {
                format!(
                    "{} | {:.0} B | {:.0} B",
                    m.watches, m.per_session, m.per_watch
                )
            },
        );
        let busy =
            (row.cpu_zk + row.cpu_ours).as_secs_f64() / (2.0 * row.wall.as_secs_f64().max(1e-9));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {:.0} µs | {:.0} µs | {:.0} % | {memory} |",
            row.setup,
            row.watchers,
            d(row.wall),
            d(row.cpu_zk),
            d(row.cpu_ours),
            d(row.cpu_poll),
            per_watcher_us(row.cpu_zk, row.watchers),
            per_watcher_us(row.cpu_ours.saturating_sub(row.cpu_poll), row.watchers),
            busy * 100.0
        );
    }
    let ensemble: Vec<&FanOut> = rows.iter().filter(|r| r.setup != "standalone").collect();
    if let [small, .., big] = ensemble[..] {
        let cpu = |r: &FanOut| (r.cpu_zk + r.cpu_ours.saturating_sub(r.cpu_poll)).as_secs_f64();
        let per_watcher = cpu(big) / big.watchers as f64;
        let growth = per_watcher / (cpu(small) / small.watchers as f64).max(1e-12);
        let _ = writeln!(
            md,
            "\nOn the ensemble, from {} to {} watchers the last watcher's median goes from {} to {} ({:.1}× for \
             {:.1}× the watchers). A change costs {:.0} µs of CPU per watcher at {} ({:.0} µs ZooKeeper, {:.0} µs \
             ours) and {:.0} µs at {} ({:.1}×; {:.0} µs ZooKeeper, {:.0} µs ours): {}. Spread over 2 \
             cores, {} watchers × {:.0} µs is {:.0} ms, against a measured {} per change: the change is \
             CPU-bound, both cores {:.0} % busy while it spreads. That is where fan-out on this machine stops \
             scaling: the last watcher's time is W × (ZooKeeper's notification + a watcher's wake-up) / cores, \
             about {:.0} watchers within 200 ms at this cost, and the target's 2,000 leave {}. ZooKeeper \
             sends one notification per watcher per change ({:.0} packets per change at {}), so its own share \
             grows as W and no faster; re-listing watchers (ZooKeeper < 3.6, section 6) would each also fetch \
             the whole list, W × N names per change.",
            small.watchers,
            big.watchers,
            d(small.last.p50),
            d(big.last.p50),
            ratio_of(big.last.p50, small.last.p50),
            big.watchers as f64 / small.watchers as f64,
            per_watcher * 1e6,
            big.watchers,
            per_watcher_us(big.cpu_zk, big.watchers),
            per_watcher_us(big.cpu_ours.saturating_sub(big.cpu_poll), big.watchers),
            cpu(small) * 1e6 / small.watchers as f64,
            small.watchers,
            growth,
            per_watcher_us(small.cpu_zk, small.watchers),
            per_watcher_us(
                small.cpu_ours.saturating_sub(small.cpu_poll),
                small.watchers
            ),
            if growth < 1.25 {
                "the cost per watcher stays about flat, so the time grows as W"
            } else {
                "the cost per watcher itself grows with W, so the time grows faster than W"
            },
            big.watchers,
            per_watcher * 1e6,
            cpu(big) * 1e3 / 2.0,
            d(big.wall),
            (big.cpu_zk + big.cpu_ours).as_secs_f64() / (2.0 * big.wall.as_secs_f64().max(1e-9))
                * 100.0,
            TARGET.as_secs_f64() * 2.0 / per_watcher.max(1e-9),
            if big.last.p99 <= TARGET {
                format!("{} to spare at p99", d(TARGET.saturating_sub(big.last.p99)))
            } else {
                format!("the p99 {} over", d(big.last.p99.saturating_sub(TARGET)))
            },
            big.packets_per_change,
            big.watchers,
        );
    }
    let _ = writeln!(md, "\n{STEPS}\n");
}

/// What was tried for this section, with the figures of the runs that
/// measured it (bench/RESULTS.md keeps the last full run's).
const STEPS: &str = "Steps tried: (measured separately, see the commit messages)";

pub fn summary(rows: &[FanOut]) -> Vec<Row> {
    let Some(big) = rows
        .iter()
        .filter(|r| r.setup != "standalone")
        .max_by_key(|r| r.watchers)
    else {
        return Vec::new();
    };
    let metric = format!(
        "fan-out: one change to the last of {} watchers on a 3-node ensemble, p99",
        big.watchers
    );
    if big.watchers >= TARGET_WATCHERS {
        vec![Row::absolute(
            metric,
            d(big.last.p99),
            &format!("≤ {}", d(TARGET)),
            big.last.p99 <= TARGET,
        )]
    } else {
        vec![Row::against(
            metric,
            d(big.last.p99),
            "—".into(),
            "—".into(),
            &format!("≤ {} at {TARGET_WATCHERS} (full run)", d(TARGET)),
            None,
        )]
    }
}
