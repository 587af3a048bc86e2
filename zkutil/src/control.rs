//! `control`: what an operator changes on a live registration — in or out
//! of rotation, its weight — written into the format's own field, with a
//! conditional write so that two operators never lose each other's change.
//!
//! | format | out of rotation | reason | weight |
//! |---|---|---|---|
//! | plain | `"enabled": false` | `disabled_reason` | `weight` |
//! | curator | `"enabled": false` (Curator's own field, read by its `ServiceProvider`) | payload `disabled_reason` | payload `weight` |
//! | spring | metadata `instance_status: OUT_OF_SERVICE`, and Curator's `enabled` | metadata `disabled_reason` | metadata `weight` (a string) |
//! | serverset | `status` other than `ALIVE` (`STOPPING`; `STARTING` before the first enable) | no place for it | no place for it |
//!
//! Enabling removes what disabling added (Curator's `enabled` field is
//! left out of a Curator record unless it is false: Curator 2.x readers
//! fail on it). Every other field of the record is kept as it is.
//!
//! The registrant's keeper follows the node's data, so a node it re-creates
//! after a session expiry or a deletion carries the operator's last change,
//! not the state it registered with.

use serde_json::{Map, Value};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::session::{NodeStat, Session};

/// One operator change to a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
///
/// # Example
//////
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// # use std::sync::Arc;
/// # use std::time::SystemTime;
/// use zkutil::{BasePath, Control, Discovery, Endpoint, Metadata, Registration, SessionConfig};
///
/// # let session = Arc::new(SessionConfig::new(hosts.clone()).connect()?);
/// # let endpoint: Endpoint = "10.0.0.5:8897".parse()?;
/// # let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "1.0.0");
/// # let _registration = Registration::register(&session, &BasePath::default(), endpoint, &metadata)?;
/// // An operator, from anywhere: take 10.0.0.5:8897 out of rotation.
/// let operator = SessionConfig::new(hosts).connect()?;
/// let applied = Control::Disable { reason: Some("kernel upgrade".into()) }
///     .apply_to(&operator, &BasePath::default(), endpoint)?;
/// assert_eq!(applied[0].path, "/go_servers/10.0.0.5:8897");
/// // Still registered, no longer picked.
/// let listed = zkutil::list_instances(&operator, &BasePath::default(), true)?;
/// assert!(!listed[0].is_enabled());
/// assert_eq!(listed[0].disabled_reason(), Some("kernel upgrade"));
/// # Ok(())
/// # }
/// ```
pub enum Control {
    /// Out of rotation: still registered, never picked; the reason is kept
    /// where the format has room for it.
    Disable {
        /// Why, for whoever looks next (`zkutil ls`, logs).
        reason: Option<String>,
    },
    /// Back in rotation.
    Enable,
    /// A new weight (0: picked only when nothing else is up).
    Weight(u32),
}

/// What the change means for clients: `out of rotation (kernel upgrade)`,
/// `in rotation`, `weight 300`.
impl std::fmt::Display for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Control::Disable {
                reason: Some(reason),
            } => write!(f, "out of rotation ({reason})"),
            Control::Disable { reason: None } => f.write_str("out of rotation"),
            Control::Enable => f.write_str("in rotation"),
            Control::Weight(weight) => write!(f, "weight {weight}"),
        }
    }
}

/// Serverset status of a member registered out of rotation, before its
/// first enable (Finagle's `Endpoint.Status`).
const SERVERSET_STARTING: &str = "STARTING";
/// Serverset status of a member an operator took out of rotation.
const SERVERSET_STOPPING: &str = "STOPPING";
/// Spring Cloud Zookeeper's status of an instance out of service.
const SPRING_OUT_OF_SERVICE: &str = "OUT_OF_SERVICE";

/// The format of child `name` holding `data`: plain when the name is an
/// endpoint, otherwise what the data says.
pub(crate) fn format_of(name: &str, data: &[u8]) -> std::result::Result<Format, String> {
    if Endpoint::from_node_name(name).is_ok() {
        return Ok(Format::Plain);
    }
    crate::format::decode(name, data).map(|decoded| decoded.format)
}

