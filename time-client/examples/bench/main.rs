//! The benchmark behind `scripts/bench.sh`: every figure is measured in the
//! same run as its baseline, on a real ZooKeeper started for the run, and
//! written to `bench/RESULTS.md` with an SVG plot of latency distributions.
//!
//! Run through `scripts/bench.sh [--quick]`, which builds release first.

mod report;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use report::{Report, Stats};
use time_client::request::{RequestLimits, request};
use zkutil::testing::{LineRecorder, TestProcess, ZkServer, free_ports, send_signal, wait_until};
use zkutil::{BasePath, Change, Discovery, Endpoint, Selector, Session, SessionConfig, Strategy};

/// Sizes of the run; `--quick` shrinks them to finish in under a minute.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    cached_picks: usize,
    get_children: usize,
    new_sessions: usize,
    requests: usize,
    visibility: usize,
    connections: usize,
    failover_requests: u64,
    scale: usize,
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
    failover_requests: 150,
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
    /// Where to write the results.
    #[arg(long, default_value = "bench")]
    out: PathBuf,
    /// Run only these sections (repeatable): discovery, latency, visibility, throughput, failover,
    /// scale, change-cost, slow-server; for iterating on one figure.
    #[arg(long)]
    only: Vec<String>,
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Child mode of the visibility measurement: print a line per change seen.
    Observe {
        /// ZooKeeper connect string.
        hosts: String,
        /// The base path to watch.
        base: BasePath,
        /// Say `ready` only once this many instances are listed.
        #[arg(long, default_value_t = 0)]
        expect: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Mode::Observe {
        hosts,
        base,
        expect,
    }) = &args.mode
    {
        return observe(hosts, base, *expect);
    }
    let sizes = if args.quick { QUICK } else { FULL };
    let started = Instant::now();
    let zk = ZkServer::start().context("starting ZooKeeper")?;
    let mut report = Report::new(args.quick, &zk);
    eprintln!(
        "bench: ZooKeeper at {} ({})",
        zk.connect_string(),
        report.storage
    );

    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    type Section = fn(&ZkServer, &Args, Sizes, &mut Report) -> anyhow::Result<()>;
    let sections: [(&str, Section); 10] = [
        ("discovery", |zk, _, sizes, report| {
            discovery_cost(zk, sizes, report)
        }),
        ("latency", client_latency),
        ("visibility", |zk, _, sizes, report| {
            visibility(zk, sizes, report)
        }),
        ("throughput", throughput),
        ("failover", failover),
        ("scale", |zk, _, sizes, report| scale(zk, sizes, report)),
        ("change-cost", |zk, _, sizes, report| {
            change_cost(zk, sizes, report)
        }),
        ("slow-server", slow_server),
        ("curator", |zk, _, sizes, report| {
            against_curator(zk, sizes, report)
        }),
        ("fan-out", |zk, _, sizes, report| fan_out(zk, sizes, report)),
    ];
    for (name, section) in sections {
        if wanted(name) {
            section(&zk, &args, sizes, &mut report)?;
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
    std::fs::write(args.out.join(format!("{name}.svg")), report.svg())?;
    eprintln!(
        "bench: wrote {}/{name}.md and .svg in {:?}",
        args.out.display(),
        started.elapsed()
    );
    Ok(())
}

fn session(zk: &ZkServer) -> anyhow::Result<Arc<Session>> {
    Ok(Arc::new(SessionConfig::new(zk.connect_string()).connect()?))
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// 1. Discovery cost per request, three ways.
fn discovery_cost(zk: &ZkServer, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    let owner = session(zk)?;
    owner.ensure_path("/cost")?;
    for port in 1..=3 {
        owner.create_ephemeral(&format!("/cost/127.0.0.1:{port}"), b"{}")?;
    }
    let reader = session(zk)?;
    let discovery = Discovery::start(reader.clone(), &BasePath::from_static("/cost"))?;
    let selector = Selector::with_seed(Strategy::Random, 1);
    let mut cached = Vec::with_capacity(sizes.cached_picks);
    for _ in 0..sizes.cached_picks {
        let t = Instant::now();
        let snapshot = discovery.snapshot();
        std::hint::black_box(selector.pick(snapshot.instances()));
        cached.push(t.elapsed());
    }
    let mut listing = Vec::with_capacity(sizes.get_children);
    for _ in 0..sizes.get_children {
        let t = Instant::now();
        std::hint::black_box(reader.children("/cost")?);
        listing.push(t.elapsed());
    }
    let mut per_session = Vec::with_capacity(sizes.new_sessions);
    for _ in 0..sizes.new_sessions {
        let t = Instant::now();
        let s = SessionConfig::new(zk.connect_string()).connect()?;
        std::hint::black_box(s.children("/cost")?);
        s.close();
        per_session.push(t.elapsed());
    }
    report.discovery = vec![
        ("pick from the cached snapshot".into(), Stats::of(&cached)),
        (
            "getChildren per request, one session".into(),
            Stats::of(&listing),
        ),
        (
            "new session per request (the post)".into(),
            Stats::of(&per_session),
        ),
    ];
    report
        .dist
        .push(("discovery: cached snapshot".into(), cached));
    report.dist.push(("discovery: getChildren".into(), listing));
    report
        .dist
        .push(("discovery: session per request".into(), per_session));
    Ok(())
}

/// A time-server process (release binary) on free ports, registered;
/// killed on drop (SIGKILL ends a stopped one too).
struct ServerProcess {
    process: TestProcess,
    addrs: Vec<SocketAddr>,
}

impl ServerProcess {
    fn start(
        args: &Args,
        zk: &ZkServer,
        base: &BasePath,
        listeners: usize,
        session_timeout: &str,
    ) -> anyhow::Result<ServerProcess> {
        ServerProcess::start_with(args, zk, base, listeners, session_timeout, &[])
    }

    /// Like [`ServerProcess::start`], with `extra` flags.
    fn start_with(
        args: &Args,
        zk: &ZkServer,
        base: &BasePath,
        listeners: usize,
        session_timeout: &str,
        extra: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        if !args.server_bin.exists() {
            bail!(
                "no {} (run scripts/bench.sh, which builds it)",
                args.server_bin.display()
            );
        }
        let addrs: Vec<SocketAddr> = free_ports(listeners)?
            .into_iter()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .collect();
        let listen = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let hosts = zk.connect_string();
        let mut flags = vec![
            "--zk",
            &hosts,
            "--base-path",
            base.as_str(),
            "--listen",
            &listen,
            "--session-timeout",
            session_timeout,
            "--drain",
            "1s",
        ];
        flags.extend_from_slice(extra);
        let process = TestProcess::start(&args.server_bin, &flags, &[("RUST_LOG", "warn")]);
        let observer = session(zk)?;
        let expected: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        wait_until(
            Duration::from_secs(30),
            "the bench server registers",
            || {
                let names = observer.children(base.as_str()).unwrap_or_default();
                expected.iter().all(|e| names.contains(e)).then_some(())
            },
        );
        Ok(ServerProcess { process, addrs })
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }
}

fn rss_kib(pid: u32) -> u64 {
    zkutil::testing::proc_status(pid, "VmRSS:").unwrap_or(0)
}

/// A bare TCP exchange: connect, write `timestamp`, half-close, read to EOF.
fn bare_request(addr: SocketAddr) -> std::io::Result<usize> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"timestamp")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut buf = Vec::with_capacity(128);
    stream.read_to_end(&mut buf)?;
    Ok(buf.len())
}

