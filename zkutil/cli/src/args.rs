//! `args`: the command line of `zkutil`.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use zkutil::Endpoint;

/// `--base-path` when none is given: where the time-servers (and the seed
/// Go servers) register by default, so that `zkutil ls` shows them unasked.
const DEFAULT_BASE_PATH: &str = "/go_servers";

const EXAMPLES: &str = "\
Examples:
  zkutil ls                                   registered instances, owner session, age, metadata
  zkutil --zk 10.0.0.1:2181,10.0.0.2:2181/app ls --json
  zkutil watch                                + / - lines as instances come and go (Ctrl-C to stop)
  zkutil get 127.0.0.1:8897                   one instance's data and stat
  zkutil register 10.0.0.5:6379 --metadata '{\"role\":\"cache\"}'
                                              hold a registration for a service until SIGTERM
  zkutil register 10.0.0.5:80 --check http://127.0.0.1:80/health
                                              ... in rotation only while its health check passes
  zkutil render --template haproxy.cfg.j2:/etc/haproxy/haproxy.cfg --exec 'systemctl reload haproxy'
                                              HAProxy's backends from the registry, on every change
  zkutil disable 127.0.0.1:8897 --reason deploy
                                              out of rotation, still registered (enable: back)
  zkutil weight 127.0.0.1:8897 300            its share of requests under weighted strategies
  zkutil check --timeout 500ms                ask every instance for the time; exit 1 if one is down
  zkutil status                               each ZooKeeper host's mode; exit 1 if one is down
  zkutil completions bash > ~/.local/share/bash-completion/completions/zkutil";

/// Inspect and use the service registry in ZooKeeper: the EPHEMERAL
/// `<base-path>/<ip:port>` nodes that time-servers (or `zkutil register`)
/// create.
#[derive(Debug, Parser)]
#[command(name = "zkutil", version, after_help = EXAMPLES,
          mut_arg("base_path", |arg| arg.default_value(DEFAULT_BASE_PATH)))]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand takes (before or after its name).
