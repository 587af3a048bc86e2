//! Spring Cloud Zookeeper's format: Curator's `ServiceInstance` (and
//! layout) with Spring's payload, a `ZookeeperInstance` (`id`, `name`,
//! `metadata` with `instance_status`).
//!
//! | out of rotation | reason | weight |
//! |---|---|---|
//! | metadata `instance_status: OUT_OF_SERVICE`, and Curator's `enabled` | metadata `disabled_reason` | metadata `weight` (a string) |

use serde_json::{Map, Value};

use super::curator::{decode_instance, envelope, instance_id, is_instance, payload_class, set_enabled};
use super::json::{object_at, set};
use super::{Change, Child, Codec, New, Root, Rotation};
use crate::endpoint::Endpoint;

/// The Spring format.
pub(super) struct Spring;

/// `@class` of Spring Cloud Zookeeper's payload.
pub(super) const CLASS: &str = "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance";
/// The metadata key of Spring's status.
const STATUS: &str = "instance_status";
/// Spring's status of an instance in service.
const UP: &str = "UP";
/// Spring's status of an instance out of service.
const OUT_OF_SERVICE: &str = "OUT_OF_SERVICE";

impl Codec for Spring {
    /// Curator's: the same nodes, a Spring or a Curator registrant's.
    fn root(&self) -> Root {
        Root::Curator
    }

    fn node_name(&self, service: &str, endpoint: Endpoint) -> Option<String> {
        Some(instance_id(service, endpoint))
    }

    /// Spring's metadata is a map of strings, with the status in it.
    fn encode(&self, new: &New<'_>) -> Vec<u8> {
        let mut metadata: Map<String, Value> = new
            .fields
            .iter()
            .map(|(key, value)| {
                let text = match value {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                (key.clone(), Value::String(text))
            })
            .collect();
        metadata.insert(STATUS.into(), Value::String(UP.into()));
        let payload = Map::from_iter([
            (
                "id".to_owned(),
                Value::String(instance_id(new.service, new.endpoint)),
            ),
            ("name".to_owned(), Value::String(new.service.to_owned())),
            ("metadata".to_owned(), Value::Object(metadata)),
        ]);
        envelope(new, CLASS, &payload)
    }

    fn recognizes(&self, child: &Child<'_>) -> bool {
        child
            .object()
            .is_ok_and(|record| is_instance(record) && payload_class(record) == Some(CLASS))
    }

    /// In service when Curator's `enabled` says so and the status is `UP`
    /// (or absent).
    fn decode(&self, child: &Child<'_>) -> Result<(Endpoint, Rotation), String> {
        let record = child.object()?;
        let (endpoint, mut rotation) = decode_instance(record)?;
        let up = record
            .get("payload")
            .and_then(Value::as_object)
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get(STATUS))
            .and_then(Value::as_str)
            .is_none_or(|status| status.eq_ignore_ascii_case(UP));
        rotation.enabled &= up;
        Ok((endpoint, rotation))
    }

    fn apply(&self, record: &mut Map<String, Value>, change: &Change<'_>) -> Result<(), String> {
        set_enabled(record, change);
        let metadata = object_at(object_at(record, "payload"), "metadata");
        match change {
            Change::Out { reason } | Change::Starting { reason } => {
                metadata.insert(STATUS.into(), OUT_OF_SERVICE.into());
                set(metadata, "disabled_reason", reason.map(Value::from));
            }
            Change::In => {
                metadata.insert(STATUS.into(), UP.into());
                metadata.remove("disabled_reason");
            }
            Change::Weight(weight) => {
                metadata.insert("weight".into(), Value::String(weight.to_string()));
            }
        }
        Ok(())
    }

    /// The payload's `metadata`, a map of strings.
    fn metadata<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        record.pointer("/payload/metadata")
    }

    /// The metadata's `hostname`, in the payload's metadata.
    fn host<'a>(&self, record: &'a Value) -> Option<&'a str> {
        record
            .pointer("/payload/metadata/hostname")
            .and_then(Value::as_str)
    }
}

