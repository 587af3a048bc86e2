//! The time server: listeners that answer with the time, each registered in
//! ZooKeeper for as long as it serves.
//!
//! * [`Args`]: the command line, and the [`Config`] it makes (`config`).
//! * [`listener`]: bind, accept (four blocking acceptor threads per listener), reply at once, a connection cap.
//! * `drainer`: one thread waits for every answered client's EOF (one read a millisecond after the
//!   reply finds most; epoll, through `mio`, for the rest).
//! * [`reply`]: the wire protocol (one line, half-close, bounded drain).
//! * [`shutdown`]: the stop switch of the acceptors (signals: `zkutil::cli::on_signals`).
//! * [`fdlimit`]: enough file descriptors for the connection cap.
//! * `startup`: connecting and registering, retried, on a thread of its own.
//!
//! [`run`] puts them together in the order that loses no request: bind
//! every listener, serve, register; on a signal deregister first, keep
//! serving for the drain period (clients that listed us just before still
//! succeed), stop accepting, finish what is in flight, close the session.

mod accept_failures;
mod args;
mod config;
mod drainer;
pub mod fdlimit;
pub mod listener;
pub mod metrics;
mod notify;
mod ready;
pub mod reply;
pub mod shutdown;
mod startup;
mod wake;

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use anyhow::Context;
use zkutil::cli::metrics::MetricsServer;
use zkutil::{Endpoint, Format, Registration, SessionEvent, SessionState};

pub use crate::args::Args;
pub use crate::config::Config;
use crate::listener::{bind_all, serve};
use crate::metrics::ServerMetrics;
use crate::shutdown::Shutdown;
use crate::startup::{Registered, Startup};

/// How long the shutdown may spend on deregistering, and then on closing
/// the session: with ZooKeeper unreachable neither waits longer, so a
/// stop takes at most `--drain` + 2 s (plus in-flight connections finishing
/// within their own limits).
const DEREGISTER_BUDGET: Duration = Duration::from_secs(1);
const CLOSE_BUDGET: Duration = Duration::from_secs(1);
/// How long a stop during startup waits for registrations already on their
/// way (they are then deregistered first and drained like any others).
const REPORT_BUDGET: Duration = Duration::from_secs(1);

/// What the main thread of [`run`] waits for.
enum Event {
    /// A stop was requested (the signal, or `None` when the sender went).
    Stop(Option<i32>),
    /// The startup thread finished: registered, or failed for good.
    Started(anyhow::Result<Registered>),
    /// ZooKeeper rejected our credentials: no registration can be kept.
    AuthFailed,
}

/// Runs the server until a message arrives on `stop_requested` (or its
/// sender is dropped), then shuts down gracefully.
///
/// The listeners serve from the start, even while ZooKeeper is unreachable:
/// connecting and registering run on their own thread and are retried with
/// capped exponential backoff (one log line per failed attempt) until they
/// succeed, a stop is requested, or `startup_timeout` (when set) passes. A
/// stop never waits for them.
///
/// # Errors
///
/// A listener that cannot be bound, no registration within the startup
/// timeout, a registration refused for good (a malformed base path, no
/// permission), or credentials rejected by ZooKeeper: one-line causes
/// naming the address or hosts.
pub fn run(config: &Config, stop_requested: Receiver<i32>) -> anyhow::Result<()> {
    // Before binding anything: a layout that puts one format's nodes among
    // another's instances, or a serverset without its path, never starts.
    let registrars = config
        .layout
        .registrars(&config.formats, &config.service)
        .context(
            "checking the registry layout (--base-path, --curator-base-path, --serverset-path)",
        )?;
    // Each format registers under its own root, so `--base-path` without
    // the plain format moves no node: whoever meant it as Curator's root
    // (`--base-path /services --format curator`) is told where they go.
    if !config.formats.contains(&Format::Plain)
        && config.layout.plain().as_str() != config::DEFAULT_BASE_PATH
    {
        for registrar in &registrars {
            tracing::warn!(base_path = %config.layout.plain(), format = %registrar.registry_format(), parent = %registrar.parent(),
                "--base-path is the parent of plain registrations only; this format registers under its own root (--curator-base-path, --serverset-path)");
        }
    }
    let listeners = bind_all(&config.listen, config.advertise)?;
    for bound in &listeners {
        tracing::info!(listen = %bound.local_addr(), advertised = %bound.advertised(), "listening");
    }
    let mut options = config.serve.clone();
    if let Some(soft) = fdlimit::raise() {
        let metrics_descriptors = if config.metrics_listen.is_some() {
            MetricsServer::MAX_DESCRIPTORS
        } else {
            0
        };
        let fitted = fdlimit::fit(
            options.max_connections,
            soft,
            listener::descriptors_held(listeners.len()) + metrics_descriptors,
        );
        if fitted < options.max_connections {
            tracing::warn!(
                open_file_limit = soft,
                max_connections = fitted,
                "lowering --max-connections to what the open-file limit allows"
            );
            options.max_connections = fitted;
        }
    }
    // Metrics first: a probe sees "not registered yet" from the start.
    let mut _metrics_server = None;
    let mut metrics_endpoint = None;
    if let Some(listen) = config.metrics_listen {
        let (metrics, registry) = ServerMetrics::new();
        let (health, scrape) = (metrics.clone(), metrics.clone());
        let server = MetricsServer::start_with(
            listen,
            registry,
            Box::new(move || health.health()),
            Box::new(move || scrape.before_scrape()),
        )
        .with_context(|| format!("serving metrics on {listen}"))?;
        let mut addr = server.addr();
        if addr.ip().is_unspecified() {
            if let Some(first) = listeners.first() {
                addr.set_ip(first.advertised().ip());
            }
        }
        tracing::info!(metrics = %server.addr(), "serving /metrics and /healthz");
        metrics_endpoint = Some(Endpoint::new(addr));
        options.metrics = Some(metrics);
        _metrics_server = Some(server);
    }
    // Every ZooKeeper call of the session is timed and its errors counted.
    let observed;
    let config = match &options.metrics {
        Some(metrics) => {
            let metrics = metrics.clone();
            observed = Config {
                session: config
                    .session
                    .clone()
                    .with_call_observer(move |op, took, error| {
                        metrics.zookeeper_call(op, took, error);
                    }),
                ..config.clone()
            };
            &observed
        }
        None => config,
    };
    let (events_tx, events) = mpsc::channel();
    forward_stop(stop_requested, events_tx.clone())?;
    let started = events_tx.clone();
    let startup = Startup::spawn(
        config,
        &listeners,
        metrics_endpoint,
        move |result| match started.send(Event::Started(result)) {
            Err(mpsc::SendError(Event::Started(Ok(registered)))) => Some(registered),
            _ => None,
        },
    )?;
    let stop = Shutdown::new();
    let (result, session) = std::thread::scope(|scope| {
        scope.spawn(|| serve(&listeners, &stop, &options));
        let (result, registered) = wait_until_stopped(
            config,
            &events,
            &events_tx,
            &startup,
            options.metrics.as_ref(),
        );
        // Every way out (a signal, a startup timeout, rejected credentials).
        notify::stopping();
        if let Some(metrics) = &options.metrics {
            metrics.stopping();
        }
        let session = registered.map(
            |Registered {
                 session,
                 registrations,
             }| {
                deregister_all(registrations);
                (session, result.is_ok())
            },
        );
        let drain = match &session {
            Some((_, true)) => config.drain,
            _ => Duration::ZERO,
        };
        if !drain.is_zero() {
            tracing::info!(drain = %zkutil::rounded(drain), "still serving clients that listed us before");
            std::thread::sleep(drain);
        }
        stop.stop(&listeners);
        (result, session.map(|(session, _)| session))
    });
    // Last, after every connection finished: closing the session (at once
    // when ZooKeeper is unreachable: the nodes then go with its timeout).
    if let Some(session) = session {
        let budget = if session.state() == SessionState::Connected {
            CLOSE_BUDGET
        } else {
            Duration::ZERO
        };
        session.close_within(budget);
    }
    tracing::info!("stopped");
    result
}

