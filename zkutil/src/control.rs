//! `control`: what an operator changes on a live registration — in or out
//! of rotation, its weight — with a conditional write so that two
//! operators never lose each other's change.
//!
//! Each format keeps the change in its own field (`format::plain` and its
//! siblings say which); enabling removes what disabling added, and every
//! other field of the record is kept as it is.
//!
//! The registrant's keeper follows the node's data, so a node it re-creates
//! after a session expiry or a deletion carries the operator's last change,
//! not the state it registered with.

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::format::{Change, Format};
use crate::session::{NodeStat, Session};

/// One operator change to a registration.
///
/// # Example
///
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
/// # let _registration = Registration::register(&session, &BasePath::from_static("/go_servers"), endpoint, &metadata)?;
/// // An operator, from anywhere: take 10.0.0.5:8897 out of rotation.
/// let operator = SessionConfig::new(hosts).connect()?;
/// let applied = Control::Disable { reason: Some("kernel upgrade".into()) }
///     .apply_to(&operator, &BasePath::from_static("/go_servers"), endpoint)?;
/// assert_eq!(applied[0].path, "/go_servers/10.0.0.5:8897");
/// // Still registered, no longer picked.
/// let listed = zkutil::list_instances(&operator, &BasePath::from_static("/go_servers"), true)?;
/// assert!(!listed[0].is_enabled());
/// assert_eq!(listed[0].disabled_reason(), Some("kernel upgrade"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
                    let (format, _) = crate::format::read(name, data)?;
                    Ok((format, format.apply(data, &self.change())?))
                })
            })
            .collect()
    }

    /// The same change in the formats' terms.
    fn change(&self) -> Change<'_> {
        match self {
            Control::Disable { reason } => Change::Out {
                reason: reason.as_deref(),
            },
            Control::Enable => Change::In,
            Control::Weight(weight) => Change::Weight(*weight),
        }
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

/// A record's rotation state in words, for logs: `in rotation, weight 100`
/// or `out of rotation (deploy)`.
pub(crate) fn describe(path: &str, data: &[u8]) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let rotation = match crate::format::read(name, data) {
        Ok((_, rotation)) => rotation,
        Err(err) => return err,
    };
    let weight = rotation.weight.unwrap_or(crate::discovery::DEFAULT_WEIGHT);
    match (rotation.enabled, rotation.reason) {
        (true, _) => format!("in rotation, weight {weight}"),
        (false, Some(reason)) => format!("out of rotation ({reason})"),
        (false, None) => "out of rotation".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Rotation;

    /// Where the plain record `data` of 10.0.0.1:80 stands.
    fn plain_rotation(data: &[u8]) -> Rotation {
        crate::format::read("10.0.0.1:80", data)
            .expect("a plain name always reads")
            .1
    }

    #[test]
    fn each_control_is_its_change_to_the_record() {
        let data = br#"{"pid":42}"#;
        let apply = |control: Control| {
            Format::Plain
                .apply(data, &control.change())
                .expect("applies")
        };
        let disabled = apply(Control::Disable {
            reason: Some("deploy".into()),
        });
        assert_eq!(
            describe("/b/10.0.0.1:80", &disabled),
            "out of rotation (deploy)"
        );
        let weighted = apply(Control::Weight(300));
        assert_eq!(
            describe("/b/10.0.0.1:80", &weighted),
            "in rotation, weight 300"
        );
        assert_eq!(
            apply(Control::Enable),
            serde_json::to_vec(&serde_json::json!({"pid": 42})).expect("JSON")
        );
    }

    #[test]
    fn registering_disabled_makes_a_starting_serverset_member() {
        let data = br#"{"serviceEndpoint":{"host":"10.0.0.1","port":80},"additionalEndpoints":{},"status":"ALIVE"}"#;
        let starting = Format::Serverset
            .apply(data, &Change::Starting { reason: None })
            .expect("made");
        let value: serde_json::Value = serde_json::from_slice(&starting).expect("JSON");
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
                let weighted = Format::Plain
                    .apply(&read, &Control::Weight(7).change())
                    .expect("apply");
                theirs
                    .set_data(path, &weighted, Some(stat.version()))
                    .expect("their write wins");
            }
            let disable = Control::Disable { reason: None };
            Ok((Format::Plain, Format::Plain.apply(data, &disable.change())?))
        })
        .expect("ours is redone and lands");
        assert_eq!((applied.retries, applied.version, reads), (1, 2, 2));
        let (data, _) = ours.get_data(path).expect("read");
        let rotation = plain_rotation(&data);
        assert_eq!(
            (rotation.enabled, rotation.weight, rotation.reason),
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
                        let mut record: serde_json::Value =
                            serde_json::from_slice(data).map_err(|e| e.to_string())?;
                        let count = record["count"].as_u64().unwrap_or(0);
                        record["count"] = serde_json::Value::from(count + 1);
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
        let record: serde_json::Value = serde_json::from_slice(&data).expect("JSON");
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