/// `data` (a record in `format`) with `control` applied; every other field
/// kept.
///
/// # Errors
///
/// A reason when the record is not a JSON object (plain data may be empty:
/// the post's servers store none), or the format has no place for the
/// change (a serverset member's weight).
pub(crate) fn apply(
    format: Format,
    data: &[u8],
    control: &Control,
) -> std::result::Result<Vec<u8>, String> {
    let mut record: Map<String, Value> = if data.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(data) {
            Ok(Value::Object(record)) => record,
            _ => return Err("its data is not a JSON object; left unchanged".into()),
        }
    };
    match format {
        Format::Plain => plain(&mut record, control),
        Format::Curator => curator(&mut record, control),
        Format::Spring => spring(&mut record, control),
        Format::Serverset => serverset(&mut record, control)?,
    }
    serde_json::to_vec(&Value::Object(record)).map_err(|err| err.to_string())
}

/// How many times a conditional write re-reads and retries after losing
/// to a concurrent writer before reporting [`Error::Conflict`].
pub const WRITE_ATTEMPTS: usize = 5;

/// What [`Control::apply_to`] did to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The node changed.
    pub path: String,
    /// Its format.
    pub format: Format,
    /// Its data version after the write.
    pub version: i32,
    /// Writes that lost to a concurrent writer and were redone on the
    /// fresh data (0: none).
    pub retries: usize,
}

impl Control {
    /// Applies this change to every registration of `endpoint` under
    /// `base_path` (one per format it is registered in), each with a
    /// conditional write: the data is read, changed and written back only
    /// if nobody wrote it meanwhile; otherwise read again and redone, up to
    /// [`WRITE_ATTEMPTS`] times. Two operators therefore never lose each
    /// other's write.
    ///
    /// # Errors
    ///
    /// [`Error::NotRegistered`] when no child names the endpoint;
    /// [`Error::Conflict`] when every attempt lost a race;
    /// [`Error::Metadata`] when the record cannot carry the change (not a
    /// JSON object; a serverset member's weight); ZooKeeper errors naming
    /// the node (no WRITE permission: [`Error::is_no_auth`]).
    pub fn apply_to(
        &self,
        session: &Session,
        base_path: &crate::BasePath,
        endpoint: Endpoint,
    ) -> Result<Vec<Applied>> {
        let nodes = crate::discovery::nodes_of(session, base_path, endpoint)?;
        if nodes.is_empty() {
            return Err(Error::NotRegistered {
                endpoint,
                base_path: base_path.to_string(),
            });
        }
        nodes
            .iter()
            .map(|name| {
                let path = format!("{base_path}/{name}");
                update(session, &path, |data| {
                    let format = format_of(name, data)?;
                    Ok((format, apply(format, data, self)?))
                })
            })
            .collect()
    }
}

/// A conditional read-modify-write of `path`: `edit` maps the data read to
/// the new data (and the record's format), which is written only at the
/// version read; a lost race re-reads and redoes it.
///
/// # Errors
///
/// As [`Control::apply_to`].
pub(crate) fn update(
    session: &Session,
    path: &str,
    mut edit: impl FnMut(&[u8]) -> std::result::Result<(Format, Vec<u8>), String>,
) -> Result<Applied> {
    // Writers that keep colliding are spread apart, jittered.
    let mut backoff = crate::Backoff::new(
        std::time::Duration::from_millis(2),
        std::time::Duration::from_millis(50),
    );
    for retries in 0..WRITE_ATTEMPTS {
        if retries > 0 {
            std::thread::sleep(backoff.next_delay());
        }
        let (data, stat): (Vec<u8>, NodeStat) = session.get_data(path)?;
        let (format, new) = edit(&data).map_err(|reason| Error::Metadata {
            path: path.to_owned(),
            reason,
        })?;
        if new.len() > crate::MAX_METADATA_LEN {
            return Err(Error::Metadata {
                path: path.to_owned(),
                reason: format!("{} bytes, more than {}", new.len(), crate::MAX_METADATA_LEN),
            });
        }
        match session.set_data(path, &new, Some(stat.version())) {
            Ok(stat) => {
                return Ok(Applied {
                    path: path.to_owned(),
                    format,
                    version: stat.version(),
                    retries,
                });
            }
            Err(Error::Zk { source, .. })
                if source.kind() == crate::error::ZkErrorKind::BadVersion =>
            {
                tracing::debug!(
                    path,
                    retries,
                    "the node changed since it was read; redoing the change"
                );
            }
            Err(err) => return Err(err),
        }
    }
    Err(Error::Conflict {
        path: path.to_owned(),
        attempts: WRITE_ATTEMPTS,
    })
}

