//! `time-client`: parses flags and hands them to [`time_client::run`].

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use time_client::request::RequestLimits;
use zkutil::Strategy;

/// Asks registered time-servers for the time: lists the children of
/// `<base-path>` in ZooKeeper (one session for the whole run), picks one at
/// random per request, sends `timestamp`, prints the reply.
///
/// Prints `connect host: <ip:port>` and the reply on stdout per request; logs
/// and the summary go to stderr. Exits 1 when any request failed.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None,
          after_help = "Example:\n  time-client --zk 127.0.0.1:2181 --count 10 --interval 200ms")]
struct Args {
    /// ZooKeeper connect string: host:port[,host:port...][/chroot].
    #[arg(long, env = "ZK_HOSTS", default_value = "127.0.0.1:2181")]
    zk: String,
    /// Parent znode under which servers register.
    #[arg(long, env = "ZK_BASE_PATH", default_value = "/go_servers")]
    base_path: String,
    /// Number of requests.
    #[arg(long, env = "TIME_CLIENT_COUNT", default_value_t = 100)]
    count: u64,
    /// Pause between requests (e.g. 1s, 200ms, 0s).
    #[arg(long, env = "TIME_CLIENT_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// TCP connect timeout per request.
    #[arg(long, env = "TIME_CLIENT_CONNECT_TIMEOUT", default_value = "500ms", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
    /// Deadline for the whole reply, after connecting.
    #[arg(long, env = "TIME_CLIENT_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// ZooKeeper session timeout.
    #[arg(long, env = "ZK_SESSION_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    session_timeout: Duration,
    /// How long to wait for ZooKeeper at start.
    #[arg(long, env = "ZK_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    zk_connect_timeout: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    let config = time_client::Config {
        zk_hosts: args.zk,
        base_path: args.base_path,
        count: args.count,
        interval: args.interval,
        session_timeout: args.session_timeout,
        zk_connect_timeout: args.zk_connect_timeout,
        limits: RequestLimits {
            connect_timeout: args.connect_timeout,
            timeout: args.timeout,
            ..Default::default()
        },
        strategy: Strategy::Random,
    };
    match time_client::run(&config, &mut std::io::stdout().lock()) {
        Ok(summary) => {
            eprintln!("{}", summary.line());
            if summary.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(err) => {
            eprintln!("time-client: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,zookeeper_client=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
