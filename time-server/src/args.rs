//! `args`: the command line, and the [`Config`] it makes.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use zkutil::{Endpoint, Format};

use crate::config::{Config, DEFAULT_BASE_PATH};
use crate::listener::ServeOptions;

/// A time service that registers each listener as an EPHEMERAL znode
/// `<base-path>/<ip:port>` in ZooKeeper and answers every connection with
/// one line: `<ip:port>: <RFC 3339 time>`.
///
/// Stops gracefully on SIGINT/SIGTERM: deregisters, serves the drain period,
/// stops. A second signal exits at once.
#[derive(Debug, clap::Parser)]
#[command(name = "time-server", version, about, long_about = None,
          mut_arg("base_path", |arg| arg.default_value(DEFAULT_BASE_PATH)),
          after_help = "Example:\n  time-server --zk 127.0.0.1:2181 --listen 127.0.0.1:0 --listen 127.0.0.1:0")]
pub struct Args {
    #[command(flatten)]
    zk: zkutil::cli::ZkArgs,
    #[command(flatten)]
    layout: zkutil::cli::LayoutArgs,
    #[command(flatten)]
    generate: zkutil::cli::GenerateArgs,
    /// Address to listen on, ip:port or host:port (repeatable, or comma separated); port 0 picks a free port.
    #[arg(
        long,
        env = "TIME_SERVER_LISTEN",
        value_delimiter = ',',
        default_value = "127.0.0.1:8897,127.0.0.1:8898,127.0.0.1:8899",
        value_parser = parse_listen
    )]
    listen: Vec<Endpoint>,
    /// Registry format: plain (ip:port nodes under --base-path, which Go clients also read),
    /// curator (Apache Curator's service discovery, also read by Dubbo) or spring (Spring Cloud
    /// Zookeeper), both under --curator-base-path, or serverset (Finagle, Prometheus) under
    /// --serverset-path; repeatable, to register in several at once during a migration.
    #[arg(long, env = "TIME_SERVER_FORMAT", value_delimiter = ',', default_value = "plain",
          value_parser = zkutil::cli::writable_format)]
    format: Vec<Format>,
    /// Service name of curator and spring registrations (CURATOR_BASE_PATH/SERVICE_NAME/ID).
    #[arg(long, env = "TIME_SERVER_SERVICE_NAME", default_value = "time")]
    service_name: String,
    /// Serve Prometheus metrics (GET /metrics) and a health check (GET /healthz) on this address
    /// (port 0: a free port; off by default); the address travels with each registration.
    #[arg(long, env = "TIME_SERVER_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Share of the requests under clients' weighted strategies (default 100; 0: picked only when
    /// nothing else is up); stored in each registration's metadata.
    #[arg(long, env = "TIME_SERVER_WEIGHT")]
    weight: Option<u32>,
    /// Register out of rotation (a two-phase start): clients see the server but pick it only after
    /// `zkutil enable <ip:port>` (or once --ready-check passes).
    #[arg(long, env = "TIME_SERVER_START_DISABLED", value_parser = zkutil::cli::env_flag())]
    start_disabled: bool,
    /// With --start-disabled: a shell command run every second (at most 10 s each) until it exits
    /// 0; then the server puts itself in rotation.
    #[arg(long, env = "TIME_SERVER_READY_CHECK", requires = "start_disabled")]
    ready_check: Option<String>,
    /// Digest identity (user:password) that gets WRITE on this server's registrations besides the
    /// server's own --zk-auth identity, so that an operator can `zkutil disable` it; everyone else
    /// can only read. Needs --zk-auth (or --zk-auth-file). Only the password's digest is stored.
    /// `ps` shows a command line to every user on the host: prefer --operator-file or
    /// TIME_SERVER_OPERATOR.
    #[arg(long, env = "TIME_SERVER_OPERATOR", requires = zkutil::cli::ZK_IDENTITY,
          value_parser = zkutil::cli::SecretParser, hide_env_values = true)]
    operator: Option<zkutil::Secret>,
    /// File holding the operator identity user:password on one line (instead of --operator; keep
    /// it chmod 600).
    // Read while the flags are parsed (see ZkArgs::zk_auth_file).
    #[arg(long, env = "TIME_SERVER_OPERATOR_FILE", value_name = "PATH", conflicts_with = "operator",
          requires = zkutil::cli::ZK_IDENTITY, value_parser = zkutil::cli::SecretFileParser::user_password())]
    operator_file: Option<zkutil::Secret>,
    /// Operator identity named without a password, SCHEME:ID: x509:SUBJECT (a client
    /// certificate's subject, e.g. x509:CN=ops) or sasl:USER. Gets WRITE on this server's
    /// registrations as --operator does; needs an identity of the server's own.
    #[arg(long, env = "TIME_SERVER_OPERATOR_ID", value_name = "SCHEME:ID",
          conflicts_with_all = ["operator", "operator_file"], requires = zkutil::cli::ZK_IDENTITY,
          value_parser = parse_operator_id)]
    operator_id: Option<(String, String)>,
    /// With --zk-auth, when the parent of the registrations already exists open to anyone (as the
    /// Go servers or a run without auth leave /go_servers): set its ACL to this identity ALL,
    /// the world READ, instead of refusing to start. Needs ADMIN on that node.
    #[arg(long, env = "TIME_SERVER_TIGHTEN_ACL", requires = zkutil::cli::ZK_IDENTITY, value_parser = zkutil::cli::env_flag())]
    tighten_acl: bool,
    /// Delay every reply by this much: an artificially slow server, for tests and benchmarks.
    #[arg(long, hide = true, default_value = "0s", value_parser = zkutil::cli::duration)]
    reply_delay: Duration,
    /// Address to register when listening on 0.0.0.0 or [::] (IP or host name).
    #[arg(long, env = "TIME_SERVER_ADVERTISE", value_parser = parse_host)]
    advertise: Option<IpAddr>,
    /// Exit with an error when not registered within this (e.g. 30s); by default the listeners serve and
    /// registration is retried, with backoff, until ZooKeeper is reachable.
    #[arg(long, env = "TIME_SERVER_STARTUP_TIMEOUT", value_parser = zkutil::cli::timeout)]
    startup_timeout: Option<Duration>,
    /// How long to keep serving after deregistering on shutdown.
    #[arg(long, env = "TIME_SERVER_DRAIN", default_value = "1s", value_parser = zkutil::cli::duration)]
    drain: Duration,
    /// Most connections served at once; beyond it a connection gets its reply and is closed at once.
    #[arg(long, env = "TIME_SERVER_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
}