/// 2. Client request latency against bare TCP to a fixed address; 7. memory.
fn client_latency(
    zk: &ZkServer,
    args: &Args,
    sizes: Sizes,
    report: &mut Report,
) -> anyhow::Result<()> {
    let server = ServerProcess::start(args, zk, &BasePath::from_static("/latency"), 1, "10s")?;
    report.server_rss_idle_kib = rss_kib(server.pid());
    let discovery = Discovery::start(session(zk)?, &BasePath::from_static("/latency"))?;
    let selector = Selector::new(Strategy::Random);
    let limits = RequestLimits::default();
    let addr = server.addrs[0];
    let (mut client, mut bare) = (Vec::new(), Vec::new());
    let (mut client_errors, mut bare_errors) = (0, 0);
    // Interleaved, so that both see the same machine.
    for _ in 0..sizes.requests {
        let t = Instant::now();
        let snapshot = discovery.snapshot();
        let ok = selector
            .pick(snapshot.instances())
            .map(|i| request(i.endpoint(), &limits).is_ok())
            .unwrap_or(false);
        client.push(t.elapsed());
        client_errors += usize::from(!ok);
        let t = Instant::now();
        bare_errors += usize::from(bare_request(addr).is_err());
        bare.push(t.elapsed());
    }
    report.latency = vec![
        (
            "bare TCP connect + read, fixed address".into(),
            Stats::of(&bare),
            bare_errors,
        ),
        (
            "time-client: discover + connect + read".into(),
            Stats::of(&client),
            client_errors,
        ),
    ];
    report.dist.push(("request: bare TCP".into(), bare));
    report.dist.push(("request: time-client".into(), client));
    Ok(())
}

