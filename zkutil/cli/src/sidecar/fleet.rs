//! `zkutil sidecar --config FILE`: many services in one process, each in
//! a thread of its own running [`hold`](super::hold) on one shared
//! ZooKeeper session. SIGHUP re-reads the file: added services register,
//! removed ones deregister, a service whose checks changed is updated in
//! place (its registration untouched), one whose registration changed
//! (address, path, format, weight, metadata) is registered anew. A file
//! with a mistake on SIGHUP keeps the running services as they are and
//! says why. SIGINT or SIGTERM deregisters every service and exits.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use zkutil::{Registrar, Session};

use super::config::{self, Service};
use super::follow::OperatorOut;
use super::{Registered, Steer};
use crate::args::Common;

/// What the main loop hears: a signal to stop, or SIGHUP.
enum Event {
    Stop,
    Reload,
}

/// Reads and checks the file: the services, or every mistake in one error.
fn load(path: &Path, common: &Common) -> anyhow::Result<Vec<Service>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config {}", path.display()))?;
    config::parse(&path.display().to_string(), &text, &common.zk.base_path).map_err(|errors| {
        anyhow::anyhow!(
            "the config has {} mistake{}:\n  {}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            errors.join("\n  ")
        )
    })
}

/// Runs the services of `path` until SIGINT or SIGTERM, serving metrics on
/// `metrics_listen` if given; with `check_only`, lists them and returns.
pub fn run(
    common: &Common,
    path: &Path,
    check_only: bool,
    (metrics_listen, drain): (Option<std::net::SocketAddr>, std::time::Duration),
) -> anyhow::Result<bool> {
    // Before anything else: a SIGHUP from now on reloads, never kills.
    let events = events()?;
    let services = load(path, common)?;
    if check_only {
        for service in &services {
            println!(
                "{}: {} under {} ({}), checks: {}",
                service.name,
                service.endpoint,
                service.base_path,
                service.format,
                super::list(&service.health.checks)
            );
        }
        return Ok(true);
    }
    let session = Arc::new(common.zk.session_config().connect()?);
    let (metrics, _server) = match metrics_listen {
        Some(listen) => {
            let (metrics, server) = super::metrics::serve(listen, &session)
                .with_context(|| format!("serving metrics on {listen}"))?;
            tracing::info!(metrics = %server.addr(), "serving /metrics and /healthz");
            (Some(metrics), Some(server))
        }
        None => (None, None),
    };
    tracing::info!(config = %path.display(), services = services.len(), "sidecar starting");
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut running = BTreeMap::new();
        let start = |service: Service, handed: OperatorOut| {
            let (steer, steered) = mpsc::channel();
            let session = &session;
            let held = service.clone();
            let metrics = metrics.clone();
            let thread = std::thread::Builder::new()
                .name(format!("service {}", service.name))
                .spawn_scoped(scope, move || {
                    serve(session, &held, &steered, (metrics, handed))
                });
            match thread {
                Ok(thread) => Some((
                    service.name.clone(),
                    Running {
                        service,
                        steer,
                        thread,
                    },
                )),
                Err(err) => {
                    tracing::error!(service = %service.name, error = %err, "cannot start its thread");
                    None
                }
            }
        };
        running.extend(
            services
                .into_iter()
                .filter_map(|service| start(service, None)),
        );
        while let Ok(Event::Reload) = events.recv() {
            let new = match load(path, common) {
                Ok(new) => new,
                Err(err) => {
                    tracing::error!("SIGHUP: {err:#}; keeping the running config");
                    continue;
                }
            };
            let (mut added, mut removed, mut updated, mut replaced) = (0, 0, 0, 0);
            let names: Vec<&str> = new.iter().map(|s| s.name.as_str()).collect();
            let gone: Vec<String> = running
                .keys()
                .filter(|name| !names.contains(&name.as_str()))
                .cloned()
                .collect();
            // Removed ones first, waited for: a service renamed in the same
            // file then finds its path free.
            for name in gone {
                if let Some(old) = running.remove(&name) {
                    old.stop();
                    removed += 1;
                }
            }
            for service in new {
                match running.get_mut(&service.name) {
                    Some(old) if old.service == service => {}
                    Some(old) if old.service.same_registration(&service) => {
                        let _ = old.steer.send(Steer::Update(service.health.clone()));
                        old.service = service;
                        updated += 1;
                    }
                    Some(_) => {
                        // Stopped and waited for (it holds the path until
                        // then); an operator's out-of-rotation goes over.
                        let handed = running.remove(&service.name).and_then(Running::stop);
                        replaced += 1;
                        running.extend(start(service, handed));
                    }
                    None => {
                        added += 1;
                        running.extend(start(service, None));
                    }
                }
            }
            tracing::info!(added, removed, updated, replaced, "SIGHUP: config reloaded");
        }
        for service in running.values() {
            let _ = service.steer.send(Steer::Stop);
        }
        Ok(())
    })?;
    super::drain(drain);
    Ok(true)
}

