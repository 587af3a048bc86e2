//! `format`: the registries people already run, read and written.
//!
//! * **plain** (the post's): `<base>/<ip:port>`, optional JSON metadata.
//! * **curator**: Apache Curator's service discovery (and Dubbo 3, which
//!   uses it): `<base>/<service>/<id>`, data a `ServiceInstance` exactly as
//!   Curator's `JsonInstanceSerializer` writes it (checked against Curator
//!   5.4 itself): nine fields in its order, no `enabled` (Curator 2.x/3.x
//!   readers fail on unknown fields) unless an operator took the instance
//!   out of rotation ([`Control`](crate::Control)), the payload an object
//!   whose first field is `"@class"`.
//! * **spring**: the same, with Spring Cloud Zookeeper's payload
//!   (`ZookeeperInstance`: `id`, `name`, `metadata` with `instance_status`).
//! * **serverset** (Finagle, Aurora; what Prometheus's `serverset_sd_configs`
//!   reads): `<base>/member_NNNNNNNNNN`, data
//!   `{"serviceEndpoint":{"host","port"},"additionalEndpoints":{},"status":"ALIVE"}`.
//!   Member names are sequential: a registration finds its member again by
//!   owner and endpoint.
//!
//! Discovery detects the format per child, with no flag: a child that
//! fails to parse is skipped on its own.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::endpoint::Endpoint;
use crate::error::Error;

/// A registry format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
///
/// # Example
//////
/// ```
/// use zkutil::Format;
/// assert_eq!("serverset".parse::<Format>().ok(), Some(Format::Serverset));
/// assert_eq!(Format::Spring.to_string(), "spring");
/// ```
pub enum Format {
    /// `<base>/<ip:port>`, JSON metadata.
    #[default]
    Plain,
    /// Curator's `ServiceInstance` under `<base>/<service>/<id>`.
    Curator,
    /// Curator's layout with Spring Cloud Zookeeper's payload.
    Spring,
    /// A Finagle serverset member, `<base>/member_…`.
    Serverset,
}

impl Format {
    /// The formats that can be written.
    pub const WRITABLE: [Format; 4] = [
        Format::Plain,
        Format::Curator,
        Format::Spring,
        Format::Serverset,
    ];

    /// The lower-case name, as flags and `zkutil ls` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Plain => "plain",
            Format::Curator => "curator",
            Format::Spring => "spring",
            Format::Serverset => "serverset",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(text: &str) -> Result<Format, Error> {
        [
            Format::Plain,
            Format::Curator,
            Format::Spring,
            Format::Serverset,
        ]
        .into_iter()
        .find(|format| format.name() == text)
        .ok_or_else(|| {
            Error::invalid(
                "format",
                text,
                "expected plain, curator, spring or serverset",
            )
        })
    }
}

/// `@class` of a plain map payload, as Jackson writes a `LinkedHashMap`.
const MAP_CLASS: &str = "java.util.LinkedHashMap";
/// `@class` of Spring Cloud Zookeeper's payload.
const SPRING_CLASS: &str = "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance";

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

/// The data of a Curator (or, with `Format::Spring`, Spring) registration
/// of `endpoint` as `service`, carrying `fields` (the metadata) in its
/// payload; `registered_ms` is the registration time, ms since the epoch.
pub(crate) fn curator_data(
    format: Format,
    service: &str,
    endpoint: Endpoint,
    fields: &Map<String, Value>,
    registered_ms: i64,
) -> Vec<u8> {
    let id = instance_id(service, endpoint);
    let spring;
    let payload = match format {
        Format::Spring => {
            let mut metadata: Map<String, Value> = fields
                .iter()
                .map(|(key, value)| {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), Value::String(text))
                })
                .collect();
            metadata.insert("instance_status".into(), Value::String("UP".into()));
            spring = Map::from_iter([
                ("id".to_owned(), Value::String(id.clone())),
                ("name".to_owned(), Value::String(service.to_owned())),
                ("metadata".to_owned(), Value::Object(metadata)),
            ]);
            Payload {
                class: SPRING_CLASS,
                fields: &spring,
            }
        }
        _ => Payload {
            class: MAP_CLASS,
            fields,
        },
    };
    let instance = CuratorInstance {
        name: service,
        id: &id,
        address: endpoint.ip().to_string(),
        port: endpoint.port(),
        ssl_port: None,
        payload,
        registration_time_utc: registered_ms,
        service_type: "DYNAMIC",
        uri_spec: None,
    };
    serde_json::to_vec(&instance).unwrap_or_default()
}

/// The prefix of a serverset member's name.
pub(crate) const MEMBER_PREFIX: &str = "member_";

