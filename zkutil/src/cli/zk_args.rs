//! `zk_args`: the ZooKeeper flags every binary takes, with the same env
//! fallbacks, and the parsers of their values (a connect string checked
//! host by host, credentials never echoed).
//!
//! The flags carry no base path default: which znode a program registers
//! under is the program's choice, so each binary gives `--base-path` its
//! own default (see [`ZkArgs`]).

use std::time::Duration;

use super::signals::interrupt;
use super::values::timeout;
use crate::base_path::BasePath;
use crate::session::{Secret, SessionConfig};

/// The ZooKeeper flags of every binary; `#[command(flatten)]` it.
///
/// `--base-path` has no default here: where a program's instances live is
/// its own choice. A binary gives its default with clap's `mut_arg`, and
/// `--help` shows it; without one, the flag (or `ZK_BASE_PATH`) must be
/// given.
#[derive(Debug, Clone, clap::Args)]
///
/// # Example
///
/// ```
/// use clap::Parser;
///
/// /// A binary's flags: its own, and ZooKeeper's, with its base path.
/// #[derive(clap::Parser)]
/// #[command(mut_arg("base_path", |arg| arg.default_value("/services/time")))]
/// struct Args {
///     #[command(flatten)]
///     zk: zkutil::cli::ZkArgs,
/// }
///
/// let args = Args::parse_from(["app", "--zk", "zk1:2181,zk2:2181/app"]);
/// assert_eq!(args.zk.base_path.as_str(), "/services/time");
/// let config = args.zk.session_config(); // what connect() needs
/// assert_eq!(config.hosts(), "zk1:2181,zk2:2181/app");
/// // A typo is a usage error before anything is contacted.
/// assert!(Args::try_parse_from(["app", "--base-path", "go_servers"]).is_err());
///
/// // Without a default of the binary's, the base path must be given.
/// #[derive(clap::Parser)]
/// struct NoDefault {
///     #[command(flatten)]
///     zk: zkutil::cli::ZkArgs,
/// }
/// if std::env::var_os("ZK_BASE_PATH").is_none() {
///     assert!(NoDefault::try_parse_from(["app"]).is_err());
/// }
/// ```
pub struct ZkArgs {
    /// ZooKeeper connect string: `host:port[,host:port...][/chroot]`.
    #[arg(
        long,
        help = "ZooKeeper connect string: host:port[,host:port...][/chroot]",
        global = true,
        env = "ZK_HOSTS",
        default_value = "127.0.0.1:2181",
        value_parser = zk_hosts
    )]
    pub zk: String,
    /// ZooKeeper digest credentials user:password (never logged or echoed).
    #[arg(long, global = true, env = "ZK_AUTH", hide_env_values = true, value_parser = SecretParser)]
    pub zk_auth: Option<Secret>,
    /// Parent znode of plain (ip:port) registrations, and the node readers list (point them at
    /// /services/SERVICE for Curator's instances).
    // Not `required`: clap refuses a required global flag. A binary that
    // gives no default gets a usage error when the flag is missing.
    #[arg(long, global = true, env = "ZK_BASE_PATH", required = false)]
    pub base_path: BasePath,
    /// ZooKeeper session timeout (a crashed server's registrations linger this long).
    #[arg(long, global = true, env = "ZK_SESSION_TIMEOUT", default_value = "10s", value_parser = timeout)]
    pub session_timeout: Duration,
    /// Log only warnings and errors (RUST_LOG, when set, wins).
    #[arg(long, short, global = true, env = "ZK_QUIET")]
    pub quiet: bool,
    /// How long to wait for ZooKeeper when connecting.
    #[arg(long, global = true, env = "ZK_CONNECT_TIMEOUT", default_value = "5s", value_parser = timeout)]
    pub zk_connect_timeout: Duration,
}

impl ZkArgs {
    /// A session configuration from these flags; its connect ends at once
    /// on the first SIGINT/SIGTERM once [`on_signals`](super::on_signals) is installed.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig::new(&self.zk)
            .with_session_timeout(self.session_timeout)
            .with_connect_timeout(self.zk_connect_timeout)
            .with_interrupt(interrupt())
            .with_digest_auth(self.zk_auth.clone())
    }
}

