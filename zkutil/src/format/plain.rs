//! The plain format: `<base>/<ip:port>`, the node named by its endpoint,
//! its data none (the seed Go servers) or our JSON metadata.
//!
//! | out of rotation | reason | weight |
//! |---|---|---|
//! | `"enabled": false` | `disabled_reason` | `weight` |
//!
//! All of them at the top of the JSON object: our metadata, or an
//! operator's change to a record without any.

use serde_json::{Map, Value};

use super::json::{reason_of, set, weight_of};
use super::{Change, Child, Codec, New, Root, Rotation};
use crate::endpoint::Endpoint;

/// The plain format.
pub(super) struct Plain;

/// Where the plain child `child` stands in the rotation: what its JSON
/// object says; empty or foreign data says nothing.
pub(super) fn rotation(child: &Child<'_>) -> Rotation {
    let Ok(object) = child.object() else {
        return Rotation::IN;
    };
    Rotation {
        enabled: object.get("enabled").and_then(Value::as_bool) != Some(false),
        weight: object.get("weight").and_then(weight_of),
        reason: reason_of(object.get("disabled_reason")),
    }
}

impl Codec for Plain {
    fn root(&self) -> Root {
        Root::Plain
    }

    fn node_name(&self, _service: &str, endpoint: Endpoint) -> Option<String> {
        Some(endpoint.node_name())
    }

    fn encode(&self, new: &New<'_>) -> Vec<u8> {
        serde_json::to_vec(new.fields).unwrap_or_default()
    }

    /// Never by its data: a plain child is known by its name, an endpoint,
    /// which discovery parses itself.
    fn recognizes(&self, _child: &Child<'_>) -> bool {
        false
    }

    fn decode(&self, child: &Child<'_>) -> Result<(Endpoint, Rotation), String> {
        let endpoint = Endpoint::from_node_name(child.name()).map_err(|err| err.to_string())?;
        Ok((endpoint, rotation(child)))
    }

    fn apply(&self, record: &mut Map<String, Value>, change: &Change<'_>) -> Result<(), String> {
        match change {
            Change::Out { reason } | Change::Starting { reason } => {
                record.insert("enabled".into(), Value::Bool(false));
                set(record, "disabled_reason", reason.map(Value::from));
            }
            Change::In => {
                record.remove("enabled");
                record.remove("disabled_reason");
            }
            Change::Weight(weight) => {
                record.insert("weight".into(), Value::from(*weight));
            }
        }
        Ok(())
    }

    /// The metadata's `hostname`, at the top.
    fn host<'a>(&self, record: &'a Value) -> Option<&'a str> {
        record.get("hostname").and_then(Value::as_str)
    }
}
