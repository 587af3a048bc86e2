//! `chaos`: a seeded, randomized fault soak of the whole system, checking
//! invariants all along (the way Jepsen checks databases).
//!
//! It starts a real 3-node ZooKeeper ensemble, three time-servers (three
//! listeners each, on fixed ports so that a restart reuses them), a
//! time-client asking every 10 ms, and an observer session. As root, each
//! of them runs in a host of its own in a network lab (network namespaces),
//! and network faults join the process faults. Then, until the
//! duration is up, it injects one fault at a time from a schedule drawn
//! from `--seed`, recovers from it, and checks:
//!
//! * the client loses no request (retries allowed), ever;
//! * a fault that should change nothing in the registry (a ZooKeeper node
//!   killed or frozen while a quorum lives, an outage shorter than the
//!   session timeout) changes nothing: no node deleted or re-created (same
//!   owner, same creation time), no change seen by a watcher;
//! * after every fault the registry equals the live listeners, each owned
//!   by its server's live session (no node of a dead session, no duplicate),
//!   within the session timeout + 1 s; a server cut off from ZooKeeper
//!   for longer than its session leaves it within that bound too;
//! * no panic in any log; every process exits cleanly at the end; threads,
//!   open files and RSS of the long-lived processes stay bounded, and the
//!   ensemble holds as many watches at the end as at the start; after
//!   every fault each process has at most 2 threads and 4 descriptors more
//!   than when first seen (within 5 s);
//! * the client never goes 5 s between two answers.
//!
//! A violation prints the seed, the fault, the invariant and the last log
//! lines, and exits 1: `--seed` replays the same schedule. Run it through
//! `scripts/chaos.sh`, which builds the binaries first.

mod faults;
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::faults::Fault;
use crate::world::{Violation, World};

/// A seeded, randomized fault soak of ZooKeeper, time-servers and a
/// time-client, with invariants checked all along.
#[derive(Debug, Parser)]
struct Args {
    /// How long to inject faults (the setup and the final checks come on top).
    #[arg(long, default_value = "60s", value_parser = zkutil::cli::duration)]
    duration: Duration,
    /// Seed of the fault schedule (default: drawn at random, and printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The time-server binary.
    #[arg(long, default_value = "target/release/time-server")]
    server_bin: PathBuf,
    /// The time-client binary.
    #[arg(long, default_value = "target/release/time-client")]
    client_bin: PathBuf,
    /// The time-servers' ZooKeeper session timeout.
    #[arg(long, default_value = "4s", value_parser = zkutil::cli::timeout)]
    session_timeout: Duration,
    /// Only the faults whose name contains this text (as the table at the
    /// end names them), e.g. `net:` for the network faults.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// ZooKeeper serves TLS only and needs client certificates: the
    /// servers, the client and the soak connect with theirs (on loopback:
    /// the network lab's ensembles are plaintext).
    #[arg(long)]
    tls: bool,
    /// Process faults only, on loopback, even as root (network faults need
    /// root: network namespaces).
    #[arg(long)]
    no_network: bool,
}

/// What the run saw of one kind of fault.
#[derive(Debug, Default)]
struct Tally {
    count: usize,
    worst: Duration,
    lost: u64,
    retries: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    zkutil::cli::init_logging(false, zkutil::cli::LogFormat::Text);
    let network = !args.no_network && !args.tls && {
        let available = zkutil::testing::lab::Lab::available();
        if let Err(why) = &available {
            println!("chaos: no network faults: {why}");
        }
        available.is_ok()
    };
    println!(
        "chaos: seed {seed}, duration {}, {}",
        humantime::format_duration(args.duration),
        match (network, args.tls) {
            (true, _) => "process and network faults, in a network lab",
            (false, true) => "process faults, on loopback, ZooKeeper serving TLS only",
            (false, false) => "process faults, on loopback",
        }
    );
    if Fault::candidates(network, args.only.as_deref()).is_empty() {
        eprintln!("chaos: error: no fault's name contains {:?}", args.only);
        return ExitCode::from(2);
    }
    match run(&args, seed, network) {
        Ok(()) => ExitCode::SUCCESS,
        Err(violation) => {
            println!("{violation}");
            println!(
                "replay with: scripts/chaos.sh --duration {} --seed {seed}{}",
                humantime::format_duration(args.duration),
                match (network, args.tls) {
                    (true, _) => "",
                    (false, true) => " --tls",
                    (false, false) => " --no-network",
                }
            );
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args, seed: u64, network: bool) -> Result<(), Violation> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut world = World::start(
        &args.server_bin,
        &args.client_bin,
        args.session_timeout,
        network,
        args.tls,
    )?;
    let deadline = world.settle_deadline();
    world.converge("setup", deadline)?;
    world.count_watches()?;
    // Each process's first figures, before any fault.
    world.check_growth()?;
    let start_stats = world.process_stats();
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let faults = Fault::candidates(network, args.only.as_deref());
    let started = Instant::now();
    while started.elapsed() < args.duration {
        let fault = faults[rng.random_range(0..faults.len())];
        let before = world.client_progress()?;
        let outcome = fault.run(&mut world, &mut rng)?;
        let after = world.client_progress()?;
        let tally = tallies.entry(fault.name()).or_default();
        tally.count += 1;
        tally.worst = tally.worst.max(outcome.convergence);
        tally.lost += after.failed - before.failed;
        tally.retries += after.retries - before.retries;
        println!(
            "{:>6.1}s  {:<34} converged in {:>6.2}s{}",
            started.elapsed().as_secs_f64(),
            outcome.description,
            outcome.convergence.as_secs_f64(),
            if outcome.changed {
                ""
            } else {
                "  (registry unchanged)"
            }
        );
        // A quiet gap with the invariants still checked.
        let gap = Duration::from_millis(rng.random_range(300..1200));
        world.watch_for(gap)?;
    }
    let progress = world.client_progress()?;
    world.begin("the end: watches");
    world.check_watches(Instant::now() + Duration::from_secs(10))?;
    world.begin("the end: threads and descriptors");
    world.check_growth()?;
    let end_stats = world.process_stats();
    let summary = world.stop()?;
    print_table(&tallies, progress.requests, progress.failed);
    println!("processes (start -> end): threads, open files, RSS KiB");
    for (name, start) in &start_stats {
        if let Some(end) = end_stats.get(name) {
            println!(
                "  {name:<10} {:>4} -> {:<4} {:>4} -> {:<4} {:>7} -> {:<7}",
                start.threads, end.threads, start.fds, end.fds, start.rss_kib, end.rss_kib
            );
        }
    }
    println!("client summary: {summary}");
    println!(
        "watches on the ensemble: {} at the start and at the end",
        world.watches
    );
    world::check_bounded(&end_stats)?;
    Ok(())
}

fn print_table(tallies: &BTreeMap<&'static str, Tally>, requests: u64, failed: u64) {
    let faults: usize = tallies.values().map(|t| t.count).sum();
    println!();
    println!("| fault | count | worst convergence | requests lost | retries |");
    println!("|---|---:|---:|---:|---:|");
    for (name, tally) in tallies {
        println!(
            "| {name} | {} | {:.2} s | {} | {} |",
            tally.count,
            tally.worst.as_secs_f64(),
            tally.lost,
            tally.retries
        );
    }
    println!("| **all** | {faults} | | {failed} of {requests} | |");
    println!();
}
