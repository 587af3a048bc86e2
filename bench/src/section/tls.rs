//! Section 13, TLS to ZooKeeper: what TLS with a client certificate
//! (`ssl.clientAuth=need`) costs against plaintext, on two standalone
//! ZooKeepers started alike, one serving TLS only and one plaintext only
//! (the fixture serves one or the other): the time to a connected session,
//! how soon a change is seen by a watcher in another session, and a
//! time-server's start to its registration. Issue 28's goal: visibility at
//! most 1.2× plaintext.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zkutil::testing::{TlsMode, ZkServer};
use zkutil::{BasePath, Discovery};

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

/// The three measures on `zk`.
fn measure(bench: &Bench, zk: &ZkServer) -> anyhow::Result<[Stats; 3]> {
    let config = || zk.session_config(Some("alice"));
    let samples = bench.sizes.visibility.clamp(20, 200);
    let mut connects = Vec::new();
    for _ in 0..samples / 2 {
        let t = Instant::now();
        let session = config().connect()?;
        connects.push(t.elapsed());
        drop(session);
    }
    let writer = Arc::new(config().connect()?);
    writer.ensure_path("/tls-bench")?;
    let watcher = [Discovery::start(
        Arc::new(config().connect()?),
        &BasePath::from_static("/tls-bench"),
    )?];
    let mut seen = Vec::new();
    for i in 0..samples {
        let path = format!("/tls-bench/127.0.0.7:{}", 1000 + i);
        let t = Instant::now();
        writer.create_ephemeral(&path, b"")?;
        seen.extend(seen_by(&watcher, 1, t)?);
        writer.delete(&path, None)?;
        seen_by(&watcher, 0, Instant::now())?;
    }
    let starts = if bench.sizes.full() { 20 } else { 5 };
    let mut started = Vec::new();
    for i in 0..starts {
        let base = format!("/tls-start-{i}");
        let t = Instant::now();
        let mut server = Command::new(&bench.server_bin)
            .args(["--zk", &zk.connect_string(), "--base-path", &base])
            .args(["--listen", "127.0.0.1:0", "--drain", "0s"])
            .args(zk.cli_tls_flags("alice"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bench.server_bin.display()))?;
        let registered = zkutil::testing::poll_until(
            Duration::from_secs(30),
            Duration::from_micros(500),
            || {
                writer
                    .children(&base)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .map(|_| t.elapsed())
            },
        );
        let _ = server.kill();
        let _ = server.wait();
        match registered {
            Some(took) => started.push(took),
            None => bail!("a time-server did not register within 30 s"),
        }
    }
    Ok([Stats::of(&connects), Stats::of(&seen), Stats::of(&started)])
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let plain = ZkServer::start().map_err(|e| anyhow::anyhow!("plaintext ZooKeeper: {e}"))?;
    let tls = ZkServer::start_tls(TlsMode::Need)
        .map_err(|e| anyhow::anyhow!("TLS-only ZooKeeper: {e}"))?;
    let [pc, pv, ps] = measure(bench, &plain)?;
    eprintln!("bench: tls, plaintext side done");
    let [tc, tv, ts] = measure(bench, &tls)?;
    eprintln!("bench: tls, TLS side done");
    report.tls = Some(Tls {
        connect: [pc, tc],
        visibility: [pv, tv],
        start: [ps, ts],
    });
    Ok(())
}

pub fn write(md: &mut String, tls: &Tls) {
    let _ = writeln!(
        md,
        "## 13. TLS to ZooKeeper\n\n\
         Two standalone ZooKeepers started alike, one serving plaintext only, one TLS only with \
         `ssl.clientAuth=need` (a client certificate, the x509 identity); every client here presents one. \
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
