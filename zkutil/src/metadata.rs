//! `Metadata`: what a registration says about the server behind it, the
//! JSON data of its znode, with the size limit checked in one place.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// Largest node data we accept as metadata. ZooKeeper allows 1 MiB; a real
/// record is about 150 bytes.
pub const MAX_METADATA_LEN: usize = 16 * 1024;

/// What a registration says about the server behind it: the data of its
/// znode, as JSON.
///
/// # Example
///
/// ```
/// use std::time::SystemTime;
/// use zkutil::{Endpoint, Metadata};
/// let endpoint: Endpoint = "10.0.0.1:8897".parse().expect("an endpoint");
/// let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "1.0.0").with_weight(Some(300));
/// let json = metadata.to_json();
/// let read = Metadata::from_json("/go_servers/10.0.0.1:8897", &json).expect("our JSON");
/// assert_eq!((read.port(), read.weight()), (8897, Some(300)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    address: String,
    port: u16,
    pid: u32,
    hostname: String,
    started_at: String,
    version: String,
    /// Its share of the requests under the weighted strategies (none: 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
}

impl Metadata {
    /// The IP address clients connect to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Host name of the machine the server runs on.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// When the server started, RFC 3339 in UTC.
    pub fn started_at(&self) -> &str {
        &self.started_at
    }

    /// Version of the software that registered.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Metadata for `endpoint` served by this process, started at `started_at`.
    pub fn for_this_process(endpoint: Endpoint, started_at: SystemTime, version: &str) -> Metadata {
        Metadata {
            address: endpoint.ip().to_string(),
            port: endpoint.port(),
            pid: std::process::id(),
            hostname: hostname(),
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            version: version.to_owned(),
            weight: None,
        }
    }

    /// With a weight (`--weight`): its share of the requests under the
    /// weighted strategies; 0 = picked only when nothing else is up.
    pub fn with_weight(mut self, weight: Option<u32>) -> Metadata {
        self.weight = weight;
        self
    }

    /// The weight it asked for, if any.
    pub fn weight(&self) -> Option<u32> {
        self.weight
    }

    /// The JSON encoding stored in the znode.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses node data read from `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Metadata`] when the data is too large or not our JSON.
    pub fn from_json(path: &str, data: &[u8]) -> Result<Metadata> {
        if data.len() > MAX_METADATA_LEN {
            return Err(Error::Metadata {
                path: path.to_owned(),
                reason: format!(
                    "{} bytes, more than the {MAX_METADATA_LEN} allowed",
                    data.len()
                ),
            });
        }
        serde_json::from_slice(data).map_err(|err| Error::Metadata {
            path: path.to_owned(),
            reason: err.to_string(),
        })
    }
}

/// This host's name, as [`Metadata::hostname`] records it.
pub(crate) fn this_host() -> String {
    hostname()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::error::Error;

    #[test]
    fn metadata_round_trips_through_json() {
        let endpoint: Endpoint = "127.0.0.1:8897".parse().expect("a valid literal");
        let metadata = Metadata::for_this_process(endpoint, SystemTime::UNIX_EPOCH, "1.2.3");
        assert_eq!(metadata.started_at, "1970-01-01T00:00:00.000Z");
        let json = metadata.to_json();
        let text = String::from_utf8_lossy(&json);
        for key in [
            "address",
            "port",
            "pid",
            "hostname",
            "started_at",
            "version",
        ] {
            assert!(
                text.contains(&format!("\"{key}\"")),
                "{key} missing from {text}"
            );
        }
        assert_eq!(Metadata::from_json("/x", &json).ok(), Some(metadata));
    }

    #[test]
    fn metadata_that_is_not_json_or_too_large_is_an_error() {
        assert!(matches!(
            Metadata::from_json("/x", b"not json"),
            Err(Error::Metadata { .. })
        ));
        let huge = vec![b' '; MAX_METADATA_LEN + 1];
        assert!(matches!(
            Metadata::from_json("/x", &huge),
            Err(Error::Metadata { .. })
        ));
    }
}
