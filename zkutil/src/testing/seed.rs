//! The seed Go programs (`seed-server`, `seed-client`), as a peer for
//! interop tests: the plain format's other writer and reader, flaws
//! included, so that what zkutil writes is checked against the code that
//! already reads it.
//!
//! Their source and `build.sh` live in `shared/peers/seed-go` beside the
//! workspace; the script builds them offline from Debian's Go and
//! go-zookeeper packages (installing them when missing) and is a no-op when
//! the binaries are up to date. Built once per process, into
//! `$SEED_GO_OUT` (default `/tmp/seed-go`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::process::TestProcess;

/// The built Go programs.
///
/// # Example
///
/// ```no_run
/// let seed = zkutil::testing::SeedGo::get().expect("Go and go-zookeeper are installed");
/// let zk = zkutil::testing::zookeeper();
/// let server = seed.server(&zk.connect_string(), &["127.0.0.1:18897"]);
/// ```
#[derive(Debug, Clone)]
pub struct SeedGo {
    dir: PathBuf,
}

impl SeedGo {
    /// The programs, built on first use.
    ///
    /// # Errors
    ///
    /// When `shared/peers/seed-go/build.sh` is missing or fails (with its
    /// output).
    pub fn get() -> Result<SeedGo, String> {
        static SEED: OnceLock<Result<SeedGo, String>> = OnceLock::new();
        SEED.get_or_init(build).clone()
    }

    /// Starts the seed server on `listen`, registering each address under
    /// `/go_servers` of `zk_hosts` (nil data, 20 s session).
    pub fn server(&self, zk_hosts: &str, listen: &[&str]) -> TestProcess {
        let listen = listen.join(",");
        TestProcess::start(
            self.dir.join("seed-server"),
            &[],
            &[("ZK_HOSTS", zk_hosts), ("SEED_LISTEN", &listen)],
        )
    }

    /// Starts the seed client: `count` requests, `interval_ms` apart, each
    /// to a server picked among the first three children of `/go_servers`.
    pub fn client(&self, zk_hosts: &str, count: u32, interval_ms: u32) -> TestProcess {
        TestProcess::start(
            self.dir.join("seed-client"),
            &[],
            &[
                ("ZK_HOSTS", zk_hosts),
                ("SEED_COUNT", &count.to_string()),
                ("SEED_INTERVAL_MS", &interval_ms.to_string()),
            ],
        )
    }
}

fn build() -> Result<SeedGo, String> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/seed-go/build.sh");
    if !script.is_file() {
        return Err(format!(
            "{} is missing: the shared folder must sit beside the workspace",
            script.display()
        ));
    }
    let out = std::env::var("SEED_GO_OUT").unwrap_or_else(|_| "/tmp/seed-go".to_owned());
    let output = Command::new("bash")
        .arg(&script)
        .env("SEED_GO_OUT", &out)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("running {}: {err}", script.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}{}",
            script.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(SeedGo {
        dir: PathBuf::from(out),
    })
}
