//! `Registrar`: how and where endpoints are registered — the base path,
//! the format, the service name, whether another session's node may be
//! replaced, and the metrics address to tell.

use std::sync::Arc;

use super::{OpenParent, Registration, Takeover};
use crate::base_path::BasePath;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::format::{Change, Format, New};
use crate::metadata::Metadata;
use crate::session::Session;

/// How and where endpoints are registered: the base path, the [`Format`]
/// (and, for Curator and Spring, the service name), and whether another
/// session's node may be replaced.
///
/// ```text
/// plain       <base>/<ip:port>
/// curator     <base>/<service>/<service>-<ip>-<port>   (Curator's base is /services)
/// spring      the same, with Spring Cloud Zookeeper's payload
/// serverset   <base>/member_N, N given by ZooKeeper
/// ```
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// use std::sync::Arc;
/// use std::time::SystemTime;
/// use zkutil::{BasePath, Endpoint, Format, Metadata, Registrar, SessionConfig, Takeover};
///
/// let session = Arc::new(SessionConfig::new(hosts).connect()?);
/// // As Apache Curator's service discovery writes it (and Spring Cloud, Dubbo read it).
/// let registrar = Registrar::new(BasePath::new("/services")?)
///     .format(Format::Curator)?
///     .service("time")?
///     .takeover(Takeover::SameHost);
/// let endpoint: Endpoint = "10.0.0.5:8897".parse()?;
/// let metadata = Metadata::for_this_process(endpoint, SystemTime::now(), "1.0.0");
/// let registration = registrar.register(&session, endpoint, &metadata)?;
/// assert_eq!(registration.path(), "/services/time/time-10.0.0.5-8897");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Registrar {
    base: BasePath,
    format: Format,
    service: String,
    takeover: Takeover,
    open_parent: OpenParent,
    metrics: Option<Endpoint>,
    /// Registered out of rotation (a two-phase start), with this reason.
    disabled: Option<Option<String>>,
}

impl Registrar {
    /// Plain registrations under `base`, service name `time`, refusing to
    /// replace another session's node.
    pub fn new(base: BasePath) -> Registrar {
        Registrar {
            base,
            format: Format::Plain,
            service: "time".to_owned(),
            takeover: Takeover::Refuse,
            open_parent: OpenParent::Refuse,
            metrics: None,
            disabled: None,
        }
    }

    /// Registers in `format`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a format that is only read, not
    /// written (none is, today: see [`Format::WRITABLE`]).
    pub fn format(mut self, format: Format) -> Result<Registrar> {
        if !Format::WRITABLE.contains(&format) {
            return Err(Error::invalid(
                "format",
                format.name(),
                "not writable yet (it is read)",
            ));
        }
        self.format = format;
        Ok(self)
    }

    /// The service name of Curator and Spring registrations.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a name that is not one znode name.
    pub fn service(mut self, name: &str) -> Result<Registrar> {
        let reason = if name.is_empty() {
            "empty"
        } else if name.contains('/') {
            "contains '/'"
        } else if name == "." || name == ".." {
            "is '.' or '..'"
        } else if name.chars().any(char::is_control) {
            "has a control character"
        } else {
            self.service = name.to_owned();
            return Ok(self);
        };
        Err(Error::invalid("service name", name, reason))
    }

    /// Whether another session's node in the way may be replaced.
    pub fn takeover(mut self, takeover: Takeover) -> Registrar {
        self.takeover = takeover;
        self
    }

    /// What to do, with auth, when the parent of the nodes exists open to
    /// the world (refuse by default).
    pub fn open_parent(mut self, open_parent: OpenParent) -> Registrar {
        self.open_parent = open_parent;
        self
    }

    /// Tells where the registrant serves its metrics, so that Prometheus
    /// finds them through the registry: a serverset's additional endpoint
    /// `metrics` (what `serverset_sd_configs` turns into
    /// `__meta_serverset_endpoint_host_metrics` / `_port_metrics`), a
    /// `metrics` entry (`ip:port`) of the metadata or Curator payload.
    pub fn metrics(mut self, endpoint: Option<Endpoint>) -> Registrar {
        self.metrics = endpoint;
        self
    }

    /// Registers out of rotation (a two-phase start: registered, never
    /// picked, until `zkutil enable` or the registrant's own
    /// [`Control::Enable`](crate::Control::Enable)); `reason` is kept where
    /// the format has room. A serverset member starts as `STARTING`.
    pub fn disabled(mut self, reason: Option<String>) -> Registrar {
        self.disabled = Some(reason);
        self
    }

    /// The format written.
    pub fn registry_format(&self) -> Format {
        self.format
    }

    /// The parent of the nodes: the base path, or `<base>/<service>`
    /// (Curator, Spring).
    pub fn parent(&self) -> String {
        self.format.root().parent(&self.base, &self.service)
    }

    /// The znode path of `endpoint`'s registration; `None` for a serverset
    /// member, whose name ZooKeeper gives (`member_` and a sequence number).
    pub fn node_path(&self, endpoint: Endpoint) -> Option<String> {
        let name = self.format.node_name(&self.service, endpoint)?;
        Some(format!("{}/{name}", self.parent()))
    }

    /// Registers `endpoint` with `metadata`.
    ///
    /// # Errors
    ///
    /// As [`Registration::register`].
    pub fn register(
        &self,
        session: &Arc<Session>,
        endpoint: Endpoint,
        metadata: &Metadata,
    ) -> Result<Registration> {
        let fields = match serde_json::to_value(metadata) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        self.register_fields(session, endpoint, fields)
    }

    /// Registers `endpoint` with `fields` as its metadata (plain) or
    /// payload (Curator, Spring): `zkutil register` stores the caller's.
    ///
    /// # Errors
    ///
    /// As [`Registration::register`]; also [`Error::Metadata`] when the
    /// data would exceed [`MAX_METADATA_LEN`](crate::MAX_METADATA_LEN).
    pub fn register_fields(
        &self,
        session: &Arc<Session>,
        endpoint: Endpoint,
        mut fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Registration> {
        if let Some(metrics) = self.metrics {
            fields.insert(
                "metrics".into(),
                serde_json::Value::String(metrics.to_string()),
            );
        }
        let data = self.format.encode(&New {
            service: &self.service,
            endpoint,
            fields: &fields,
            metrics: self.metrics,
            registered_ms: now_ms(),
        });
        let data = match &self.disabled {
            Some(reason) => {
                let starting = Change::Starting {
                    reason: reason.as_deref(),
                };
                self.format
                    .apply(&data, &starting)
                    .map_err(|reason| Error::Metadata {
                        path: self.parent(),
                        reason,
                    })?
            }
            None => data,
        };
        let path = self.node_path(endpoint);
        Registration::register_at(
            session,
            &self.parent(),
            path,
            endpoint,
            data,
            (self.takeover, self.open_parent),
        )
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
