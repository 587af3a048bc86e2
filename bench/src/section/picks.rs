//! Section 16, picks under contention: how many picks per second one
//! `Selector` gives when 1, 2, 4 and 8 threads share it, for every
//! strategy. Issue 33's targets: an uncontended random or round-robin pick
//! within 100 ns, and no strategy slower in aggregate at 2 threads than at
//! 1 (a lock per pick would make two threads slower than one).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zkutil::{Endpoint, Instance, Instances, Selector, Strategy};

use super::Report;
use crate::Bench;
use crate::stats::verdict;
use crate::summary::Row;

/// The thread counts measured, the first being the uncontended baseline.
const THREADS: [usize; 4] = [1, 2, 4, 8];
/// Instances in the shared list.
const INSTANCES: u16 = 100;
/// An uncontended random or round-robin pick, at most.
const TARGET_NS: f64 = 100.0;
/// 2 threads : 1 thread, aggregate picks per second, at least.
const TARGET_RATIO: f64 = 1.0;
/// Iterations between two looks at the stop flag.
const BATCH: u64 = 64;

const STRATEGIES: [(&str, Strategy); 5] = [
    ("random", Strategy::Random),
    ("round-robin", Strategy::RoundRobin),
    ("weighted", Strategy::Weighted),
    ("smooth-weighted", Strategy::SmoothWeighted),
    ("p2c", Strategy::P2c),
];

/// One strategy's aggregate picks per second at each of [`THREADS`]
/// (the best of the windows).
pub struct StrategyPicks {
    pub name: &'static str,
    pub rates: [f64; 4],
}

impl StrategyPicks {
    /// 2 threads : 1 thread, aggregate.
    fn scaling(&self) -> f64 {
        self.rates[1] / self.rates[0].max(f64::MIN_POSITIVE)
    }

    /// Nanoseconds per pick for one thread of `threads` (index into
    /// [`THREADS`]): the wall time each thread spends per pick.
    fn ns_per_thread(&self, at: usize) -> f64 {
        THREADS[at] as f64 * 1e9 / self.rates[at].max(f64::MIN_POSITIVE)
    }
}

pub struct Picks {
    pub window: Duration,
    pub repeats: usize,
    pub strategies: Vec<StrategyPicks>,
}

impl Picks {
    fn uncontended_ns(&self, name: &str) -> f64 {
        self.strategies
            .iter()
            .find(|s| s.name == name)
            .map_or(f64::NAN, |s| s.ns_per_thread(0))
    }

    /// The strategy whose aggregate gains least (or loses most) from a
    /// second thread.
    fn worst_scaling(&self) -> Option<&StrategyPicks> {
        self.strategies
            .iter()
            .min_by(|a, b| a.scaling().total_cmp(&b.scaling()))
    }
}

/// The latency p2c is told a request to `endpoint` took: fixed per
/// instance, so that the averages differ and stay put.
fn latency(endpoint: Endpoint) -> Duration {
    Duration::from_micros(100 + u64::from(endpoint.port() % 10) * 20)
}

/// One window: `threads` threads picking from `selector` until told to
/// stop; their aggregate picks per second.
fn window(selector: &Selector, instances: &Instances, threads: usize, length: Duration) -> f64 {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let p2c = selector.strategy() == Strategy::P2c;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let began = Instant::now();
                    let mut picks = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..BATCH {
                            let picked = selector.pick(black_box(instances));
                            if let (true, Some(instance)) = (p2c, picked) {
                                // As a client does around each request.
                                let endpoint = instance.endpoint();
                                selector.started(endpoint);
                                selector.finished(endpoint, latency(endpoint));
                            }
                            black_box(picked);
                        }
                        picks += BATCH;
                    }
                    picks as f64 / began.elapsed().as_secs_f64()
                })
            })
            .collect();
        start.wait();
        std::thread::sleep(length);
        stop.store(true, Ordering::Relaxed);
        // A worker cannot panic short of a bug in the selector; its window
        // then counts as nothing rather than ending the run.
        workers.into_iter().map(|w| w.join().unwrap_or(0.0)).sum()
    })
}

