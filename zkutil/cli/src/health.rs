//! `zkutil check` and `zkutil status`: is every registered instance up,
//! is every ZooKeeper host serving. Each returns `Ok(false)` for a problem
//! found (exit 1).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;
use zkutil::{Endpoint, admin};

use crate::args::{Common, Probe};
use crate::commands::{connect, why_empty};

/// Longest reply line a probe reads.
const PROBE_MAX_REPLY: usize = 1024;

/// Probes one instance within `timeout`: the latency, and the reply line
/// for [`Probe::Time`].
fn probe(
    endpoint: Endpoint,
    probe: Probe,
    timeout: Duration,
) -> Result<(Duration, Option<String>), String> {
    use std::io::Read;
    let started = Instant::now();
    let mut stream = std::net::TcpStream::connect_timeout(&endpoint.addr(), timeout)
        .map_err(|err| err.to_string())?;
    if probe == Probe::Tcp {
        return Ok((started.elapsed(), None));
    }
    let no_reply = || format!("no reply within {}", zkutil::rounded(timeout));
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(no_reply());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|err| err.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.contains(&b'\n') || reply.len() >= PROBE_MAX_REPLY {
                    break;
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(no_reply());
            }
            Err(err) => return Err(err.to_string()),
        }
    }
    let latency = started.elapsed();
    let line = String::from_utf8_lossy(&reply);
    let line = line.lines().next().unwrap_or("").trim();
    if !line.contains(": ") {
        return Err(if line.is_empty() {
            "closed without a reply".to_owned()
        } else {
            format!(
                "not a time reply: {:?}",
                line.chars().take(64).collect::<String>()
            )
        });
    }
    Ok((latency, Some(line.to_owned())))
}

/// `zkutil check`.
pub fn check(
    common: &Common,
    kind: Probe,
    timeout: Duration,
    min: usize,
    json: bool,
) -> anyhow::Result<bool> {
    let session = connect(common)?;
    let instances = zkutil::list_instances(&session, &common.zk.base_path, false)?;
    type Probed = (Endpoint, Result<(Duration, Option<String>), String>);
    let results: Vec<Probed> = std::thread::scope(|scope| {
        let probes: Vec<_> = instances
            .iter()
            .map(|instance| {
                let endpoint = instance.endpoint();
                scope.spawn(move || (endpoint, probe(endpoint, kind, timeout)))
            })
            .collect();
        probes
            .into_iter()
            .zip(&instances)
            .map(|(probe, instance)| {
                probe
                    .join()
                    .unwrap_or_else(|_| (instance.endpoint(), Err("probe panicked".to_owned())))
            })
            .collect()
    });
    let mut out = std::io::stdout().lock();
    let mut all_up = true;
    for (endpoint, result) in &results {
        all_up &= result.is_ok();
        if json {
            let object = match result {
                Ok((latency, reply)) => {
                    json!({ "endpoint": endpoint.to_string(), "reachable": true, "latency_ms": latency.as_secs_f64() * 1e3, "reply": reply })
                }
                Err(err) => {
                    json!({ "endpoint": endpoint.to_string(), "reachable": false, "error": err })
                }
            };
            writeln!(out, "{object}")?;
        } else {
            match result {
                Ok((latency, _)) => writeln!(
                    out,
                    "{endpoint} reachable {:.2}ms",
                    latency.as_secs_f64() * 1e3
                )?,
                Err(err) => writeln!(out, "{endpoint} unreachable: {err}")?,
            }
        }
    }
    if results.is_empty() {
        eprintln!("zkutil: {}", why_empty(&session, common));
    }
    let up = results.iter().filter(|(_, result)| result.is_ok()).count();
    if up < min {
        eprintln!("zkutil: {up} reachable, fewer than --min {min}");
        return Ok(false);
    }
    Ok(all_up)
}

/// `zkutil status`.
pub fn status(common: &Common, timeout: Duration, json: bool) -> anyhow::Result<bool> {
    let hosts = admin::connect_string_hosts(&common.zk.zk);
    if hosts.is_empty() {
        bail!("no hosts in connect string {:?}", common.zk.zk);
    }
    let mut out = std::io::stdout().lock();
    let mut all_up = true;
    // A TLS-only ensemble has no plaintext port: with --zk-tls-ca the four
    // letters go over TLS, the server's name checked against the host's.
    let tls = common.zk.tls();
    for host in hosts {
        let status = admin::ask_host(&host, "srvr", timeout, tls.as_ref())
            .map_err(|err| err.to_string())
            .and_then(|answer| admin::parse_srvr(&answer).ok_or_else(|| "not serving".to_owned()));
        all_up &= status.is_ok();
        match (&status, json) {
            (Ok(status), true) => writeln!(
                out,
                "{}",
                json!({ "host": host, "up": true, "status": status })
            )?,
            (Err(err), true) => writeln!(
                out,
                "{}",
                json!({ "host": host, "up": false, "error": err })
            )?,
            (Ok(s), false) => writeln!(
                out,
                "{host} {} zxid={} connections={} latency(min/avg/max)={}",
                s.mode, s.zxid, s.connections, s.latency
            )?,
            (Err(err), false) => writeln!(out, "{host} down: {err}")?,
        }
    }
    Ok(all_up)
}
