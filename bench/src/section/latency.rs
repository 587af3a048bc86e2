//! Section 2, client request latency: the time-client's discover, connect
//! and read against a bare TCP exchange with a fixed address, the same
//! release time-server answering both. Also the server's idle memory
//! (section 8).

use std::fmt::Write as _;
use std::time::Instant;

use time_client::request::{RequestLimits, request};
use zkutil::{BasePath, Discovery, Selector, Strategy};

use super::Report;
use crate::Bench;
use crate::bare::bare_request;
use crate::server::{ServerProcess, rss_kib};
use crate::stats::{Stats, d, ratio, verdict};
use crate::summary::Row;

/// Client : bare TCP, medians, at most this.
const TARGET: f64 = 1.3;

pub struct Latency {
    pub bare: Stats,
    pub bare_errors: usize,
    pub client: Stats,
    pub client_errors: usize,
}

impl Latency {
    fn against_bare(&self) -> f64 {
        ratio(self.client.p50.as_secs_f64(), self.bare.p50.as_secs_f64())
    }
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let server = ServerProcess::start(bench, &BasePath::from_static("/latency"), 1, "10s")?;
    report.memory.server_idle_kib = rss_kib(server.pid());
    let discovery = Discovery::start(bench.session()?, &BasePath::from_static("/latency"))?;
    let selector = Selector::new(Strategy::Random);
    let limits = RequestLimits::default();
    let addr = server.addrs[0];
    let (mut client, mut bare) = (Vec::new(), Vec::new());
    let (mut client_errors, mut bare_errors) = (0, 0);
    // Interleaved, so that both see the same machine.
    for _ in 0..bench.sizes.requests {
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
    report.latency = Some(Latency {
        bare: Stats::of(&bare),
        bare_errors,
        client: Stats::of(&client),
        client_errors,
    });
    report.dist.push(("request: bare TCP".into(), bare));
    report.dist.push(("request: time-client".into(), client));
    Ok(())
}

pub fn write(md: &mut String, r: &Latency) {
    let _ = writeln!(md, "## 2. Client request latency\n");
    let _ = writeln!(
        md,
        "| request | n | median | p99 | max | errors |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, s, errors) in [
        (
            "bare TCP connect + read, fixed address",
            r.bare,
            r.bare_errors,
        ),
        (
            "time-client: discover + connect + read",
            r.client,
            r.client_errors,
        ),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {errors} |",
            s.n,
            d(s.p50),
            d(s.p99),
            d(s.max)
        );
    }
    let r = r.against_bare();
    let _ = writeln!(
        md,
        "\nClient : bare TCP, medians: **{r:.2}×** (target ≤ {TARGET}×: {}). Requests alternate between the two, \
         against the same release time-server.\n",
        verdict(r <= TARGET)
    );
}

pub fn summary(r: &Latency) -> Vec<Row> {
    let ratio = r.against_bare();
    vec![Row::against(
        "request latency, median: time-client (discover + connect + read) : bare TCP to a fixed address",
        d(r.client.p50),
        d(r.bare.p50),
        format!("{ratio:.2}×"),
        &format!("≤ {TARGET}×"),
        Some(ratio <= TARGET),
    )]
}
