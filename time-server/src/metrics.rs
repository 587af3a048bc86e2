//! `metrics`: what an operator sees of a running time-server at
//! `--metrics-listen` (`GET /metrics`, `GET /healthz`).
//!
//! Counters are plain atomics bumped on the accept path (a few
//! nanoseconds; `scripts/bench.sh` measures the connection rate with and
//! without them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use zkutil::SessionEvent;

/// The time-server's metrics.
#[derive(Debug)]
pub struct ServerMetrics {
    /// Connections accepted.
    pub accepted: Counter,
    /// Connections that got their reply.
    pub answered: Counter,
    /// Connections over `--max-connections` (replied, closed at once).
    pub over_cap: Counter,
    /// Connections that ended before the reply was written.
    pub failed: Counter,
    /// Connections being served now.
    pub in_flight: Gauge,
    /// From accept to the reply written, in seconds.
    pub reply_seconds: Histogram,
    /// Registrations in place now, counted at each scrape from their
    /// statuses (a deregistration, a deletion seen or a refused
    /// re-creation lowers it).
    pub registrations: Gauge,
    /// 1 while the ZooKeeper session is connected.
    pub zookeeper_connected: Gauge,
    /// ZooKeeper session events by kind (disconnected, reconnected,
    /// rebuilt: the session expired and was replaced).
    pub session_events: Family<EventLabel, Counter>,
    /// ZooKeeper calls by operation, in seconds.
    pub zookeeper_request_seconds: Family<OpLabel, Histogram>,
    /// ZooKeeper calls that failed, by kind of error.
    pub zookeeper_errors: Family<ErrorLabel, Counter>,
    registered: AtomicBool,
    connected: AtomicBool,
    /// The server is stopping: its registrations are being deleted.
    stopping: AtomicBool,
    /// Each registration's node in place, as its keeper last saw it.
    statuses: std::sync::Mutex<Vec<zkutil::RegistrationStatus>>,
}

/// The operation of a ZooKeeper call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// `create`, `list`, `stat`, `delete`, `watch`, …
    pub op: &'static str,
}

/// The kind of a failed ZooKeeper call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    /// `timeout`, `unreachable`, `closed`, or ZooKeeper's code (`nonode`,
    /// `nodeexists`, `connectionloss`, …).
    pub kind: String,
}

/// The label of a session event.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    /// `disconnected`, `reconnected`, `rebuilt`, `auth_failed`.
    pub event: &'static str,
}

impl ServerMetrics {
    /// The metrics, registered in a new registry.
    pub fn new() -> (Arc<ServerMetrics>, Arc<Mutex<Registry>>) {
        let metrics = Arc::new(ServerMetrics {
            accepted: Counter::default(),
            answered: Counter::default(),
            over_cap: Counter::default(),
            failed: Counter::default(),
            in_flight: Gauge::default(),
            // 10 µs .. ~5 s.
            reply_seconds: Histogram::new(exponential_buckets(1e-5, 4.0, 10)),
            registrations: Gauge::default(),
            zookeeper_connected: Gauge::default(),
            session_events: Family::default(),
            zookeeper_request_seconds: Family::new_with_constructor(|| {
                // 100 µs .. ~26 s.
                Histogram::new(exponential_buckets(1e-4, 4.0, 10))
            }),
            zookeeper_errors: Family::default(),
            registered: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            statuses: std::sync::Mutex::new(Vec::new()),
        });
        let mut registry = Registry::with_prefix("time_server");
        let m = &metrics;
        registry.register(
            "connections_accepted",
            "Connections accepted",
            m.accepted.clone(),
        );
        registry.register(
            "connections_answered",
            "Connections that got their reply",
            m.answered.clone(),
        );
        registry.register(
            "connections_over_cap",
            "Connections over --max-connections: replied and closed at once",
            m.over_cap.clone(),
        );
        registry.register(
            "connections_failed",
            "Connections that ended before the reply was written",
            m.failed.clone(),
        );
        registry.register(
            "connections_in_flight",
            "Connections being served now",
            m.in_flight.clone(),
        );
        registry.register(
            "reply_seconds",
            "From accept to the reply written",
            m.reply_seconds.clone(),
        );
        registry.register(
            "registrations",
            "Registrations kept in ZooKeeper",
            m.registrations.clone(),
        );
        registry.register(
            "zookeeper_connected",
            "1 while the ZooKeeper session is connected",
            m.zookeeper_connected.clone(),
        );
        registry.register(
            "zookeeper_session_events",
            "ZooKeeper session events by kind",
            m.session_events.clone(),
        );
        registry.register(
            "zookeeper_request_seconds",
            "ZooKeeper calls by operation",
            m.zookeeper_request_seconds.clone(),
        );
        registry.register(
            "zookeeper_errors",
            "ZooKeeper calls that failed, by kind",
            m.zookeeper_errors.clone(),
        );
        (metrics, Arc::new(Mutex::new(registry)))
    }