/// Child mode: `ready <session>` once `expect` instances are listed, then
/// `<added|removed> <endpoint> <unix nanos>` per change.
fn observe(hosts: &str, base: &BasePath, expect: usize) -> anyhow::Result<()> {
    let session = Arc::new(SessionConfig::new(hosts).connect()?);
    let id = session.id();
    let discovery = Discovery::start(session, base)?;
    let changes = discovery.subscribe();
    discovery
        .wait_for(Duration::from_secs(120), |s| s.instances().len() >= expect)
        .context("the first listing")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {id}")?;
    out.flush()?;
    while let Ok(change) = changes.recv() {
        let now = unix_nanos();
        let line = match change {
            Change::Added(i) => format!("added {} {now}", i.endpoint()),
            Change::Removed(i) => format!("removed {} {now}", i.endpoint()),
            _ => continue,
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

/// 3. Visibility: create/delete acknowledged → snapshot updated in another process.
fn visibility(zk: &ZkServer, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["observe", &zk.connect_string(), "/visibility"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("observer stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    if !lines
        .next()
        .transpose()?
        .is_some_and(|line| line.starts_with("ready"))
    {
        bail!("the observer did not start");
    }
    let writer = session(zk)?;
    writer.ensure_path("/visibility")?;
    let (mut created, mut deleted, mut writes, mut reads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut expect = |kind: &str, endpoint: &str, acked: u128| -> anyhow::Result<Duration> {
        for line in lines.by_ref() {
            let line = line?;
            let mut parts = line.split(' ');
            if (parts.next(), parts.next()) == (Some(kind), Some(endpoint)) {
                let seen: u128 = parts
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("observer line")?;
                return Ok(Duration::from_nanos(seen.saturating_sub(acked) as u64));
            }
        }
        bail!("the observer stopped")
    };
    for i in 0..sizes.visibility {
        let endpoint = format!("127.0.0.2:{}", 1000 + i);
        let path = format!("/visibility/{endpoint}");
        let t = Instant::now();
        writer.create_ephemeral(&path, b"{}")?;
        writes.push(t.elapsed());
        created.push(expect("added", &endpoint, unix_nanos())?);
        let t = Instant::now();
        std::hint::black_box(writer.children("/visibility")?);
        reads.push(t.elapsed());
        writer.delete(&path, None)?;
        deleted.push(expect("removed", &endpoint, unix_nanos())?);
    }
    let _ = child.kill();
    let _ = child.wait();
    report.visibility = vec![
        (
            "create acknowledged → snapshot in another process".into(),
            Stats::of(&created),
        ),
        (
            "delete acknowledged → snapshot in another process".into(),
            Stats::of(&deleted),
        ),
        (
            "one ZooKeeper write (create), for reference".into(),
            Stats::of(&writes),
        ),
        (
            "one ZooKeeper round trip (getChildren), for reference".into(),
            Stats::of(&reads),
        ),
    ];
    report.dist.push(("visibility: create".into(), created));
    report.dist.push(("visibility: delete".into(), deleted));
    Ok(())
}

/// The bare responder: one accept-write-close loop, as lean as it gets.
fn bare_responder(
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let thread = std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if let Ok(mut stream) = stream {
                let _ = stream.write_all(
                    format!(
                        "{addr}: {}\n",
                        humantime::format_rfc3339_micros(SystemTime::now())
                    )
                    .as_bytes(),
                );
            }
        }
    });
    Ok((addr, thread))
}

fn time_wait_count() -> usize {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            t.lines()
                .skip(1)
                .filter(|l| l.split_whitespace().nth(3) == Some("06"))
                .count()
        })
        .sum()
}

/// Connect and read to EOF, sending nothing (like `nc`): the one exchange
/// that both the bare responder (which never reads) and the time-server
/// complete without a reset.
fn read_only_request(addr: SocketAddr) -> std::io::Result<usize> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = Vec::with_capacity(128);
    stream.read_to_end(&mut buf)?;
    Ok(buf.len())
}

/// Connections per second with `threads` client threads, `total` in all.
/// Connections per second with `threads` client threads, `total` in all,
/// each made by `exchange`; errors; the peak RSS of `sample_pid`; the time
/// the connections took.
fn hammer_with(
    addr: SocketAddr,
    threads: usize,
    total: usize,
    sample_pid: Option<u32>,
    exchange: fn(SocketAddr) -> std::io::Result<usize>,
) -> (f64, usize, u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let per_thread = total / threads;
    let started = Instant::now();
    // The time until the last client thread ends: the sampler below wakes
    // every 100 ms, and waiting for it once made a 10,000-connection round
    // look up to 15 % slower than it was.
    let (max_rss, finished) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (done, errors) = (done.clone(), errors.clone());
                scope.spawn(move || {
                    for _ in 0..per_thread {
                        match exchange(addr) {
                            Ok(n) if n > 0 => done.fetch_add(1, Ordering::Relaxed),
                            _ => errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    Instant::now()
                })
            })
            .collect();
        let mut max_rss = 0;
        if let Some(pid) = sample_pid {
            while done.load(Ordering::Relaxed) + errors.load(Ordering::Relaxed)
                < (per_thread * threads) as u64
            {
                max_rss = max_rss.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let finished = workers
            .into_iter()
            .filter_map(|worker| worker.join().ok())
            .max()
            .unwrap_or_else(Instant::now);
        (max_rss, finished)
    });
    let took = finished.saturating_duration_since(started);
    let rate = done.load(Ordering::Relaxed) as f64 / took.as_secs_f64().max(1e-9);
    (rate, errors.load(Ordering::Relaxed) as usize, max_rss, took)
}