impl Args {
    /// Prints completions or the man page when asked (hidden flags);
    /// `None` when the binary should run.
    pub fn generate(&self) -> Option<std::process::ExitCode> {
        self.generate.generate::<Args>()
    }

    /// Whether `--quiet` was given.
    pub fn quiet(&self) -> bool {
        self.zk.quiet
    }

    /// How log lines look.
    pub fn log_format(&self) -> zkutil::cli::LogFormat {
        self.zk.log_format
    }

    /// The server's configuration from these flags.
    pub fn config(self) -> Config {
        Config {
            session: match &self.operator_id {
                Some((scheme, id)) => self.zk.session_config().with_operator_id(scheme, id),
                None => self
                    .zk
                    .session_config()
                    .with_operator(self.operator.or(self.operator_file)),
            },
            layout: self.layout.layout(&self.zk.base_path),
            formats: self.format,
            service: self.service_name,
            listen: self.listen,
            advertise: self.advertise,
            startup_timeout: self.startup_timeout,
            drain: self.drain,
            serve: ServeOptions {
                max_connections: self.max_connections as usize,
                reply_delay: self.reply_delay,
                ..ServeOptions::default()
            },
            metrics_listen: self.metrics_listen,
            weight: self.weight,
            start_disabled: self.start_disabled,
            ready_check: self.ready_check,
            open_parent: if self.tighten_acl {
                zkutil::OpenParent::Tighten
            } else {
                zkutil::OpenParent::Refuse
            },
        }
    }
}

/// `ip:port`, `[v6]:port`, or `host:port` resolved to its first address.
fn parse_listen(text: &str) -> Result<Endpoint, String> {
    let not_an_endpoint = match text.parse::<Endpoint>() {
        Ok(endpoint) => return Ok(endpoint),
        Err(err) => err,
    };
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(not_an_endpoint.to_string());
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{not_an_endpoint}; nor is it host:port"))?;
    parse_host(host).map(|ip| Endpoint::new(std::net::SocketAddr::new(ip, port)))
}

/// An IP address, or a host name resolved to its first address.
fn parse_host(text: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = text.parse() {
        return Ok(ip);
    }
    let mut addrs = (text, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {text:?}: {e}"))?;
    addrs
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

/// A certificate subject as ZooKeeper's x509 provider names it (Java's
/// RFC 2253 form, `CN=ops,O=Org`): openssl prints `CN = ops, O = Org`, and
/// a grant spelled so would never match.
fn rfc2253(subject: &str) -> String {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut escaped = false;
    for c in subject.chars() {
        if c == ',' && !escaped {
            parts.push(std::mem::take(&mut part));
        } else {
            part.push(c);
        }
        escaped = c == '\\' && !escaped;
    }
    parts.push(part);
    parts
        .iter()
        .map(|part| match part.split_once('=') {
            Some((kind, value)) => format!("{}={}", kind.trim().to_uppercase(), value.trim()),
            None => part.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `--operator-id`: `x509:SUBJECT` or `sasl:USER` (a digest identity has a
/// password: `--operator`).
fn parse_operator_id(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some(("x509", id)) if !id.trim().is_empty() => Ok(("x509".to_owned(), rfc2253(id))),
        Some(("sasl", id)) if !id.trim().is_empty() => Ok(("sasl".to_owned(), id.to_owned())),
        Some(("digest", _)) => {
            Err("a digest operator has a password: use --operator or --operator-file".to_owned())
        }
        _ => Err("expected x509:SUBJECT (e.g. x509:CN=ops) or sasl:USER".to_owned()),
    }
}