/// The data of a serverset member for `endpoint`, as Finagle's
/// `ServerSetImpl` writes it (and Prometheus reads it).
pub(crate) fn serverset_data(endpoint: Endpoint, metrics: Option<Endpoint>) -> Vec<u8> {
    let mut additional = Map::new();
    if let Some(metrics) = metrics {
        additional.insert(
            "metrics".into(),
            serde_json::json!({"host": metrics.ip().to_string(), "port": metrics.port()}),
        );
    }
    serde_json::json!({
        "serviceEndpoint": {"host": endpoint.ip().to_string(), "port": endpoint.port()},
        "additionalEndpoints": additional,
        "status": "ALIVE",
    })
    .to_string()
    .into_bytes()
}

/// The endpoint a serverset member's `data` names, if it is one.
pub(crate) fn member_endpoint(data: &[u8]) -> Option<Endpoint> {
    let value: Value = serde_json::from_slice(data).ok()?;
    decode_serverset(value.as_object()?)
        .ok()
        .map(|d| d.endpoint)
}

/// What a child of a base path says about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) endpoint: Endpoint,
    pub(crate) format: Format,
    /// False when marked out of service (Curator `enabled: false`, Spring
    /// `instance_status` other than `UP`, serverset `status` other than
    /// `ALIVE`).
    pub(crate) enabled: bool,
    /// The `weight` of the metadata (Curator payload, Spring metadata).
    pub(crate) weight: Option<u32>,
    /// Why an operator took it out of rotation, when said.
    pub(crate) reason: Option<String>,
}

/// What the data of a plain child says about its rotation: `enabled` and
/// `weight` at the top of the JSON object (our metadata, or an operator's
/// change to a record without any). Empty or foreign data says nothing.
pub(crate) fn decode_plain(data: &[u8]) -> (bool, Option<u32>, Option<String>) {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(data) else {
        return (true, None, None);
    };
    (
        object.get("enabled").and_then(Value::as_bool) != Some(false),
        object.get("weight").and_then(weight_of),
        reason_of(object.get("disabled_reason")),
    )
}

/// A weight: a number (our JSON, Curator's payload) or a string (Spring's
/// metadata is a map of strings).
fn weight_of(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An operator's reason, cut to a length fit for a log line.
fn reason_of(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(|reason| crate::discovery::truncate(reason).to_owned())
}

/// Decodes the data of child `name` in whichever format it is in. A plain
/// child is named by its endpoint and needs no data; this is for the
/// others.
pub(crate) fn decode(name: &str, data: &[u8]) -> Result<Decoded, String> {
    let value: Value = serde_json::from_slice(data).map_err(|err| format!("not JSON: {err}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    if object.contains_key("serviceEndpoint") {
        return decode_serverset(object);
    }
    if object.contains_key("address") && object.contains_key("port") && object.contains_key("name")
    {
        return decode_curator(object);
    }
    Err(format!(
        "{name}: neither a Curator instance nor a serverset member"
    ))
}

fn endpoint_of(host: Option<&Value>, port: Option<&Value>) -> Result<Endpoint, String> {
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
    // The same rules as a plain child's name: nothing clients cannot reach.
    Endpoint::from_node_name(&endpoint.node_name()).map_err(|err| err.to_string())
}

fn decode_curator(object: &Map<String, Value>) -> Result<Decoded, String> {
    let endpoint = endpoint_of(object.get("address"), object.get("port"))?;
    let payload = object.get("payload").and_then(Value::as_object);
    let spring = payload
        .and_then(|p| p.get("@class"))
        .and_then(Value::as_str)
        .is_some_and(|class| class == SPRING_CLASS);
    let enabled = object.get("enabled").and_then(Value::as_bool) != Some(false);
    let spring_up = payload
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("instance_status"))
        .and_then(Value::as_str)
        .is_none_or(|status| status.eq_ignore_ascii_case("UP"));
    // A number in Curator's payload, a string in Spring's metadata.
    let weight = [
        payload.and_then(|p| p.get("weight")),
        payload
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("weight")),
    ]
    .into_iter()
    .flatten()
    .find_map(weight_of);
    let reason = reason_of(payload.and_then(|p| p.get("disabled_reason")).or_else(|| {
        payload
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("disabled_reason"))
    }));
    Ok(Decoded {
        endpoint,
        format: if spring {
            Format::Spring
        } else {
            Format::Curator
        },
        enabled: enabled && (!spring || spring_up),
        weight,
        reason,
    })
}

