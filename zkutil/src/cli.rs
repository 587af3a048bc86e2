//! `cli`: what the three binaries share, so that they take the same
//! ZooKeeper flags (with the same env fallbacks) and log the same way.
//!
//! The library itself never installs a log subscriber; a binary calls
//! [`init_logging`] once in `main`.
//!
//! * [`metrics`]: `/metrics` and `/healthz` for `--metrics-listen`.
//! * `http`: the bounded HTTP/1 server under it (hyper, one thread).

mod http;
pub mod metrics;

/// The binaries take poisoned locks the way the library does.
pub use crate::sync::lock;

use std::time::Duration;

use std::process::ExitCode;
use std::sync::OnceLock;

use crate::base_path::BasePath;
use crate::error::Error;
use crate::session::{Interrupt, Secret, SessionConfig};

/// The ZooKeeper flags of every binary; `#[command(flatten)]` it.
#[derive(Debug, Clone, clap::Args)]
///
/// # Example
///
/// ```
/// use clap::Parser;
///
/// /// A binary's flags: its own, and ZooKeeper's.
/// #[derive(clap::Parser)]
/// struct Args {
///     #[command(flatten)]
///     zk: zkutil::cli::ZkArgs,
/// }
///
/// let args = Args::parse_from(["app", "--zk", "zk1:2181,zk2:2181/app", "--base-path", "/services/time"]);
/// assert_eq!(args.zk.base_path.as_str(), "/services/time");
/// let config = args.zk.session_config(); // what connect() needs
/// assert_eq!(config.hosts(), "zk1:2181,zk2:2181/app");
/// // A typo is a usage error before anything is contacted.
/// assert!(Args::try_parse_from(["app", "--base-path", "go_servers"]).is_err());
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
    #[arg(
        long,
        global = true,
        env = "ZK_BASE_PATH",
        default_value = BasePath::DEFAULT
    )]
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
    /// on the first SIGINT/SIGTERM once [`on_signals`] is installed.
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
/// let args = Args::parse_from(["app", "--serverset-path", "/aurora/time"]);
/// let layout = args.layout.layout(&args.zk.base_path);
/// assert_eq!(layout.plain().as_str(), "/go_servers");
/// assert_eq!(layout.root(zkutil::Format::Curator)?.as_str(), "/services");
/// assert_eq!(layout.root(zkutil::Format::Serverset)?.as_str(), "/aurora/time");
/// # Ok::<(), zkutil::Error>(())
/// ```
pub struct LayoutArgs {
    /// Root of curator and spring registrations: ROOT/SERVICE/ID (Spring
    /// Cloud Zookeeper's default root). Kept apart from --base-path, whose readers (the post's
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

/// A registry format that can be written (`plain`, `curator`, `spring`).
///
/// # Errors
///
/// An unknown name, or a format that is read only.
pub fn writable_format(text: &str) -> Result<crate::Format, String> {
    let format: crate::Format = text.parse().map_err(|err: Error| err.to_string())?;
    if crate::Format::WRITABLE.contains(&format) {
        Ok(format)
    } else {
        Err(format!("{format} cannot be written"))
    }
}

/// Hidden flags of the binaries without subcommands: print shell
/// completions or the man page instead of running (`scripts/man.sh` uses
/// them). `zkutil` has a `completions` subcommand instead.
#[derive(Debug, Clone, clap::Args)]
///
/// # Example
///
/// ```
/// use clap::Parser;
///
/// #[derive(clap::Parser)]
/// #[command(name = "app")]
/// struct Args {
///     #[command(flatten)]
///     generate: zkutil::cli::GenerateArgs,
/// }
///
/// let args = Args::parse_from(["app"]);
/// assert!(args.generate.generate::<Args>().is_none(), "nothing asked: run the binary");
/// ```
pub struct GenerateArgs {
    /// Print completions for this shell and exit.
    #[arg(long, value_name = "SHELL", hide = true)]
    pub completions: Option<clap_complete::Shell>,
    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    pub man_page: bool,
}

impl GenerateArgs {
    /// Prints what was asked for the binary whose flags are `C`; `None`
    /// when nothing was (run the binary).
    pub fn generate<C: clap::CommandFactory>(&self) -> Option<ExitCode> {
        if let Some(shell) = self.completions {
            return Some(print_completions::<C>(shell));
        }
        self.man_page.then(print_man_page::<C>)
    }
}

/// Writes the completion script of `shell` for the binary whose flags are
/// `C` to stdout.
pub fn print_completions<C: clap::CommandFactory>(shell: clap_complete::Shell) -> ExitCode {
    let mut command = C::command();
    let name = command.get_name().to_owned();
    // Into memory first: the generator panics on a failed write (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    write_stdout(&script)
}

/// Writes `bytes` to stdout; a closed pipe is not an error.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("error: writing to stdout: {err}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Writes the man page (roff) of the binary whose flags are `C` to stdout.
pub fn print_man_page<C: clap::CommandFactory>() -> ExitCode {
    let mut page = Vec::new();
    match clap_mangen::Man::new(C::command()).render(&mut page) {
        Ok(()) => write_stdout(&page),
        Err(err) => {
            eprintln!("error: rendering the man page: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The longest duration any flag accepts. Longer is a typo (a missing
/// unit, `99999999999years`), and would overflow a deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// A flag's duration (`500ms`, `2s`, `1h 30m`), zero allowed: for pauses
/// such as `--drain` or `--interval`. clap turns an error into a one-line
/// message and exit 2.
///
/// # Errors
///
/// Unparseable text, or more than [`MAX_DURATION`].
pub fn duration(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if value > MAX_DURATION {
        return Err(format!(
            "{text} is too long: at most {}",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(value)
}

/// Like [`duration`], for timeouts: zero is refused (nothing could ever
/// finish within it).
///
/// # Errors
///
/// As [`duration`], and a zero duration.
pub fn timeout(text: &str) -> Result<Duration, String> {
    let value = duration(text)?;
    if value.is_zero() {
        return Err("a timeout must be more than 0".to_owned());
    }
    Ok(value)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`, or `warn` when
/// `quiet`; the ZooKeeper client's own chatter at `warn`), in colour only
/// on a terminal and never with `NO_COLOR` set (no-color.org). Module
/// paths only when `RUST_LOG` is set (someone is debugging).
pub fn init_logging(quiet: bool) {
    use std::io::IsTerminal;
    let debugging = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    let default = if quiet {
        "warn"
    } else {
        "info,zookeeper_client=warn"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log reader that went away (a closed pipe) must not panic the
        // thread that logs: its default reports the failed write with
        // `eprintln!`, which panics, and a stop path that panics never
        // deregisters nor exits. Lines that cannot be written are lost.
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_target(debugging)
        .try_init();
}

/// The process's interrupt: triggered by the first signal that
/// [`on_signals`] catches, it ends a waiting ZooKeeper connect at once.
pub fn interrupt() -> Interrupt {
    static INTERRUPT: OnceLock<Interrupt> = OnceLock::new();
    INTERRUPT.get_or_init(Interrupt::new).clone()
}

/// A binary's exit (the binaries' glue, so it takes their `anyhow` result):
/// the code of a result, or for an error one line
/// `<binary>: error: <cause: cause…>` on stderr and exit 1. A wait ended by
/// Ctrl-C exits 130 (as the shell reports a SIGINT) without an error line;
/// a closed stdout (`| head -1`: the reader has what it wanted) exits 0
/// quietly.
pub fn exit(binary: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    let err = match result {
        Ok(code) => return code,
        Err(err) => err,
    };
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let zk_error = err.chain().find_map(|cause| cause.downcast_ref::<Error>());
    match zk_error {
        Some(Error::Interrupted) => ExitCode::from(130),
        Some(Error::Refused { .. }) => {
            eprintln!("{binary}: error: {err:#} Start one with: scripts/zk.sh start");
            ExitCode::FAILURE
        }
        _ => {
            eprintln!("{binary}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Turns the first SIGINT or SIGTERM into a message (the signal number) on
/// the returned channel, for a graceful stop, and a second one into an
/// immediate exit (128 + signal), for an operator who does not want to wait.
///
/// # Errors
///
/// [`Error::Io`] when the handlers or their thread cannot be set up.
pub fn on_signals() -> crate::Result<std::sync::mpsc::Receiver<i32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|source| Error::Io {
            what: "installing signal handlers",
            source,
        })?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for (seen, signal) in signals.forever().enumerate() {
                if seen == 0 {
                    tracing::info!(signal, "stopping (a second signal exits at once)");
                    interrupt().trigger();
                    let _ = tx.send(signal);
                } else {
                    tracing::warn!(signal, "second signal: exiting now");
                    std::process::exit(128 + signal);
                }
            }
        })
        .map_err(|source| Error::Io {
            what: "starting the signal thread",
            source,
        })?;
    Ok(rx)
}
