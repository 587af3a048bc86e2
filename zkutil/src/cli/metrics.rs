//! `metrics`: `GET /metrics` (OpenMetrics text of a `prometheus-client`
//! registry) and `GET /healthz` (200, or 503 with a one-line reason) for
//! the binaries' `--metrics-listen`.
//!
//! It runs on a thread of its own, on a small HTTP server bounded in
//! memory, connections, descriptors and time (the `http` module): a slow,
//! idle or hostile client of the metrics port never delays the time
//! listeners, never grows the process, and never locks out `/healthz`.

use crate::sync::lock;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The metrics library [`MetricsServer`] serves: re-exported because its
/// `Registry` is in our signatures, and a binary registers its own
/// metrics into it, so both must use this one version.
pub use prometheus_client;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::http::{Answer, HttpServer, Request};
use crate::Endpoint;

/// What `/healthz` asks: `Ok` while healthy, else why not (one line).
pub type HealthCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Called before each scrape, to set the gauges that describe "now".
pub type BeforeScrape = Box<dyn Fn() + Send + Sync>;

/// The metrics endpoint of a process, until dropped.
///
/// # Example
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use zkutil::cli::metrics::MetricsServer;
/// use zkutil::cli::metrics::prometheus_client::{metrics::counter::Counter, registry::Registry};
///
/// let requests: Counter = Counter::default();
/// let mut registry = Registry::with_prefix("app");
/// registry.register("requests", "Requests served", requests.clone());
/// let server = MetricsServer::start(
///     "127.0.0.1:0".parse().expect("an address"),
///     Arc::new(Mutex::new(registry)),
///     Box::new(|| Ok(())), // /healthz: 200
/// )
/// .expect("serves");
/// requests.inc();
/// // GET /metrics on server.addr() now reads `app_requests_total 1`.
/// # let (status, text) = zkutil::testing::http_get(server.addr(), "/metrics").expect("scrapes");
/// # assert_eq!(status, 200);
/// # assert_eq!(zkutil::testing::metric_value(&text, "app_requests_total"), Some(1.0));
/// ```
pub struct MetricsServer {
    server: HttpServer,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr())
            .finish()
    }
}

impl MetricsServer {
    /// Connections served at once. At the cap, one is closed to admit a
    /// new one: the one whose answer has waited longest for a client that
    /// does not read, else the one idle the longest, else the one answered
    /// most; when every connection is making or sending an answer, the new
    /// one is closed.
    pub const MAX_CONNECTIONS: usize = super::http::MAX_CONNECTIONS;
    /// Requests answered on one connection: the last answer closes it.
    pub const MAX_REQUESTS: usize = super::http::MAX_REQUESTS;
    /// File descriptors the server holds at most (its connections, one
    /// just accepted, its listener and poller): a process that budgets its
    /// descriptors sets these apart.
    pub const MAX_DESCRIPTORS: usize = super::http::MAX_DESCRIPTORS;
    /// Longest request head (request line and headers) in bytes: beyond
    /// it, 431 and the connection is closed. Requests with a body get 413.
    pub const MAX_HEAD: usize = super::http::MAX_HEAD;
    /// An idle connection, or one whose head is not complete by then, is
    /// closed after this.
    pub const IDLE_TIMEOUT: std::time::Duration = super::http::IDLE_TIMEOUT;
    /// A connection whose answer waits this long for the client to read is
    /// closed.
    pub const WRITE_TIMEOUT: std::time::Duration = super::http::WRITE_TIMEOUT;

    /// Serves `registry` and `health` on `listen` (port 0: a free port).
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the thread not started.
    pub fn start(
        listen: SocketAddr,
        registry: Arc<Mutex<Registry>>,
        health: HealthCheck,
    ) -> std::io::Result<MetricsServer> {
        MetricsServer::start_with(listen, registry, health, Box::new(|| {}))
    }

