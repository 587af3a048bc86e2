//! The sidecar's `/metrics` (`zkutil sidecar --metrics-listen`): per
//! service, whether it is healthy, how many results in a row went against
//! its state, and its transitions; per check, its last result and how long
//! its runs took. `/healthz` answers for the sidecar itself: 200 while its
//! ZooKeeper session is connected.

use std::sync::Arc;
use std::time::Duration;

use zkutil::Session;
use zkutil::cli::check::{Check, Health};
use zkutil::cli::metrics::MetricsServer;
use zkutil::cli::metrics::prometheus_client::encoding::EncodeLabelSet;
use zkutil::cli::metrics::prometheus_client::metrics::counter::Counter;
use zkutil::cli::metrics::prometheus_client::metrics::family::Family;
use zkutil::cli::metrics::prometheus_client::metrics::gauge::Gauge;
use zkutil::cli::metrics::prometheus_client::metrics::histogram::Histogram;
use zkutil::cli::metrics::prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    service: String,
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    service: String,
    to: String,
}

fn check_durations() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(
        zkutil::cli::metrics::prometheus_client::metrics::histogram::exponential_buckets(
            0.001, 2.0, 15,
        ),
    )
}

/// The sidecar's metrics, shared by its services' threads.
#[derive(Clone)]
pub struct Metrics {
    healthy: Family<ServiceLabel, Gauge>,
    against: Family<ServiceLabel, Gauge>,
    passing: Family<CheckLabels, Gauge>,
    durations: Family<CheckLabels, Histogram, fn() -> Histogram>,
    transitions: Family<TransitionLabels, Counter>,
}

impl Metrics {
    fn new(registry: &mut Registry) -> Metrics {
        let metrics = Metrics {
            healthy: Family::default(),
            against: Family::default(),
            passing: Family::default(),
            durations: Family::new_with_constructor(check_durations as fn() -> Histogram),
            transitions: Family::default(),
        };
        registry.register(
            "service_healthy",
            "1 while the service counts as healthy (its checks passed rise times in a row)",
            metrics.healthy.clone(),
        );
        registry.register(
            "service_results_against",
            "Consecutive check results against the service's state (toward rise or fall)",
            metrics.against.clone(),
        );
        registry.register(
            "service_transitions",
            "Times the service became healthy or failing",
            metrics.transitions.clone(),
        );
        registry.register(
            "check_passing",
            "1 when the check's last run passed",
            metrics.passing.clone(),
        );
        registry.register(
            "check_duration_seconds",
            "How long the check's runs took",
            metrics.durations.clone(),
        );
        metrics
    }

    /// One run of `check` for `service`.
    pub fn checked(&self, service: &str, check: &Check, passed: bool, took: Duration) {
        let labels = CheckLabels {
            service: service.to_owned(),
            check: check.to_string(),
        };
        self.passing.get_or_create(&labels).set(i64::from(passed));
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// `service`'s state after a round of checks; `changed` when it moved.
    pub fn state(&self, service: &str, health: &Health, changed: bool) {
        let label = ServiceLabel {
            service: service.to_owned(),
        };
        self.healthy
            .get_or_create(&label)
            .set(i64::from(health.is_healthy()));
        self.against
            .get_or_create(&label)
            .set(i64::from(health.against()));
        if changed {
            let to = if health.is_healthy() {
                "healthy"
            } else {
                "failing"
            };
            self.transitions
                .get_or_create(&TransitionLabels {
                    service: service.to_owned(),
                    to: to.to_owned(),
                })
                .inc();
        }
    }

    /// The series of `service`'s `checks` go (checks replaced).
    pub fn forget_checks(&self, service: &str, checks: &[Check]) {
        for check in checks {
            let labels = CheckLabels {
                service: service.to_owned(),
                check: check.to_string(),
            };
            self.passing.remove(&labels);
            self.durations.remove(&labels);
        }
    }

    /// A service removed: its series go (its checks' too).
    pub fn forget(&self, service: &str, checks: &[Check]) {
        let label = ServiceLabel {
            service: service.to_owned(),
        };
        self.healthy.remove(&label);
        self.against.remove(&label);
        for to in ["healthy", "failing"] {
            self.transitions.remove(&TransitionLabels {
                service: service.to_owned(),
                to: to.to_owned(),
            });
        }
        self.forget_checks(service, checks);
    }
}

/// Serves the metrics on `listen`, `/healthz` 200 while `session` is
/// connected; the server runs until dropped.
pub fn serve(
    listen: std::net::SocketAddr,
    session: &Arc<Session>,
) -> anyhow::Result<(Metrics, MetricsServer)> {
    let mut registry = Registry::with_prefix("zkutil_sidecar");
    let metrics = Metrics::new(&mut registry);
    let server = MetricsServer::start_for_session(
        listen,
        registry,
        session,
        "registrations cannot be kept",
        Box::new(|| {}),
    )?;
    Ok((metrics, server))
}
