//! Section 15, the web console: how long a registration takes to reach
//! the page's event stream (`zkutil console`'s server-sent events, the
//! document a browser draws from), and a deregistration to leave it; an
//! in-process `Discovery` is the baseline, in the same run. Issue 32's
//! target: a change in the page within 1 s.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zkutil::{BasePath, Discovery};

use super::Report;
use super::region::seen_by;
use super::render::{Killed, against_discovery};
use crate::Bench;
use crate::stats::{Stats, d};
use crate::summary::Row;

/// The times, each from the create's (or delete's) acknowledgement.
pub struct Console {
    pub discovery: Stats,
    pub joined: Stats,
    pub left: Stats,
}

/// The registry documents of the console's event stream on `addr`, as
/// they arrive, each with its arrival time (a thread reads them).
fn stream(addr: std::net::SocketAddr) -> anyhow::Result<mpsc::Receiver<(Instant, String)>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    // HTTP/1.0: the answer is the stream itself, not chunks to undo.
    write!(stream, "GET /api/events HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut registry = false;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                registry = name == "registry";
            } else if let (true, Some(data)) = (registry, line.strip_prefix("data: ")) {
                if tx.send((Instant::now(), data.to_owned())).is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// Whether a registry document lists `endpoint` among its instances (its
/// timeline names endpoints too).
fn lists(document: &str, endpoint: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(document) else {
        return false;
    };
    let services = document["services"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    services.iter().any(|service| {
        let instances = service["instances"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        instances
            .iter()
            .any(|instance| instance["endpoint"] == endpoint)
    })
}

/// The time from `t` to the first document that `holds`.
fn until(
    documents: &mpsc::Receiver<(Instant, String)>,
    t: Instant,
    what: &str,
    holds: impl Fn(&str) -> bool,
) -> anyhow::Result<Duration> {
    let deadline = t + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match documents.recv_timeout(left) {
            Ok((at, document)) if holds(&document) => return Ok(at.saturating_duration_since(t)),
            Ok(_) => {}
            Err(_) => bail!("{what}: not within 30 s"),
        }
    }
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let zkutil_bin = bench.server_bin.with_file_name("zkutil");
    let hosts = bench.zk.connect_string();
    let base = "/console-bench";
    let session = bench.session()?;
    session.ensure_path(base)?;
    session.create_ephemeral(&format!("{base}/127.0.0.1:1"), b"")?;
    let watcher = [Discovery::start(bench.session()?, &BasePath::new(base)?)?];
    let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let _console = Killed(
        Command::new(&zkutil_bin)
            .args(["--zk", &hosts, "console", "--path", base, "--listen"])
            .arg(addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} console", zkutil_bin.display()))?,
    );
    let started = Instant::now();
    let documents = loop {
        match stream(addr) {
            Ok(documents) => break documents,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => return Err(err.context("the console's event stream")),
        }
    };
    until(
        &documents,
        Instant::now(),
        "the console lists the base path",
        |doc| doc.contains("127.0.0.1:1\""),
    )?;
    let samples = if bench.sizes.full() { 20 } else { 5 };
    let (mut seen, mut joined, mut left) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..samples {
        let name = format!("127.0.0.1:{}", 2000 + i);
        let path = format!("{base}/{name}");
        let t = Instant::now();
        session.create_ephemeral(&path, b"")?;
        seen.push(seen_by(&watcher, 2, t)?[0]);
        joined.push(until(&documents, t, "the join in the stream", |doc| {
            lists(doc, &name)
        })?);
        let t = Instant::now();
        session.delete(&path, None)?;
        left.push(until(&documents, t, "the leave in the stream", |doc| {
            !lists(doc, &name)
        })?);
        seen_by(&watcher, 1, Instant::now())?;
    }
    eprintln!("bench: console done");
    report.console = Some(Console {
        discovery: Stats::of(&seen),
        joined: Stats::of(&joined),
        left: Stats::of(&left),
    });
    Ok(())
}

pub fn write(md: &mut String, console: &Console) {
    let _ = writeln!(
        md,
        "## 15. The web console (`zkutil console`)\n\n\
         `zkutil console --path` on one base path, read by a client of its event stream (the server-sent \
         events a browser's page draws from; the browser's own drawing is not in these figures). Each \
         sample registers a new plain node and times, from the create's acknowledgement: an in-process \
         `Discovery` listing it (the baseline), and the first registry document in the stream that holds \
         it; then, from the delete's, the first document without it.\n\n\
         | from a change to | n | median | p99 | : discovery |\n|---|---:|---:|---:|---:|"
    );
    against_discovery(
        md,
        &console.discovery,
        &[
            (
                "a `Discovery` listing the new node (baseline)",
                &console.discovery,
            ),
            ("the console's stream holding it", &console.joined),
            (
                "the console's stream without it, after its delete",
                &console.left,
            ),
        ],
    );
}

/// Its row of the summary: a registration to the console's stream.
pub fn summary(console: &Console) -> Vec<Row> {
    vec![Row::absolute(
        "a registration to the web console's event stream, median",
        d(console.joined.p50),
        "≤ 1 s",
        console.joined.p50 <= Duration::from_secs(1),
    )]
}
