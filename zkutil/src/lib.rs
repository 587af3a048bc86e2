//! Service registration and discovery over Apache ZooKeeper, with a
//! blocking API.
//!
//! A server registers each address it listens on as an EPHEMERAL znode
//! `<base>/<ip:port>`; clients list the children of `<base>` and pick one.
//! When a server dies its session ends and its nodes vanish.
//!
//! # Layout
//!
//! * [`endpoint`]: `Endpoint`, an `ip:port` and the znode name for it.
//! * [`session`]: `Session`, one ZooKeeper session; every call has a deadline.
//! * [`registry`]: `Registration`, one endpoint's ephemeral node, kept by its own thread.
//! * [`metadata`]: `Metadata`, the JSON a registration stores about its server.
//! * [`discovery`]: `Discovery`, a live watch-driven cache of the registered instances.
//! * [`select`]: `Selector`, which instance gets the next request.
//! * [`admin`]: four-letter words (`srvr`) for health checks.
//! * [`backoff`]: `Backoff`, capped exponential retry delays with jitter.
//! * [`error`]: `Error`, the one error type.
//! * `cli` (feature `cli`): the flags, logging and signal handling the binaries share.
//! * `testing` (feature `testing`): a real ZooKeeper for tests.
//!
//! The library logs through `tracing` and never installs a subscriber.

#![deny(missing_docs)]

pub mod admin;
pub mod backoff;
#[cfg(feature = "cli")]
pub mod cli;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod metadata;
pub mod registry;
pub mod select;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;

pub use backoff::Backoff;
pub use discovery::{Change, Discovery, Instance, Snapshot};
pub use endpoint::Endpoint;
pub use error::{Error, Result, ZkErrorKind};
pub use metadata::Metadata;
pub use registry::Registration;
pub use select::{Selector, Strategy};
pub use session::{
    NodeStat, Secret, Session, SessionConfig, SessionEvent, SessionState, WatchEvent,
};
