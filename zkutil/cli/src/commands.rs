//! The registry subcommands: `ls`, `watch`, `get`, `register` (`check`
//! and `status` are in `health`). Each returns `Ok(true)` for exit 0,
//! `Ok(false)` for a problem found (exit 1), `Err` for a failure (exit 1
//! with a one-line cause).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use zkutil::cli::metrics::ClientMetrics;
use zkutil::{Change, Discovery, Endpoint, Format, Metadata, OpenParent, Session, Takeover};

use crate::args::Common;

pub(crate) fn connect(common: &Common) -> anyhow::Result<Arc<Session>> {
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

/// `zkutil ls`: the instances under the base path, or with `under`, under
/// every parent below that root.
pub fn ls(common: &Common, json: bool, under: Option<&str>) -> anyhow::Result<bool> {
    let session = connect(common)?;
    // With each plain instance's data: whether an operator took it out of
    // rotation, and its weight.
    let instances: Vec<(String, zkutil::Instance)> = match under {
        Some(root) => zkutil::list_instances_under(&session, root, true)?
            .into_iter()
            .flat_map(|(parent, instances)| {
                instances
                    .into_iter()
                    .map(move |instance| (parent.to_string(), instance))
            })
            .collect(),
        None => zkutil::list_instances(&session, &common.zk.base_path, true)?
            .into_iter()
            .map(|instance| (common.zk.base_path.to_string(), instance))
            .collect(),
    };
    let paths: Vec<String> = instances
        .iter()
        .map(|(parent, instance)| format!("{parent}/{}", instance.node_name()))
        .collect();
    // One pipelined batch; a node whose data cannot be read (no READ
    // permission) is still listed, from its stat, which needs none.
    let reads = session.get_data_many(&paths)?;
    let mut rows = Vec::new();
    for (((parent, instance), path), read) in instances.iter().zip(&paths).zip(reads) {
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
        let metadata = instance
            .format()
            .metadata_of(&metadata)
            .cloned()
            .unwrap_or(Value::Null);
        rows.push((parent, instance, stat, metadata));
    }
    if rows.is_empty() {
        match under {
            Some(root) => eprintln!("zkutil: no instance is registered anywhere under {root}"),
            None => eprintln!("zkutil: {}", why_empty(&session, common)),
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        let array: Vec<Value> = rows
            .iter()
            .map(|(parent, instance, stat, metadata)| {
                json!({
                    "endpoint": instance.endpoint().to_string(),
                    "parent": parent,
                    "format": instance.format().name(),
                    "in_service": instance.is_enabled(),
                    "weight": instance.weight(),
                    "disabled_reason": instance.disabled_reason(),
                    "node": instance.node_name(),
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
        // The parent only when there can be several.
        let parent_column = |parent: &str| match under {
            Some(_) => format!("{parent:<24} "),
            None => String::new(),
        };
        writeln!(
            out,
            "{}{:<24} {:<10} {:<5} {:>6} {:<20} {:>8} {:>8} {:<16} {:<26} VERSION",
            parent_column("PARENT"),
            "ENDPOINT",
            "FORMAT",
            "STATE",
            "WEIGHT",
            "OWNER",
            "AGE",
            "PID",
            "HOST",
            "STARTED"
        )?;
        for (parent, instance, stat, metadata) in &rows {
            let note = instance
                .disabled_reason()
                .map(|reason| format!("  ({reason})"))
                .unwrap_or_default();
            writeln!(
                out,
                "{}{:<24} {:<10} {:<5} {:>6} {:<20} {:>8} {:>8} {:<16} {:<26} {}{note}",
                parent_column(parent),
                instance.endpoint().to_string(),
                instance.format().name(),
                if instance.is_enabled() { "up" } else { "out" },
                instance.weight(),
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
pub(crate) fn why_empty(session: &Session, common: &Common) -> String {
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
pub fn watch(
    common: &Common,
    json: bool,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<bool> {
    let stop = zkutil::cli::on_signals()?;
    let session = connect(common)?;
    let discovery = Arc::new(Discovery::start(session, &common.zk.base_path)?);
    let _metrics_server = match metrics_listen {
        Some(listen) => {
            let (_, server) = ClientMetrics::serve(listen, "zkutil_watch", &discovery)
                .with_context(|| format!("serving metrics on {listen}"))?;
            tracing::info!(metrics = %server.addr(), "serving /metrics and /healthz");
            Some(server)
        }
        None => None,
    };
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
    // Its node: `<base>/<ip:port>`, or a Curator id or serverset member
    // whose data names the endpoint.
    let node = zkutil::list_instances(&session, &common.zk.base_path, false)?
        .into_iter()
        .find(|instance| instance.endpoint() == endpoint)
        .map_or_else(
            || endpoint.node_name(),
            |instance| instance.node_name().to_owned(),
        );
    let path = format!("{}/{node}", common.zk.base_path);
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
    (force, tighten_acl): (bool, bool),
    (format, layout): (Format, &zkutil::cli::LayoutArgs),
    (service, metrics_listen): (&str, Option<std::net::SocketAddr>),
    health: &crate::args::HealthArgs,
) -> anyhow::Result<bool> {
    if tighten_acl && !common.zk.session_config().has_auth() {
        bail!(
            "--tighten-acl needs an identity (--zk-auth, --zk-sasl or a client certificate): without one every node is open anyway"
        );
    }
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
    let Value::Object(fields) = metadata else {
        bail!("the metadata is not a JSON object")
    };
    let takeover = if force {
        Takeover::Force
    } else {
        Takeover::Refuse
    };
    let registrar = layout
        .layout(&common.zk.base_path)
        .registrars(&[format], service)?
        .pop()
        .context("no registrar for the format")?
        .takeover(takeover)
        .open_parent(if tighten_acl {
            OpenParent::Tighten
        } else {
            OpenParent::Refuse
        });
    let session = connect(common)?;
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let metrics_server = match metrics_listen {
        Some(listen) => {
            let server = zkutil::cli::metrics::serve_registrant(
                listen,
                "zkutil_register",
                &session,
                held.clone(),
            )
            .with_context(|| format!("serving metrics on {listen}"))?;
            tracing::info!(metrics = %server.addr(), "serving /metrics and /healthz");
            Some(server)
        }
        None => None,
    };
    let registrar = registrar.metrics(
        metrics_server
            .as_ref()
            .map(|server| Endpoint::new(server.addr())),
    );
    if !health.checks.is_empty() {
        let what = crate::sidecar::Registered {
            registrar,
            session: &session,
            endpoint,
            fields,
            held,
            retry_registration: false,
            metrics: None,
        };
        let (steer, steered) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("stop".into())
            .spawn(move || {
                let _ = stop.recv();
                let _ = steer.send(crate::sidecar::Steer::Stop);
            })
            .context("starting the signal thread")?;
        crate::sidecar::hold(health.clone(), &what, &steered, None)?;
        crate::sidecar::drain(health.drain);
        return Ok(true);
    }
    let registration = match registrar.register_fields(&session, endpoint, fields) {
        Ok(registration) => registration,
        Err(err @ zkutil::Error::Taken { .. }) => bail!("{err}; --force to take over"),
        Err(err) => {
            return Err(err)
                .with_context(|| format!("registering {endpoint} under {}", registrar.parent()));
        }
    };
    zkutil::cli::lock(&held).push(registration.status());
    tracing::info!(path = %registration.path(), %format, outcome = %registration.outcome(), "registered; holding until SIGINT/SIGTERM");
    // Held until the first signal (or the signal thread is gone).
    let _ = stop.recv();
    let path = registration.path().to_owned();
    registration
        .deregister()
        .with_context(|| format!("deregistering {path}"))?;
    tracing::info!(%path, "deregistered");
    Ok(true)
}
