//! Finagle's serversets (also Aurora's; what Prometheus's
//! `serverset_sd_configs` reads): `<base>/member_NNNNNNNNNN`, data
//! `{"serviceEndpoint":{"host","port"},"additionalEndpoints":{},"status":"ALIVE"}`.
//! Member names are sequential: a registration finds its member again by
//! owner and by the endpoint in its data (`registry::member`).
//!
//! | out of rotation | reason | weight |
//! |---|---|---|
//! | `status` other than `ALIVE` (`STOPPING`; `STARTING` before the first enable) | no place for it | no place for it |

use serde_json::{Map, Value};

use super::json::endpoint_of;
use super::{Change, Child, Codec, New, Root, Rotation};
use crate::endpoint::Endpoint;

/// The serverset format.
pub(super) struct Serverset;

/// The prefix of a serverset member's name.
pub(crate) const MEMBER_PREFIX: &str = "member_";

/// Finagle's `Endpoint.Status` of a member in service.
const ALIVE: &str = "ALIVE";
/// The status of a member registered out of rotation, before its first
/// enable.
const STARTING: &str = "STARTING";
/// The status of a member an operator took out of rotation.
const STOPPING: &str = "STOPPING";

/// The endpoint a serverset member's `data` names, if it is one.
pub(crate) fn member_endpoint(data: &[u8]) -> Option<Endpoint> {
    let value: Value = serde_json::from_slice(data).ok()?;
    decode_member(value.as_object()?).ok().map(|(e, _)| e)
}

fn decode_member(record: &Map<String, Value>) -> Result<(Endpoint, Rotation), String> {
    let service = record
        .get("serviceEndpoint")
        .and_then(Value::as_object)
        .ok_or("serviceEndpoint is not an object")?;
    let endpoint = endpoint_of(service.get("host"), service.get("port"))?;
    let status = record
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or(ALIVE);
    let rotation = Rotation {
        enabled: status == ALIVE,
        weight: None,
        reason: None,
    };
    Ok((endpoint, rotation))
}

impl Codec for Serverset {
    fn root(&self) -> Root {
        Root::Serverset
    }

    /// ZooKeeper gives it: `member_` and a sequence number.
    fn node_name(&self, _service: &str, _endpoint: Endpoint) -> Option<String> {
        None
    }

    /// As Finagle's `ServerSetImpl` writes it (and Prometheus reads it);
    /// its schema has no place for metadata, only for the metrics address.
    fn encode(&self, new: &New<'_>) -> Vec<u8> {
        let mut additional = Map::new();
        if let Some(metrics) = new.metrics {
            additional.insert(
                "metrics".into(),
                serde_json::json!({"host": metrics.ip().to_string(), "port": metrics.port()}),
            );
        }
        serde_json::json!({
            "serviceEndpoint": {"host": new.endpoint.ip().to_string(), "port": new.endpoint.port()},
            "additionalEndpoints": additional,
            "status": ALIVE,
        })
        .to_string()
        .into_bytes()
    }

    fn recognizes(&self, child: &Child<'_>) -> bool {
        child
            .object()
            .is_ok_and(|record| record.contains_key("serviceEndpoint"))
    }

    fn decode(&self, child: &Child<'_>) -> Result<(Endpoint, Rotation), String> {
        decode_member(child.object()?)
    }

    fn apply(&self, record: &mut Map<String, Value>, change: &Change<'_>) -> Result<(), String> {
        let status = match change {
            Change::Out { .. } => STOPPING,
            Change::Starting { .. } => STARTING,
            Change::In => ALIVE,
            Change::Weight(_) => {
                return Err(
                    "a serverset member has no place for a weight (Finagle's schema has none)"
                        .into(),
                );
            }
        };
        record.insert("status".into(), status.into());
        Ok(())
    }

    /// None: Finagle's schema has no place for it. A member is matched by
    /// the endpoint in its data instead, which a registrant that has just
    /// bound it owns (`registry::member`).
    fn host<'a>(&self, _record: &'a Value) -> Option<&'a str> {
        None
    }
}
