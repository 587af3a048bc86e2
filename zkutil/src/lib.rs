//! Service registration and discovery over Apache ZooKeeper, with a
//! blocking API.
//!
//! A server registers each address it listens on as an EPHEMERAL znode
//! `<base>/<ip:port>`; clients list the children of `<base>` and pick one.
//! When a server dies its session ends and its nodes vanish.
//!
//! The whole story, register then discover (run as a test against a real
//! ZooKeeper; outside tests, `hosts` is your connect string):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let zk = zkutil::testing::zookeeper();
//! # let hosts = zk.connect_string();
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use zkutil::{BasePath, Discovery, Endpoint, Metadata, Registration, Selector, SessionConfig, Strategy};
//!
//! // One session per process: it rides out disconnections and rebuilds
//! // itself (and everything registered through it) after an expiry.
//! let session = Arc::new(SessionConfig::new(hosts).connect()?);
//! let base = BasePath::new("/go_servers")?;
//!
//! // A server registers the address it listens on, with its metadata...
//! let endpoint: Endpoint = "127.0.0.1:8897".parse()?;
//! let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "1.0.0");
//! let registration = Registration::register(&session, &base, endpoint, &metadata)?;
//!
//! // ...a client keeps a live, watched list and picks from it: no
//! // ZooKeeper call per request.
//! let discovery = Discovery::start(session.clone(), &base)?;
//! let snapshot = discovery
//!     .wait_for(Duration::from_secs(5), |s| !s.instances().is_empty())
//!     .ok_or("not discovered in time")?;
//! let selector = Selector::new(Strategy::Random);
//! let server = selector.pick(snapshot.instances()).ok_or("no server")?;
//! assert_eq!(server.endpoint(), endpoint);
//!
//! // On shutdown the server deregisters first: clients stop picking it at once.
//! registration.deregister()?;
//! discovery
//!     .wait_for(Duration::from_secs(5), |s| s.instances().is_empty())
//!     .ok_or("still listed")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! Each type has one path, at the crate root; the modules behind them are
//! private, one concept each:
//!
//! * `endpoint`: [`Endpoint`], an `ip:port` and the znode name for it.
//! * `base_path`: [`BasePath`], the checked znode path registrations live under.
//! * `session`: [`Session`], one ZooKeeper session; every call has a deadline.
//! * `registry`: [`Registration`], one endpoint's ephemeral node, kept by its own thread.
//! * `control`: [`Control`], an operator's change to a live registration (out of rotation, weight).
//! * `metadata`: [`Metadata`], the JSON a registration stores about its server.
//! * `format`: [`Format`], the registries read and written: plain, Curator, Spring, serverset.
//! * `layout`: [`Layout`], each format's own root, so that no format's nodes land among another's instances.
//! * `discovery`: [`Discovery`], a live watch-driven cache of the registered instances.
//! * `select`: [`Selector`], which instance gets the next request.
//! * `tls`: [`TlsConfig`], the CA bundle and client certificate of TLS to
//!   ZooKeeper, re-read when the files change.
//! * `backoff`: [`Backoff`], capped exponential retry delays with jitter.
//! * `error`: [`Error`], the one error type.
//!
//! Three public modules are namespaces of their own: [`admin`] (four-letter
//! words such as `srvr`, for health checks), `cli` (feature `cli`: the flags,
//! logging and signal handling the binaries share) and `testing` (feature
//! `testing`: a real ZooKeeper for your tests, as Curator's `TestingServer`
//! is for Java's).
//!
//! The library logs through `tracing` and never installs a subscriber.

#![deny(missing_docs)]

pub mod admin;
mod backoff;
mod base_path;
#[cfg(feature = "cli")]
pub mod cli;
mod connect_string;
mod control;
mod discovery;
mod endpoint;
mod error;
mod format;
mod layout;
mod metadata;
mod registry;
mod select;
mod session;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
mod tls;

pub use backoff::{Backoff, rounded};
pub use base_path::BasePath;
pub use control::{Applied, Control, WRITE_ATTEMPTS};
pub use discovery::{
    Change, Discovery, Instance, Instances, InstancesIter, LIST_UNDER_MAX_NODES, Snapshot,
    list as list_instances, list_under as list_instances_under,
};
pub use endpoint::Endpoint;
pub use error::{Error, Result, ZkError, ZkErrorKind};
pub use format::{Format, instance_id};
pub use layout::Layout;
pub use metadata::{MAX_METADATA_LEN, Metadata};
pub use registry::{OpenParent, Outcome, Registrar, Registration, RegistrationStatus, Takeover};
pub use select::{Selector, Strategy};
/// The JSON of [`Registrar::register_fields`]: re-exported so that a
/// caller builds those fields with the version this crate reads and writes.
pub use serde_json;
pub use session::{
    CallObserver, Interrupt, NodeEvent, NodeStat, RecursiveWatch, Secret, Session, SessionConfig,
    SessionEvent, SessionId, SessionState, WatchEvent,
};
pub use tls::TlsConfig;
