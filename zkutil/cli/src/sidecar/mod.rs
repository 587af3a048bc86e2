//! `sidecar`: `zkutil register --check …`, a registration that follows
//! its service's health (what Airbnb's Nerve does). The checks run every
//! `--check-interval`, all at once, each within `--check-timeout`, so a
//! hung one delays neither the others nor the session (which has threads
//! of its own). [`Health`] turns their results into a state with `rise`
//! and `fall`; the registration then follows the state:
//!
//! * `--on-fail disable`: out of rotation in the format's own field, with
//!   the reason `health check failing: CAUSE`. Only what a check took out
//!   is put back: a passing check enables the instance only while its
//!   record still carries that reason, so an operator's `zkutil disable`
//!   (another reason, or none) stays; and an operator's `enable` of a
//!   failing instance is undone at the next check.
//! * `--on-fail deregister`: the node is deleted while failing, and made
//!   again once the checks pass.
//!
//! The state is compared with the record at every interval, not only at a
//! transition: a write that failed (ZooKeeper unreachable) is made when it
//! answers again, and it is the latest state that is written.

pub mod config;
pub mod fleet;
mod follow;
mod metrics;

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use zkutil::cli::check::{Check, Health};
use zkutil::{Registrar, Registration, RegistrationStatus, Session};

use crate::args::{HealthArgs, OnFail};

/// What a running [`hold`] is told.
pub enum Steer {
    /// Deregister and return.
    Stop,
    /// Check with these settings from now on (the registration stays; the
    /// health state is kept, counted with the new rise and fall).
    Update(HealthArgs),
}

/// The start of the reason a health check writes: what tells its own
/// out-of-rotation from an operator's.
pub const REASON_PREFIX: &str = "health check failing: ";

/// What is registered, how, and where its status is reported.
pub struct Registered<'a> {
    pub registrar: Registrar,
    pub session: &'a Arc<Session>,
    pub endpoint: zkutil::Endpoint,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub held: Arc<Mutex<Vec<RegistrationStatus>>>,
    /// A registration refused at the start (the address taken, ZooKeeper
    /// away) is tried again at every interval, instead of ending `hold`
    /// with the error: the sidecar's many services, where one service's
    /// trouble must not end the others.
    pub retry_registration: bool,
    /// The sidecar's metrics and this service's name in them.
    pub metrics: Option<(metrics::Metrics, String)>,
}

impl Registered<'_> {
    /// Registers: out of rotation with `disabled`'s reason if given.
    fn register_with(&self, disabled: Option<Option<String>>) -> anyhow::Result<Registration> {
        let registrar = match disabled {
            Some(reason) => self.registrar.clone().disabled(reason),
            None => self.registrar.clone(),
        };
        let registration = registrar
            .register_fields(self.session, self.endpoint, self.fields.clone())
            .with_context(|| {
                format!("registering {} under {}", self.endpoint, registrar.parent())
            })?;
        let mut held = zkutil::cli::lock(&self.held);
        held.clear();
        held.push(registration.status());
        tracing::info!(path = %registration.path(), outcome = %registration.outcome(), "registered");
        Ok(registration)
    }
}

