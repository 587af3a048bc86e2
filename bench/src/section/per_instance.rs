//! Section 17, memory per instance: the resident memory of a process
//! holding `Discovery`s of many plain instances (no metadata), above the
//! same process holding the same base paths empty.

use std::fmt::Write as _;
use std::sync::Arc;

use zkutil::Session;

use super::Report;
use crate::Bench;
use crate::bulk::{create_many, nth_endpoint};
use crate::observe::Holder;
use crate::server::rss_kib;
use crate::stats::verdict;
use crate::summary::Row;

/// Bytes per plain instance, at most this (issue 33).
const TARGET_BYTES: f64 = 400.0;

/// One registry held by one process.
pub struct PerInstance {
    pub instances: usize,
    pub bases: usize,
    pub rss_kib: u64,
    /// The same process with the same base paths, empty.
    pub empty_kib: u64,
}

impl PerInstance {
    pub fn bytes_each(&self) -> f64 {
        self.rss_kib.saturating_sub(self.empty_kib) as f64 * 1024.0 / self.instances.max(1) as f64
    }
}

/// Registers `per_base` plain instances under each of `bases`, one owner
/// session per base path, all at once.
fn register_sharded(
    bench: &Bench,
    bases: &[String],
    per_base: usize,
) -> anyhow::Result<Vec<Arc<Session>>> {
    let owners = bases
        .iter()
        .map(|_| bench.session())
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = owners
            .iter()
            .zip(bases)
            .enumerate()
            .map(|(shard, (owner, base))| {
                scope.spawn(move || -> anyhow::Result<()> {
                    owner.ensure_path(base)?;
                    create_many(owner, per_base, |i| {
                        let endpoint = nth_endpoint(shard * per_base + i);
                        (format!("{base}/{endpoint}"), Vec::new())
                    })
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a registering thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(owners)
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let hosts = bench.zk.connect_string();
    let sizes: &[(usize, usize)] = if bench.sizes.full() {
        &[(10_000, 1), (100_000, 10)]
    } else {
        &[(10_000, 1)]
    };
    for &(instances, shards) in sizes {
        let empty: Vec<String> = (0..shards)
            .map(|s| format!("/empty{instances}/s{s}"))
            .collect();
        let owner = bench.session()?;
        for base in &empty {
            owner.ensure_path(base)?;
        }
        let empty_kib = rss_kib(Holder::start(&hosts, &empty, 0)?.pid());
        let bases: Vec<String> = (0..shards)
            .map(|s| format!("/held{instances}/s{s}"))
            .collect();
        let owners = register_sharded(bench, &bases, instances / shards)?;
        let holder = Holder::start(&hosts, &bases, instances)?;
        report.per_instance.push(PerInstance {
            instances,
            bases: shards,
            rss_kib: rss_kib(holder.pid()),
            empty_kib,
        });
        drop(holder);
        drop(owners);
        eprintln!("bench: memory of {instances} instances held done");
    }
    Ok(())
}

pub fn write(md: &mut String, rows: &[PerInstance]) {
    let _ = writeln!(
        md,
        "## 17. Memory per instance\n\n\
         A process (this binary's `hold` mode: one session, one `Discovery` per base path, nothing else) \
         holds N plain instances (no metadata; 100,000 sharded over 10 base paths), read once it lists them \
         all; the baseline is the same process holding the same number of base paths, empty. Bytes per \
         instance = (RSS − baseline) / N. Target ≤ {TARGET_BYTES:.0} B.\n\n\
         | instances | base paths | RSS | empty baseline | bytes per instance | met? |\n|---:|---:|---:|---:|---:|---|"
    );
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} MiB | {:.1} MiB | **{:.0}** | {} |",
            row.instances,
            row.bases,
            row.rss_kib as f64 / 1024.0,
            row.empty_kib as f64 / 1024.0,
            row.bytes_each(),
            verdict(row.bytes_each() <= TARGET_BYTES),
        );
    }
    let _ = writeln!(md, "\n{STEPS}\n");
}

/// What was tried for the bytes per instance, with its before and after
/// (runs of this section; fixed text, not this run's figures).
const STEPS: &str = "Steps tried (bytes per instance at 10,000 / 100,000, one run each): \
    1. The first measurement: **575 / 386 B** (the 10,000 over the 400 B target). \
    2. The index of which children name an endpoint (`holders`) kept each child's name as a `String` \
    keyed by endpoint; children named `ip:port` in canonical spelling (all of a plain registry) now \
    go in a set of packed IPv4 endpoints (8 bytes each), other names as before: **412 / 193 B**. Kept. \
    3. An instance's child name kept inline when 22 bytes or shorter (every IPv4 `ip:port` fits; \
    longer names shared as before) and its registration time as an `i64` with a reserved \
    unknown value instead of an `Option`: **325 / 145 B**. Kept. \
    Not tried: replacing the persistent vector of `Arc<Instance>` by a flat array; each change \
    would then copy the whole list (10,000 instances at each event), which section 6's per-child \
    events avoid.";

pub fn summary(rows: &[PerInstance]) -> Vec<Row> {
    rows.iter()
        .max_by_key(|r| r.instances)
        .map(|row| {
            Row::absolute(
                format!(
                    "memory per plain instance held by a Discovery ({} instances over {} base paths)",
                    row.instances, row.bases
                ),
                format!("{:.0} B", row.bytes_each()),
                "≤ 400 B",
                row.bytes_each() <= TARGET_BYTES,
            )
        })
        .into_iter()
        .collect()
}
