//! Section 6, what one change costs a watcher: per-child events (a
//! persistent recursive watch) against re-listing every child (ZooKeeper
//! older than 3.6, and the way before), at 1,000 and 10,000 instances, on
//! the same ZooKeeper in the same run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use zkutil::{BasePath, Discovery};

use super::Report;
use crate::Bench;
use crate::bulk::register_many;
use crate::packets;
use crate::stats::{Stats, d, ratio_of};
use crate::summary::Row;

const EVENTS: &str = "per-child events";
const RELIST: &str = "re-list every child";

/// One way of following a base path of `instances` children.
pub struct ChangeCost {
    pub instances: usize,
    pub way: &'static str,
    /// From the write's start until the watcher's snapshot shows it.
    pub visibility: Stats,
    /// The watcher's packets (received + sent on its connection, as
    /// ZooKeeper's `cons` counts them) per change.
    pub packets_per_change: f64,
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let counts: &[usize] = if bench.sizes.full() {
        &[1_000, 10_000]
    } else {
        &[1_000]
    };
    for &n in counts {
        let base = format!("/cost{n}");
        let owner = bench.session()?;
        register_many(&owner, &base, n)?;
        let path = BasePath::new(&base)?;
        for events in [false, true] {
            let discovery = if events {
                Discovery::start(bench.session()?, &path)?
            } else {
                Discovery::start_relisting_for_testing(bench.session()?, &path, false)?
            };
            discovery
                .wait_for(Duration::from_secs(60), |s| s.instances().len() == n)
                .context("first listing")?;
            let mut seen = Vec::new();
            let watcher = discovery.session().id();
            let before = packets::of_session(&bench.zk, watcher)?;
            let changes = 40;
            for i in 0..changes {
                let child = format!("{base}/10.254.0.{}:1", i / 2);
                let t = Instant::now();
                // Half creations, half deletions: n and n + 1 instances.
                if i % 2 == 0 {
                    owner.create_ephemeral(&child, b"{}")?;
                } else {
                    owner.delete(&child, None)?;
                }
                let expected = n + usize::from(i % 2 == 0);
                discovery
                    .wait_for(Duration::from_secs(30), |s| s.instances().len() == expected)
                    .context("the change is seen")?;
                seen.push(t.elapsed());
            }
            let after = packets::of_session(&bench.zk, watcher)?;
            report.change_cost.push(ChangeCost {
                instances: n,
                way: if events { EVENTS } else { RELIST },
                visibility: Stats::of(&seen),
                packets_per_change: after.saturating_sub(before) as f64 / changes as f64,
            });
        }
    }
    Ok(())
}

/// The re-listing row with as many instances as `row`.
fn relisting<'a>(rows: &'a [ChangeCost], row: &ChangeCost) -> Option<&'a ChangeCost> {
    rows.iter()
        .find(|r| r.instances == row.instances && r.way != EVENTS)
}

pub fn write(md: &mut String, rows: &[ChangeCost]) {
    let _ = writeln!(
        md,
        "## 6. What one change costs a watcher: per-child events against re-listing\n\n\
         A persistent recursive watch delivers one event per child; the way before (and with a ZooKeeper \
         older than 3.6) re-lists every child after each change. 40 changes (half creations, half \
         deletions) under N plain children, the watcher's snapshot awaited after each; packets are the \
         watcher's own (received + sent on its connection, as ZooKeeper's `cons` counts them).\n"
    );
    let _ = writeln!(
        md,
        "| N | way | visibility median | p99 | max | packets per change | ratio (median, events : re-list) |\n|---:|---|---:|---:|---:|---:|---:|"
    );
    for row in rows {
        let ratio = match (row.way, relisting(rows, row)) {
            (EVENTS, Some(r)) => format!("{:.2}", ratio_of(row.visibility.p50, r.visibility.p50)),
            _ => "—".to_owned(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {:.1} | {} |",
            row.instances,
            row.way,
            d(row.visibility.p50),
            d(row.visibility.p99),
            d(row.visibility.max),
            row.packets_per_change,
            ratio
        );
    }
    let _ = writeln!(md);
}

/// The per-child events at the largest N, against re-listing.
pub fn summary(rows: &[ChangeCost]) -> Vec<Row> {
    let largest = rows
        .iter()
        .filter(|r| r.way == EVENTS)
        .max_by_key(|r| r.instances);
    let Some((events, relist)) = largest.and_then(|e| Some((e, relisting(rows, e)?))) else {
        return Vec::new();
    };
    vec![Row::against(
        format!(
            "a change seen by a watcher of {} instances, median: per-child events : re-listing every child",
            events.instances
        ),
        d(events.visibility.p50),
        d(relist.visibility.p50),
        format!(
            "{:.2}×",
            ratio_of(events.visibility.p50, relist.visibility.p50)
        ),
        "—",
        None,
    )]
}