fn decode_serverset(object: &Map<String, Value>) -> Result<Decoded, String> {
    let service = object
        .get("serviceEndpoint")
        .and_then(Value::as_object)
        .ok_or("serviceEndpoint is not an object")?;
    let endpoint = endpoint_of(service.get("host"), service.get("port"))?;
    let status = object
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("ALIVE");
    Ok(Decoded {
        endpoint,
        format: Format::Serverset,
        enabled: status == "ALIVE",
        weight: None,
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(text: &str) -> Endpoint {
        text.parse().expect("a valid literal")
    }

    #[test]
    fn curator_data_is_byte_for_byte_what_curators_serializer_writes() {
        // Printed by Curator 5.4's JsonInstanceSerializer<Map> (Debian's
        // libcurator-discovery-java) for the same instance.
        let curator = r#"{"name":"time","id":"time-127.0.0.1-8897","address":"127.0.0.1","port":8897,"sslPort":null,"payload":{"@class":"java.util.LinkedHashMap","role":"x"},"registrationTimeUTC":1795812138412,"serviceType":"DYNAMIC","uriSpec":null}"#;
        let fields = Map::from_iter([("role".to_owned(), Value::String("x".into()))]);
        let ours = curator_data(
            Format::Curator,
            "time",
            endpoint("127.0.0.1:8897"),
            &fields,
            1_795_812_138_412,
        );
        assert_eq!(String::from_utf8_lossy(&ours), curator);
    }

    #[test]
    fn spring_payload_has_the_zookeeper_instance_shape() {
        let fields = Map::from_iter([("pid".to_owned(), Value::from(42))]);
        let data = curator_data(Format::Spring, "time", endpoint("10.0.0.1:80"), &fields, 1);
        let value: Value = serde_json::from_slice(&data).expect("JSON");
        let payload = &value["payload"];
        assert_eq!(payload["@class"], SPRING_CLASS);
        assert_eq!(
            (payload["id"].as_str(), payload["name"].as_str()),
            (Some("time-10.0.0.1-80"), Some("time"))
        );
        assert_eq!(payload["metadata"]["instance_status"], "UP");
        assert_eq!(
            payload["metadata"]["pid"], "42",
            "Spring's metadata is a map of strings"
        );
        let text = String::from_utf8_lossy(&data);
        assert!(
            text.contains(r#""payload":{"@class":"#),
            "@class comes first: {text}"
        );
    }

    #[test]
    fn every_format_decodes_and_out_of_service_is_seen() {
        let e = endpoint("10.0.0.1:80");
        let curator = curator_data(Format::Curator, "time", e, &Map::new(), 1);
        let spring = curator_data(Format::Spring, "time", e, &Map::new(), 1);
        for (data, format) in [(curator, Format::Curator), (spring, Format::Spring)] {
            let decoded = decode("id", &data).expect("decodes");
            assert_eq!(
                (decoded.endpoint, decoded.format, decoded.enabled),
                (e, format, true)
            );
        }
        let disabled =
            br#"{"name":"time","id":"x","address":"10.0.0.1","port":80,"enabled":false}"#;
        assert!(!decode("x", disabled).expect("decodes").enabled);
        let down = br#"{"name":"t","address":"10.0.0.1","port":80,"payload":{"@class":"org.springframework.cloud.zookeeper.discovery.ZookeeperInstance","metadata":{"instance_status":"OUT_OF_SERVICE"}}}"#;
        assert!(!decode("x", down).expect("decodes").enabled);
        let member = br#"{"serviceEndpoint":{"host":"10.0.0.1","port":80},"additionalEndpoints":{},"status":"ALIVE"}"#;
        let decoded = decode("member_0000000001", member).expect("decodes");
        assert_eq!(
            (decoded.endpoint, decoded.format, decoded.enabled),
            (e, Format::Serverset, true)
        );
        let dead = br#"{"serviceEndpoint":{"host":"10.0.0.1","port":80},"status":"DEAD"}"#;
        assert!(!decode("member_0000000002", dead).expect("decodes").enabled);
    }

    #[test]
    fn bad_children_are_refused_with_a_reason() {
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"{}",
            br#"{"name":"t","address":"db.example","port":80}"#,
            br#"{"name":"t","address":"10.0.0.1","port":0}"#,
            br#"{"name":"t","address":"0.0.0.0","port":80}"#,
            br#"{"serviceEndpoint":{"host":"10.0.0.1","port":70000}}"#,
        ] {
            assert!(
                decode("x", bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn instance_ids_are_stable_and_not_endpoints() {
        for (text, id) in [
            ("10.0.0.1:80", "time-10.0.0.1-80"),
            ("[::1]:80", "time-[::1]-80"),
        ] {
            let id_now = instance_id("time", endpoint(text));
            assert_eq!(id_now, id);
            assert!(Endpoint::from_node_name(&id_now).is_err());
        }
    }

    #[test]
    fn serverset_members_round_trip() {
        let e = endpoint("10.0.0.1:80");
        let data = serverset_data(e, None);
        assert_eq!(member_endpoint(&data), Some(e));
        let decoded = decode("member_0000000001", &data).expect("decodes");
        assert_eq!((decoded.format, decoded.enabled), (Format::Serverset, true));
    }

    #[test]
    fn formats_parse_by_name() {
        for format in [
            Format::Plain,
            Format::Curator,
            Format::Spring,
            Format::Serverset,
        ] {
            assert_eq!(format.name().parse::<Format>().ok(), Some(format));
        }
        assert!("zookeeper".parse::<Format>().is_err());
    }
}
