//! Section 12, two regions: three voters in A, two ZooKeeper observers in
//! B behind a 40 ms round trip (the network lab's `WanLink`: relays in the
//! path of every byte between B's observers and A's voters). Clients of
//! each region use their own region's nodes. Measured: how soon a change
//! written in A is seen in A and in B, what a registration written in B
//! costs (an observer forwards it to A's leader), and a change reaching
//! 500 watchers in B. Needs root (network namespaces); skipped otherwise.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use zkutil::testing::lab::{Host, Lab};
use zkutil::{BasePath, Discovery, Session, SessionConfig};

use super::Report;
use crate::Bench;
use crate::packets;
use crate::stats::{Stats, d, ratio_of};
use crate::summary::Row;

/// The round trip between the regions.
const RTT: Duration = Duration::from_millis(40);
/// The watchers of the fan-out in B.
const WATCHERS: usize = 500;
/// ... and with `--quick` (each start crosses the relays).
const QUICK_WATCHERS: usize = 50;

pub enum Region {
    Skipped(String),
    Measured(Box<Measured>),
}

pub struct Measured {
    /// A change written in A, until a watcher in A / in B has it.
    pub seen_in_a: Stats,
    pub seen_in_b: Stats,
    /// A registration's create, from a session in A / in B.
    pub write_from_a: Stats,
    pub write_from_b: Stats,
    /// The fan-out in B: the last of `watchers` watchers, per change.
    pub last_watcher: Stats,
    pub watchers: usize,
    pub changes: usize,
    /// ZooKeeper's packets (received + sent, all five nodes) per change.
    pub packets_per_change: f64,
}

fn session(hosts: &str) -> anyhow::Result<Arc<Session>> {
    Ok(Arc::new(
        SessionConfig::new(hosts)
            .with_session_timeout(Duration::from_secs(30))
            .connect()?,
    ))
}

fn connect_string(hosts: &[Host]) -> String {
    let sockets: Vec<String> = hosts.iter().map(|h| h.socket(2181).to_string()).collect();
    sockets.join(",")
}

/// Times from `t` until each of `watchers` lists `expected` instances
/// (polled every 200 µs), within 60 s.
pub(super) fn seen_by(
    watchers: &[Discovery],
    expected: usize,
    t: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut seen: Vec<Option<Duration>> = vec![None; watchers.len()];
    let deadline = t + Duration::from_secs(60);
    while seen.iter().any(Option::is_none) && Instant::now() < deadline {
        for (slot, watcher) in seen.iter_mut().zip(watchers) {
            if slot.is_none() && watcher.snapshot().instances().len() == expected {
                *slot = Some(t.elapsed());
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let seen: Vec<Duration> = seen.into_iter().flatten().collect();
    if seen.len() < watchers.len() {
        bail!(
            "{} of {} watchers saw a change within 60 s",
            seen.len(),
            watchers.len()
        );
    }
    Ok(seen)
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    if let Err(why) = Lab::available() {
        report.region = Some(Region::Skipped(why));
        return Ok(());
    }
    let mut lab = Lab::new()?;
    let hosts: Vec<Host> = ["zk1", "zk2", "zk3", "b1", "b2"]
        .iter()
        .map(|name| lab.host(name))
        .collect::<std::io::Result<_>>()?;
    let (voters, observers): (Vec<&Host>, Vec<&Host>) =
        (hosts[..3].iter().collect(), hosts[3..].iter().collect());
    let (_ensemble, _wan) = lab
        .ensemble_with_observers(&voters, &observers, RTT)
        .map_err(|e| anyhow!("two regions in the lab: {e}"))?;
    let (in_a, in_b) = (connect_string(&hosts[..3]), connect_string(&hosts[3..]));
    let (writer_a, writer_b) = (session(&in_a)?, session(&in_b)?);

    // Visibility, and the write from each region.
    let base = BasePath::from_static("/region");
    writer_a.ensure_path(base.as_str())?;
    let watch_a = [Discovery::start(session(&in_a)?, &base)?];
    let watch_b = [Discovery::start(session(&in_b)?, &base)?];
    let samples = bench.sizes.visibility.clamp(20, 200);
    let (mut seen_in_a, mut seen_in_b) = (Vec::new(), Vec::new());
    let (mut write_from_a, mut write_from_b) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let path = format!("/region/127.0.0.5:{}", 1000 + i);
        let t = Instant::now();
        writer_a.create_ephemeral(&path, b"")?;
        write_from_a.push(t.elapsed());
        seen_in_a.extend(seen_by(&watch_a, 1, t)?);
        seen_in_b.extend(seen_by(&watch_b, 1, t)?);
        writer_a.delete(&path, None)?;
        seen_by(&watch_a, 0, Instant::now())?;
        seen_by(&watch_b, 0, Instant::now())?;
        let t = Instant::now();
        writer_b.create_ephemeral(&path, b"")?;
        write_from_b.push(t.elapsed());
        writer_b.delete(&path, None)?;
        seen_by(&watch_b, 0, Instant::now())?;
    }
    eprintln!("bench: region visibility and writes done");

    // 500 watchers in B, changes written in A.
    let base = BasePath::from_static("/region-fan-out");
    writer_a.ensure_path(base.as_str())?;
    // Started 50 at a time: one after another, each session's handshake
    // and first listing cross the relays (two round trips), 45 s for 500.
    let count = if bench.sizes.full() {
        WATCHERS
    } else {
        QUICK_WATCHERS
    };
    let mut watchers: Vec<Discovery> = Vec::with_capacity(count);
    for _ in 0..count / 50 {
        let batch: Vec<anyhow::Result<Discovery>> = std::thread::scope(|s| {
            let started: Vec<_> = (0..50)
                .map(|_| s.spawn(|| Ok(Discovery::start(session(&in_b)?, &base)?)))
                .collect();
            started
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a watcher's start panicked")))
                })
                .collect()
        });
        for watcher in batch {
            watchers.push(watcher?);
        }
    }
    let nodes: Vec<SocketAddr> = hosts.iter().map(|h| h.socket(2181)).collect();
    let changes = if bench.sizes.full() { 20 } else { 5 };
    let before = packets::of_addrs(&nodes)?;
    let mut last = Vec::new();
    for i in 0..changes {
        let t = Instant::now();
        writer_a.create_ephemeral(&format!("/region-fan-out/127.0.0.6:{}", 1000 + i), b"")?;
        let seen = seen_by(&watchers, i + 1, t)?;
        last.push(seen.into_iter().max().unwrap_or_default());
    }
    let packets = packets::of_addrs(&nodes)?.saturating_sub(before);
    drop(watchers);
    eprintln!("bench: region fan-out to {count} in B done");
    report.region = Some(Region::Measured(Box::new(Measured {
        seen_in_a: Stats::of(&seen_in_a),
        seen_in_b: Stats::of(&seen_in_b),
        write_from_a: Stats::of(&write_from_a),
        write_from_b: Stats::of(&write_from_b),
        last_watcher: Stats::of(&last),
        watchers: count,
        changes,
        packets_per_change: packets as f64 / changes as f64,
    })));
    Ok(())
}

