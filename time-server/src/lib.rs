//! The time server: listeners that answer with the time, each registered in
//! ZooKeeper for as long as it serves.
//!
//! * [`listener`]: bind, accept, a thread per connection, a connection cap.
//! * [`reply`]: the wire protocol (one line, half-close, bounded drain).
//! * [`shutdown`]: the stop switch and the signal thread.
//!
//! [`run`] puts them together in the order that loses no request: bind
//! every listener, serve, register; on a signal deregister first, keep
//! serving for the drain period (clients that listed us just before still
//! succeed), stop accepting, finish what is in flight, close the session.

pub mod listener;
pub mod reply;
pub mod shutdown;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use zkutil::{Endpoint, Metadata, Registration, SessionConfig};

use crate::listener::{BoundListener, ServeOptions, bind_all, serve, wake};
use crate::shutdown::Shutdown;

/// Everything the server needs to know; filled from flags by `main`.
#[derive(Debug, Clone)]
pub struct Config {
    /// ZooKeeper connect string.
    pub zk_hosts: String,
    /// Parent znode of the registrations.
    pub base_path: String,
    /// Addresses to listen on.
    pub listen: Vec<Endpoint>,
    /// Address to register when listening on an unspecified address.
    pub advertise: Option<IpAddr>,
    /// ZooKeeper session timeout.
    pub session_timeout: Duration,
    /// How long to wait for a ZooKeeper session at start.
    pub connect_timeout: Duration,
    /// How long to keep serving after deregistering.
    pub drain: Duration,
    /// Serving options.
    pub serve: ServeOptions,
}

/// Runs the server until a message arrives on `stop_requested` (or its
/// sender is dropped), then shuts down gracefully.
///
/// # Errors
///
/// A listener that cannot be bound, ZooKeeper unreachable at start, or a
/// registration that fails: one-line causes naming the address or hosts.
pub fn run(config: &Config, stop_requested: &Receiver<i32>) -> anyhow::Result<()> {
    let listeners = bind_all(&config.listen, config.advertise)?;
    let session = SessionConfig::new(&config.zk_hosts)
        .with_session_timeout(config.session_timeout)
        .with_connect_timeout(config.connect_timeout)
        .connect()
        .map(Arc::new)?;
    tracing::info!(zk = %config.zk_hosts, session = %format_args!("{:#x}", session.id()),
        timeout = ?session.negotiated_timeout(), "connected to ZooKeeper");
    let stop = Shutdown::new();
    let started = SystemTime::now();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| serve(&listeners, &stop, &config.serve));
        let registrations = match register_all(&session, config, &listeners, started) {
            Ok(registrations) => registrations,
            Err(err) => {
                stop.trigger();
                wake(&listeners);
                return Err(err);
            }
        };
        let signal = stop_requested.recv().ok();
        tracing::info!(?signal, "shutting down: deregistering first");
        for registration in registrations {
            let path = registration.path().to_owned();
            match registration.deregister() {
                Ok(()) => tracing::info!(%path, "deregistered"),
                Err(err) => {
                    tracing::warn!(%path, error = %err, "deregistration failed; the node goes with the session")
                }
            }
        }
        if !config.drain.is_zero() {
            tracing::info!(drain = ?config.drain, "still serving clients that listed us before");
            std::thread::sleep(config.drain);
        }
        stop.trigger();
        wake(&listeners);
        Ok(())
    });
    drop(session);
    tracing::info!("stopped");
    result
}

fn register_all(
    session: &Arc<zkutil::Session>,
    config: &Config,
    listeners: &[BoundListener],
    started: SystemTime,
) -> anyhow::Result<Vec<Registration>> {
    let version = env!("CARGO_PKG_VERSION");
    listeners
        .iter()
        .map(|bound| {
            let endpoint = bound.advertised();
            let metadata = Metadata::for_this_process(endpoint, started, version);
            let registration =
                Registration::register(session, &config.base_path, endpoint, &metadata)
                    .with_context(|| {
                        format!("registering {endpoint} under {}", config.base_path)
                    })?;
            tracing::info!(listen = %bound.local_addr(), path = %registration.path(),
                outcome = ?registration.outcome(), "registered");
            Ok(registration)
        })
        .collect()
}
