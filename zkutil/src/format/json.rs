//! The JSON the formats share: an endpoint's host and port, a weight, a
//! reason, and the edits that keep every other field of a record.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::endpoint::Endpoint;

/// The endpoint a record's `host` and `port` name, held to the same rules
/// as a plain child's name: nothing clients cannot reach.
pub(super) fn endpoint_of(host: Option<&Value>, port: Option<&Value>) -> Result<Endpoint, String> {
    let host = host.and_then(Value::as_str).ok_or("no host")?;
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("host {host:?} is not an IP address"))?;
    let port = port
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or("no valid port")?;
    let endpoint = Endpoint::new(std::net::SocketAddr::new(ip, port));
    Endpoint::from_node_name(&endpoint.node_name()).map_err(|err| err.to_string())
}

/// A weight: a number (our JSON, Curator's payload) or a string (Spring's
/// metadata is a map of strings).
pub(super) fn weight_of(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An operator's reason, cut to a length fit for a log line.
pub(super) fn reason_of(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(|reason| crate::text::truncate(reason).to_owned())
}

/// Sets `key` to `value`, or removes it for `None`.
pub(super) fn set(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(value) => {
            object.insert(key.into(), value);
        }
        None => {
            object.remove(key);
        }
    }
}

/// The object at `key`, made one (replacing a non-object) when it is not.
pub(super) fn object_at<'a>(
    object: &'a mut Map<String, Value>,
    key: &str,
) -> &'a mut Map<String, Value> {
    let slot = object
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}