#[derive(Debug, Args)]
pub struct Common {
    #[command(flatten)]
    pub zk: zkutil::cli::ZkArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the registered instances: name, owner session, age, metadata.
    #[command(
        after_help = "Example:\n  zkutil ls\n  zkutil ls --under /          # every format, every service\n  zkutil --zk 10.0.0.1:2181/app ls --json | jq -r '.[].endpoint'"
    )]
    Ls {
        /// A JSON array instead of a table.
        #[arg(long, env = "ZKUTIL_JSON", value_parser = zkutil::cli::env_flag())]
        json: bool,
        /// List every parent below this root that holds instances, in every format, in one view
        /// (`/` for the whole registry: /go_servers, /services/<service>, serverset paths), with
        /// a PARENT column; instead of the children of --base-path alone.
        #[arg(long, env = "ZKUTIL_LS_UNDER", value_name = "ROOT", value_parser = ls_root)]
        under: Option<String>,
    },
    /// Print `+ ip:port` / `- ip:port` as instances come and go, and a line
    /// when the view goes stale or fresh, until Ctrl-C.
    #[command(after_help = "Example:\n  zkutil watch\n  zkutil watch --json")]
    Watch {
        /// One JSON object per event.
        #[arg(long, env = "ZKUTIL_JSON", value_parser = zkutil::cli::env_flag())]
        json: bool,
        /// Serve Prometheus metrics and /healthz (200 while the view is fresh) on this address.
        #[arg(long, env = "ZKUTIL_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Show one instance's data and stat.
    #[command(after_help = "Example:\n  zkutil get 127.0.0.1:8897")]
    Get {
        /// The instance, ip:port or [v6]:port.
        endpoint: Endpoint,
    },
    /// Register ip:port and hold the EPHEMERAL node (re-created after
    /// session expiry or deletion) until SIGINT/SIGTERM, then deregister: a
    /// sidecar for services not written in Rust.
    #[command(
        after_help = "Example:\n  zkutil register 10.0.0.5:6379 --metadata '{\"role\":\"cache\"}'\n  zkutil register 10.0.0.5:6379 --force    # replace a live session's node"
    )]
    Register {
        /// The address clients should connect to.
        endpoint: Endpoint,
        /// Extra JSON object merged into the default metadata.
        #[arg(long, env = "ZKUTIL_METADATA")]
        metadata: Option<String>,
        /// Registry format: plain (under --base-path), curator or spring (under
        /// --curator-base-path), serverset (under --serverset-path).
        #[arg(long, env = "ZKUTIL_FORMAT", default_value = "plain", value_parser = zkutil::cli::writable_format)]
        format: zkutil::Format,
        #[command(flatten)]
        layout: zkutil::cli::LayoutArgs,
        /// Serve Prometheus metrics and /healthz (200 while the registration is held) on this
        /// address; the address travels with the registration.
        #[arg(long, env = "ZKUTIL_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Service name of curator and spring registrations.
        #[arg(long, env = "ZKUTIL_SERVICE_NAME", default_value = "time")]
        service_name: String,
        /// Replace the node even when another live session holds it (by
        /// default that is refused: it may be a live server).
        // No env fallback: a takeover is typed, never inherited.
        #[arg(long)]
        force: bool,
        /// With --zk-auth, when the parent of the registration already exists open to anyone:
        /// set its ACL to this identity ALL, the world READ, instead of refusing. Needs ADMIN on it
        /// and --zk-auth.
        // `requires` cannot see the global --zk-auth given before the
        // subcommand: checked by `commands::register`.
        #[arg(long, env = "ZKUTIL_TIGHTEN_ACL", value_parser = zkutil::cli::env_flag())]
        tighten_acl: bool,
        #[command(flatten)]
        health: HealthArgs,
    },
    /// Keep many services registered, each in rotation only while its
    /// health checks pass, from a TOML file (SIGHUP re-reads it; SIGTERM
    /// deregisters them all).
    #[command(
        after_help = "Example:\n  zkutil sidecar --config /etc/zkutil/sidecar.toml\n  zkutil sidecar --config sidecar.toml --check-config    # check the file, touch nothing\n  kill -HUP <pid>                                        # re-read the file\n\nThe file's format: docs/sidecar.md"
    )]
    Sidecar {
        /// The services: a [services.NAME] table each (endpoint, checks, base_path, format, ...).
        #[arg(long, env = "ZKUTIL_SIDECAR_CONFIG", value_name = "FILE")]
        config: std::path::PathBuf,
        /// Check the file, print its services and exit (1 with every mistake, each with its line),
        /// without connecting to ZooKeeper.
        #[arg(long)]
        check_config: bool,
        /// Serve Prometheus metrics (per service and check: health, results in a row,
        /// transitions, check durations) and /healthz (200 while the ZooKeeper session is
        /// connected) on this address.
        #[arg(long, env = "ZKUTIL_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// On SIGINT/SIGTERM, how long to wait after deregistering every service before exiting
        /// (as the time-server's --drain; a second signal exits at once).
        #[arg(long, env = "ZKUTIL_DRAIN", default_value = "0s", value_parser = zkutil::cli::duration)]
        drain: Duration,
    },
    /// Render files from the live registry (an HAProxy backend, an nginx upstream, JSON for any
    /// language) on every change, and run a command after each write: discovery for programs
    /// that do not link this crate.
    #[command(
        after_help = "Example:\n  zkutil render --template haproxy.cfg.j2:/etc/haproxy/haproxy.cfg \\\n      --check 'haproxy -c -f {}' --exec 'systemctl reload haproxy' --wait 500ms:2s\n  zkutil render --once --template instances.json.j2:/run/instances.json\n\nThe templates' data and the ready-made templates: docs/render.md"
    )]
    Render {
        #[command(flatten)]
        args: crate::render::RenderArgs,
    },
    /// Serve a live web console of the registry: every base path under a root in every format,
    /// each instance's state, what changed, instance counts over the last hour, the ensemble's
    /// health; with --allow-writes, disable, enable and weight buttons.
    #[command(
        after_help = "Example:\n  zkutil console                          # then open http://127.0.0.1:7979/\n  zkutil --zk-auth-file ops.cred console --allow-writes\n\nMore: docs/console.md"
    )]
    Console {
        #[command(flatten)]
        args: crate::console::ConsoleArgs,
    },
    /// Take an instance out of rotation: it stays registered (and serving
    /// what it has), clients stop picking it. Written in its format's own
    /// field (Curator `enabled`, Spring `instance_status`, serverset
    /// `status`), kept by its registrant across re-creation.
    #[command(
        after_help = "Example:\n  zkutil disable 127.0.0.1:8897 --reason 'kernel upgrade'\n  zkutil enable 127.0.0.1:8897"
    )]
    Disable {
        /// The instance, ip:port or [v6]:port.
        endpoint: Endpoint,
        /// Why, for whoever looks next (shown by `zkutil ls`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Put an instance back in rotation.
    #[command(after_help = "Example:\n  zkutil enable 127.0.0.1:8897")]
    Enable {
        /// The instance, ip:port or [v6]:port.
        endpoint: Endpoint,
    },
    /// Set an instance's weight: its share of the requests under the
    /// weighted strategies (default 100; 0 = only when nothing else is up).
    #[command(after_help = "Example:\n  zkutil weight 127.0.0.1:8897 300")]
    Weight {
        /// The instance, ip:port or [v6]:port.
        endpoint: Endpoint,
        /// The new weight.
        weight: u32,
    },
    /// Ask every registered instance for the time and report reachable or
    /// not, with latency; exit 1 if any is unreachable.
    #[command(
        after_help = "Example:\n  zkutil check --timeout 500ms\n  zkutil check --probe tcp --min 2"
    )]
    Check {
        /// How long each instance has to answer (connect and reply).
        #[arg(long, env = "ZKUTIL_CHECK_TIMEOUT", default_value = "1s", value_parser = zkutil::cli::timeout)]
        timeout: Duration,
        /// What counts as reachable: `time` reads the reply line (a frozen
        /// server fails), `tcp` only connects (for other services).
        #[arg(long, env = "ZKUTIL_CHECK_PROBE", value_enum, default_value_t = Probe::Time)]
        probe: Probe,
        /// Fail (exit 1) when fewer instances than this are reachable, e.g. none registered.
        #[arg(long, env = "ZKUTIL_CHECK_MIN", default_value_t = 0)]
        min: usize,
        /// One JSON object per instance.
        #[arg(long, env = "ZKUTIL_JSON", value_parser = zkutil::cli::env_flag())]
        json: bool,
    },
    /// Each ZooKeeper host's `srvr`: mode, zxid, connections, latency; exit
    /// 1 if a host is down.
    #[command(after_help = "Example:\n  zkutil --zk zk1:2181,zk2:2181,zk3:2181 status")]
    Status {
        /// Timeout per host.
        #[arg(long, env = "ZKUTIL_STATUS_TIMEOUT", default_value = "2s", value_parser = zkutil::cli::timeout)]
        timeout: Duration,
        /// One JSON object per host.
        #[arg(long, env = "ZKUTIL_JSON", value_parser = zkutil::cli::env_flag())]
        json: bool,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  zkutil completions bash > ~/.local/share/bash-completion/completions/zkutil"
    )]
    Completions {
        /// The shell.
        shell: zkutil::cli::Shell,
    },
    /// Print the man page (roff); scripts/man.sh writes it to a file.
    #[command(hide = true)]
    ManPage,
}

