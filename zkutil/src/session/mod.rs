//! `Session`: one ZooKeeper session behind a blocking API, kept alive.
//!
//! The ZooKeeper client (`zookeeper-client`) is async; zkutil's callers are
//! plain threads. A `Session` owns one small runtime thread (an
//! `async-executor`; the network I/O itself runs on `async-io`'s reactor)
//! and runs every call there, each **bounded by a deadline**: the client
//! has no request timeout of its own and, while disconnected, would wait up
//! to 1.4× the session timeout (`runtime`).
//!
//! A supervisor thread receives every state change (never a ZooKeeper call
//! inside a watcher). `Disconnected` is not fatal: the client reconnects
//! inside the session timeout, keeping the session and its ephemeral nodes,
//! and nothing is re-created. `Expired` is: the supervisor first tries to
//! re-attach the old session (the client declares expiry on its own after
//! 1.4× the timeout, even when the server still knows the session), else
//! builds a new one, with backoff, and tells every subscriber
//! ([`SessionEvent::Rebuilt`]) so that registrations re-create their nodes
//! and discoveries re-arm their watches. `AuthFailed` is fatal.
//!
//! This is the only module that names the client crate, so that the rest of
//! the library (and its users) deal in zkutil's own types and errors.
//!
//! The parts, one concept per file: [`SessionConfig`] and [`Secret`]
//! (`config`); the [`Session`] handle, its bounded call and its close
//! (`handle`); the operations on znodes (`read`, `write`, `watch`, `acl`);
//! the values a session reports (`types`); the state shared with the
//! supervisor (`state`); the supervisor that rebuilds an expired session
//! (`supervisor`); the blocking bridge to the async client (`runtime`),
//! the signal that ends its waits ([`Interrupt`], `cancel`); why a connect
//! is slow and why it cannot succeed (`probe`, `handshake`); the TLS certificates kept current (`tls`); and
//! `deadline`.

mod acl;
mod cancel;
mod config;
mod deadline;
mod handle;
mod handshake;
mod probe;
mod read;
mod runtime;
mod state;
mod supervisor;
mod tls;
mod types;
mod watch;
mod write;

pub use self::cancel::Interrupt;
pub use self::config::{CallObserver, Secret, SessionConfig};
pub(crate) use self::deadline::deadline_after;
pub use self::handle::Session;
pub use self::types::{NodeEvent, NodeStat, SessionEvent, SessionId, SessionState, WatchEvent};
pub use self::watch::RecursiveWatch;
