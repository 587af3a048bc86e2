//! The time client: one ZooKeeper session and one watched cache of the
//! registered servers for the whole run, a server picked per request.
//!
//! * [`Args`]: the command line, and the [`Config`] it makes.
//! * [`request`](mod@request): one request, every wait bounded, the reply checked.
//! * [`report`]: per-request lines or JSON, and the summary.
//!
//! A request costs ZooKeeper nothing: a [`zkutil::Discovery`] cache is
//! read instead of a session and a listing per request. The pick is among
//! all registered servers, however many there are. A server that fails is
//! marked down for a cooldown and the request retried on another one, so
//! one dead server costs a request a retry, not a failure. While ZooKeeper
//! is unreachable the last known list is used, and the client says so once.

mod args;
pub mod report;
pub mod request;

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::Context;
use zkutil::cli::metrics::ClientMetrics;
use zkutil::{BasePath, Discovery, Endpoint, Selector, SessionConfig, Snapshot, Strategy};

pub use crate::args::Args;
use crate::report::{Format, RequestReport, Summary};
use crate::request::{RequestLimits, request};

/// Everything the client needs to know; filled from flags by `main`.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach ZooKeeper: hosts, credentials (when the registry is
    /// readable only with them), session timeout, how long to wait for it
    /// at start.
    pub session: SessionConfig,
    /// Parent znode of the registrations.
    pub base_path: BasePath,
    /// How many requests to make.
    pub count: u64,
    /// Pause between two requests.
    pub interval: Duration,
    /// Limits of each request.
    pub limits: RequestLimits,
    /// How to pick a server.
    pub strategy: Strategy,
    /// At most this many attempts on other servers after a failed one
    /// (`None`: every distinct server known in service is tried).
    pub retries: Option<u32>,
    /// How long one request may take, all its attempts together.
    pub request_deadline: Duration,
    /// How long a failed server is skipped.
    pub cooldown: Duration,
    /// Warm-up of the weighted strategies (zero: none): a new server's
    /// share ramps up over this long from its registration.
    pub warmup: Duration,
    /// Text or JSON.
    pub format: Format,
    /// Where to serve `/metrics` and `/healthz` (none: no metrics).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl Config {
    /// The defaults of the command line, for the connect string `zk_hosts`.
    pub fn new(zk_hosts: impl Into<String>) -> Config {
        Config {
            session: SessionConfig::new(zk_hosts),
            base_path: BasePath::from_static(args::DEFAULT_BASE_PATH),
            count: 100,
            interval: Duration::from_secs(1),
            limits: RequestLimits::default(),
            strategy: Strategy::Random,
            retries: None,
            request_deadline: Duration::from_secs(10),
            cooldown: Duration::from_secs(10),
            warmup: Duration::ZERO,
            format: Format::Text,
            metrics_listen: None,
        }
    }
}

/// Makes `config.count` requests (fewer if a stop arrives on
/// `stop_requested`: the current request is finished first), writes each
/// result to `out`, and returns the summary.
///
/// # Errors
///
/// Only when ZooKeeper cannot be reached at start or the base path is
/// malformed; failed requests are counted in the summary instead.
pub fn run(
    config: &Config,
    out: &mut impl Write,
    stop_requested: &Receiver<i32>,
) -> anyhow::Result<Summary> {
    let session = config.session.clone().connect().map(Arc::new)?;
    tracing::debug!(session = %session.id(), "connected to ZooKeeper");
    // Each server's data says whether an operator took it out of rotation
    // (`zkutil disable`), its weight and its registration time: read once
    // per server and per change, never per request.
    let discovery = Arc::new(Discovery::start_with_metadata(session, &config.base_path)?);
    let served = match config.metrics_listen {
        Some(listen) => {
            let (metrics, server) = ClientMetrics::serve(listen, "time_client", &discovery)
                .with_context(|| format!("serving metrics on {listen}"))?;
            tracing::info!(metrics = %server.addr(), "serving /metrics and /healthz");
            Some((metrics, server))
        }
        None => None,
    };
    let metrics = served.as_ref().map(|(metrics, _)| metrics.as_ref());
    if !config.warmup.is_zero()
        && !matches!(
            config.strategy,
            Strategy::Weighted | Strategy::SmoothWeighted
        )
    {
        tracing::warn!(strategy = ?config.strategy, "--warmup applies to the weighted strategies only; ignored");
    }
    let selector = Selector::new(config.strategy)
        .with_cooldown(config.cooldown)
        .with_warmup(config.warmup);
    let mut summary = Summary {
        planned: config.count,
        ..Summary::default()
    };
    let mut was_stale = false;
    let mut on_fallback = false;
    let mut seen_version = discovery.snapshot().version();
    for seq in 1..=config.count {
        if seq > 1 && !config.interval.is_zero() {
            match stop_requested.recv_timeout(config.interval) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                    summary.interrupted = true;
                    break;
                }
            }
        } else if !matches!(stop_requested.try_recv(), Err(TryRecvError::Empty)) {
            summary.interrupted = true;
            break;
        }
        let snapshot = discovery.snapshot();
        if snapshot.is_stale() != was_stale {
            was_stale = snapshot.is_stale();
            log_staleness(seq, &snapshot);
        }
        if snapshot.version() != seen_version {
            seen_version = snapshot.version();
            log_change(seq, &snapshot);
        }
        if snapshot.fallback().is_some() != on_fallback {
            on_fallback = !on_fallback;
            log_fallback(seq, &snapshot);
        }
        let report = one_request(seq, &snapshot, &selector, config, &discovery, metrics);
        summary.record(&report);
        if let Err(err) = report::request(out, config.format, &report, config.count) {
            // `| head -1`: nobody reads on; stop quietly.
            tracing::debug!(error = %err, "stdout closed; stopping");
            summary.output_closed = true;
            break;
        }
    }
    if summary.interrupted {
        // A stop after the last request is not an interruption.
        summary.interrupted = summary.total() < config.count as usize;
    }
    Ok(summary)
}

