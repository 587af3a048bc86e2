//! Section 1, discovery cost per request: a pick from the cached snapshot,
//! against `getChildren` per request on one session and against a new
//! session per request (the post's way).

use std::fmt::Write as _;
use std::time::Instant;

use zkutil::{BasePath, Discovery, Selector, SessionConfig, Strategy};

use super::Report;
use crate::Bench;
use crate::stats::{Stats, d, ratio, stats_table, verdict};
use crate::summary::Row;

/// The cached pick must be at least this many times cheaper than a session
/// per request (medians).
const TARGET: f64 = 1000.0;

pub struct Cost {
    pub cached: Stats,
    pub listing: Stats,
    pub per_session: Stats,
}

impl Cost {
    /// Session per request : cached pick, medians.
    fn against_post(&self) -> f64 {
        ratio(
            self.per_session.p50.as_secs_f64(),
            self.cached.p50.as_secs_f64(),
        )
    }
}

pub fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let sizes = bench.sizes;
    let owner = bench.session()?;
    owner.ensure_path("/cost")?;
    for port in 1..=3 {
        owner.create_ephemeral(&format!("/cost/127.0.0.1:{port}"), b"{}")?;
    }
    let reader = bench.session()?;
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
        let s = SessionConfig::new(bench.zk.connect_string()).connect()?;
        std::hint::black_box(s.children("/cost")?);
        s.close();
        per_session.push(t.elapsed());
    }
    report.discovery = Some(Cost {
        cached: Stats::of(&cached),
        listing: Stats::of(&listing),
        per_session: Stats::of(&per_session),
    });
    report
        .dist
        .push(("discovery: cached snapshot".into(), cached));
    report.dist.push(("discovery: getChildren".into(), listing));
    report
        .dist
        .push(("discovery: session per request".into(), per_session));
    Ok(())
}

pub fn write(md: &mut String, r: &Cost) {
    let _ = writeln!(md, "## 1. Discovery cost per request\n");
    stats_table(
        md,
        "way",
        &[
            ("pick from the cached snapshot".into(), r.cached),
            ("getChildren per request, one session".into(), r.listing),
            ("new session per request (the post)".into(), r.per_session),
        ],
    );
    let post = r.against_post();
    let list = ratio(r.listing.p50.as_secs_f64(), r.cached.p50.as_secs_f64());
    let _ = writeln!(
        md,
        "\nCached : post's way, medians: the cached pick is **{post:.0}×** cheaper than a session per request \
         (target ≥ {TARGET:.0}×: {}), and {list:.0}× cheaper than `getChildren` per request.\n",
        verdict(post >= TARGET)
    );
}

pub fn summary(r: &Cost) -> Vec<Row> {
    let post = r.against_post();
    vec![Row::against(
        "discovery per request, median: a new session per request : a pick from the cached snapshot",
        d(r.cached.p50),
        d(r.per_session.p50),
        format!("{post:.0}×"),
        &format!("≥ {TARGET:.0}×"),
        Some(post >= TARGET),
    )]
}
