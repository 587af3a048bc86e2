//! `data`: what a template gets, from the live registry — or why there is
//! nothing to render now.
//!
//! Each base path's instances come from a [`Discovery`] (in rotation and
//! out, sorted by endpoint); their metadata is read in one pipelined batch
//! per render, so that every format's own record (a Curator payload, a
//! serverset's extra endpoints) reaches the template. Times are times, not
//! ages: an age would change the bytes, and so the file, on every render.
//!
//! Nothing is rendered from a list the registry did not say: not before
//! the first listing, not while ZooKeeper is unreachable (the list is the
//! last known one), and not an empty list unless asked (`--allow-empty`).

use std::sync::Arc;

use serde_json::{Value, json};
use zkutil::{BasePath, Discovery, Instance, Session};

/// Why a render does not happen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The registry's word is not known (not listed yet, or ZooKeeper
    /// unreachable): the next change of the view brings a render.
    Waiting(String),
    /// A base path lists no instance in rotation, and that is not to be
    /// rendered.
    Empty(String),
    /// Reading the instances' records failed: to be tried again.
    Retry(String),
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::Waiting(why) | Hold::Empty(why) | Hold::Retry(why) => f.write_str(why),
        }
    }
}

/// One base path followed.
pub struct Source {
    /// Where its instances are.
    pub path: BasePath,
    /// Its live list.
    pub discovery: Arc<Discovery>,
}

/// The templates' data: `services`, a list with one entry per base path
/// (in the order given), and `service`, the first.
///
/// # Errors
///
/// A [`Hold`] when there is nothing to render now.
pub fn gather(sources: &[Source], session: &Session, allow_empty: bool) -> Result<Value, Hold> {
    let mut snapshots = Vec::with_capacity(sources.len());
    for source in sources {
        let snapshot = source.discovery.snapshot();
        if snapshot.version() == 0 {
            return Err(Hold::Waiting(format!("{} is not listed yet", source.path)));
        }
        if snapshot.is_stale() {
            return Err(Hold::Waiting(format!(
                "ZooKeeper is unreachable: the list of {} may be out of date",
                source.path
            )));
        }
        if snapshot.instances().is_empty() && !allow_empty {
            return Err(Hold::Empty(format!(
                "{} lists no instance in rotation (--allow-empty renders that)",
                source.path
            )));
        }
        snapshots.push(snapshot);
    }
    let mut services = Vec::with_capacity(sources.len());
    for (source, snapshot) in sources.iter().zip(&snapshots) {
        let all: Vec<&Instance> = snapshot
            .instances()
            .iter()
            .chain(snapshot.out_of_service().iter())
            .collect();
        let paths: Vec<String> = all
            .iter()
            .map(|instance| format!("{}/{}", source.path, instance.node_name()))
            .collect();
        let reads = session.get_data_many(&paths).map_err(|err| {
            Hold::Retry(format!("reading the records under {}: {err}", source.path))
        })?;
        let (mut in_rotation, mut out) = (Vec::new(), Vec::new());
        for (instance, read) in all.into_iter().zip(reads) {
            let record = match read {
                Ok((data, _)) => serde_json::from_slice::<Value>(&data).ok(),
                // Gone since the listing: the change that says so follows.
                Err(err) if err.is_no_node() => continue,
                // Not read (a connection lost mid-batch): rendering it
                // without its record would be a list the registry did not say.
                Err(err) => {
                    return Err(Hold::Retry(format!(
                        "reading the records under {}: {err}",
                        source.path
                    )));
                }
            };
            let metadata = record
                .as_ref()
                .and_then(|record| instance.format().metadata_of(record).cloned());
            let value = instance_value(instance, metadata);
            if instance.is_enabled() {
                in_rotation.push(value);
            } else {
                out.push(value);
            }
        }
        // Every instance in rotation may have gone since the snapshot (a
        // registrant's session expiring takes all its nodes at once): the
        // empty list is then checked again, with the snapshot that follows.
        if in_rotation.is_empty() && !allow_empty {
            return Err(Hold::Retry(format!(
                "{}'s instances went while being read",
                source.path
            )));
        }
        services.push(json!({
            "path": source.path.as_str(),
            "name": source.path.as_str().rsplit('/').next().unwrap_or_default(),
            "instances": in_rotation,
            "out_of_rotation": out,
        }));
    }
    let first = services.first().cloned().unwrap_or(Value::Null);
    Ok(json!({ "services": services, "service": first }))
}

/// One instance as a template sees it.
fn instance_value(instance: &Instance, metadata: Option<Value>) -> Value {
    let endpoint = instance.endpoint();
    let text = endpoint.to_string();
    json!({
        "endpoint": text,
        "address": endpoint.ip().to_string(),
        "port": endpoint.port(),
        "id": config_name(&text),
        "weight": instance.weight(),
        "format": instance.format().name(),
        "in_rotation": instance.is_enabled(),
        "reason": instance.disabled_reason(),
        "node": instance.node_name(),
        "registered_at": instance
            .registered_at()
            .map(|at| humantime::format_rfc3339_millis(at).to_string()),
        "metadata": metadata,
    })
}

/// `endpoint` as a name in a config (HAProxy's and nginx's take no
/// brackets): `.` becomes `_`, `:` `-`, brackets go. Distinct endpoints
/// keep distinct names (`[::ffff:1.2.3.4]:80` and `[::ffff:1:2:3:4]:80`).
fn config_name(endpoint: &str) -> String {
    endpoint
        .chars()
        .filter_map(|c| match c {
            '.' => Some('_'),
            ':' => Some('-'),
            '[' | ']' => None,
            c if c.is_ascii_alphanumeric() => Some(c),
            _ => Some('_'),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_has_its_fields_and_a_name_for_configs() {
        let endpoint: zkutil::Endpoint = "[2001:db8::1]:8080".parse().expect("an endpoint");
        let value = instance_value(&Instance::new(endpoint), Some(json!({"zone": "a"})));
        assert_eq!(value["address"], "2001:db8::1");
        assert_eq!(value["port"], 8080);
        assert_eq!(value["endpoint"], "[2001:db8::1]:8080");
        assert_eq!(value["id"], "2001-db8--1-8080");
        assert_eq!(config_name("10.0.0.7:8897"), "10_0_0_7-8897");
        assert_ne!(
            config_name("[::ffff:1.2.3.4]:80"),
            config_name("[::ffff:1:2:3:4]:80")
        );
        assert_eq!(value["weight"], 100);
        assert_eq!(value["in_rotation"], true);
        assert_eq!(value["metadata"]["zone"], "a");
        assert_eq!(value["registered_at"], Value::Null);
    }
}
