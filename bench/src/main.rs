//! The benchmark behind `scripts/bench.sh`: every figure is measured in the
//! same run as its baseline, on a real ZooKeeper started for the run, and
//! written to `bench/RESULTS.md` (a summary table of targets, then one part
//! per section) with an SVG plot of latency distributions.
//!
//! Run through `scripts/bench.sh [--quick] [--only SECTION]`, which builds
//! release first. Each section is a module of [`section`]: what it
//! measures, what it writes and what it adds to the summary.

mod bare;
mod bulk;
mod floor;
mod observe;
mod packets;
mod report;
mod section;
mod server;
mod stats;
mod summary;
mod svg;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use section::Report;
use zkutil::testing::ZkServer;
use zkutil::{BasePath, Session, SessionConfig};

/// Sizes of the run; `--quick` shrinks them to finish in under a minute.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub cached_picks: usize,
    pub get_children: usize,
    pub new_sessions: usize,
    pub requests: usize,
    pub visibility: usize,
    pub connections: usize,
    pub failover_requests: u64,
    /// Instances of the scale section; 10,000 also selects the full
    /// variants of the change-cost, Curator and fan-out sections.
    pub scale: usize,
}

impl Sizes {
    /// Whether this is the full run's size (the sections that compare
    /// several registry sizes measure them all only then).
    pub fn full(&self) -> bool {
        self.scale >= 10_000
    }
}

const FULL: Sizes = Sizes {
    cached_picks: 200_000,
    get_children: 2_000,
    new_sessions: 200,
    requests: 10_000,
    visibility: 200,
    connections: 100_000,
    failover_requests: 400,
    scale: 10_000,
};

const QUICK: Sizes = Sizes {
    cached_picks: 20_000,
    get_children: 300,
    new_sessions: 30,
    requests: 1_000,
    visibility: 30,
    connections: 5_000,
    failover_requests: 100,
    scale: 1_000,
};

/// Measures the system against baselines in the same run; writes
/// `<out>/RESULTS.md` (or `RESULTS-quick.md`) and an SVG of the latency
/// distributions.
#[derive(Debug, clap::Parser)]
#[command(name = "bench")]
struct Args {
    /// Smaller samples (under a minute); writes RESULTS-quick.md and .svg.
    #[arg(long)]
    quick: bool,
    /// The time-server binary to measure (release build).
    #[arg(long, default_value = "target/release/time-server")]
    server_bin: PathBuf,
    /// The time-client binary whose memory is measured (release build).
    #[arg(long, default_value = "target/release/time-client")]
    client_bin: PathBuf,
    /// Where to write the results.
    #[arg(long, default_value = "bench")]
    out: PathBuf,
    /// Run only these sections (repeatable): discovery, latency, visibility, throughput, failover,
    /// scale, change-cost, slow-server, curator, fan-out, region (root: a network lab), tls, render,
    /// console, floor, per-instance, relist, picks; for iterating on one figure.
    #[arg(long)]
    only: Vec<String>,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Child mode of the visibility and Curator sections: print a line per change seen.
    Observe {
        /// ZooKeeper connect string.
        hosts: String,
        /// The base path to watch.
        base: BasePath,
        /// Say `ready` only once this many instances are listed.
        #[arg(long, default_value_t = 0)]
        expect: usize,
    },
    /// Child mode of section 17: hold a `Discovery` per base path until stdin closes.
    Hold {
        /// ZooKeeper connect string.
        hosts: String,
        /// The base paths.
        bases: Vec<BasePath>,
        /// Say `ready` only once this many instances are listed between them.
        #[arg(long, default_value_t = 0)]
        expect: usize,
    },
    /// Child mode of section 16: a bare persistent recursive watch, a line per child created or deleted.
    Floor {
        /// ZooKeeper connect string.
        hosts: String,
        /// The path to watch.
        base: String,
        /// Read a created child's data before its line.
        #[arg(long)]
        read: bool,
    },
}

/// What every section measures with: the run's ZooKeeper, the binaries
/// under test and the sizes.
pub struct Bench {
    pub zk: ZkServer,
    pub server_bin: PathBuf,
    pub client_bin: PathBuf,
    pub sizes: Sizes,
}

impl Bench {
    /// A new session on the run's ZooKeeper.
    pub fn session(&self) -> anyhow::Result<Arc<Session>> {
        Ok(Arc::new(
            SessionConfig::new(self.zk.connect_string()).connect()?,
        ))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Mode::Observe {
        hosts,
        base,
        expect,
    }) = &args.mode
    {
        return observe::observe(hosts, base, *expect);
    }
    if let Some(Mode::Hold {
        hosts,
        bases,
        expect,
    }) = &args.mode
    {
        return observe::hold(hosts, bases, *expect);
    }
    if let Some(Mode::Floor { hosts, base, read }) = &args.mode {
        return floor::floor(hosts, base, *read);
    }
    if let Some(unknown) = args
        .only
        .iter()
        .find(|o| !section::ALL.iter().any(|(name, _)| name == o))
    {
        anyhow::bail!(
            "no section {unknown:?}: --only takes one of {:?}",
            section::names()
        );
    }
    let started = Instant::now();
    let bench = Bench {
        zk: ZkServer::start().context("starting ZooKeeper")?,
        server_bin: args.server_bin.clone(),
        client_bin: args.client_bin.clone(),
        sizes: if args.quick { QUICK } else { FULL },
    };
    let mut report = Report::new(args.quick, &bench.zk);
    eprintln!(
        "bench: ZooKeeper at {} ({})",
        bench.zk.connect_string(),
        report.storage
    );
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    for (name, run) in section::ALL {
        if wanted(name) {
            run(&bench, &mut report)?;
            eprintln!("bench: {name} done ({:?})", started.elapsed());
        }
    }

    report.duration = started.elapsed();
    std::fs::create_dir_all(&args.out)?;
    let name = if args.quick {
        "RESULTS-quick"
    } else {
        "RESULTS"
    };
    std::fs::write(args.out.join(format!("{name}.md")), report.markdown(name))?;
    std::fs::write(
        args.out.join(format!("{name}.svg")),
        svg::plot(&report.dist),
    )?;
    eprintln!(
        "bench: wrote {}/{name}.md and .svg in {:?}",
        args.out.display(),
        started.elapsed()
    );
    Ok(())
}
