//! `startup`: connecting to ZooKeeper and registering every listener,
//! retried with backoff until it works, on a thread of its own so that the
//! listeners serve meanwhile and a stop never waits for ZooKeeper.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};
use zkutil::cli::lock;

use anyhow::Context;
use zkutil::{Backoff, Endpoint, Metadata, Registration, Session, Takeover};

use crate::config::Config;
use crate::listener::BoundListener;

/// The session and the registrations it keeps.
pub(crate) struct Registered {
    pub(crate) session: Arc<Session>,
    pub(crate) registrations: Vec<Registration>,
}

/// The handle of the startup thread: how the main thread cancels it.
pub(crate) struct Startup {
    cancelled: Arc<AtomicBool>,
    /// Dropped on cancel, which ends every backoff wait of the thread.
    wake: std::sync::Mutex<Option<Sender<()>>>,
    /// Disconnected once the thread has registered and reported (or given
    /// up): what a stop during startup waits for.
    registering: std::sync::Mutex<Option<mpsc::Receiver<()>>>,
}

impl Startup {
    /// Starts the thread. It tells `report` its outcome: registered, or
    /// failed for good (nothing when cancelled first). `report` hands the
    /// registrations back when nobody waits for them any more (the server
    /// is stopping): they are then dropped, which deregisters them.
    pub(crate) fn spawn(
        config: &Config,
        listeners: &[BoundListener],
        metrics: Option<Endpoint>,
        report: impl FnOnce(anyhow::Result<Registered>) -> Option<Registered> + Send + 'static,
    ) -> anyhow::Result<Startup> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let (wake, woken) = mpsc::channel();
        let (registered_or_not, registering) = mpsc::channel::<()>();
        let work = StartupWork {
            config: config.clone(),
            endpoints: distinct_endpoints(listeners),
            metrics,
            started: SystemTime::now(),
            deadline: config
                .startup_timeout
                .and_then(|timeout| Instant::now().checked_add(timeout)),
            cancelled: cancelled.clone(),
            woken,
        };
        std::thread::Builder::new()
            .name("startup".into())
            .spawn(move || {
                let result = work.run();
                // Dropped once the outcome is reported, before any ready check.
                let registered_or_not = registered_or_not;
                match result {
                    Ok(Some(registered)) => {
                        // The second phase of a two-phase start, after the
                        // server counts as registered.
                        let ready = work.config.ready_check.clone().map(|check| {
                            let targets: crate::ready::Targets = registered
                                .registrations
                                .iter()
                                .filter_map(|r| {
                                    let path = r.path();
                                    let parent = path.rsplit_once('/')?.0;
                                    Some((zkutil::BasePath::new(parent).ok()?, r.endpoint()))
                                })
                                .collect();
                            (check, registered.session.clone(), targets)
                        });
                        // Cancelled meanwhile: dropping deregisters it all.
                        let handed_back = report(Ok(registered));
                        drop(registered_or_not);
                        if let Some(registered) = handed_back {
                            drop(registered);
                            return;
                        }
                        if let Some((check, session, targets)) = ready {
                            crate::ready::enable_when_ready(
                                &check,
                                &session,
                                &targets,
                                &work.woken,
                            );
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        let _ = report(Err(err));
                    }
                }
            })
            .context("starting the startup thread")?;
        Ok(Startup {
            cancelled,
            wake: std::sync::Mutex::new(Some(wake)),
            registering: std::sync::Mutex::new(Some(registering)),
        })
    }

    /// Waits at most `budget` until the thread has reported its outcome or
    /// found itself cancelled, so that registrations made just before a
    /// stop are deregistered first and drained. Bounded because a stop
    /// never waits on ZooKeeper: a create that ZooKeeper does not answer is
    /// left to the thread (its node goes when the thread's call ends).
    pub(crate) fn wait_until_reported(&self, budget: Duration) {
        if let Some(registering) = lock(&self.registering).take() {
            let _ = registering.recv_timeout(budget);
        }
    }

    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        lock(&self.wake).take();
    }
}

/// Each advertised endpoint once, with the listener addresses behind it:
/// two listeners advertising one endpoint are one registration, not two
/// maintainers fighting over one node.
fn distinct_endpoints(listeners: &[BoundListener]) -> Vec<(Endpoint, Vec<std::net::SocketAddr>)> {
    let mut endpoints: Vec<(Endpoint, Vec<std::net::SocketAddr>)> = Vec::new();
    for bound in listeners {
        match endpoints.iter_mut().find(|(e, _)| *e == bound.advertised()) {
            Some((endpoint, addrs)) => {
                tracing::warn!(%endpoint, listen = %bound.local_addr(), first = %addrs[0],
                    "two listeners advertise the same endpoint: registered once");
                addrs.push(bound.local_addr());
            }
            None => endpoints.push((bound.advertised(), vec![bound.local_addr()])),
        }
    }
    endpoints
}

/// What the startup thread owns.
struct StartupWork {
    config: Config,
    endpoints: Vec<(Endpoint, Vec<std::net::SocketAddr>)>,
    /// The metrics endpoint, told in every registration.
    metrics: Option<Endpoint>,
    started: SystemTime,
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
    woken: Receiver<()>,
}