/// A service's thread, running.
struct Running<'scope> {
    service: Service,
    steer: Sender<Steer>,
    thread: std::thread::ScopedJoinHandle<'scope, OperatorOut>,
}

impl Running<'_> {
    /// Stops it and waits until it has deregistered: the operator's
    /// out-of-rotation it saw last.
    fn stop(self) -> OperatorOut {
        let _ = self.steer.send(Steer::Stop);
        self.thread.join().ok().flatten()
    }
}

/// One service's thread: registers and follows its checks until told to
/// stop. A registration that fails (the address taken, a bad parent) is
/// logged, and tried again at every interval.
fn serve(
    session: &Arc<Session>,
    service: &Service,
    steer: &Receiver<Steer>,
    (metrics, handed): (Option<super::metrics::Metrics>, OperatorOut),
) -> OperatorOut {
    let registrar = Registrar::new(service.base_path.clone())
        .format(service.format)
        .and_then(|registrar| registrar.service(&service.service_name));
    let registrar = match registrar {
        Ok(registrar) => registrar,
        Err(err) => {
            tracing::error!(service = %service.name, error = %err.chain(), "cannot register it");
            return None;
        }
    };
    let mut fields = match serde_json::to_value(zkutil::Metadata::for_this_process(
        service.endpoint,
        SystemTime::now(),
        env!("CARGO_PKG_VERSION"),
    )) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    fields.extend(service.metadata.clone());
    if let Some(weight) = service.weight {
        fields.insert("weight".into(), weight.into());
    }
    let what = Registered {
        registrar,
        session,
        endpoint: service.endpoint,
        fields,
        held: Arc::new(Mutex::new(Vec::new())),
        retry_registration: true,
        metrics: metrics.map(|metrics| (metrics, service.name.clone())),
    };
    let span = tracing::info_span!("service", name = %service.name);
    let _entered = span.enter();
    match super::hold(service.health.clone(), &what, steer, handed) {
        Ok(operator_out) => operator_out,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "stopped");
            None
        }
    }
}

/// SIGINT/SIGTERM (the first: a stop; a second exits at once) and SIGHUP,
/// as one stream of events.
fn events() -> anyhow::Result<Receiver<Event>> {
    let stop = zkutil::cli::on_signals()?;
    let (tx, rx) = mpsc::channel();
    let stopping = tx.clone();
    std::thread::Builder::new()
        .name("stop".into())
        .spawn(move || {
            let _ = stop.recv();
            let _ = stopping.send(Event::Stop);
        })
        .context("starting the signal thread")?;
    let mut hangups = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .context("installing the SIGHUP handler")?;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in hangups.forever() {
                if tx.send(Event::Reload).is_err() {
                    break;
                }
            }
        })
        .context("starting the SIGHUP thread")?;
    Ok(rx)
}
