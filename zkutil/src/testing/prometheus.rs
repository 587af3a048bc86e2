//! [`Prometheus`]: a real Prometheus (Debian's 2.42, `scripts/zk.sh
//! install` installs it) on a free loopback port, with the configuration a
//! test gives, its data in a temp dir; killed on drop.

use std::net::SocketAddr;
use std::time::Duration;

use super::http::http_get;
use super::process::TestProcess;
use super::wait::{free_ports, poll_until};

/// The Prometheus binary (`PROMETHEUS` overrides).
fn binary() -> String {
    std::env::var("PROMETHEUS").unwrap_or_else(|_| "/usr/bin/prometheus".to_owned())
}

/// A Prometheus server for one test.
#[derive(Debug)]
///
/// # Example
///
/// ```
/// let prometheus = zkutil::testing::Prometheus::start("global:\n  scrape_interval: 1s\n").expect("installed");
/// assert!(prometheus.active_targets().expect("its API answers").is_empty());
/// ```
pub struct Prometheus {
    process: TestProcess,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` (its YAML) and waits until it is
    /// ready.
    ///
    /// # Errors
    ///
    /// Not installed, no free port, or not ready within 60 s (with its log).
    pub fn start(config: &str) -> Result<Prometheus, String> {
        let binary = binary();
        if !std::path::Path::new(&binary).exists() {
            return Err(format!(
                "{binary} is missing: Prometheus is not installed (run `scripts/zk.sh install`)"
            ));
        }
        let dir = tempfile::tempdir().map_err(|err| format!("a temp dir: {err}"))?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(|err| format!("writing the config: {err}"))?;
        let port = free_ports(1).map_err(|err| format!("a free port: {err}"))?[0];
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let process = TestProcess::start(
            &binary,
            &[
                &format!("--config.file={}", config_path.display()),
                &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                &format!("--web.listen-address={addr}"),
                "--log.level=warn",
            ],
            &[],
        );
        let prometheus = Prometheus {
            process,
            addr,
            _dir: dir,
        };
        let ready = poll_until(Duration::from_secs(60), Duration::from_millis(100), || {
            prometheus
                .get("/-/ready")
                .ok()
                .filter(|body| body.contains("Ready"))
        });
        match ready {
            Some(_) => Ok(prometheus),
            None => Err(format!(
                "Prometheus not ready within 60 s; its log:\n{}",
                prometheus.process.stderr_text()
            )),
        }
    }

    /// Where its web API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The body of `GET path` (HTTP/1.0, so the server closes at the end).
    ///
    /// # Errors
    ///
    /// Connection or read failures, a status other than 200.
    pub fn get(&self, path: &str) -> std::io::Result<String> {
        match http_get(self.addr, path)? {
            (200, body) => Ok(body),
            (status, _) => Err(std::io::Error::other(format!(
                "GET {path}: status {status}"
            ))),
        }
    }

    /// The instant vector of the PromQL `query`: each series' labels and
    /// value.
    ///
    /// # Errors
    ///
    /// As [`Prometheus::get`], or an answer that is not the API's JSON.
    pub fn query(&self, query: &str) -> std::io::Result<Vec<(serde_json::Value, f64)>> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect();
        let body = self.get(&format!("/api/v1/query?query={encoded}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&body).map_err(std::io::Error::other)?;
        Ok(value["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|series| {
                let sample = series["value"][1].as_str()?.parse().ok()?;
                Some((series["metric"].clone(), sample))
            })
            .collect())
    }

    /// The discovered labels of each active target of `/api/v1/targets`.
    ///
    /// # Errors
    ///
    /// As [`Prometheus::get`], or an answer that is not the API's JSON.
    pub fn active_targets(&self) -> std::io::Result<Vec<serde_json::Value>> {
        let body = self.get("/api/v1/targets?state=active")?;
        let value: serde_json::Value =
            serde_json::from_str(&body).map_err(std::io::Error::other)?;
        Ok(value["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }
}
