//! `args`: the command line of `zkutil console`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// `zkutil console`'s flags.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Where the page is served. Loopback by default: the page shows the whole registry, and
    /// with --allow-writes changes it; put it behind an authenticating proxy to share it.
    #[arg(long, env = "ZKUTIL_CONSOLE_LISTEN", default_value = "127.0.0.1:7979")]
    pub listen: SocketAddr,
    /// Shows every base path under this root that holds instances, in every format (`/` for the
    /// whole tree), looked for again every --rescan.
    #[arg(long, env = "ZKUTIL_CONSOLE_ROOT", default_value = "/", value_parser = root)]
    pub root: String,
    /// Shows only these base paths (repeatable), not a scan of --root.
    #[arg(long = "path", value_name = "BASE_PATH", env = "ZKUTIL_CONSOLE_PATH",
          value_delimiter = ',', value_parser = base_path)]
    pub paths: Vec<zkutil::BasePath>,
    /// How often --root is scanned for new base paths (changes under a known one show at once).
    #[arg(long, env = "ZKUTIL_CONSOLE_RESCAN", default_value = "5s",
          value_parser = zkutil::cli::timeout)]
    pub rescan: Duration,
    /// Offers disable, enable and weight buttons, each written with the session's ZooKeeper
    /// identity (--zk-auth, --zk-tls-cert, --zk-sasl) through the same conditional writes as
    /// `zkutil disable`. Off by default: the page is read-only and refuses every write.
    #[arg(long, env = "ZKUTIL_CONSOLE_ALLOW_WRITES", value_parser = zkutil::cli::env_flag())]
    pub allow_writes: bool,
    /// A host name the browser may use to reach the console besides an IP address and
    /// `localhost` (repeatable): any other Host header is refused, against DNS rebinding.
    #[arg(
        long = "allow-host",
        value_name = "NAME",
        env = "ZKUTIL_CONSOLE_ALLOW_HOST",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,
}

fn base_path(text: &str) -> Result<zkutil::BasePath, String> {
    zkutil::BasePath::new(text.trim()).map_err(|err| err.to_string())
}

fn root(text: &str) -> Result<String, String> {
    match text.trim() {
        "/" => Ok("/".to_owned()),
        other => base_path(other).map(|path| path.as_str().to_owned()),
    }
}
