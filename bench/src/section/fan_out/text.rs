//! Section 11's part of the report: the tables, where a change's time
//! goes and where fan-out stops scaling (computed from the run's own
//! figures), what was tried, and the summary row.

use std::fmt::Write as _;
use std::time::Duration;

use super::setup::Kind;
use super::{FanOut, POLL, TARGET, TARGET_WATCHERS};
use crate::stats::{d, ratio_of};
use crate::summary::Row;

/// CPU time per watcher per change, in µs.
fn per_watcher_us(cpu: Duration, watchers: usize) -> f64 {
    cpu.as_secs_f64() * 1e6 / watchers.max(1) as f64
}

/// This process's CPU per change, less the poll's.
fn ours(row: &FanOut) -> Duration {
    row.cpu_ours.saturating_sub(row.cpu_poll)
}

/// The share of 2 cores busy while a change spreads.
fn busy(row: &FanOut) -> f64 {
    (row.cpu_zk + row.cpu_ours).as_secs_f64() / (2.0 * row.wall.as_secs_f64().max(1e-9))
}

fn watcher(kind: Kind) -> &'static str {
    match kind {
        Kind::Discovery => "`Discovery`",
        Kind::SessionWatch => "session + watch only",
    }
}

pub fn write(md: &mut String, rows: &[FanOut]) {
    let _ = writeln!(
        md,
        "## 11. Fan-out: many watching sessions, one change\n\n\
         W client sessions (threads of one process, each its own session and `Discovery`) follow one base \
         path; each of the changes is one registration, timed from before the create until the watcher has \
         it: a `Discovery`'s subscription (every one looked at every {} µs with `try_recv`, two atomic loads \
         when empty), or, in the session-watch row, the time the session's persistent recursive watch \
         stamped on the session's runtime thread (no `Discovery`: the floor ZooKeeper and the sessions set). \
         Packets are ZooKeeper's own (`mntr`, received + sent, all nodes) per change: with per-child events \
         a change costs each watcher one notification and nothing else (a plain child needs no read), so \
         they grow as W, not W × N. Each ensemble row starts a fresh 3-node ensemble.\n",
        POLL.as_micros()
    );
    let _ = writeln!(
        md,
        "| setup | watcher | watchers | sessions per server | changes | each watcher: median | p99 | last watcher: median | p99 | max | packets per change |\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let servers: Vec<String> = row.per_server.iter().map(u64::to_string).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | **{}** | {} | {:.0} |",
            row.setup,
            watcher(row.kind),
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
         over all changes but a first, warm-up one, which none of the figures count) of the ZooKeeper servers and of this process (the watchers, the writer and the \
         poll; the poll's share timed around its passes and left out of the per-watcher figure), against \
         the wall time of a change (create to last watcher) on 2 cores. ZooKeeper's memory: its live heap \
         (`jcmd GC.run`, then `GC.heap_info`, all nodes summed) before the sessions, after them and after \
         the watches, divided by the sessions and by the watches `mntr` counts (`zk_watch_count`); `mntr` \
         itself has no memory figure (its `zk_watch_bytes` stays 0 with persistent watches).\n\n\
         | setup | watcher | watchers | wall per change | ZooKeeper CPU | ours | of it the poll | per watcher: ZooKeeper | ours | 2 cores busy | watches | heap per session | heap per watch |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
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
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} µs | {:.0} µs | {:.0} % | {memory} |",
            row.setup,
            watcher(row.kind),
            row.watchers,
            d(row.wall),
            d(row.cpu_zk),
            d(row.cpu_ours),
            d(row.cpu_poll),
            per_watcher_us(row.cpu_zk, row.watchers),
            per_watcher_us(ours(row), row.watchers),
            busy(row) * 100.0
        );
    }
    scaling(md, rows);
    let _ = writeln!(md, "\n{STEPS}\n");
}