/// Registers (out of rotation until the checks pass `rise` times; with
/// `deregister`, not at all until then; out of rotation for good with the
/// operator's reason when `operator_out` hands one over) and follows the
/// checks until [`Steer::Stop`], then deregisters: the operator's
/// out-of-rotation at that moment is returned, for the next registration.
pub fn hold(
    mut health: HealthArgs,
    what: &Registered<'_>,
    steer: &Receiver<Steer>,
    operator_out: follow::OperatorOut,
) -> anyhow::Result<follow::OperatorOut> {
    if what.registrar.registry_format() == zkutil::Format::Serverset
        && health.on_fail == OnFail::Disable
    {
        anyhow::bail!(
            "a serverset member has no room for a reason, so a health check's out-of-rotation could not be told from an operator's: use --on-fail deregister"
        );
    }
    let mut state = Health::new(health.rise, health.fall, false);
    let mut cause = "not checked yet".to_owned();
    // The cause last logged: a new one is said once, not every interval.
    let mut said = String::new();
    let first = match (&operator_out, health.on_fail) {
        (Some(reason), _) => Some(reason.clone()),
        (None, OnFail::Disable) => Some(Some(follow::reason_of(&cause))),
        (None, OnFail::Deregister) => None,
    };
    let registration = match first {
        Some(reason) if health.on_fail == OnFail::Disable => {
            match what.register_with(Some(reason)) {
                Ok(registration) => Some(registration),
                Err(err) if what.retry_registration => {
                    tracing::warn!(error = %format!("{err:#}"), "cannot register yet; retrying at the next check");
                    None
                }
                Err(err) => return Err(err),
            }
        }
        _ => None,
    };
    let mut follower = follow::Follower::new(registration, operator_out);
    tracing::info!(checks = %list(&health.checks), rise = health.rise, fall = health.fall,
        interval = %zkutil::rounded(health.check_interval), "checking; in rotation once the checks pass");
    loop {
        let results = run_all(&health.checks, health.check_timeout);
        let failures: Vec<String> = results
            .iter()
            .filter_map(|(check, result, _)| {
                result.as_ref().err().map(|why| format!("{check}: {why}"))
            })
            .collect();
        let passed = failures.is_empty();
        if let Some(first) = failures.first() {
            cause = first.clone();
        }
        let changed = state.record(passed);
        if let Some((metrics, name)) = &what.metrics {
            for (check, result, took) in &results {
                metrics.checked(name, check, result.is_ok(), *took);
            }
            metrics.state(name, &state, changed);
        }
        if changed {
            if passed {
                tracing::info!(checks = %list(&health.checks), "healthy: rise reached ({} passes in a row)", health.rise);
            } else {
                tracing::warn!(%cause, "failing: fall reached ({} failures in a row)", health.fall);
            }
        } else if !passed {
            if cause != said {
                tracing::info!(%cause, healthy = state.is_healthy(), "a check failed");
                said.clone_from(&cause);
            }
            tracing::debug!(%cause, failures = state.against(), "a check failed");
        }
        if passed {
            said.clear();
        }
        follower.follow(&state, &cause, health.on_fail, what);
        match steer.recv_timeout(health.check_interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Steer::Update(new)) => {
                tracing::info!(checks = %list(&new.checks), "checks updated");
                if let Some((metrics, name)) = &what.metrics {
                    metrics.forget_checks(name, &health.checks);
                }
                state = Health::new(new.rise, new.fall, state.is_healthy());
                health = new;
            }
            Ok(Steer::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some((metrics, name)) = &what.metrics {
        metrics.forget(name, &health.checks);
    }
    follower.stop(what)
}

/// After every deregistration on a stop: waits `drain`, so that clients
/// that listed the services a moment ago still reach them while whatever
/// stops them next waits for this process. A second signal exits at once
/// (`zkutil::cli::on_signals`).
pub fn drain(drain: std::time::Duration) {
    if !drain.is_zero() {
        tracing::info!(drain = %zkutil::rounded(drain), "deregistered; draining before exit");
        std::thread::sleep(drain);
    }
}

/// Runs every check at once, each within `timeout`: each check's result
/// and how long it took.
fn run_all(
    checks: &[Check],
    timeout: std::time::Duration,
) -> Vec<(&Check, Result<(), String>, std::time::Duration)> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = checks
            .iter()
            .map(|check| {
                let run = std::thread::Builder::new()
                    .name("check".into())
                    .spawn_scoped(scope, move || {
                        let started = std::time::Instant::now();
                        (check.run(timeout), started.elapsed())
                    });
                (check, run)
            })
            .collect();
        runs.into_iter()
            .map(|(check, run)| {
                let (result, took) = match run {
                    Ok(run) => run.join().unwrap_or_else(|_| {
                        (Err("the check panicked".into()), std::time::Duration::ZERO)
                    }),
                    Err(err) => (
                        Err(format!("cannot start a thread for it: {err}")),
                        std::time::Duration::ZERO,
                    ),
                };
                (check, result, took)
            })
            .collect()
    })
}

fn list(checks: &[Check]) -> String {
    checks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