impl StartupWork {
    /// Registered, `None` when cancelled first, or a fatal error.
    fn run(&self) -> anyhow::Result<Option<Registered>> {
        let Some(session) = self.connect()? else {
            return Ok(None);
        };
        Ok(self
            .register_all(&session)?
            .map(|registrations| Registered {
                session,
                registrations,
            }))
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// A session, or `None` when cancelled first.
    fn connect(&self) -> anyhow::Result<Option<Arc<Session>>> {
        let mut backoff = Backoff::default();
        crate::notify::status(&format!(
            "connecting to ZooKeeper at {}",
            self.config.session.hosts()
        ));
        loop {
            let session = &self.config.session;
            let connect_timeout = match self.deadline {
                Some(deadline) => session
                    .connect_timeout()
                    .min(deadline.saturating_duration_since(Instant::now())),
                None => session.connect_timeout(),
            };
            let attempt = session
                .clone()
                .with_connect_timeout(connect_timeout.max(Duration::from_millis(100)))
                .connect();
            if self.cancelled() {
                return Ok(None);
            }
            match attempt {
                // The process's interrupt fires only on a stop signal: the
                // stop is on its way to the main thread, and this is it,
                // not a failure to report ahead of it (exit 130 instead of 0).
                Err(zkutil::Error::Interrupted) => return Ok(None),
                Ok(session) => {
                    tracing::info!(zk = %self.config.session.hosts(), session = %session.id(),
                        timeout = %zkutil::rounded(session.negotiated_timeout()), "connected to ZooKeeper");
                    return Ok(Some(Arc::new(session)));
                }
                Err(err) if err.is_retryable() => {
                    if !self.pause(
                        &mut backoff,
                        &err,
                        "ZooKeeper unreachable; listeners keep serving",
                    )? {
                        return Ok(None);
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// One registration per distinct endpoint; when cancelled, those made
    /// so far (`None` if none): the stop deregisters them first and drains,
    /// as for a full set, since clients may have listed them already.
    fn register_all(&self, session: &Arc<Session>) -> anyhow::Result<Option<Vec<Registration>>> {
        let version = env!("CARGO_PKG_VERSION");
        let mut registrations = Vec::with_capacity(self.endpoints.len());
        let registrars = self
            .config
            .layout
            .registrars(&self.config.formats, &self.config.service)?;
        let expected = registrars.len() * self.endpoints.len();
        for registrar in registrars {
            let base_path = registrar.parent();
            // We have just bound these ports here: a node of one that names
            // this host is our own earlier run's.
            let registrar = registrar
                .takeover(Takeover::SameHost)
                .open_parent(self.config.open_parent)
                .metrics(self.metrics);
            let registrar = match self.config.start_disabled {
                true => registrar.disabled(Some(match &self.config.ready_check {
                    Some(_) => "starting: waiting for its ready check".to_owned(),
                    None => "starting: waiting for zkutil enable".to_owned(),
                })),
                false => registrar,
            };
            for (endpoint, addrs) in &self.endpoints {
                let endpoint = *endpoint;
                let metadata = Metadata::for_this_process(endpoint, self.started, version)
                    .with_weight(self.config.weight);
                let mut backoff = Backoff::default();
                let registration = loop {
                    if self.cancelled() {
                        return Ok(made_so_far(registrations));
                    }
                    match registrar.register(session, endpoint, &metadata) {
                        Ok(registration) => break registration,
                        // Another live holder, or ZooKeeper unreachable:
                        // both may pass, so wait and try again.
                        Err(err)
                            if err.is_retryable() || matches!(err, zkutil::Error::Taken { .. }) =>
                        {
                            let what = if err.is_retryable() {
                                "cannot register yet"
                            } else {
                                "waiting for the other holder to go"
                            };
                            if !self.pause(&mut backoff, &err, what)? {
                                return Ok(made_so_far(registrations));
                            }
                        }
                        Err(err) => {
                            return Err(anyhow::Error::new(err)
                                .context(format!("registering {endpoint} under {base_path}")));
                        }
                    }
                };
                tracing::info!(listen = %addrs[0], path = %registration.path(),
                    format = %registrar.registry_format(), outcome = %registration.outcome(), "registered");
                registrations.push(registration);
                crate::notify::status(&format!(
                    "registered {} of {}",
                    registrations.len(),
                    expected
                ));
            }
        }
        Ok(Some(registrations))
    }

    /// Logs a failed attempt and waits the backoff delay. Returns false when
    /// cancelled meanwhile; an error when the startup timeout would pass.
    fn pause(
        &self,
        backoff: &mut Backoff,
        err: &zkutil::Error,
        what: &str,
    ) -> anyhow::Result<bool> {
        let delay = backoff.next_delay();
        if let (Some(deadline), Some(timeout)) = (self.deadline, self.config.startup_timeout) {
            if Instant::now() + delay >= deadline {
                return Err(anyhow::anyhow!("{}", err.chain())).with_context(|| {
                    format!(
                        "not registered within --startup-timeout {}",
                        humantime::format_duration(timeout)
                    )
                });
            }
        }
        tracing::warn!(attempt = backoff.attempts(), error = %err.chain(), retry_in = %zkutil::rounded(delay), "{what}");
        crate::notify::status(&format!(
            "{what} ({}; ZooKeeper at {}); attempt {}",
            err.chain(),
            self.config.session.hosts(),
            backoff.attempts()
        ));
        Ok(match self.woken.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => !self.cancelled(),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        })
    }
}

/// The registrations made before a cancel, `None` when there are none.
fn made_so_far(registrations: Vec<Registration>) -> Option<Vec<Registration>> {
    (!registrations.is_empty()).then_some(registrations)
}
