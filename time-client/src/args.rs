//! `args`: the command line, and the [`Config`] it makes.

use std::time::Duration;

use zkutil::Strategy;

use crate::Config;
use crate::report::Format;
use crate::request::RequestLimits;

/// `--base-path` when none is given: where the time-servers and the seed
/// Go servers register by default, so that the client finds them unasked.
pub const DEFAULT_BASE_PATH: &str = "/go_servers";

/// Asks registered time-servers for the time: keeps a watched list of the
/// children of `<base-path>` in ZooKeeper (one session for the whole run),
/// picks a server per request, sends `timestamp`, prints the reply. A server
/// that fails is skipped for a cooldown and the request retried elsewhere.
///
/// Prints one line per request on stdout (`[ 37/100] <server> <latency>
/// <reply>`, or `[ 38/100] FAILED <why>`; with --plain, the two lines of
/// the Go client that reads the same registry, for scripts written for it;
/// JSON with --json); logs and the summary go to stderr. Exits 1 when any
/// request failed. Ctrl-C finishes the current request, prints
/// the summary and exits 130.
#[derive(Debug, clap::Parser)]
#[command(name = "time-client", version, about, long_about = None,
          mut_arg("base_path", |arg| arg.default_value(DEFAULT_BASE_PATH)),
          after_help = "Examples:\n  time-client --zk 127.0.0.1:2181 --count 10 --interval 200ms\n  \
                        time-client --count 1000 --interval 0s --json | tail -1\n  \
                        time-client --count 1 --plain")]
pub struct Args {
    #[command(flatten)]
    zk: zkutil::cli::ZkArgs,
    #[command(flatten)]
    generate: zkutil::cli::GenerateArgs,
    /// Number of requests.
    #[arg(long, env = "TIME_CLIENT_COUNT", default_value_t = 100)]
    count: u64,
    /// Pause between requests (e.g. 1s, 200ms, 0s).
    #[arg(long, env = "TIME_CLIENT_INTERVAL", default_value = "1s", value_parser = zkutil::cli::duration)]
    interval: Duration,
    /// How to pick a server: random, round-robin, weighted (by each registration's weight),
    /// smooth-weighted (the same, evenly interleaved) or p2c (the less loaded of two, by observed
    /// latency).
    #[arg(long, env = "TIME_CLIENT_STRATEGY", default_value = "random")]
    strategy: Strategy,
    /// Warm-up for the weighted strategies: a newly registered server's share ramps linearly from a
    /// tenth of its weight to its weight over this long from its registration (e.g. 10m, as Dubbo;
    /// 0s: off).
    #[arg(long, env = "TIME_CLIENT_WARMUP", default_value = "0s", value_parser = zkutil::cli::duration)]
    warmup: Duration,
    /// At most this many attempts on other servers after a failed one (default: every distinct
    /// server known in service is tried before the request fails, within --request-deadline).
    #[arg(long, env = "TIME_CLIENT_RETRIES")]
    retries: Option<u32>,
    /// How long one request may take, all its attempts together; each attempt's connect timeout
    /// and reply deadline are cut to what is left.
    #[arg(long, env = "TIME_CLIENT_REQUEST_DEADLINE", default_value = "10s", value_parser = zkutil::cli::timeout)]
    request_deadline: Duration,
    /// How long a server that failed is skipped.
    #[arg(long, env = "TIME_CLIENT_COOLDOWN", default_value = "10s", value_parser = zkutil::cli::duration)]
    cooldown: Duration,
    /// TCP connect timeout per attempt.
    #[arg(long, env = "TIME_CLIENT_CONNECT_TIMEOUT", default_value = "500ms", value_parser = zkutil::cli::timeout)]
    connect_timeout: Duration,
    /// How long to wait for the reply before sending `timestamp` (a daytime server, such as the Go
    /// servers that register under /go_servers, answers unasked, and resets a request it never reads); 0s sends it at once.
    #[arg(long, env = "TIME_CLIENT_GRACE", default_value = "50ms", value_parser = zkutil::cli::duration)]
    grace: Duration,
    /// Deadline for the whole reply, after connecting.
    #[arg(long, env = "TIME_CLIENT_TIMEOUT", default_value = "2s", value_parser = zkutil::cli::timeout)]
    timeout: Duration,
    /// Serve Prometheus metrics (GET /metrics) and a health check (GET /healthz: 200 while the view of
    /// the registry is fresh) on this address (port 0: a free port; off by default).
    #[arg(long, env = "TIME_CLIENT_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Print one JSON object per request and a summary object on stdout.
    #[arg(long, env = "TIME_CLIENT_JSON", conflicts_with = "plain", value_parser = zkutil::cli::env_flag())]
    json: bool,
    /// Print two lines per answered request, `connect host: <ip:port>` and the reply: the output of
    /// the Go client that reads the same registry, for scripts written for it.
    #[arg(long, env = "TIME_CLIENT_PLAIN", value_parser = zkutil::cli::env_flag())]
    plain: bool,
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

    /// The client's configuration from these flags.
    pub fn config(self) -> Config {
        Config {
            session: self.zk.session_config(),
            base_path: self.zk.base_path,
            count: self.count,
            interval: self.interval,
            limits: RequestLimits {
                connect_timeout: self.connect_timeout,
                timeout: self.timeout,
                grace: self.grace,
                ..RequestLimits::default()
            },
            strategy: self.strategy,
            retries: self.retries,
            request_deadline: self.request_deadline,
            cooldown: self.cooldown,
            warmup: self.warmup,
            metrics_listen: self.metrics_listen,
            format: match (self.json, self.plain) {
                (true, _) => Format::Json,
                (_, true) => Format::Plain,
                _ => Format::Text,
            },
        }
    }
}