    /// Like [`MetricsServer::start`], calling `before_scrape` before each
    /// `/metrics` answer.
    ///
    /// # Errors
    ///
    /// As [`MetricsServer::start`].
    pub fn start_with(
        listen: SocketAddr,
        registry: Arc<Mutex<Registry>>,
        health: HealthCheck,
        before_scrape: BeforeScrape,
    ) -> std::io::Result<MetricsServer> {
        let server = HttpServer::start(
            listen,
            "metrics",
            Box::new(move |request: &Request<'_>| {
                answer(request, &registry, &health, &before_scrape).into()
            }),
        )?;
        Ok(MetricsServer { server })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Serves `registry` with a `zookeeper_connected` gauge (1 while
    /// `session` is connected) and `/healthz` 200 while it is connected,
    /// else 503 `ZooKeeper session <state>: <consequence>`; `before_scrape`
    /// runs before each `/metrics` answer. The server holds the session
    /// weakly: it does not keep it open.
    ///
    /// # Errors
    ///
    /// As [`MetricsServer::start`].
    pub fn start_for_session(
        listen: SocketAddr,
        mut registry: Registry,
        session: &Arc<crate::Session>,
        consequence: &'static str,
        before_scrape: BeforeScrape,
    ) -> std::io::Result<MetricsServer> {
        let connected = Gauge::<i64>::default();
        registry.register(
            "zookeeper_connected",
            "1 while the ZooKeeper session is connected",
            connected.clone(),
        );
        let (for_health, for_scrape) = (Arc::downgrade(session), Arc::downgrade(session));
        MetricsServer::start_with(
            listen,
            Arc::new(Mutex::new(registry)),
            Box::new(move || match for_health.upgrade().map(|s| s.state()) {
                Some(crate::SessionState::Connected) => Ok(()),
                Some(state) => Err(format!("ZooKeeper session {state:?}: {consequence}")),
                None => Err("stopping".to_owned()),
            }),
            Box::new(move || {
                let up = for_scrape
                    .upgrade()
                    .is_some_and(|s| s.state() == crate::SessionState::Connected);
                connected.set(i64::from(up));
                before_scrape();
            }),
        )
    }
}

fn answer(
    request: &Request<'_>,
    registry: &Mutex<Registry>,
    health: &HealthCheck,
    before_scrape: &BeforeScrape,
) -> Answer {
    if request.method() != "GET" {
        return Answer::text(405, "only GET\n");
    }
    match request.path() {
        "/metrics" => {
            before_scrape();
            let mut body = String::new();
            let registry = lock(registry);
            match prometheus_client::encoding::text::encode(&mut body, &registry) {
                Ok(()) => Answer::new(
                    200,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Err(err) => Answer::text(500, format!("encoding the metrics: {err}\n")),
            }
        }
        "/healthz" => match health() {
            Ok(()) => Answer::text(200, "ok\n"),
            Err(reason) => Answer::text(503, format!("{reason}\n")),
        },
        _ => Answer::text(404, "not found: try /metrics or /healthz\n"),
    }
}

/// The metrics of a long-running discovery client (`time-client`,
/// `zkutil watch`): its view of the registry and what it did with it.
#[derive(Debug, Default)]
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// use std::sync::Arc;
/// use zkutil::{BasePath, Discovery, SessionConfig};
/// use zkutil::cli::metrics::ClientMetrics;
///
/// let session = Arc::new(SessionConfig::new(zk.connect_string()).connect()?);
/// let discovery = Arc::new(Discovery::start(session, &BasePath::new("/go_servers")?)?);
/// let (metrics, server) = ClientMetrics::serve("127.0.0.1:0".parse()?, "app", &discovery)?;
/// metrics.picked("10.0.0.1:80".parse()?, false); // one per request the client makes
/// // GET /healthz on server.addr(): 200 while the view of the registry is fresh.
/// # let (status, _) = zkutil::testing::http_get(server.addr(), "/healthz")?;
/// # assert_eq!(status, 200, "the view of the registry is fresh");
/// # Ok(())
/// # }
/// ```
pub struct ClientMetrics {
    instances: Gauge,
    out_of_service: Gauge,
    stale: Gauge,
    age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    changes: Family<KindLabel, Counter>,
    picks: Family<EndpointLabel, Counter>,
    failures: Family<EndpointLabel, Counter>,
    retries: Counter,
}

/// The kind of a change a discovery saw.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// One instance.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    instance: String,
}

impl ClientMetrics {
    /// Serves the metrics of a client that follows `discovery` on
    /// `listen`: `/healthz` is 200 while the view is fresh.
    ///
    /// # Errors
    ///
    /// As [`MetricsServer::start`].
    pub fn serve(
        listen: SocketAddr,
        prefix: &str,
        discovery: &Arc<crate::Discovery>,
    ) -> std::io::Result<(Arc<ClientMetrics>, MetricsServer)> {
        let metrics = Arc::new(ClientMetrics::default());
        let mut registry = Registry::with_prefix(prefix);
        let m = &metrics;
        registry.register(
            "instances",
            "Instances in the snapshot, in service",
            m.instances.clone(),
        );
        registry.register(
            "instances_out_of_service",
            "Instances registered but out of service",
            m.out_of_service.clone(),
        );
        registry.register(
            "snapshot_stale",
            "1 while ZooKeeper is unreachable and the last known list is used",
            m.stale.clone(),
        );
        registry.register(
            "snapshot_age_seconds",
            "Since the snapshot was last confirmed by ZooKeeper",
            m.age_seconds.clone(),
        );
        registry.register(
            "changes",
            "Changes seen, by kind (added, removed, stale, fresh)",
            m.changes.clone(),
        );
        registry.register("picks", "Requests sent, by instance", m.picks.clone());
        registry.register(
            "failures",
            "Failed attempts, by instance",
            m.failures.clone(),
        );
        registry.register(
            "retries",
            "Attempts on another instance after a failed one",
            m.retries.clone(),
        );
        let changes = discovery.subscribe();
        let counting = metrics.clone();
        std::thread::Builder::new()
            .name("metrics changes".into())
            .spawn(move || {
                // Ends when the discovery (the sender) is gone.
                for change in changes {
                    let kind = match change {
                        crate::Change::Added(_) => "added",
                        crate::Change::Removed(_) => "removed",
                        crate::Change::Stale => "stale",
                        crate::Change::Fresh => "fresh",
                    };
                    counting.changes.get_or_create(&KindLabel { kind }).inc();
                }
            })?;
        let (for_scrape, for_health) = (Arc::downgrade(discovery), Arc::downgrade(discovery));
        let gauges = metrics.clone();
        let server = MetricsServer::start_with(
            listen,
            Arc::new(Mutex::new(registry)),
            Box::new(move || match for_health.upgrade() {
                Some(discovery) => {
                    let snapshot = discovery.snapshot();
                    match (snapshot.age(), snapshot.stale_for()) {
                        (None, _) => Err("no listing from ZooKeeper yet".to_owned()),
                        (Some(_), Some(stale)) => Err(format!(
                            "ZooKeeper unreachable for {}: using the last known list",
                            crate::rounded(stale)
                        )),
                        (Some(_), None) => Ok(()),
                    }
                }
                None => Err("stopping".to_owned()),
            }),
            Box::new(move || {
                if let Some(discovery) = for_scrape.upgrade() {
                    let snapshot = discovery.snapshot();
                    gauges.instances.set(count(snapshot.instances().len()));
                    gauges
                        .out_of_service
                        .set(count(snapshot.out_of_service().len()));
                    gauges.stale.set(i64::from(snapshot.is_stale()));
                    gauges
                        .age_seconds
                        .set(snapshot.age().map_or(f64::NAN, |age| age.as_secs_f64()));
                }
            }),
        )?;
        Ok((metrics, server))
    }

