//! The subcommands. Each returns `Ok(true)` for exit 0, `Ok(false)` for a
//! check that found a problem (exit 1), `Err` for a failure (exit 1 with a
//! one-line cause).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use zkutil::{Change, Discovery, Endpoint, Metadata, Registration, Session, Takeover, admin};

use crate::Common;

fn connect(common: &Common) -> anyhow::Result<Arc<Session>> {
    Ok(Arc::new(common.zk.session_config().connect()?))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn age(ctime_ms: i64) -> String {
    let secs = (now_ms() - ctime_ms).max(0) as u64 / 1000;
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

fn field(metadata: &Value, key: &str) -> String {
    match metadata.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// `zkutil ls`.
pub fn ls(common: &Common, json: bool) -> anyhow::Result<bool> {
    let session = connect(common)?;
    let instances = zkutil::list_instances(&session, &common.zk.base_path, false)?;
    let paths: Vec<String> = instances
        .iter()
        .map(|instance| common.zk.base_path.node_path(&instance.endpoint()))
        .collect();
    // One pipelined batch; a node whose data cannot be read (no READ
    // permission) is still listed, from its stat, which needs none.
    let reads = session.get_data_many(&paths)?;
    let mut rows = Vec::new();
    for ((instance, path), read) in instances.iter().zip(&paths).zip(reads) {
        let (stat, metadata) = match read {
            Ok((data, stat)) => (stat, serde_json::from_slice(&data).unwrap_or(Value::Null)),
            Err(err) if err.is_no_node() => continue,
            Err(err) => {
                tracing::warn!(path = %path, error = %err.chain(), "cannot read its data; listed from its stat");
                match session.stat(path)? {
                    Some(stat) => (stat, Value::Null),
                    None => continue,
                }
            }
        };
        rows.push((instance.endpoint(), stat, metadata));
    }
    if rows.is_empty() {
        eprintln!("zkutil: {}", why_empty(&session, common));
    }
    let mut out = std::io::stdout().lock();
    if json {
        let array: Vec<Value> = rows
            .iter()
            .map(|(endpoint, stat, metadata)| {
                json!({
                    "endpoint": endpoint.to_string(),
                    "owner": stat.ephemeral_owner().to_string(),
                    "age_ms": (now_ms() - stat.ctime_ms()).max(0),
                    "metadata": metadata,
                })
            })
            .collect();
        writeln!(out, "{}", Value::Array(array))?;
    } else {
        if rows.is_empty() {
            writeln!(out, "(no instances)")?;
            return Ok(true);
        }
        writeln!(
            out,
            "{:<24} {:<20} {:>8} {:>8} {:<16} {:<26} VERSION",
            "ENDPOINT", "OWNER", "AGE", "PID", "HOST", "STARTED"
        )?;
        for (endpoint, stat, metadata) in &rows {
            writeln!(
                out,
                "{:<24} {:<20} {:>8} {:>8} {:<16} {:<26} {}",
                endpoint.to_string(),
                stat.ephemeral_owner().to_string(),
                age(stat.ctime_ms()),
                field(metadata, "pid"),
                field(metadata, "hostname"),
                field(metadata, "started_at"),
                field(metadata, "version"),
            )?;
        }
    }
    Ok(true)
}

/// Why nothing is registered, for an empty listing: the base path may not
/// exist at all (a typo, or a chroot nobody uses).
fn why_empty(session: &Session, common: &Common) -> String {
    let base = &common.zk.base_path;
    match session.stat(base.as_str()) {
        Ok(None) => format!("no server has registered under {base} (it does not exist)"),
        _ => format!("no server is registered under {base}"),
    }
}

fn stamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// `zkutil watch`.
pub fn watch(common: &Common, json: bool) -> anyhow::Result<bool> {
    let stop = zkutil::cli::on_signals()?;
    let session = connect(common)?;
    let discovery = Discovery::start(session, &common.zk.base_path)?;
    // Changes and the stop signal arrive on one channel: one blocking wait.
    let (events, woken) = std::sync::mpsc::channel::<Option<Change>>();
    let changes = discovery.subscribe();
    let forward = events.clone();
    std::thread::spawn(move || {
        for change in changes {
            if forward.send(Some(change)).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let _ = stop.recv();
        let _ = events.send(None);
    });
    let mut shown = std::collections::BTreeSet::new();
    let mut out = std::io::stdout().lock();
    let print =
        |out: &mut dyn Write, event: &str, endpoint: Option<Endpoint>| -> std::io::Result<()> {
            let sign = match event {
                "added" => "+",
                "removed" => "-",
                other => other,
            };
            if json {
                let mut object = json!({ "time": stamp(), "event": event });
                if let Some(endpoint) = endpoint {
                    object["endpoint"] = json!(endpoint.to_string());
                }
                writeln!(out, "{object}")?;
            } else {
                match endpoint {
                    Some(endpoint) => writeln!(out, "{} {sign} {endpoint}", stamp())?,
                    None => writeln!(out, "{} {sign}", stamp())?,
                }
            }
            out.flush()
        };
    for instance in discovery.snapshot().instances().iter() {
        if shown.insert(instance.endpoint()) {
            print(&mut out, "added", Some(instance.endpoint()))?;
        }
    }
    // `None`: a stop signal; the channel closing means discovery stopped.
    while let Ok(Some(change)) = woken.recv() {
        match change {
            Change::Added(instance) if shown.insert(instance.endpoint()) => {
                print(&mut out, "added", Some(instance.endpoint()))?;
            }
            Change::Removed(instance) if shown.remove(&instance.endpoint()) => {
                print(&mut out, "removed", Some(instance.endpoint()))?;
            }
            Change::Stale => print(&mut out, "stale", None)?,
            Change::Fresh => print(&mut out, "fresh", None)?,
            _ => {}
        }
    }
    Ok(true)
}

/// `zkutil get`.
pub fn get(common: &Common, endpoint: Endpoint) -> anyhow::Result<bool> {
    let session = connect(common)?;
    let path = common.zk.base_path.node_path(&endpoint);
    let (data, stat) = match session.get_data(&path) {
        Ok(found) => found,
        Err(err) if err.is_no_node() => bail!(
            "no instance {endpoint} registered under {}",
            common.zk.base_path
        ),
        Err(err) => return Err(err.into()),
    };
    let metadata = serde_json::from_slice::<Value>(&data)
        .unwrap_or_else(|_| json!(String::from_utf8_lossy(&data)));
    let object = json!({
        "endpoint": endpoint.to_string(),
        "path": path,
        "metadata": metadata,
        "stat": {
            "owner": stat.ephemeral_owner().to_string(),
            "version": stat.version(),
            "ctime_ms": stat.ctime_ms(),
            "mtime_ms": stat.mtime_ms(),
            "age_ms": (now_ms() - stat.ctime_ms()).max(0),
            "data_length": stat.data_length(),
        },
    });
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string_pretty(&object)?
    )?;
    Ok(true)
}

/// `zkutil register`.
pub fn register(
    common: &Common,
    endpoint: Endpoint,
    extra: Option<&str>,
    force: bool,
) -> anyhow::Result<bool> {
    let stop = zkutil::cli::on_signals()?;
    let mut metadata = serde_json::to_value(Metadata::for_this_process(
        endpoint,
        SystemTime::now(),
        env!("CARGO_PKG_VERSION"),
    ))?;
    if let Some(extra) = extra {
        let extra: Value = serde_json::from_str(extra).context("--metadata is not JSON")?;
        let Value::Object(fields) = extra else {
            bail!("--metadata must be a JSON object")
        };
        if let Value::Object(base) = &mut metadata {
            base.extend(fields);
        }
    }
    let session = connect(common)?;
    let data = serde_json::to_vec(&metadata)?;
    let takeover = if force {
        Takeover::Force
    } else {
        Takeover::Refuse
    };
    let registration =
        match Registration::register_with(&session, &common.zk.base_path, endpoint, data, takeover)
        {
            Ok(registration) => registration,
            Err(err @ zkutil::Error::Taken { .. }) => bail!("{err}; --force to take over"),
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("registering {endpoint} under {}", common.zk.base_path)
                });
            }
        };
    tracing::info!(path = %registration.path(), outcome = %registration.outcome(), "registered; holding until SIGINT/SIGTERM");
    // Held until the first signal (or the signal thread is gone).
    let _ = stop.recv();
    let path = registration.path().to_owned();
    registration
        .deregister()
        .with_context(|| format!("deregistering {path}"))?;
    tracing::info!(%path, "deregistered");
    Ok(true)
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
    for host in hosts {
        let status = admin::resolve(&host)
            .and_then(|addr| admin::four_letter_word(addr, "srvr", timeout))
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