/// A new record `data` in `format`, out of rotation from the start: a
/// serverset member is `STARTING` (not yet alive), the others disabled.
pub(crate) fn disabled_from_start(
    format: Format,
    data: &[u8],
    reason: Option<String>,
) -> std::result::Result<Vec<u8>, String> {
    let disabled = apply(format, data, &Control::Disable { reason })?;
    if format != Format::Serverset {
        return Ok(disabled);
    }
    let mut record: Map<String, Value> =
        serde_json::from_slice(&disabled).map_err(|err| err.to_string())?;
    record.insert("status".into(), SERVERSET_STARTING.into());
    serde_json::to_vec(&record).map_err(|err| err.to_string())
}

/// A record's rotation state in words, for logs: `in rotation, weight 100`
/// or `out of rotation (deploy)`.
pub(crate) fn describe(path: &str, data: &[u8]) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let (enabled, weight, reason) = match Endpoint::from_node_name(name) {
        Ok(_) => crate::format::decode_plain(data),
        Err(_) => match crate::format::decode(name, data) {
            Ok(d) => (d.enabled, d.weight, d.reason),
            Err(err) => return err,
        },
    };
    let weight = weight.unwrap_or(crate::discovery::DEFAULT_WEIGHT);
    match (enabled, reason) {
        (true, _) => format!("in rotation, weight {weight}"),
        (false, Some(reason)) => format!("out of rotation ({reason})"),
        (false, None) => "out of rotation".to_owned(),
    }
}

fn plain(record: &mut Map<String, Value>, control: &Control) {
    match control {
        Control::Disable { reason } => {
            record.insert("enabled".into(), Value::Bool(false));
            set(record, "disabled_reason", reason.clone().map(Value::String));
        }
        Control::Enable => {
            record.remove("enabled");
            record.remove("disabled_reason");
        }
        Control::Weight(weight) => {
            record.insert("weight".into(), Value::from(*weight));
        }
    }
}

fn curator(record: &mut Map<String, Value>, control: &Control) {
    set_enabled(record, !matches!(control, Control::Disable { .. }));
    let payload = object_at(record, "payload");
    match control {
        Control::Disable { reason } => {
            set(
                payload,
                "disabled_reason",
                reason.clone().map(Value::String),
            );
        }
        Control::Enable => {
            payload.remove("disabled_reason");
        }
        Control::Weight(weight) => {
            payload.insert("weight".into(), Value::from(*weight));
        }
    }
}

fn spring(record: &mut Map<String, Value>, control: &Control) {
    set_enabled(record, !matches!(control, Control::Disable { .. }));
    // Spring's metadata is a map of strings.
    let metadata = object_at(object_at(record, "payload"), "metadata");
    match control {
        Control::Disable { reason } => {
            metadata.insert("instance_status".into(), SPRING_OUT_OF_SERVICE.into());
            set(
                metadata,
                "disabled_reason",
                reason.clone().map(Value::String),
            );
        }
        Control::Enable => {
            metadata.insert("instance_status".into(), "UP".into());
            metadata.remove("disabled_reason");
        }
        Control::Weight(weight) => {
            metadata.insert("weight".into(), Value::String(weight.to_string()));
        }
    }
}

fn serverset(
    record: &mut Map<String, Value>,
    control: &Control,
) -> std::result::Result<(), String> {
    let status = match control {
        Control::Disable { .. } => SERVERSET_STOPPING,
        Control::Enable => "ALIVE",
        Control::Weight(_) => {
            return Err(
                "a serverset member has no place for a weight (Finagle's schema has none)".into(),
            );
        }
    };
    record.insert("status".into(), status.into());
    Ok(())
}