/// Where fan-out stops scaling and why, from the ensemble rows.
fn scaling(md: &mut String, rows: &[FanOut]) {
    let on_ensemble = |kind: Kind| -> Vec<&FanOut> {
        rows.iter()
            .filter(|r| r.setup != "standalone" && r.kind == kind)
            .collect()
    };
    let discoveries = on_ensemble(Kind::Discovery);
    let cpu = |r: &FanOut| (r.cpu_zk + ours(r)).as_secs_f64();
    if let [small, .., big] = discoveries[..] {
        let per_watcher = cpu(big) / big.watchers as f64;
        let growth = per_watcher / (cpu(small) / small.watchers as f64).max(1e-12);
        let _ = write!(
            md,
            "\nOn the ensemble, with a `Discovery` per watcher, from {} to {} watchers the last watcher's median \
             goes from {} to {} ({:.1}× for {:.1}× the watchers). A change costs {:.0} µs of CPU per watcher at \
             {} ({:.0} µs ZooKeeper, {:.0} µs ours) and {:.0} µs at {} ({:.0} µs, {:.0} µs): {}. Spread over 2 \
             cores, {} × {:.0} µs is {:.0} ms, against a measured {} per change, both cores {:.0} % busy: the \
             change is CPU-bound, and the last watcher's time is W × (ZooKeeper's notification + a watcher's \
             wake-ups) / 2 cores: at this cost about {:.0} watchers fit in {}.",
            small.watchers,
            big.watchers,
            d(small.last.p50),
            d(big.last.p50),
            ratio_of(big.last.p50, small.last.p50),
            big.watchers as f64 / small.watchers as f64,
            per_watcher * 1e6,
            big.watchers,
            per_watcher_us(big.cpu_zk, big.watchers),
            per_watcher_us(ours(big), big.watchers),
            cpu(small) * 1e6 / small.watchers as f64,
            small.watchers,
            per_watcher_us(small.cpu_zk, small.watchers),
            per_watcher_us(ours(small), small.watchers),
            if growth < 1.25 {
                "about flat per watcher, so the time grows as W".to_owned()
            } else {
                format!("{growth:.1}× per watcher, so the time grows faster than W")
            },
            big.watchers,
            per_watcher * 1e6,
            cpu(big) * 1e3 / 2.0,
            d(big.wall),
            busy(big) * 100.0,
            TARGET.as_secs_f64() * 2.0 / per_watcher.max(1e-9),
            d(TARGET),
        );
        let floor = on_ensemble(Kind::SessionWatch)
            .into_iter()
            .find(|r| r.watchers == big.watchers);
        if let Some(floor) = floor {
            let extra = ours(big).saturating_sub(ours(floor));
            let _ = write!(
                md,
                " With the session's watch alone (no `Discovery`) the same {} watchers see a change at a last-watcher \
                 median of {} and p99 of {} ({} the target); there this process spends {:.0} µs per watcher per \
                 change, the `Discovery` {:.0} µs more ({:.0} % of a change's CPU with it): its own thread per \
                 watcher, woken by the session's runtime thread for each event, applies it and publishes a \
                 snapshot, a second wake-up per watcher per change. ZooKeeper's {} per change ({:.0} µs per \
                 watcher) is {:.0} ms on 2 cores. So on this machine fan-out stops at the watchers' side: \
                 {} sessions with a `Discovery` each in one process, on the same 2 cores as the ensemble; \
                 ZooKeeper's own part grows as W and fits the target.",
                floor.watchers,
                d(floor.last.p50),
                d(floor.last.p99),
                if floor.last.p99 <= TARGET {
                    "within"
                } else {
                    "over"
                },
                per_watcher_us(ours(floor), floor.watchers),
                per_watcher_us(extra, big.watchers),
                extra.as_secs_f64() / cpu(big).max(1e-9) * 100.0,
                d(big.cpu_zk),
                per_watcher_us(big.cpu_zk, big.watchers),
                big.cpu_zk.as_secs_f64() * 1e3 / 2.0,
                big.watchers,
            );
        }
        let _ = writeln!(
            md,
            " ZooKeeper sends one notification per watcher per change ({:.0} packets per change at {}); \
             re-listing watchers (ZooKeeper < 3.6, section 6) would each also fetch the whole list, W × N \
             names per change.",
            big.packets_per_change, big.watchers,
        );
    }
    let weighed: Vec<_> = rows
        .iter()
        .filter_map(|r| r.memory.map(|m| (r, m)))
        .collect();
    if let Some((row, m)) = weighed.last() {
        let per_watch: Vec<f64> = weighed.iter().map(|(_, m)| m.per_watch).collect();
        let (lo, hi) = per_watch
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        let per_session: Vec<f64> = weighed.iter().map(|(_, m)| m.per_session).collect();
        let (s_lo, s_hi) = per_session
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(x), hi.max(x))
            });
        let _ = writeln!(
            md,
            "\nZooKeeper's memory, over this run's {} ensemble rows: {:.1} to {:.1} KB of live heap per session \
             (its connection and session state), and {lo:.0} to {hi:.0} B per watch; `zk_watch_count` counts \
             {:.0} per watcher at {}. The watches' figure is the difference of two heaps of several MB after a \
             full collection each, so its spread between rows is this measure's noise: a watch costs \
             ZooKeeper at most a few hundred bytes, a session kilobytes.",
            weighed.len(),
            s_lo / 1024.0,
            s_hi / 1024.0,
            m.watches as f64 / row.watchers.max(1) as f64,
            row.watchers,
        );
    }
}