    /// An attempt was sent to `instance`; `retry` when an earlier attempt
    /// of the same request failed.
    pub fn picked(&self, instance: Endpoint, retry: bool) {
        self.picks
            .get_or_create(&EndpointLabel {
                instance: instance.to_string(),
            })
            .inc();
        if retry {
            self.retries.inc();
        }
    }

    /// An attempt on `instance` failed.
    pub fn failed(&self, instance: Endpoint) {
        self.failures
            .get_or_create(&EndpointLabel {
                instance: instance.to_string(),
            })
            .inc();
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Serves the metrics of a process that holds registrations on `session`
/// (`zkutil register`): `registrations` (in place) and
/// `zookeeper_connected`, and `/healthz` 200 while the session is connected
/// and every registration in `held` is in place. `held` is filled by the
/// caller once it has registered: until then `/healthz` says so.
///
/// # Errors
///
/// As [`MetricsServer::start`].
pub fn serve_registrant(
    listen: SocketAddr,
    prefix: &str,
    session: &Arc<crate::Session>,
    held: Arc<Mutex<Vec<crate::RegistrationStatus>>>,
) -> std::io::Result<MetricsServer> {
    let (connected, in_place) = (Gauge::<i64>::default(), Gauge::<i64>::default());
    let mut registry = Registry::with_prefix(prefix);
    registry.register("registrations", "Registrations in place", in_place.clone());
    registry.register(
        "zookeeper_connected",
        "1 while the ZooKeeper session is connected",
        connected.clone(),
    );
    let (for_scrape, for_health) = (Arc::downgrade(session), Arc::downgrade(session));
    let held_for_scrape = held.clone();
    MetricsServer::start_with(
        listen,
        Arc::new(Mutex::new(registry)),
        Box::new(move || {
            match for_health.upgrade().map(|s| s.state()) {
                Some(crate::SessionState::Connected) => {}
                Some(state) => {
                    return Err(format!(
                        "ZooKeeper session {state:?}: the registration may be gone"
                    ));
                }
                None => return Err("stopping".to_owned()),
            }
            let held = lock(&held);
            let missing = held.iter().filter(|s| !s.is_in_place()).count();
            if held.is_empty() {
                Err("not registered yet".to_owned())
            } else if missing > 0 {
                Err(format!(
                    "{missing} of {} registrations not in place: re-registering, or refused (see the log)",
                    held.len()
                ))
            } else {
                Ok(())
            }
        }),
        Box::new(move || {
            let up = for_scrape
                .upgrade()
                .is_some_and(|s| s.state() == crate::SessionState::Connected);
            connected.set(i64::from(up));
            let held = lock(&held_for_scrape);
            in_place.set(count(held.iter().filter(|s| s.is_in_place()).count()));
        }),
    )
}
