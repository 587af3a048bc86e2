//! [`Config`]: everything the server needs to know, filled from flags by
//! `main` (or by a test).

use std::net::IpAddr;
use std::time::Duration;

use zkutil::{Endpoint, Format, Layout, SessionConfig};

use crate::listener::ServeOptions;

/// `--base-path` when none is given: where the seed Go servers register
/// and the seed Go client looks, so that both read one registry unasked.
pub const DEFAULT_BASE_PATH: &str = "/go_servers";

/// Everything the server needs to know; filled from flags by `main`.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach ZooKeeper: hosts, credentials (registrations are then
    /// writable only by them), session timeout, and how long one attempt to
    /// connect may take.
    pub session: SessionConfig,
    /// Where each format registers: plain under its base path, Curator
    /// and Spring under their own root, serversets under their own path.
    pub layout: Layout,
    /// The formats each listener is registered in (several during a
    /// migration), each under its own root in `layout`.
    pub formats: Vec<Format>,
    /// The service name of Curator and Spring registrations.
    pub service: String,
    /// Addresses to listen on.
    pub listen: Vec<Endpoint>,
    /// Address to register when listening on an unspecified address.
    pub advertise: Option<IpAddr>,
    /// Give up (an error) when not registered within this; `None` retries
    /// for as long as it takes.
    pub startup_timeout: Option<Duration>,
    /// How long to keep serving after deregistering.
    pub drain: Duration,
    /// Serving options.
    pub serve: ServeOptions,
    /// Where to serve `/metrics` and `/healthz` (none: no metrics).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The weight told in each registration (none: clients use 100).
    pub weight: Option<u32>,
    /// Register out of rotation, until `zkutil enable` or `ready_check`.
    pub start_disabled: bool,
    /// A shell command that says the server is ready (exit 0); then it
    /// puts its registrations in rotation itself.
    pub ready_check: Option<String>,
    /// With auth, what to do when the parent of the registrations exists
    /// open to anyone: refuse to start (the default) or tighten its ACL.
    pub open_parent: zkutil::OpenParent,
}

impl Config {
    /// The defaults of the command line, for the connect string `zk_hosts`.
    pub fn new(zk_hosts: impl Into<String>) -> Config {
        Config {
            session: SessionConfig::new(zk_hosts),
            layout: Layout::new(zkutil::BasePath::from_static(DEFAULT_BASE_PATH)),
            formats: vec![Format::Plain],
            service: "time".to_owned(),
            listen: [8897, 8898, 8899]
                .map(|port| Endpoint::new(std::net::SocketAddr::from(([127, 0, 0, 1], port))))
                .to_vec(),
            advertise: None,
            startup_timeout: None,
            drain: Duration::from_secs(1),
            serve: ServeOptions::default(),
            metrics_listen: None,
            weight: None,
            start_disabled: false,
            ready_check: None,
            open_parent: zkutil::OpenParent::Refuse,
        }
    }
}
