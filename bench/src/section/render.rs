//! Section 14, rendered config: how long a registration takes to reach a
//! consumer that does not link zkutil, through `zkutil render` and the
//! ready-made HAProxy template. From the registration's create
//! acknowledgement to: an in-process `Discovery` seeing it (the baseline,
//! in the same run), the rendered file holding it, and the first request
//! through HAProxy (2.6, master-worker, reloaded by `--exec`) answered by
//! it. Issue 30's target: a request through HAProxy within 2 s.

use std::fmt::Write as _;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zkutil::{BasePath, Discovery};

use super::Report;
use super::region::seen_by;
use crate::Bench;
use crate::bare::BareResponder;
use crate::stats::{Stats, d, ratio_of};
use crate::summary::Row;

/// The three times, each from the registration's create.
pub struct Render {
    pub discovery: Stats,
    pub file: Stats,
    pub haproxy: Stats,
}

/// A child killed and reaped on drop.
pub(super) struct Killed(pub(super) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Who answered a request through `addr` (the reply names its server).
fn answered_by(addr: SocketAddr) -> Option<String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut reply = String::new();
    stream.take(4096).read_to_string(&mut reply).ok()?;
    reply.split_once(": ").map(|(server, _)| server.to_owned())
}

/// Polls `f` every 200 µs for up to 30 s: the time since `t` it first held.
fn until(t: Instant, what: &str, mut f: impl FnMut() -> bool) -> anyhow::Result<Duration> {
    while t.elapsed() < Duration::from_secs(30) {
        if f() {
            return Ok(t.elapsed());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    bail!("{what}: not within 30 s")
}

fn file_has(path: &Path, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|file| file.contains(text))
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    if Command::new("haproxy").arg("-v").output().is_err() {
        bail!("haproxy is not installed (scripts/zk.sh install installs it)");
    }
    let zkutil_bin = bench.server_bin.with_file_name("zkutil");
    let hosts = bench.zk.connect_string();
    let base = "/render-bench";
    let session = bench.session()?;
    session.ensure_path(base)?;
    // One instance that stays: HAProxy always has a backend.
    let stays = BareResponder::start()?;
    session.create_ephemeral(&format!("{base}/{}", stays.addr), b"")?;
    let watcher = [Discovery::start(bench.session()?, &BasePath::new(base)?)?];
    let dir = std::env::temp_dir().join(format!("zkutil-render-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("haproxy.cfg");
    let bind = TcpListener::bind("127.0.0.2:0")?.local_addr()?;
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../zkutil/cli/templates/haproxy.cfg.j2");
    let spec = format!("{}:{}", template.display(), config.display());
    let envs = [
        ("HAPROXY_BIND", bind.to_string()),
        (
            "HAPROXY_STATS_SOCKET",
            dir.join("admin.sock").display().to_string(),
        ),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let once = Command::new(&zkutil_bin)
        .args([
            "--zk",
            &hosts,
            "render",
            "--once",
            "--path",
            base,
            "--template",
            &spec,
        ])
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("running {}", zkutil_bin.display()))?;
    anyhow::ensure!(once.success(), "zkutil render --once failed");
    let haproxy = Killed(
        Command::new("haproxy")
            .args(["-W", "-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("haproxy.log"))?)
            .spawn()
            .context("starting haproxy")?,
    );
    until(Instant::now(), "HAProxy listening", || {
        answered_by(bind).is_some()
    })?;
    let reload = format!("kill -USR2 {}", haproxy.0.id());
    let _render = Killed(
        Command::new(&zkutil_bin)
            .args([
                "--zk",
                &hosts,
                "render",
                "--path",
                base,
                "--template",
                &spec,
            ])
            .args(["--check", "haproxy -c -q -f {}", "--exec", &reload])
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .spawn()
            .context("starting zkutil render")?,
    );
    let samples = if bench.sizes.full() { 20 } else { 5 };
    let (mut seen, mut filed, mut served) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        let new = BareResponder::start()?;
        let name = new.addr.to_string();
        let path = format!("{base}/{name}");
        let t = Instant::now();
        session.create_ephemeral(&path, b"")?;
        seen.push(seen_by(&watcher, 2, t)?[0]);
        filed.push(until(t, "the rendered file", || file_has(&config, &name))?);
        let reached = until(t, "a request through HAProxy", || {
            answered_by(bind).is_some_and(|server| server == name)
        });
        served.push(reached.with_context(|| {
            format!(
                "{name} never answered through HAProxy; the rendered file:\n{}",
                std::fs::read_to_string(&config).unwrap_or_default()
            )
        })?);
        session.delete(&path, None)?;
        seen_by(&watcher, 1, Instant::now())?;
        until(Instant::now(), "the file without it", || {
            !file_has(&config, &name)
        })?;
        // HAProxy reloads by signal asynchronously, and a signal during a
        // reload can be lost: the next sample waits for this one's reload.
        until(Instant::now(), "HAProxy without it", || {
            (0..6).all(|_| answered_by(bind).is_some_and(|server| server != name))
        })?;
    }
    drop(haproxy);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("bench: render done");
    report.render = Some(Render {
        discovery: Stats::of(&seen),
        file: Stats::of(&filed),
        haproxy: Stats::of(&served),
    });
    Ok(())
}

pub fn write(md: &mut String, render: &Render) {
    let _ = writeln!(
        md,
        "## 14. Rendered config (`zkutil render`, HAProxy)\n\n\
         `zkutil render` with the ready-made `haproxy.cfg.j2`, `--check 'haproxy -c -q -f {{}}'` and a \
         master-worker reload (`--exec 'kill -USR2 <master>'`) of HAProxy 2.6. Each sample registers a \
         new instance (a plain node; a bare responder answers for it) and times, from the create's \
         acknowledgement: an in-process `Discovery` listing it (the baseline), the rendered file naming it \
         (polled every 200 µs), and the first request through HAProxy that it answers (requests one after \
         another, each on a new connection).\n\n\
         | from a registration to | n | median | p99 | : discovery |\n|---|---:|---:|---:|---:|"
    );
    against_discovery(
        md,
        &render.discovery,
        &[
            ("a `Discovery` listing it (baseline)", &render.discovery),
            ("the rendered file", &render.file),
            ("a request through HAProxy answered by it", &render.haproxy),
        ],
    );
}

/// Rows of `| what | n | median | p99 | : discovery |`, each against the
/// `discovery` baseline's median, and the table's end.
pub(super) fn against_discovery(md: &mut String, discovery: &Stats, rows: &[(&str, &Stats)]) {
    for (what, stats) in rows {
        let _ = writeln!(
            md,
            "| {what} | {} | {} | {} | {:.1}× |",
            stats.n,
            d(stats.p50),
            d(stats.p99),
            ratio_of(stats.p50, discovery.p50)
        );
    }
    md.push('\n');
}

/// Its row of the summary: a registration to a request through HAProxy.
pub fn summary(render: &Render) -> Vec<Row> {
    vec![Row::absolute(
        "a registration to a request through HAProxy (zkutil render), median",
        d(render.haproxy.p50),
        "≤ 2 s",
        render.haproxy.p50 <= Duration::from_secs(2),
    )]
}