pub fn write(md: &mut String, region: &Region) {
    let _ = writeln!(md, "## 12. Two regions: observers {RTT:?} away\n");
    let r = match region {
        Region::Skipped(why) => {
            let _ = writeln!(md, "skipped: {why}\n");
            return;
        }
        Region::Measured(r) => r,
    };
    let _ = writeln!(
        md,
        "Region A holds the three voters, region B two observers (`peerType=observer`) that reach A only \
         through relays holding back what A sends by {RTT:?} (a commit reaches B one round trip after the \
         leader decides it: pessimistic by half a round trip). Each region's clients use their own nodes. \
         Changes are written in A; a registration from B is forwarded by its observer to A's leader. \
         Watchers' snapshots polled every 200 µs. See docs/regions.md.\n\n\
         | measure | median | p99 | max |\n|---|---:|---:|---:|"
    );
    let rows = [
        ("a change written in A, seen in A", &r.seen_in_a),
        ("the same change, seen in B", &r.seen_in_b),
        ("a registration's write, from A", &r.write_from_a),
        ("a registration's write, from B", &r.write_from_b),
    ];
    for (what, s) in rows {
        let _ = writeln!(
            md,
            "| {what} | {} | {} | {} |",
            d(s.p50),
            d(s.p99),
            d(s.max)
        );
    }
    let _ = writeln!(
        md,
        "| a change written in A, the last of {} watchers in B ({} changes) | {} | {} | {} |\n\n\
         ZooKeeper's packets (received + sent, all five nodes) per change with {} watchers in B: \
         {:.0}; only the observers' own link to the leader crosses regions (one proposal and one commit \
         per observer), the {} notifications stay in B.\n",
        r.watchers,
        r.changes,
        d(r.last_watcher.p50),
        d(r.last_watcher.p99),
        d(r.last_watcher.max),
        r.watchers,
        r.packets_per_change,
        r.watchers
    );
}

/// Its rows of the summary: what region B pays against region A, medians.
pub fn summary(region: &Region) -> Vec<Row> {
    let Region::Measured(r) = region else {
        return Vec::new();
    };
    let row = |metric: String, b: &Stats, a: &Stats| {
        Row::against(
            metric,
            d(b.p50),
            d(a.p50),
            format!("{:.1}×", ratio_of(b.p50, a.p50)),
            "—",
            None,
        )
    };
    vec![
        row(
            format!("two regions {RTT:?} apart, a change seen, median: in B : in A"),
            &r.seen_in_b,
            &r.seen_in_a,
        ),
        row(
            format!("two regions {RTT:?} apart, a registration's write, median: from B : from A"),
            &r.write_from_b,
            &r.write_from_a,
        ),
    ]
}
