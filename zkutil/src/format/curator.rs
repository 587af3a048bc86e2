//! Apache Curator's service discovery (and Dubbo 3's, which uses it):
//! `<base>/<service>/<id>`, data a `ServiceInstance` exactly as Curator's
//! `JsonInstanceSerializer` writes it (checked against Curator 5.4 itself):
//! nine fields in its order, no `enabled` (Curator 2.x/3.x readers fail on
//! unknown fields) unless an operator took the instance out of rotation
//! ([`Control`](crate::Control)), the payload an object whose first field
//! is `"@class"`.
//!
//! | out of rotation | reason | weight |
//! |---|---|---|
//! | `"enabled": false` (Curator's own field, read by its `ServiceProvider`) | payload `disabled_reason` | payload `weight` |
//!
//! Spring's records are Curator's with another payload: the envelope here
//! is theirs too.

use serde::Serialize;
use serde_json::{Map, Value};

use super::json::{endpoint_of, object_at, reason_of, set, weight_of};
use super::{Change, Child, Codec, New, Root, Rotation};
use crate::endpoint::Endpoint;

/// The Curator format.
pub(super) struct Curator;

/// `@class` of a plain map payload, as Jackson writes a `LinkedHashMap`.
const MAP_CLASS: &str = "java.util.LinkedHashMap";

/// Curator's `ServiceInstance`, fields in the order its serializer writes.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CuratorInstance<'a> {
    name: &'a str,
    id: &'a str,
    address: String,
    port: u16,
    ssl_port: Option<u16>,
    payload: Payload<'a>,
    #[serde(rename = "registrationTimeUTC")]
    registration_time_utc: i64,
    service_type: &'static str,
    uri_spec: Option<&'a str>,
}

/// A payload object: `@class` first, then its fields.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "@class")]
    class: &'static str,
    #[serde(flatten)]
    fields: &'a Map<String, Value>,
}

/// The Curator instance id of `endpoint` in `service`: stable across
/// restarts (so that a restarted server finds its earlier node), readable,
/// a valid znode name, and never mistaken for a plain `ip:port` child.
///
/// # Example
///
/// ```
/// let endpoint: zkutil::Endpoint = "10.0.0.1:8897".parse().expect("an endpoint");
/// assert_eq!(zkutil::instance_id("time", endpoint), "time-10.0.0.1-8897");
/// ```
pub fn instance_id(service: &str, endpoint: Endpoint) -> String {
    format!(
        "{service}-{}-{}",
        endpoint
            .node_name()
            .rsplit_once(':')
            .map_or("", |(ip, _)| ip),
        endpoint.port()
    )
}

/// A `ServiceInstance` of `new`, whose payload is an object of class
/// `class` with `fields`.
pub(super) fn envelope(new: &New<'_>, class: &'static str, fields: &Map<String, Value>) -> Vec<u8> {
    let id = instance_id(new.service, new.endpoint);
    let instance = CuratorInstance {
        name: new.service,
        id: &id,
        address: new.endpoint.ip().to_string(),
        port: new.endpoint.port(),
        ssl_port: None,
        payload: Payload { class, fields },
        registration_time_utc: new.registered_ms,
        service_type: "DYNAMIC",
        uri_spec: None,
    };
    serde_json::to_vec(&instance).unwrap_or_default()
}

/// Whether `record` has a `ServiceInstance`'s shape.
pub(super) fn is_instance(record: &Map<String, Value>) -> bool {
    record.contains_key("address") && record.contains_key("port") && record.contains_key("name")
}

/// The `@class` of `record`'s payload.
pub(super) fn payload_class(record: &Map<String, Value>) -> Option<&str> {
    record
        .get("payload")
        .and_then(|p| p.get("@class"))
        .and_then(Value::as_str)
}

/// The endpoint and rotation of a `ServiceInstance`: `enabled` is
/// Curator's own; the weight and the reason are the payload's, or those
/// of a `metadata` map in it (where Spring's and Dubbo's payloads keep
/// theirs).
pub(super) fn decode_instance(record: &Map<String, Value>) -> Result<(Endpoint, Rotation), String> {
    let endpoint = endpoint_of(record.get("address"), record.get("port"))?;
    let payload = record.get("payload").and_then(Value::as_object);
    let metadata = payload.and_then(|p| p.get("metadata"));
    let weight = [
        payload.and_then(|p| p.get("weight")),
        metadata.and_then(|m| m.get("weight")),
    ]
    .into_iter()
    .flatten()
    .find_map(weight_of);
    let reason = reason_of(
        payload
            .and_then(|p| p.get("disabled_reason"))
            .or_else(|| metadata.and_then(|m| m.get("disabled_reason"))),
    );
    let rotation = Rotation {
        enabled: record.get("enabled").and_then(Value::as_bool) != Some(false),
        weight,
        reason,
    };
    Ok((endpoint, rotation))
}

/// Curator's `enabled` for `change`: written only when false (absent
/// reads as true, and Curator 2.x readers fail on the field). A new weight
/// leaves it as it is: a weight is not a way back into rotation.
pub(super) fn set_enabled(record: &mut Map<String, Value>, change: &Change<'_>) {
    match change {
        Change::Out { .. } | Change::Starting { .. } => {
            record.insert("enabled".into(), Value::Bool(false));
        }
        Change::In => {
            record.remove("enabled");
        }
        Change::Weight(_) => {}
    }
}

impl Codec for Curator {
    fn root(&self) -> Root {
        Root::Curator
    }

    fn node_name(&self, service: &str, endpoint: Endpoint) -> Option<String> {
        Some(instance_id(service, endpoint))
    }

    fn encode(&self, new: &New<'_>) -> Vec<u8> {
        envelope(new, MAP_CLASS, new.fields)
    }

    fn recognizes(&self, child: &Child<'_>) -> bool {
        child.object().is_ok_and(is_instance)
    }

    fn decode(&self, child: &Child<'_>) -> Result<(Endpoint, Rotation), String> {
        decode_instance(child.object()?)
    }

    fn apply(&self, record: &mut Map<String, Value>, change: &Change<'_>) -> Result<(), String> {
        set_enabled(record, change);
        let payload = object_at(record, "payload");
        match change {
            Change::Out { reason } | Change::Starting { reason } => {
                set(payload, "disabled_reason", reason.map(Value::from));
            }
            Change::In => {
                payload.remove("disabled_reason");
            }
            Change::Weight(weight) => {
                payload.insert("weight".into(), Value::from(*weight));
            }
        }
        Ok(())
    }

    /// The payload.
    fn metadata<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        record.get("payload")
    }

    /// The metadata's `hostname`, in the payload.
    fn host<'a>(&self, record: &'a Value) -> Option<&'a str> {
        record.pointer("/payload/hostname").and_then(Value::as_str)
    }
}
