//! Section 13, TLS to ZooKeeper: what TLS with a client certificate
//! (`ssl.clientAuth=need`) costs against plaintext on the same ZooKeeper,
//! which serves both (a `secureClientPort` and a `clientPort`, both on
//! Netty): the time to a connected session, how soon a change is seen by a
//! watcher in another session, and a time-server's start to its
//! registration. The two sides' samples alternate, so a noisy moment of a
//! shared machine falls on both. Issue 28's goal: visibility at most 1.2×
//! plaintext.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zkutil::testing::{TlsMode, ZkOptions, ZkServer};
use zkutil::{BasePath, Discovery, Session, SessionConfig};

use super::Report;
use super::region::seen_by;
use crate::Bench;
use crate::stats::{Stats, d, ratio_of};
use crate::summary::Row;

/// Each measure, plaintext and TLS.
pub struct Tls {
    pub connect: [Stats; 2],
    pub visibility: [Stats; 2],
    pub start: [Stats; 2],
}

/// One way to reach the ZooKeeper: its session configuration, and the
/// flags that make a time-server reach it so.
struct Side {
    name: &'static str,
    config: SessionConfig,
    flags: Vec<String>,
    writer: Session,
    watcher: [Discovery; 1],
}

impl Side {
    fn new(config: SessionConfig, flags: Vec<String>, name: &'static str) -> anyhow::Result<Side> {
        let writer = config.clone().connect()?;
        let base = format!("/tls-bench-{name}");
        writer.ensure_path(&base)?;
        let watcher = [Discovery::start(
            Arc::new(config.clone().connect()?),
            &BasePath::new(&base)?,
        )?];
        Ok(Side {
            name,
            config,
            flags,
            writer,
            watcher,
        })
    }

    fn connect(&self) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let session = self.config.clone().connect()?;
        let took = t.elapsed();
        drop(session);
        Ok(took)
    }

    fn change_seen(&self, i: usize) -> anyhow::Result<Duration> {
        let base = self.watcher[0].base_path().to_string();
        let path = format!("{base}/127.0.0.7:{}", 1000 + i);
        let t = Instant::now();
        self.writer.create_ephemeral(&path, b"")?;
        let seen = seen_by(&self.watcher, 1, t)?;
        self.writer.delete(&path, None)?;
        seen_by(&self.watcher, 0, Instant::now())?;
        seen.first().copied().context("no watcher")
    }

    /// A time-server's start until its node is listed, under a base path
    /// of its own (a killed server's node lingers for its session timeout).
    fn start(&self, bench: &Bench, zk: &str, i: usize) -> anyhow::Result<Duration> {
        let base = format!("/tls-start-{}-{i}", self.name);
        let base = base.as_str();
        let t = Instant::now();
        let mut server = Command::new(&bench.server_bin)
            .args(["--zk", zk, "--base-path", base])
            .args(["--listen", "127.0.0.1:0", "--drain", "0s"])
            .args(&self.flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bench.server_bin.display()))?;
        let registered = zkutil::testing::poll_until(
            Duration::from_secs(30),
            Duration::from_micros(500),
            || {
                self.writer
                    .children(base)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .map(|_| t.elapsed())
            },
        );
        let _ = server.kill();
        let _ = server.wait();
        registered.context("a time-server did not register within 30 s")
    }
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let zk = ZkServer::start_with(ZkOptions {
        tls: Some(TlsMode::Need),
        plaintext_too: true,
        ..ZkOptions::default()
    })
    .map_err(|e| anyhow::anyhow!("ZooKeeper serving TLS and plaintext: {e}"))?;
    let Some(plain_hosts) = zk.plaintext_connect_string() else {
        bail!("the fixture has no plaintext port");
    };
    let tls_hosts = zk.connect_string();
    let sides = [
        Side::new(SessionConfig::new(&plain_hosts), Vec::new(), "plain")?,
        Side::new(
            zk.session_config(Some("alice")),
            zk.cli_tls_flags("alice"),
            "tls",
        )?,
    ];
    let samples = bench.sizes.visibility.clamp(20, 200);
    let mut connects = [Vec::new(), Vec::new()];
    let mut seen = [Vec::new(), Vec::new()];
    let mut started = [Vec::new(), Vec::new()];
    for _ in 0..samples / 2 {
        for (side, out) in sides.iter().zip(&mut connects) {
            out.push(side.connect()?);
        }
    }
    for i in 0..samples {
        for (side, out) in sides.iter().zip(&mut seen) {
            out.push(side.change_seen(i)?);
        }
    }
    let starts = if bench.sizes.full() { 20 } else { 5 };
    for i in 0..starts {
        for ((side, out), hosts) in sides
            .iter()
            .zip(&mut started)
            .zip([&plain_hosts, &tls_hosts])
        {
            out.push(side.start(bench, hosts, i)?);
        }
    }
    eprintln!("bench: tls done");
    let stats = |samples: &[Vec<Duration>; 2]| [Stats::of(&samples[0]), Stats::of(&samples[1])];
    report.tls = Some(Tls {
        connect: stats(&connects),
        visibility: stats(&seen),
        start: stats(&started),
    });
    Ok(())
}

pub fn write(md: &mut String, tls: &Tls) {
    let _ = writeln!(
        md,
        "## 13. TLS to ZooKeeper\n\n\
         One standalone ZooKeeper serving plaintext on its `clientPort` and TLS with \
         `ssl.clientAuth=need` (a client certificate, the x509 identity) on its `secureClientPort`, \
         both on Netty; the two sides' samples alternate. \
         A change: a create in one session until a watcher in another session lists it (snapshots polled \
         every 200 µs). A start: a time-server spawned until its node is listed.\n\n\
         | measure | n | plaintext median | TLS median | TLS : plaintext | TLS p99 |\n|---|---:|---:|---:|---:|---:|"
    );
    for (what, [plain, tls]) in [
        ("a connected session", &tls.connect),
        ("a change seen by a watcher", &tls.visibility),
        ("a time-server's start to registered", &tls.start),
    ] {
        let _ = writeln!(
            md,
            "| {what} | {} | {} | {} | {:.2}× | {} |",
            tls.n,
            d(plain.p50),
            d(tls.p50),
            ratio_of(tls.p50, plain.p50),
            d(tls.p99)
        );
    }
    md.push('\n');
}

/// Its row of the summary: visibility over TLS against plaintext.
pub fn summary(tls: &Tls) -> Vec<Row> {
    let [plain, secured] = &tls.visibility;
    let ratio = ratio_of(secured.p50, plain.p50);
    vec![Row::against(
        "a change seen by a watcher, median: over TLS : plaintext",
        d(secured.p50),
        d(plain.p50),
        format!("{ratio:.2}×"),
        "≤ 1.2×",
        Some(ratio <= 1.2),
    )]
}