/// The best of a sample: on a shared machine another process taking a
/// core only ever lowers a window's figure, so the best window is the one
/// least disturbed.
fn best(sample: Vec<f64>) -> f64 {
    sample.into_iter().fold(0.0, f64::max)
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let (length, repeats) = if bench.sizes.full() {
        (Duration::from_millis(200), 5)
    } else {
        (Duration::from_millis(50), 3)
    };
    let instances: Instances = (1..=INSTANCES)
        .map(|port| Instance::new(Endpoint::new(([10, 0, 0, 1], port).into())))
        .collect();
    // rates[strategy][threads] holds one figure per round. The rounds go
    // over every strategy and thread count in turn, so that a noisy moment
    // of the shared machine lands on one sample of several cells rather
    // than on every sample of one.
    let mut rates = vec![vec![Vec::new(); THREADS.len()]; STRATEGIES.len()];
    for _ in 0..repeats {
        for (s, (_, strategy)) in STRATEGIES.iter().enumerate() {
            for (t, threads) in THREADS.iter().enumerate() {
                // A fresh selector, as a client starts with.
                let selector = Selector::new(*strategy);
                rates[s][t].push(window(&selector, &instances, *threads, length));
            }
        }
    }
    let strategies = STRATEGIES
        .iter()
        .zip(rates)
        .map(|((name, _), per_threads)| {
            let mut bests = [0.0; 4];
            for (b, sample) in bests.iter_mut().zip(per_threads) {
                *b = best(sample);
            }
            StrategyPicks { name, rates: bests }
        })
        .collect();
    report.picks = Some(Picks {
        window: length,
        repeats,
        strategies,
    });
    Ok(())
}

/// Picks per second, with a unit.
fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2} M/s", per_second / 1e6)
    } else {
        format!("{:.0} k/s", per_second / 1e3)
    }
}

pub fn write(md: &mut String, r: &Picks) {
    let _ = writeln!(
        md,
        "## 16. Picks under contention\n\n\
         One `Selector` (made by `Selector::new`, as a client's) and one list of {INSTANCES} plain instances \
         shared by 1, 2, 4 and 8 threads, each picking as fast as it can for {} ms; the best of {} such \
         windows (the machine is shared: another process taking a core only ever lowers a window's figure), \
         the rounds interleaved over every strategy and thread count. For p2c each pick is followed \
         by `started` and `finished`, as a client does around each request. The machine has 2 cores: at 4 \
         and 8 threads they time-slice, so the aggregate cannot pass the 2-thread figure and the time per \
         pick of one thread includes its waits for a core.\n\n\
         Aggregate picks per second (and the wall time per pick of each thread):\n\n\
         | strategy | 1 thread | 2 threads | 4 threads | 8 threads | 2 : 1 |\n\
         |---|---:|---:|---:|---:|---:|",
        r.window.as_millis(),
        r.repeats
    );
    for s in &r.strategies {
        let cells: Vec<String> = (0..THREADS.len())
            .map(|at| format!("{} ({:.0} ns)", rate(s.rates[at]), s.ns_per_thread(at)))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {:.2}× |",
            s.name,
            cells.join(" | "),
            s.scaling()
        );
    }
    let random = r.uncontended_ns("random");
    let round_robin = r.uncontended_ns("round-robin");
    let _ = writeln!(
        md,
        "\nAn uncontended pick: random {random:.0} ns, round-robin {round_robin:.0} ns (target ≤ {TARGET_NS:.0} ns: \
         {}, {}).",
        verdict(random <= TARGET_NS),
        verdict(round_robin <= TARGET_NS)
    );
    if let Some(worst) = r.worst_scaling() {
        let _ = writeln!(
            md,
            "The least gain from a second thread: {} at {:.2}× (target ≥ {TARGET_RATIO:.1}× for every \
             strategy: {}).\n",
            worst.name,
            worst.scaling(),
            verdict(worst.scaling() >= TARGET_RATIO)
        );
    }
}

pub fn summary(r: &Picks) -> Vec<Row> {
    let mut rows: Vec<Row> = ["random", "round-robin"]
        .iter()
        .map(|name| {
            let ns = r.uncontended_ns(name);
            Row::absolute(
                format!("an uncontended {name} pick (1 thread, {INSTANCES} instances)"),
                format!("{ns:.0} ns"),
                &format!("≤ {TARGET_NS:.0} ns"),
                ns <= TARGET_NS,
            )
        })
        .collect();
    if let Some(worst) = r.worst_scaling() {
        rows.push(Row::against(
            format!(
                "picks per second, 2 threads : 1 thread, least of the strategies ({})",
                worst.name
            ),
            rate(worst.rates[1]),
            rate(worst.rates[0]),
            format!("{:.2}×", worst.scaling()),
            &format!("≥ {TARGET_RATIO:.1}×"),
            Some(worst.scaling() >= TARGET_RATIO),
        ));
    }
    rows
}