/// Where the formats other than plain register: each format has its own
/// root, so that one format's nodes never land among another's instances
/// (see [`Layout`](crate::Layout)). `#[command(flatten)]` it, next to
/// [`ZkArgs`], in the binaries that register.
#[derive(Debug, Clone, clap::Args)]
///
/// # Example
///
/// ```
/// use clap::Parser;
///
/// #[derive(clap::Parser)]
/// struct Args {
///     #[command(flatten)]
///     zk: zkutil::cli::ZkArgs,
///     #[command(flatten)]
///     layout: zkutil::cli::LayoutArgs,
/// }
///
/// let args = Args::parse_from(["app", "--base-path", "/go_servers", "--serverset-path", "/aurora/time"]);
/// let layout = args.layout.layout(&args.zk.base_path);
/// assert_eq!(layout.plain().as_str(), "/go_servers");
/// assert_eq!(layout.root(zkutil::Format::Curator)?.as_str(), "/services");
/// assert_eq!(layout.root(zkutil::Format::Serverset)?.as_str(), "/aurora/time");
/// # Ok::<(), zkutil::Error>(())
/// ```
pub struct LayoutArgs {
    /// Root of curator and spring registrations: ROOT/SERVICE/ID (Spring
    /// Cloud Zookeeper's default root). Kept apart from --base-path, whose readers (the Go
    /// client among them) take every child for an ip:port.
    #[arg(
        long,
        env = "ZK_CURATOR_BASE_PATH",
        default_value = crate::Layout::CURATOR_DEFAULT
    )]
    pub curator_base_path: BasePath,
    /// Parent of serverset members (e.g. /aurora/time: what Prometheus's serverset_sd_configs
    /// `paths` names); needed by --format serverset, and never --base-path itself.
    #[arg(long, env = "ZK_SERVERSET_PATH")]
    pub serverset_path: Option<BasePath>,
}

impl LayoutArgs {
    /// The layout: plain instances under `plain` (`--base-path`), the
    /// others under these flags' roots.
    pub fn layout(&self, plain: &BasePath) -> crate::Layout {
        crate::Layout::new(plain.clone())
            .with_curator(self.curator_base_path.clone())
            .with_serverset(self.serverset_path.clone())
    }
}

/// A connect string `host[:port][,host[:port]...][/chroot]`, checked host
/// by host so that a typo is named; a host without a port gets ZooKeeper's
/// 2181, as every ZooKeeper client does.
///
/// # Errors
///
/// An empty list or host, a bad port, an unclosed `[`, or a chroot that is
/// not a clean absolute path; the message names the host.
pub fn zk_hosts(text: &str) -> Result<String, String> {
    let (hosts, chroot) = match text.find('/') {
        Some(slash) => (&text[..slash], Some(&text[slash..])),
        None => (text, None),
    };
    if let Some(chroot) = chroot.filter(|c| *c != "/") {
        BasePath::new(chroot).map_err(|err| format!("chroot: {err}"))?;
    }
    if hosts.trim().is_empty() {
        return Err("no host given".to_owned());
    }
    for host in hosts.split(',').map(str::trim) {
        let port = if let Some(rest) = host.strip_prefix('[') {
            match rest.split_once(']') {
                Some((ip, port)) if !ip.is_empty() => port.strip_prefix(':'),
                _ => return Err(format!("host {host:?}: expected [ipv6] or [ipv6]:port")),
            }
        } else {
            match host.split_once(':') {
                Some((name, port)) if !name.is_empty() => Some(port),
                Some(_) | None if host.is_empty() => {
                    return Err(format!("an empty host in {hosts:?}"));
                }
                Some(_) => return Err(format!("host {host:?}: no host name before the port")),
                None => None,
            }
        };
        if let Some(port) = port {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => {}
                _ => return Err(format!("host {host:?}: the port must be 1-65535")),
            }
        }
    }
    Ok(text.to_owned())
}

/// Parses `--zk-auth` without ever repeating the value in an error: it
/// may be a mistyped password.
#[derive(Debug, Clone, Copy)]
///
/// # Example
///
/// ```
/// #[derive(clap::Parser)]
/// struct Args {
///     #[arg(long, value_parser = zkutil::cli::SecretParser)]
///     operator: zkutil::Secret,
/// }
/// use clap::Parser;
/// let err = Args::try_parse_from(["app", "--operator", "no-colon-s3cret"]).err().expect("refused");
/// assert!(!err.to_string().contains("s3cret"), "never echoed: {err}");
/// ```
pub struct SecretParser;

impl clap::builder::TypedValueParser for SecretParser {
    type Value = Secret;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Secret, clap::Error> {
        let name = arg.map_or_else(|| "--zk-auth".to_owned(), ToString::to_string);
        value
            .to_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                clap::Error::raw(
                    clap::error::ErrorKind::ValueValidation,
                    format!("invalid value for {name}: expected user:password (the value is not shown)\n"),
                )
                .with_cmd(cmd)
            })
    }
}
