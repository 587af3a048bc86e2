//! Section 7, scale: many instances registered by one process; how long a
//! snapshot takes to refresh, a pick, and the memory of the cache. Also the
//! client's memory as a process (section 8).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use zkutil::{BasePath, Discovery, Selector, Strategy};

use super::Report;
use crate::Bench;
use crate::bulk::register_many;
use crate::section::memory;
use crate::server::rss_kib;
use crate::stats::{Stats, d, verdict};
use crate::summary::Row;

/// A refresh's median, at most this.
const TARGET: Duration = Duration::from_millis(50);

pub struct Scale {
    pub instances: usize,
    pub registering: Duration,
    pub refresh: Stats,
    pub pick: Stats,
    pub rss_delta_kib: u64,
}

fn own_rss_kib() -> u64 {
    rss_kib(std::process::id())
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let n = bench.sizes.scale;
    let owner = bench.session()?;
    let started = Instant::now();
    register_many(&owner, "/scale", n)?;
    let registering = started.elapsed();
    let rss_before = own_rss_kib();
    let discovery = Discovery::start(bench.session()?, &BasePath::from_static("/scale"))?;
    let first = discovery
        .wait_for(Duration::from_secs(60), |s| s.instances().len() == n)
        .context("first listing")?;
    let rss_after = own_rss_kib();
    let mut refresh = Vec::new();
    for i in 0..20 {
        let path = format!("/scale/10.255.0.{i}:1");
        let version = discovery.snapshot().version();
        let t = Instant::now();
        owner.create_ephemeral(&path, b"{}")?;
        discovery
            .wait_for(Duration::from_secs(30), |s| s.version() > version)
            .context("refresh")?;
        refresh.push(t.elapsed());
    }
    let selector = Selector::new(Strategy::Random);
    let mut picks = Vec::new();
    for _ in 0..10_000 {
        let t = Instant::now();
        let snapshot = discovery.snapshot();
        std::hint::black_box(selector.pick(snapshot.instances()));
        picks.push(t.elapsed());
    }
    report.scale = Some(Scale {
        instances: first.instances().len(),
        registering,
        refresh: Stats::of(&refresh),
        pick: Stats::of(&picks),
        rss_delta_kib: rss_after.saturating_sub(rss_before),
    });
    report.memory.client_kib = memory::client_rss(bench)?;
    Ok(())
}

pub fn write(md: &mut String, s: &Scale) {
    let _ = writeln!(
        md,
        "## 7. Scale: {} instances registered by one process\n",
        s.instances
    );
    let _ = writeln!(md, "| what | figure |\n|---|---:|");
    let _ = writeln!(
        md,
        "| registering them (8 threads, one session) | {} |",
        d(s.registering)
    );
    let _ = writeln!(
        md,
        "| snapshot refresh after one change (median / p99 / max) | {} / {} / {} |",
        d(s.refresh.p50),
        d(s.refresh.p99),
        d(s.refresh.max)
    );
    let _ = writeln!(
        md,
        "| pick from the snapshot (median / p99) | {} / {} |",
        d(s.pick.p50),
        d(s.pick.p99)
    );
    let _ = writeln!(
        md,
        "| memory of the cache (RSS growth of the observer) | {} KiB |",
        s.rss_delta_kib
    );
    let _ = writeln!(
        md,
        "\nRefresh at {} instances: median {} (target ≤ {} ms: {}). A refresh re-lists every child (one \
         `getChildren` of the whole list) and diffs it against the snapshot.\n",
        s.instances,
        d(s.refresh.p50),
        TARGET.as_millis(),
        verdict(s.refresh.p50 <= TARGET)
    );
}

pub fn summary(s: &Scale) -> Vec<Row> {
    vec![Row::absolute(
        format!(
            "snapshot refresh after one change at {} instances, median",
            s.instances
        ),
        d(s.refresh.p50),
        &format!("≤ {} ms", TARGET.as_millis()),
        s.refresh.p50 <= TARGET,
    )]
}