/// 4. time-server connections per second against the bare responder.
fn throughput(zk: &ZkServer, args: &Args, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    let server = ServerProcess::start(args, zk, &BasePath::from_static("/throughput"), 1, "10s")?;
    // The same server with its metrics on: what counting costs.
    let counted = ServerProcess::start_with(
        args,
        zk,
        &BasePath::from_static("/throughput_metrics"),
        1,
        "10s",
        &["--metrics-listen", "127.0.0.1:0"],
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let (bare_addr, bare_thread) = bare_responder(stop.clone())?;
    for threads in [1, 4] {
        // Interleaved in rounds, so that the three see the same machine (a
        // shared one drifts by tens of percent within a minute).
        let rounds = 10;
        let chunk = sizes.connections / rounds;
        let mut totals = [(0.0f64, 0usize, Duration::ZERO); 4];
        let (mut rss, mut bare_tw, mut tw) = (0, 0, 0);
        for round in 0..rounds {
            // The fourth: the time-server again, its clients sending
            // `timestamp` first (the bare responder would reset them).
            // Each round starts one later: every target takes every place
            // in the order (the one after another's burst is measurably
            // slower: the kernel is still reaping its sockets).
            let targets = [
                bare_addr,
                server.addrs[0],
                counted.addrs[0],
                server.addrs[0],
            ];
            for at in (0..targets.len()).map(|k| (k + round) % targets.len()) {
                let addr = targets[at];
                let pid = (at == 1).then(|| server.pid());
                let exchange = if at == 3 {
                    bare_request
                } else {
                    read_only_request
                };
                let (rate, errors, peak, took) = hammer_with(addr, threads, chunk, pid, exchange);
                totals[at].0 += rate * took.as_secs_f64();
                totals[at].1 += errors;
                totals[at].2 += took;
                rss = rss.max(peak);
                match at {
                    0 => bare_tw = time_wait_count(),
                    1 => tw = time_wait_count(),
                    _ => {}
                }
            }
        }
        let rate = |(done, _, took): (f64, usize, Duration)| done / took.as_secs_f64().max(1e-9);
        report.server_rss_load_kib = report.server_rss_load_kib.max(rss);
        report.throughput.push(report::Throughput {
            threads,
            connections: chunk * rounds,
            bare_rate: rate(totals[0]),
            bare_errors: totals[0].1,
            bare_time_wait: bare_tw,
            server_rate: rate(totals[1]),
            server_errors: totals[1].1,
            server_time_wait: tw,
            with_metrics_rate: rate(totals[2]),
            with_metrics_errors: totals[2].1,
            write_first_rate: rate(totals[3]),
            write_first_errors: totals[3].1,
        });
    }
    stop.store(true, Ordering::Relaxed);
    let _ = TcpStream::connect(bare_addr);
    let _ = bare_thread.join();
    Ok(())
}

/// 5. Failover of one of three servers under a 10 ms client.
fn failover(zk: &ZkServer, args: &Args, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    for signal in ["TERM", "KILL", "STOP"] {
        let base = BasePath::new(&format!("/failover_{}", signal.to_lowercase()))?;
        let servers: Vec<ServerProcess> = (0..3)
            .map(|_| ServerProcess::start(args, zk, &base, 1, "4s"))
            .collect::<anyhow::Result<_>>()?;
        let victim = servers[0].addrs[0].to_string();
        let out = LineRecorder::new();
        let config = time_client::Config {
            base_path: base.clone(),
            count: sizes.failover_requests,
            interval: Duration::from_millis(10),
            limits: RequestLimits {
                timeout: Duration::from_millis(500),
                ..RequestLimits::default()
            },
            ..time_client::Config::new(zk.connect_string())
        };
        let mut sink = out.clone();
        let (keep, stop) = mpsc::channel::<i32>();
        let client = std::thread::spawn(move || time_client::run(&config, &mut sink, &stop));
        out.wait_for_lines(60, Duration::from_secs(30));
        let observer = session(zk)?;
        let fault = Instant::now();
        send_signal(servers[0].pid(), signal)?;
        let victim_path = format!("{base}/{victim}");
        let stale = wait_until(
            Duration::from_secs(60),
            "the victim's node vanishes",
            || {
                observer
                    .stat(&victim_path)
                    .ok()
                    .flatten()
                    .is_none()
                    .then(|| fault.elapsed())
            },
        );
        let summary = client
            .join()
            .map_err(|_| anyhow::anyhow!("client panicked"))??;
        drop(keep);
        let first_success = out
            .lines()
            .iter()
            .find(|(at, line)| *at > fault && !line.contains("FAILED"))
            .map(|(at, _)| at.duration_since(fault));
        report.failover.push(report::Failover {
            signal: signal.into(),
            requests: summary.total(),
            failed: summary.failed,
            retries: summary.retries,
            first_success,
            stale_window: stale,
            p99: summary.latency_quantile(0.99),
            max: summary.latency_quantile(1.0),
        });
        drop(servers);
    }
    Ok(())
}

fn own_rss_kib() -> u64 {
    rss_kib(std::process::id())
}

/// `n` plain children `10.x.y.z:8897` under `base`, created by 8 threads
/// on one session.
fn register_many(owner: &Arc<Session>, base: &str, n: usize) -> anyhow::Result<()> {
    owner.ensure_path(base)?;
    create_many(owner, n, |i| {
        (format!("{base}/{}", nth_endpoint(i)), b"{}".to_vec())
    })
}

/// Creates the `n` ephemeral nodes `node(i)` names (path, data), from 8
/// threads of one session.
fn create_many(
    owner: &Arc<Session>,
    n: usize,
    node: impl Fn(usize) -> (String, Vec<u8>) + Sync,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let node = &node;
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let owner = owner.clone();
                scope.spawn(move || -> zkutil::Result<()> {
                    for i in (w..n).step_by(8) {
                        let (path, data) = node(i);
                        owner.create_ephemeral(&path, &data)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })
}

/// The packets (received + sent) of `session`'s connection, as ZooKeeper
/// counts them (`cons`).
fn packets(zk: &ZkServer, session: zkutil::SessionId) -> anyhow::Result<u64> {
    let addr = SocketAddr::from(([127, 0, 0, 1], zk.port()));
    let cons = zkutil::admin::four_letter_word(addr, "cons", Duration::from_secs(2))?;
    let line = cons
        .lines()
        .find(|line| line.contains(&format!("sid={session}")))
        .context("the watcher's connection in cons")?;
    let counter = |name: &str| -> u64 {
        line.split([',', '('])
            .find_map(|field| field.strip_prefix(name)?.parse().ok())
            .unwrap_or(0)
    };
    Ok(counter("recved=") + counter("sent="))
}

/// Section 6, what one change costs a watcher: per-child events (a
/// persistent recursive watch) against re-listing every child (ZooKeeper
/// older than 3.6, and the way before), at 1,000 and 10,000 instances, on
/// the same ZooKeeper in the same run.
fn change_cost(zk: &ZkServer, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    let counts: &[usize] = if sizes.scale >= 10_000 {
        &[1_000, 10_000]
    } else {
        &[1_000]
    };
    for &n in counts {
        let base = format!("/cost{n}");
        let owner = session(zk)?;
        register_many(&owner, &base, n)?;
        let path = BasePath::new(&base)?;
        for events in [false, true] {
            let discovery = if events {
                Discovery::start(session(zk)?, &path)?
            } else {
                Discovery::start_relisting_for_testing(session(zk)?, &path, false)?
            };
            discovery
                .wait_for(Duration::from_secs(60), |s| s.instances().len() == n)
                .context("first listing")?;
            let mut seen = Vec::new();
            let watcher = discovery.session().id();
            let before = packets(zk, watcher)?;
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
            let per_change = (packets(zk, watcher)?.saturating_sub(before)) as f64 / changes as f64;
            report.change_cost.push(report::ChangeCost {
                instances: n,
                way: if events {
                    "per-child events"
                } else {
                    "re-list every child"
                },
                visibility: Stats::of(&seen),
                packets_per_change: per_change,
            });
        }
    }
    Ok(())
}

/// The data Curator's `JsonInstanceSerializer` writes for instance `id`
/// of `service` at `endpoint` (no payload).
fn curator_record(service: &str, id: &str, endpoint: Endpoint) -> Vec<u8> {
    serde_json::json!({
        "name": service, "id": id, "address": endpoint.ip().to_string(),
        "port": endpoint.port(), "sslPort": null, "payload": null,
        "registrationTimeUTC": 1_795_800_000_000_i64, "serviceType": "DYNAMIC", "uriSpec": null,
    })
    .to_string()
    .into_bytes()
}

/// The endpoint of the `i`-th instance of a big registry.
fn nth_endpoint(i: usize) -> Endpoint {
    Endpoint::new(SocketAddr::from((
        [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
        8897,
    )))
}

/// Registers `n` Curator instances of `service` under `/services`, from
/// 8 threads of one session.
fn register_curator_many(owner: &Arc<Session>, service: &str, n: usize) -> anyhow::Result<()> {
    let parent = format!("/services/{service}");
    owner.ensure_path(&parent)?;
    create_many(owner, n, |i| {
        let id = format!("i{i}");
        let data = curator_record(service, &id, nth_endpoint(i));
        (format!("{parent}/{id}"), data)
    })
}

/// Section 10, against Apache Curator: the same registrations (Curator's
/// own format) followed on the same ZooKeeper by Curator 5.4's
/// `ServiceCache` (its own JVM, the interop tests' peer) and by our
/// `Discovery` (the `observe` child process), with N instances already
/// registered: how soon each sees a change, what each change costs each
/// watcher in packets, and the memory of each process.
fn against_curator(zk: &ZkServer, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    let peer = match zkutil::testing::CuratorPeer::get() {
        Ok(peer) => peer,
        Err(err) => {
            eprintln!("bench: no Curator here ({err}); section 10 skipped");
            return Ok(());
        }
    };
    let hosts = zk.connect_string();
    let counts: &[usize] = if sizes.scale >= 10_000 {
        &[0, 1_000, 10_000]
    } else {
        &[0, 1_000]
    };
    let changes = if sizes.scale >= 10_000 { 100 } else { 20 };
    for &n in counts {
        let service = format!("cmp{n}");
        let parent = format!("/services/{service}");
        let owner = session(zk)?;
        register_curator_many(&owner, &service, n)?;
        // Ours: the observer process, ready once it lists all n.
        let exe = std::env::current_exe()?;
        let mut ours = Command::new(exe)
            .args(["observe", &hosts, &parent, "--expect", &n.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = ours.stdout.take().context("observer stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().transpose()?.unwrap_or_default();
        let our_session = ready
            .strip_prefix("ready 0x")
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .map(zkutil::SessionId::new)
            .context("the observer's session")?;
        // Curator's: the peer's ServiceCache, ready once it counts n.
        let mut curator = peer.start(&["count", &hosts, "/services", &service]);
        let session_line = curator
            .stdout()
            .wait_for(Duration::from_secs(60), |lines, _| {
                lines
                    .iter()
                    .find_map(|(_, l)| l.strip_prefix("session 0x").map(str::to_owned))
            })
            .context("Curator's session")?;
        let curator_session =
            zkutil::SessionId::new(i64::from_str_radix(&session_line, 16).context("a session id")?);
        let count_line = |curator: &TestProcess, count: usize, after: usize| {
            curator
                .stdout()
                .wait_for(Duration::from_secs(120), |lines, _| {
                    lines
                        .iter()
                        .enumerate()
                        .skip(after)
                        .find_map(|(at, (_, line))| {
                            let mut parts = line.split(' ');
                            let seen = (parts.next(), parts.next())
                                == (Some("count"), Some(&*count.to_string()));
                            let nanos: u128 = parts.next()?.parse().ok()?;
                            seen.then_some((at, nanos))
                        })
                })
        };
        let (mut at, _) = count_line(&curator, n, 0).context("Curator's first load")?;
        let rss_ours = rss_kib(ours.id());
        let rss_curator = rss_kib(curator.pid());
        let (ours_before, curator_before) =
            (packets(zk, our_session)?, packets(zk, curator_session)?);
        let (mut seen_ours, mut seen_curator) = (Vec::new(), Vec::new());
        for i in 0..changes {
            let id = format!("new{}", i / 2);
            let endpoint = Endpoint::new(SocketAddr::from(([127, 0, 0, 3], 1000 + (i / 2) as u16)));
            let path = format!("{parent}/{id}");
            let (kind, count) = if i % 2 == 0 {
                owner.create_ephemeral(&path, &curator_record(&service, &id, endpoint))?;
                ("added", n + 1)
            } else {
                owner.delete(&path, None)?;
                ("removed", n)
            };
            let acked = unix_nanos();
            let mut ours_seen = None;
            for line in lines.by_ref() {
                let line = line?;
                let mut parts = line.split(' ');
                if (parts.next(), parts.next()) == (Some(kind), Some(&*endpoint.to_string())) {
                    ours_seen = parts.next().and_then(|n| n.parse::<u128>().ok());
                    break;
                }
            }
            let ours_seen = ours_seen.context("our observer's line")?;
            let (next, curator_seen) =
                count_line(&curator, count, at + 1).context("Curator's line")?;
            at = next;
            seen_ours.push(Duration::from_nanos(ours_seen.saturating_sub(acked) as u64));
            seen_curator.push(Duration::from_nanos(
                curator_seen.saturating_sub(acked) as u64
            ));
        }
        let per_change =
            |after: u64, before: u64| after.saturating_sub(before) as f64 / changes as f64;
        report.curator.push(report::AgainstCurator {
            instances: n,
            changes,
            ours: Stats::of(&seen_ours),
            curator: Stats::of(&seen_curator),
            ours_packets: per_change(packets(zk, our_session)?, ours_before),
            curator_packets: per_change(packets(zk, curator_session)?, curator_before),
            ours_rss_kib: rss_ours,
            curator_rss_kib: rss_curator,
        });
        curator.close_stdin();
        let _ = curator.wait(Duration::from_secs(10));
        let _ = ours.kill();
        let _ = ours.wait();
        eprintln!("bench: against Curator at {n} instances done");
    }
    Ok(())
}

/// ZooKeeper's own packet counters (`mntr`), summed over `ports`.
fn server_packets(ports: &[u16]) -> anyhow::Result<u64> {
    let mut total = 0;
    for port in ports {
        let addr = SocketAddr::from(([127, 0, 0, 1], *port));
        let mntr = zkutil::admin::four_letter_word(addr, "mntr", Duration::from_secs(2))?;
        for line in mntr.lines() {
            let mut parts = line.split_whitespace();
            if let (Some("zk_packets_received" | "zk_packets_sent"), Some(n)) =
                (parts.next(), parts.next())
            {
                total += n.parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(total)
}

/// Section 11, fan-out: `watchers` client sessions (threads of this
/// process, each its own session and `Discovery`) follow one base path on
/// one ZooKeeper or an ensemble; each registration is timed until the last
/// watcher's snapshot has it.
fn fan_out_on(
    hosts: &str,
    ports: &[u16],
    setup: &'static str,
    watchers: usize,
    changes: usize,
) -> anyhow::Result<report::FanOut> {
    let base = BasePath::from_static("/fanout");
    let discoveries: Vec<Discovery> = (0..watchers)
        .map(|_| -> anyhow::Result<Discovery> {
            let session = Arc::new(
                SessionConfig::new(hosts)
                    .with_session_timeout(Duration::from_secs(30))
                    .connect()?,
            );
            Ok(Discovery::start(session, &base)?)
        })
        .collect::<anyhow::Result<_>>()?;
    let writer = Arc::new(SessionConfig::new(hosts).connect()?);
    writer.ensure_path(base.as_str())?;
    let before = server_packets(ports)?;
    let (mut each, mut last) = (Vec::new(), Vec::new());
    for i in 0..changes {
        let path = format!("/fanout/127.0.0.4:{}", 1000 + i);
        let expected = i + 1;
        let t = Instant::now();
        writer.create_ephemeral(&path, b"")?;
        // Polled every 200 µs: a change takes milliseconds to reach 500.
        let mut seen: Vec<Option<Duration>> = vec![None; watchers];
        let deadline = t + Duration::from_secs(60);
        while seen.iter().any(Option::is_none) && Instant::now() < deadline {
            for (slot, discovery) in seen.iter_mut().zip(&discoveries) {
                if slot.is_none() && discovery.snapshot().instances().len() >= expected {
                    *slot = Some(t.elapsed());
                }
            }
            std::thread::sleep(Duration::from_micros(200));
        }
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
    let per_change = server_packets(ports)?.saturating_sub(before) as f64 / changes as f64;
    drop(discoveries);
    Ok(report::FanOut {
        setup,
        watchers,
        changes,
        each: Stats::of(&each),
        last: Stats::of(&last),
        packets_per_change: per_change,
    })
}

fn fan_out(zk: &ZkServer, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    let counts: &[usize] = if sizes.scale >= 10_000 {
        &[100, 500]
    } else {
        &[50]
    };
    let changes = if sizes.scale >= 10_000 { 20 } else { 5 };
    for &watchers in counts {
        // A fresh base path per run: each starts empty.
        let owner = session(zk)?;
        if owner.stat("/fanout")?.is_some() {
            for child in owner.children("/fanout")? {
                let _ = owner.delete(&format!("/fanout/{child}"), None);
            }
        }
        report.fan_out.push(fan_out_on(
            &zk.connect_string(),
            &[zk.port()],
            "standalone",
            watchers,
            changes,
        )?);
        eprintln!("bench: fan-out to {watchers} on standalone done");
    }
    let ensemble = zkutil::testing::ZkEnsemble::start(3)
        .map_err(|err| anyhow::anyhow!("starting a 3-node ensemble: {err}"))?;
    let ports: Vec<u16> = (0..3).map(|i| ensemble.port(i)).collect();
    let watchers = *counts.last().unwrap_or(&50);
    report.fan_out.push(fan_out_on(
        &ensemble.connect_string(),
        &ports,
        "3-node ensemble",
        watchers,
        changes,
    )?);
    eprintln!("bench: fan-out to {watchers} on the ensemble done");
    Ok(())
}

/// Section 9, picking around a slow server: one of three slowed 10x,
/// random against p2c, the same requests interleaved.
fn slow_server(
    zk: &ZkServer,
    args: &Args,
    sizes: Sizes,
    report: &mut Report,
) -> anyhow::Result<()> {
    let base = BasePath::from_static("/slow");
    let normal = ServerProcess::start(args, zk, &base, 2, "10s")?;
    let limits = RequestLimits::default();
    let timed = |endpoint: Endpoint| {
        let t = Instant::now();
        request(endpoint, &limits).map(|_| t.elapsed())
    };
    let n = sizes.requests / 5;
    let normal_p50 = Stats::of(
        &(0..n)
            .map(|_| timed(Endpoint::new(normal.addrs[0])))
            .collect::<Result<Vec<_>, _>>()?,
    )
    .p50;
    // Slowed so that its latency is about 10x the others'.
    let delay = (normal_p50 * 9).max(Duration::from_micros(100));
    let delay_flag = format!("{}us", delay.as_micros());
    let slow =
        ServerProcess::start_with(args, zk, &base, 1, "10s", &["--reply-delay", &delay_flag])?;
    let slow_endpoint = Endpoint::new(slow.addrs[0]);
    let slow_p50 = Stats::of(
        &(0..n.min(500))
            .map(|_| timed(slow_endpoint))
            .collect::<Result<Vec<_>, _>>()?,
    )
    .p50;
    let discovery = Discovery::start(session(zk)?, &base)?;
    discovery
        .wait_for(Duration::from_secs(30), |s| s.instances().len() == 3)
        .context("the three servers are discovered")?;
    let strategies = [("random", Strategy::Random), ("p2c", Strategy::P2c)];
    let selectors: Vec<Selector> = strategies.iter().map(|(_, s)| Selector::new(*s)).collect();
    let mut samples = vec![Vec::new(); strategies.len()];
    let mut to_slow = vec![0usize; strategies.len()];
    for _ in 0..sizes.requests {
        for (i, selector) in selectors.iter().enumerate() {
            let snapshot = discovery.snapshot();
            let Some(endpoint) = selector.pick(snapshot.instances()).map(|i| i.endpoint()) else {
                bail!("no server to pick");
            };
            let t = Instant::now();
            selector.started(endpoint);
            request(endpoint, &limits)?;
            let took = t.elapsed();
            selector.finished(endpoint, took);
            samples[i].push(took);
            to_slow[i] += usize::from(endpoint == slow_endpoint);
        }
    }
    let rows = strategies
        .iter()
        .zip(samples.iter().zip(&to_slow))
        .map(|((name, _), (sample, slow))| report::Picking {
            strategy: name,
            latency: Stats::of(sample),
            to_slow: *slow as f64 / sample.len().max(1) as f64,
        })
        .collect();
    report.slow_server = Some(report::SlowServer {
        normal_p50,
        slow_p50,
        delay,
        rows,
    });
    drop((normal, slow));
    Ok(())
}

/// 6. Scale: many instances registered by one process.
fn scale(zk: &ZkServer, sizes: Sizes, report: &mut Report) -> anyhow::Result<()> {
    let owner = session(zk)?;
    let started = Instant::now();
    register_many(&owner, "/scale", sizes.scale)?;
    let registering = started.elapsed();
    let rss_before = own_rss_kib();
    let discovery = Discovery::start(session(zk)?, &BasePath::from_static("/scale"))?;
    let first = discovery
        .wait_for(Duration::from_secs(60), |s| {
            s.instances().len() == sizes.scale
        })
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
    report.scale = Some(report::Scale {
        instances: first.instances().len(),
        registering,
        refresh: Stats::of(&refresh),
        pick: Stats::of(&picks),
        rss_delta_kib: rss_after.saturating_sub(rss_before),
    });
    // The client's own memory, as a process: a short run of the binary.
    report.client_rss_kib = client_rss(zk)?;
    Ok(())
}

fn client_rss(zk: &ZkServer) -> anyhow::Result<u64> {
    let bin = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("time-client"));
    let Some(bin) = bin.filter(|b| b.exists()) else {
        return Ok(0);
    };
    let owner = session(zk)?;
    let (addr, stop) = {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, _thread) = bare_responder(stop.clone())?;
        (addr, stop)
    };
    owner.ensure_path("/rss")?;
    owner.create_ephemeral(&format!("/rss/{addr}"), b"{}")?;
    let mut child = Command::new(bin)
        .args([
            "--zk",
            &zk.connect_string(),
            "--base-path",
            "/rss",
            "--count",
            "300",
            "--interval",
            "5ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut max = 0;
    while child.try_wait()?.is_none() {
        max = max.max(rss_kib(child.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = TcpStream::connect(addr);
    Ok(max)
}