/// What was tried for this section, with the figures of the runs that
/// measured it (2,000 watchers on the ensemble unless said).
const STEPS: &str = "Steps tried (2,000 watchers on the ensemble, a run each unless said; the machine \
    shared, so figures move by tens of percent between runs): **kept**: watchers polled through their \
    subscriptions' `try_recv` instead of their snapshots (a lock and a reference count each per pass): not \
    compared head to head; the poll costs 5–13 ms of CPU per change at 2,000 (column \"of it the poll\"). \
    **Kept**: the base path made before the watchers start, not after: each `Discovery` had found none and \
    listed it again when it appeared, during the first changes: last watcher p99 484, 505, 382 ms → 291, \
    380 ms, packets per change 2203–2225 → 2169–2181. **Kept**: a warm-up change not counted (the first \
    change was each row's slowest: ZooKeeper's just-in-time compiler, cold caches): p99 291–380 ms → 190 ms, \
    packets per change → 2048 (the rest is the 2,000 sessions' pings during the changes); three runs with \
    all of the kept steps, before this one: p99 190, 164, 242 ms (met in two). **Kept**, as a \
    row: the session's watch alone, no `Discovery`: p99 107–128 ms before the warm-up, 80 ms after, with \
    this process at 35–45 µs per watcher per change against the `Discovery`'s 111–211 µs. Profiled \
    (`perf record -a -g` over the section): this process's time is mostly the kernel's (futex wake-ups and \
    scheduling) on the sessions' runtime threads, the `async-io` reactor thread and the discovery threads; \
    user 42 s, system 27 s for the section. **Not done**: applying a plain child's event on the session's \
    runtime thread instead of waking the `Discovery`'s own (the 76–92 µs per watcher per change measured \
    between the two rows); it changes how events are ordered against listings in \
    zkutil/src/discovery/refresh.rs, which needs more than this change's time to do safely.";

pub fn summary(rows: &[FanOut]) -> Vec<Row> {
    let Some(big) = rows
        .iter()
        .filter(|r| r.setup != "standalone" && r.kind == Kind::Discovery)
        .max_by_key(|r| r.watchers)
    else {
        return Vec::new();
    };
    let metric = format!(
        "fan-out: one change to the last of {} watchers (`Discovery` each) on a 3-node ensemble, p99",
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