/// `/`, or a valid base path: where `ls --under` starts.
fn ls_root(text: &str) -> Result<String, String> {
    if text == "/" {
        return Ok(text.to_owned());
    }
    zkutil::BasePath::new(text)
        .map(|base| base.as_str().to_owned())
        .map_err(|err| err.to_string())
}

/// `zkutil register`'s health checks: the registration is in rotation
/// only while every check passes.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct HealthArgs {
    /// Keep the instance in rotation only while this passes (repeatable; all must pass):
    /// http://HOST:PORT/PATH (a 2xx answer), tcp://HOST:PORT (the connection is accepted) or
    /// exec:COMMAND (`sh -c COMMAND` exits 0; killed with its whole process group at the
    /// timeout).
    #[arg(long = "check", value_name = "CHECK", env = "ZKUTIL_CHECK",
          value_parser = clap::value_parser!(zkutil::cli::check::Check))]
    pub checks: Vec<zkutil::cli::check::Check>,
    /// How often the checks run.
    #[arg(long, env = "ZKUTIL_CHECK_INTERVAL", default_value = "2s", value_parser = zkutil::cli::timeout)]
    pub check_interval: Duration,
    /// How long one run of a check may take (connect, request and answer; the command).
    #[arg(long, env = "ZKUTIL_CHECK_TIMEOUT", default_value = "1s", value_parser = zkutil::cli::timeout)]
    pub check_timeout: Duration,
    /// Consecutive passes that put a failing instance back (HAProxy's rise).
    #[arg(long, env = "ZKUTIL_RISE", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub rise: u32,
    /// Consecutive failures that take a healthy instance out (HAProxy's fall).
    #[arg(long, env = "ZKUTIL_FALL", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub fall: u32,
    /// What a failing instance gets: `disable` keeps it registered out of rotation (in its
    /// format's own field, with the reason `health check failing: CAUSE`; an operator's own
    /// `zkutil disable` is never undone by a passing check), `deregister` deletes it until
    /// the checks pass again.
    #[arg(long, env = "ZKUTIL_ON_FAIL", value_enum, default_value_t = OnFail::Disable)]
    pub on_fail: OnFail,
    /// On SIGINT/SIGTERM, how long to wait after deregistering before exiting, as the
    /// time-server's --drain: clients that listed the service a moment ago still reach it while
    /// whatever stops it next waits for this process (a second signal exits at once).
    #[arg(long, env = "ZKUTIL_DRAIN", default_value = "0s", value_parser = zkutil::cli::duration)]
    pub drain: Duration,
}

/// What `--check` does to a failing instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnFail {
    /// Out of rotation, still registered.
    Disable,
    /// Deleted until it passes again.
    Deregister,
}

/// What `zkutil check` asks of each instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    /// The time exchange: the reply line must arrive within the timeout (a
    /// frozen server, whose kernel still accepts connections, fails it).
    Time,
    /// A TCP connect only, for services that are not time servers.
    Tcp,
}