/// Curator's `enabled`: written only when false (absent reads as true, and
/// Curator 2.x readers fail on the field).
fn set_enabled(record: &mut Map<String, Value>, enabled: bool) {
    if enabled {
        record.remove("enabled");
    } else {
        record.insert("enabled".into(), Value::Bool(false));
    }
}

/// Sets `key` to `value`, or removes it for `None`.
fn set(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
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
fn object_at<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{curator_data, decode, decode_plain, serverset_data};

    fn endpoint() -> Endpoint {
        "10.0.0.1:80".parse().expect("a valid literal")
    }

    /// One record of each format, as we register it, with its child name.
    fn records() -> Vec<(Format, &'static str, Vec<u8>)> {
        let fields = Map::from_iter([("pid".to_owned(), Value::from(42))]);
        vec![
            (
                Format::Plain,
                "10.0.0.1:80",
                br#"{"address":"10.0.0.1","port":80,"pid":42}"#.to_vec(),
            ),
            (
                Format::Curator,
                "time-10.0.0.1-80",
                curator_data(Format::Curator, "time", endpoint(), &fields, 1),
            ),
            (
                Format::Spring,
                "time-10.0.0.1-80",
                curator_data(Format::Spring, "time", endpoint(), &fields, 1),
            ),
            (
                Format::Serverset,
                "member_0000000001",
                serverset_data(endpoint(), None),
            ),
        ]
    }

    /// (enabled, weight, reason) as discovery reads them.
    fn read(format: Format, name: &str, data: &[u8]) -> (bool, Option<u32>, Option<String>) {
        assert_eq!(format_of(name, data), Ok(format));
        if format == Format::Plain {
            return decode_plain(data);
        }
        let decoded = decode(name, data).expect("still decodes");
        (decoded.enabled, decoded.weight, decoded.reason)
    }

    #[test]
    fn disable_and_enable_round_trip_in_every_format_keeping_the_other_fields() {
        for (format, name, data) in records() {
            let reason = Some("kernel upgrade".to_owned());
            let disabled = apply(format, &data, &Control::Disable { reason })
                .unwrap_or_else(|err| panic!("{format}: {err}"));
            let (enabled, _, said) = read(format, name, &disabled);
            assert!(!enabled, "{format}: {}", String::from_utf8_lossy(&disabled));
            if format != Format::Serverset {
                assert_eq!(said.as_deref(), Some("kernel upgrade"), "{format}");
            }
            let enabled = apply(format, &disabled, &Control::Enable).expect("enables");
            assert_eq!(read(format, name, &enabled), (true, None, None), "{format}");
            let before: Value = serde_json::from_slice(&data).expect("JSON");
            let after: Value = serde_json::from_slice(&enabled).expect("JSON");
            assert_eq!(before, after, "{format}: enable undoes disable exactly");
        }
    }

    #[test]
    fn each_format_is_disabled_in_its_own_field() {
        let off = Control::Disable { reason: None };
        let [plain, curator, spring, serverset] = records()
            .into_iter()
            .map(|(format, _, data)| {
                let changed = apply(format, &data, &off).expect("disables");
                serde_json::from_slice::<Value>(&changed).expect("JSON")
            })
            .collect::<Vec<_>>()
            .try_into()
            .expect("four formats");
        assert_eq!(plain["enabled"], false);
        assert_eq!(
            curator["enabled"], false,
            "Curator's ServiceInstance.enabled"
        );
        assert_eq!(
            spring["payload"]["metadata"]["instance_status"],
            "OUT_OF_SERVICE"
        );
        assert_eq!(serverset["status"], "STOPPING");
    }

    #[test]
    fn weights_are_written_where_readers_look_and_serversets_have_none() {
        for (format, name, data) in records() {
            let weighted = apply(format, &data, &Control::Weight(300));
            if format == Format::Serverset {
                assert!(weighted.is_err(), "serverset members have no weight");
                continue;
            }
            let weighted = weighted.unwrap_or_else(|err| panic!("{format}: {err}"));
            assert_eq!(
                read(format, name, &weighted),
                (true, Some(300), None),
                "{format}"
            );
        }
    }

    #[test]
    fn a_plain_node_without_data_can_be_disabled_and_garbage_is_refused() {
        let disabled =
            apply(Format::Plain, b"", &Control::Disable { reason: None }).expect("disables");
        assert_eq!(decode_plain(&disabled), (false, None, None));
        assert!(apply(Format::Plain, b"not json", &Control::Enable).is_err());
        assert!(apply(Format::Plain, b"[1]", &Control::Enable).is_err());
    }

    #[test]
    fn registering_disabled_makes_a_starting_serverset_member() {
        let data = serverset_data(endpoint(), None);
        let starting = disabled_from_start(Format::Serverset, &data, None).expect("made");
        let value: Value = serde_json::from_slice(&starting).expect("JSON");
        assert_eq!(value["status"], "STARTING");
        assert_eq!(
            describe("/b/member_0000000001", &starting),
            "out of rotation"
        );
    }

    #[cfg(feature = "testing")]
    #[test]
    fn a_write_that_loses_a_race_is_redone_on_the_winners_data() {
        let zk = crate::testing::zookeeper();
        let ours = crate::testing::connect(&zk, std::time::Duration::from_secs(10));
        let theirs = crate::testing::connect(&zk, std::time::Duration::from_secs(10));
        let path = "/10.0.0.1:80";
        ours.create_ephemeral(path, br#"{"pid":42}"#)
            .expect("create");
        let mut reads = 0;
        let applied = update(&ours, path, |data| {
            reads += 1;
            if reads == 1 {
                // Another operator writes between our read and our write.
                let (read, stat) = theirs.get_data(path).expect("read");
                let weighted = apply(Format::Plain, &read, &Control::Weight(7)).expect("apply");
                theirs
                    .set_data(path, &weighted, Some(stat.version()))
                    .expect("their write wins");
            }
            Ok((
                Format::Plain,
                apply(Format::Plain, data, &Control::Disable { reason: None })?,
            ))
        })
        .expect("ours is redone and lands");
        assert_eq!((applied.retries, applied.version, reads), (1, 2, 2));
        let (data, _) = ours.get_data(path).expect("read");
        assert_eq!(
            decode_plain(&data),
            (false, Some(7), None),
            "both writes are kept"
        );
    }

    #[cfg(feature = "testing")]
    #[test]
    fn concurrent_read_modify_writes_lose_no_update() {
        // Two writers each add 1 to a counter 40 times, as fast as they can:
        // a blind write from a stale read would lose increments.
        let zk = crate::testing::zookeeper();
        let owner = crate::testing::connect(&zk, std::time::Duration::from_secs(10));
        let path = "/10.0.0.1:81";
        owner
            .create_ephemeral(path, br#"{"count":0}"#)
            .expect("create");
        let writer = || {
            let session = crate::testing::connect(&zk, std::time::Duration::from_secs(10));
            std::thread::spawn(move || {
                let mut retries = 0;
                for _ in 0..40 {
                    let applied = update(&session, path, |data| {
                        let mut record: Value =
                            serde_json::from_slice(data).map_err(|e| e.to_string())?;
                        let count = record["count"].as_u64().unwrap_or(0);
                        record["count"] = Value::from(count + 1);
                        Ok((Format::Plain, record.to_string().into_bytes()))
                    });
                    match applied {
                        Ok(applied) => retries += applied.retries,
                        // Lost every attempt: nothing written, said so.
                        Err(Error::Conflict { .. }) => {}
                        Err(err) => panic!("{err}"),
                    }
                }
                retries
            })
        };
        let (a, b) = (writer(), writer());
        let retries = a.join().expect("a") + b.join().expect("b");
        let (data, stat) = owner.get_data(path).expect("read");
        let record: Value = serde_json::from_slice(&data).expect("JSON");
        assert_eq!(
            record["count"].as_u64(),
            u64::try_from(stat.version()).ok(),
            "every write that landed counted once"
        );
        eprintln!(
            "{} writes landed, {retries} redone after losing a race",
            stat.version()
        );
    }
}
