//! `zk_args`: the ZooKeeper flags every binary takes, with the same env
//! fallbacks, and the parser of the connect string (checked host by
//! host). The credentials' parsers are in `secrets`.
//!
//! The flags carry no base path default: which znode a program registers
//! under is the program's choice, so each binary gives `--base-path` its
//! own default (see [`ZkArgs`]).

use std::path::PathBuf;
use std::time::Duration;

use super::secrets::{SecretFileParser, SecretParser};
use super::signals::interrupt;
use super::values::timeout;
use crate::TlsConfig;
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
// Several identities at once are allowed (digest and a client certificate).
#[command(group(clap::ArgGroup::new(ZK_IDENTITY).multiple(true)))]
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
    /// ZooKeeper digest credentials user:password (never logged or echoed). `ps` shows a command
    /// line to every user on the host: prefer --zk-auth-file or ZK_AUTH.
    #[arg(long, global = true, env = "ZK_AUTH", hide_env_values = true, value_parser = SecretParser,
          group = ZK_IDENTITY)]
    pub zk_auth: Option<Secret>,
    /// File holding the ZooKeeper digest credentials user:password on one line (instead of
    /// --zk-auth; keep it chmod 600).
    // The file is read while the flags are parsed: the field holds its
    // secret, and a bad file is a usage error naming it.
    #[arg(long, global = true, env = "ZK_AUTH_FILE", value_name = "PATH", conflicts_with = "zk_auth",
          value_parser = SecretFileParser::user_password(), group = ZK_IDENTITY)]
    pub zk_auth_file: Option<Secret>,
    /// CA bundle (PEM) that ZooKeeper's certificate must chain to: speak TLS to ZooKeeper (its
    /// secureClientPort), its host name always verified.
    #[arg(long, global = true, env = "ZK_TLS_CA", value_name = "PATH")]
    pub zk_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for TLS, re-read when it changes: the x509 identity (ACL
    /// x509:SUBJECT) where ZooKeeper's x509 auth provider is on. Needs --zk-tls-ca and --zk-tls-key.
    #[arg(long, global = true, env = "ZK_TLS_CERT", value_name = "PATH",
          requires_all = ["zk_tls_ca", "zk_tls_key"], group = ZK_IDENTITY)]
    pub zk_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, not encrypted: keep it chmod 600).
    #[arg(
        long,
        global = true,
        env = "ZK_TLS_KEY",
        value_name = "PATH",
        requires = "zk_tls_cert",
        value_parser = super::secrets::private_key_path
    )]
    pub zk_tls_key: Option<PathBuf>,
    /// SASL DIGEST-MD5 credentials user:password (a user of ZooKeeper's JAAS Server section; ACL
    /// sasl:USER). `ps` shows a command line to every user on the host: prefer --zk-sasl-file or
    /// ZK_SASL.
    #[arg(long, global = true, env = "ZK_SASL", hide_env_values = true, value_parser = SecretParser,
          group = ZK_IDENTITY)]
    pub zk_sasl: Option<Secret>,
    /// File holding the SASL credentials user:password on one line (instead of --zk-sasl; keep it
    /// chmod 600).
    #[arg(long, global = true, env = "ZK_SASL_FILE", value_name = "PATH", conflicts_with = "zk_sasl",
          value_parser = SecretFileParser::user_password(), group = ZK_IDENTITY)]
    pub zk_sasl_file: Option<Secret>,
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
    #[arg(long, short, global = true, env = "ZK_QUIET", value_parser = crate::cli::env_flag())]
    pub quiet: bool,
    /// How log lines look: `text` for people, `json` for log shippers (one object per line, with
    /// the same fields).
    #[arg(long, global = true, env = "ZK_LOG_FORMAT", value_enum, ignore_case = true,
          default_value_t = crate::cli::LogFormat::Text)]
    pub log_format: crate::cli::LogFormat,
    /// How long to wait for ZooKeeper when connecting.
    #[arg(long, global = true, env = "ZK_CONNECT_TIMEOUT", default_value = "5s", value_parser = timeout)]
    pub zk_connect_timeout: Duration,
}

/// The clap group of the flags that give the session an identity of its
/// own (`--zk-auth`, `--zk-auth-file`, `--zk-tls-cert`, `--zk-sasl`,
/// `--zk-sasl-file`): a binary's flag that needs one (time-server's
/// `--operator`) `requires` it, whichever gives it.
pub const ZK_IDENTITY: &str = "zk_identity";

impl ZkArgs {
    /// The digest credentials, from `--zk-auth` (or `ZK_AUTH`) or from the
    /// file of `--zk-auth-file` (or `ZK_AUTH_FILE`); the two conflict.
    pub fn digest_auth(&self) -> Option<&Secret> {
        self.zk_auth.as_ref().or(self.zk_auth_file.as_ref())
    }

    /// A session configuration from these flags; its connect ends at once
    /// on the first SIGINT/SIGTERM once [`on_signals`](super::on_signals) is installed.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig::new(&self.zk)
            .with_session_timeout(self.session_timeout)
            .with_connect_timeout(self.zk_connect_timeout)
            .with_interrupt(interrupt())
            .with_digest_auth(self.digest_auth().cloned())
            .with_sasl_auth(
                self.zk_sasl
                    .as_ref()
                    .or(self.zk_sasl_file.as_ref())
                    .cloned(),
            )
            .with_tls(self.tls())
    }

    /// TLS to ZooKeeper, when `--zk-tls-ca` is given: its CA, and the
    /// client certificate and key when given.
    pub fn tls(&self) -> Option<TlsConfig> {
        let tls = TlsConfig::new(self.zk_tls_ca.clone()?);
        Some(match (&self.zk_tls_cert, &self.zk_tls_key) {
            (Some(cert), Some(key)) => tls.with_client_cert(cert, key),
            _ => tls,
        })
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
