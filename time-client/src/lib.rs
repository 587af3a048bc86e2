//! The time client: one ZooKeeper session for the whole run, a random
//! registered server per request.
//!
//! * [`request`]: one request, every wait bounded, the reply checked.
//! * [`report`]: stdout lines per request and the summary.
//!
//! The post's client opened a new ZooKeeper session per request and picked
//! `rand.Intn(3)`: it panicked with fewer than three servers and never used
//! a fourth. Here one session serves the whole run, the pick is among all
//! registered servers, and an empty registry is a per-request error after
//! which the run goes on.

pub mod report;
pub mod request;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use zkutil::{Discovery, Selector, SessionConfig, Strategy};

use crate::report::Summary;
use crate::request::{RequestLimits, request};

/// Everything the client needs to know; filled from flags by `main`.
#[derive(Debug, Clone)]
pub struct Config {
    /// ZooKeeper connect string.
    pub zk_hosts: String,
    /// Parent znode of the registrations.
    pub base_path: String,
    /// How many requests to make.
    pub count: u64,
    /// Pause between two requests.
    pub interval: Duration,
    /// ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How long to wait for ZooKeeper at start.
    pub zk_connect_timeout: Duration,
    /// Limits of each request.
    pub limits: RequestLimits,
    /// How to pick a server.
    pub strategy: Strategy,
}

/// Makes `config.count` requests, writing results to `out`, and returns
/// the summary.
///
/// # Errors
///
/// Only when ZooKeeper cannot be reached at start or the base path is
/// malformed; failed requests are counted in the summary instead.
pub fn run(config: &Config, out: &mut impl Write) -> anyhow::Result<Summary> {
    let session = SessionConfig::new(&config.zk_hosts)
        .with_session_timeout(config.session_timeout)
        .with_connect_timeout(config.zk_connect_timeout)
        .connect()
        .map(Arc::new)?;
    tracing::debug!(session = %format_args!("{:#x}", session.id()), "connected to ZooKeeper");
    let discovery = Discovery::new(session, &config.base_path)?;
    let selector = Selector::new(config.strategy);
    let mut summary = Summary::default();
    for n in 1..=config.count {
        if n > 1 && !config.interval.is_zero() {
            std::thread::sleep(config.interval);
        }
        match one_request(&discovery, &selector, &config.limits, out) {
            Ok(endpoint) => summary.record_ok(endpoint),
            Err(err) => {
                tracing::warn!("request {n} failed: {err:#}");
                summary.record_failure();
            }
        }
    }
    Ok(summary)
}

fn one_request(
    discovery: &Discovery,
    selector: &Selector,
    limits: &RequestLimits,
    out: &mut impl Write,
) -> anyhow::Result<zkutil::Endpoint> {
    let instances = discovery.instances().context("listing servers")?;
    let instance = selector
        .pick(&instances)
        .with_context(|| format!("no servers registered under {}", discovery.base_path()))?;
    let endpoint = instance.endpoint();
    report::connecting(out, endpoint);
    let reply = request(endpoint, limits)?;
    report::replied(out, &reply.line);
    Ok(endpoint)
}