/// Waits for a stop, a fatal startup error or an auth failure; returns the
/// result of the run and the registrations to undo.
fn wait_until_stopped(
    config: &Config,
    events: &Receiver<Event>,
    events_tx: &Sender<Event>,
    startup: &Startup,
    metrics: Option<&Arc<ServerMetrics>>,
) -> (anyhow::Result<()>, Option<Registered>) {
    let mut registered = None;
    loop {
        match events.recv() {
            Ok(Event::Started(Ok(done))) => {
                // ZooKeeper rejecting our credentials is fatal; the
                // supervisor reports it, this thread hears of it at once.
                let tx = events_tx.clone();
                done.session.subscribe(move |event| {
                    event != SessionEvent::AuthFailed || tx.send(Event::AuthFailed).is_err()
                });
                if let Some(metrics) = metrics {
                    metrics.registered(
                        done.registrations
                            .iter()
                            .map(Registration::status)
                            .collect(),
                    );
                    let metrics = metrics.clone();
                    done.session.subscribe(move |event| {
                        metrics.session_event(event);
                        true
                    });
                }
                let count = done.registrations.len();
                notify::ready(&format!("registered {count} of {count}"));
                registered = Some(done);
            }
            Ok(Event::Started(Err(err))) => return (Err(err), None),
            Ok(Event::AuthFailed) => {
                let err = anyhow::anyhow!(
                    "ZooKeeper at {} rejected the credentials of --zk-auth",
                    config.session.hosts()
                );
                return (Err(err), registered);
            }
            Ok(Event::Stop(signal)) => {
                // Also ends a ready check still waiting (--ready-check).
                startup.cancel();
                if registered.is_none() {
                    // Registered just before the cancel: the outcome is on
                    // its way, and clients may have listed us already, so
                    // this stop deregisters and drains as any other.
                    startup.wait_until_reported(REPORT_BUDGET);
                    while let Ok(event) = events.try_recv() {
                        if let Event::Started(Ok(done)) = event {
                            registered = Some(done);
                        }
                    }
                }
                if registered.is_none() {
                    tracing::info!(?signal, "stop requested during startup");
                    return (Ok(()), None);
                }
                tracing::info!(?signal, "shutting down: deregistering first");
                return (Ok(()), registered);
            }
            // Every sender gone cannot happen (we hold one); stop anyway.
            Err(_) => return (Ok(()), registered),
        }
    }
}

/// Deregisters everything within [`DEREGISTER_BUDGET`] in all.
fn deregister_all(registrations: Vec<Registration>) {
    let deadline = Instant::now() + DEREGISTER_BUDGET;
    for registration in registrations {
        let path = registration.path().to_owned();
        let left = deadline.saturating_duration_since(Instant::now());
        match registration.deregister_within(left) {
            Ok(()) => tracing::info!(%path, "deregistered"),
            Err(err) => {
                tracing::warn!(%path, error = %err.chain(), "deregistration failed; the node goes with the session")
            }
        }
    }
}

/// Turns the first message on `stop_requested` (or its sender going away)
/// into [`Event::Stop`].
fn forward_stop(stop_requested: Receiver<i32>, events: Sender<Event>) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("stop".into())
        .spawn(move || {
            let _ = events.send(Event::Stop(stop_requested.recv().ok()));
        })
        .context("starting the stop thread")?;
    Ok(())
}