    /// One connection answered, `took` after it was accepted.
    pub fn answered_in(&self, took: Duration) {
        self.answered.inc();
        self.reply_seconds.observe(took.as_secs_f64());
    }

    /// One ZooKeeper call (a `SessionConfig::with_call_observer`).
    pub fn zookeeper_call(&self, op: &'static str, took: Duration, error: Option<&zkutil::Error>) {
        self.zookeeper_request_seconds
            .get_or_create(&OpLabel { op })
            .observe(took.as_secs_f64());
        if let Some(error) = error {
            let kind = match error {
                zkutil::Error::Timeout { .. } => "timeout".to_owned(),
                zkutil::Error::Unreachable { .. } => "unreachable".to_owned(),
                zkutil::Error::Closed => "closed".to_owned(),
                zkutil::Error::Zk { source, .. } => format!("{:?}", source.kind()).to_lowercase(),
                _ => "other".to_owned(),
            };
            self.zookeeper_errors
                .get_or_create(&ErrorLabel { kind })
                .inc();
        }
    }

    /// The registrations are in place on a connected session; `statuses`
    /// say from now on whether each still is.
    pub fn registered(&self, statuses: Vec<zkutil::RegistrationStatus>) {
        *zkutil::cli::lock(&self.statuses) = statuses;
        self.before_scrape();
        self.registered.store(true, Ordering::SeqCst);
        self.set_connected(true);
    }

    /// What the session reported.
    pub fn session_event(&self, event: SessionEvent) {
        let kind = match event {
            SessionEvent::Disconnected => {
                self.set_connected(false);
                "disconnected"
            }
            SessionEvent::Connected => {
                self.set_connected(true);
                "reconnected"
            }
            SessionEvent::Rebuilt { .. } => {
                self.set_connected(true);
                "rebuilt"
            }
            SessionEvent::AuthFailed => {
                self.set_connected(false);
                "auth_failed"
            }
            _ => return,
        };
        self.session_events
            .get_or_create(&EventLabel { event: kind })
            .inc();
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::SeqCst);
        self.zookeeper_connected.set(i64::from(connected));
    }

    /// Before each `/metrics` answer: the gauges read from their sources.
    pub fn before_scrape(&self) {
        let statuses = zkutil::cli::lock(&self.statuses);
        let in_place = statuses.iter().filter(|s| s.is_in_place()).count();
        self.registrations
            .set(i64::try_from(in_place).unwrap_or(i64::MAX));
    }

    /// The server is stopping: it deletes its registrations first, so
    /// `/healthz` says why they are gone.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// `/healthz`: serving and registered, on a connected session.
    pub fn health(&self) -> Result<(), String> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err("stopping: registrations deleted first".to_owned());
        }
        if !self.registered.load(Ordering::SeqCst) {
            return Err("not registered yet".to_owned());
        }
        if !self.connected.load(Ordering::SeqCst) {
            return Err("ZooKeeper unreachable: the registration may be gone".to_owned());
        }
        // After a new session (the old one expired) until the nodes are
        // back, or while their re-creation is refused: not registered.
        let statuses = zkutil::cli::lock(&self.statuses);
        let missing = statuses.iter().filter(|s| !s.is_in_place()).count();
        if missing > 0 {
            return Err(format!(
                "{missing} of {} registrations not in place: re-registering, or refused (see the log)",
                statuses.len()
            ));
        }
        Ok(())
    }
}