fn log_staleness(seq: u64, snapshot: &Snapshot) {
    if snapshot.is_stale() {
        tracing::warn!(from_request = seq, servers = snapshot.instances().len(), session = ?snapshot.session_state(),
            "ZooKeeper unreachable: using the last known list of servers");
    } else {
        tracing::info!(
            from_request = seq,
            servers = snapshot.instances().len(),
            "server list is fresh again"
        );
    }
}

fn log_fallback(seq: u64, snapshot: &Snapshot) {
    match snapshot.fallback() {
        Some(last) => tracing::warn!(
            from_request = seq,
            servers = last.len(),
            "the registry lists no server right after a reconnect (ZooKeeper may have expired every session); \
             trying the last known servers until they register again"
        ),
        None => tracing::info!(from_request = seq, "no longer using the last known servers"),
    }
}

/// Says what the list of servers is now, from request `seq` on.
fn log_change(seq: u64, snapshot: &Snapshot) {
    let names = |list: &zkutil::Instances| {
        list.iter()
            .map(|i| i.endpoint().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    tracing::info!(
        from_request = seq,
        in_service = %names(snapshot.instances()),
        out_of_service = %names(snapshot.out_of_service()),
        "server list changed"
    );
}

/// One request: pick, ask, and on failure mark the server down and retry
/// on another, until every distinct server known in service was tried (or
/// `config.retries` more attempts were made), all within the request's
/// deadline: a request fails only when no server it knows answers.
fn one_request(
    seq: u64,
    snapshot: &Snapshot,
    selector: &Selector,
    config: &Config,
    discovery: &Discovery,
    metrics: Option<&ClientMetrics>,
) -> RequestReport {
    let base_path = discovery.base_path();
    let started = Instant::now();
    let deadline = started.checked_add(config.request_deadline);
    let attempts_cap = config
        .retries
        .map_or(usize::MAX, |retries| retries as usize + 1);
    let mut tried: Vec<Endpoint> = Vec::new();
    let mut last_error = None;
    while tried.len() < attempts_cap {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            if last_error.is_some() {
                last_error = last_error.map(|err| {
                    format!(
                        "{err}; request deadline {:?} reached",
                        config.request_deadline
                    )
                });
            }
            break;
        }
        // The registry's list; right after ZooKeeper expired every session,
        // the servers it knew until they register again.
        let candidates = match snapshot.fallback() {
            Some(last) if snapshot.instances().is_empty() => last,
            _ => snapshot.instances(),
        };
        let Some(instance) = selector.pick_excluding(candidates, &tried) else {
            break;
        };
        let endpoint = instance.endpoint();
        // Attempts still to come for this request, this one included: the
        // servers not yet tried, as many as the cap still allows.
        let untried = candidates
            .iter()
            .filter(|i| !tried.contains(&i.endpoint()))
            .count()
            .min(attempts_cap - tried.len())
            .clamp(1, u32::MAX as usize) as u32;
        let first = tried.is_empty();
        tried.push(endpoint);
        if let Some(metrics) = metrics {
            metrics.picked(endpoint, tried.len() > 1);
        }
        selector.started(endpoint);
        let attempt = Instant::now();
        // No attempt outlives the request's deadline. The first gets the
        // whole --timeout (a healthy but slow server answers); once one has
        // failed, each later one gets its share of what is left, but at
        // least half the timeout: servers that accept and never answer
        // cannot use the deadline up before a good one is tried.
        let limits = match left {
            Some(left) => {
                let share = if first {
                    left
                } else {
                    (left / untried).max(config.limits.timeout / 2).min(left)
                };
                RequestLimits {
                    connect_timeout: config.limits.connect_timeout.min(share),
                    timeout: config.limits.timeout.min(share),
                    ..config.limits
                }
            }
            None => config.limits,
        };
        let answer = request(endpoint, &limits);
        selector.finished(endpoint, attempt.elapsed());
        match answer {
            Ok(reply) => {
                selector.mark_up(endpoint);
                return RequestReport {
                    seq,
                    result: Ok((endpoint, reply.line)),
                    attempts: tried.len() as u32,
                    latency: started.elapsed(),
                };
            }
            Err(err) => {
                selector.mark_down(endpoint);
                if let Some(metrics) = metrics {
                    metrics.failed(endpoint);
                }
                if tried.len() < attempts_cap && tried.len() < candidates.len() {
                    tracing::warn!("request {seq}: {err}; retrying on another server");
                }
                last_error = Some(err.to_string());
            }
        }
    }
    let error = match last_error {
        Some(err) if tried.len() > 1 => format!("{err} (after {} attempts)", tried.len()),
        Some(err) => err,
        None if snapshot.is_stale() => {
            format!("no servers known under {base_path} (ZooKeeper unreachable)")
        }
        None if discovery.base_path_missing() => {
            format!("no server has registered under {base_path} (it does not exist)")
        }
        None => format!("no servers registered under {base_path}"),
    };
    RequestReport {
        seq,
        result: Err(error),
        attempts: tried.len() as u32,
        latency: started.elapsed(),
    }
}
