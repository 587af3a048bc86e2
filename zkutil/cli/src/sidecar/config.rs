//! `zkutil sidecar --config FILE`: the services one sidecar process keeps
//! registered, in TOML (Nerve's shape: a table per service). The whole
//! file is checked before ZooKeeper is touched: a syntax error is told
//! with its line (parsing stops there), and every other mistake of every
//! service is told, each with its line.
//!
//! ```toml
//! # Defaults for every service below (each may override them).
//! check_interval = "2s"
//! check_timeout = "1s"
//! rise = 2
//! fall = 3
//! on_fail = "disable"          # or "deregister"
//!
//! [services.web]
//! endpoint = "10.0.0.5:80"
//! base_path = "/services-web"  # default: --base-path
//! format = "plain"             # plain, curator, spring, serverset
//! checks = ["http://127.0.0.1:80/health"]
//! weight = 100
//! metadata = { role = "frontend" }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use zkutil::cli::check::Check;
use zkutil::{BasePath, Endpoint, Format};

use crate::args::{HealthArgs, OnFail};

/// One service, checked: what its thread registers and how it checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub endpoint: Endpoint,
    pub base_path: BasePath,
    pub format: Format,
    pub service_name: String,
    pub health: HealthArgs,
    pub weight: Option<u32>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Service {
    /// Whether `other` is the same registration (same node, same data), so
    /// that only its checks differ and it can be updated in place.
    pub fn same_registration(&self, other: &Service) -> bool {
        (
            self.endpoint,
            &self.base_path,
            self.format,
            &self.service_name,
            self.weight,
            &self.metadata,
            self.health.on_fail,
        ) == (
            other.endpoint,
            &other.base_path,
            other.format,
            &other.service_name,
            other.weight,
            &other.metadata,
            other.health.on_fail,
        )
    }
}

/// The file. The health settings are spelled out here and in [`Entry`]
/// (not flattened: serde's `flatten` loses `deny_unknown_fields` and
/// spans).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    check_interval: Option<Spanned<String>>,
    check_timeout: Option<Spanned<String>>,
    rise: Option<Spanned<u32>>,
    fall: Option<Spanned<u32>>,
    on_fail: Option<Spanned<String>>,
    #[serde(default)]
    services: BTreeMap<String, Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    endpoint: Spanned<String>,
    base_path: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    service_name: Option<String>,
    #[serde(default)]
    checks: Vec<Spanned<String>>,
    weight: Option<Spanned<u32>>,
    metadata: Option<Spanned<toml::Table>>,
    check_interval: Option<Spanned<String>>,
    check_timeout: Option<Spanned<String>>,
    rise: Option<Spanned<u32>>,
    fall: Option<Spanned<u32>>,
    on_fail: Option<Spanned<String>>,
}

/// The health settings of a service or of the file.
struct Settings<'a> {
    check_interval: Option<&'a Spanned<String>>,
    check_timeout: Option<&'a Spanned<String>>,
    rise: Option<&'a Spanned<u32>>,
    fall: Option<&'a Spanned<u32>>,
    on_fail: Option<&'a Spanned<String>>,
}

impl File {
    fn defaults(&self) -> Settings<'_> {
        Settings {
            check_interval: self.check_interval.as_ref(),
            check_timeout: self.check_timeout.as_ref(),
            rise: self.rise.as_ref(),
            fall: self.fall.as_ref(),
            on_fail: self.on_fail.as_ref(),
        }
    }
}

impl Entry {
    fn settings(&self) -> Settings<'_> {
        Settings {
            check_interval: self.check_interval.as_ref(),
            check_timeout: self.check_timeout.as_ref(),
            rise: self.rise.as_ref(),
            fall: self.fall.as_ref(),
            on_fail: self.on_fail.as_ref(),
        }
    }
}

/// The services of `text` (read from `path`), or every mistake found, each
/// `PATH:LINE: what`.
pub fn parse(path: &str, text: &str, default_base: &BasePath) -> Result<Vec<Service>, Vec<String>> {
    let at = |span: std::ops::Range<usize>| {
        let line = text
            .get(..span.start)
            .map_or(0, |before| before.matches('\n').count())
            + 1;
        format!("{path}:{line}")
    };
    let file: File = toml::from_str(text).map_err(|err| {
        let place = err.span().map_or_else(|| path.to_owned(), &at);
        vec![format!("{place}: {}", err.message().trim())]
    })?;
    let mut errors = Vec::new();
    let mut services = Vec::new();
    if file.services.is_empty() {
        errors.push(format!(
            "{path}: no [services.NAME] table: nothing to register"
        ));
    }
    let mut seen = BTreeMap::new();
    for (name, entry) in &file.services {
        let span = entry.span();
        let entry = entry.get_ref();
        let mut fail = |span: std::ops::Range<usize>, what: String| {
            errors.push(format!("{}: services.{name}: {what}", at(span)));
        };
        let endpoint = entry
            .endpoint
            .get_ref()
            .parse::<Endpoint>()
            .map_err(|err| fail(entry.endpoint.span(), format!("endpoint: {err}")))
            .ok();
        let base_path = match &entry.base_path {
            Some(base) => BasePath::new(base.get_ref())
                .map_err(|err| fail(base.span(), format!("base_path: {err}")))
                .ok(),
            None => Some(default_base.clone()),
        };
        let format = match &entry.format {
            Some(format) => zkutil::cli::writable_format(format.get_ref())
                .map_err(|err| fail(format.span(), format!("format: {err}")))
                .ok(),
            None => Some(Format::Plain),
        };
        let checks: Vec<Check> = entry
            .checks
            .iter()
            .filter_map(|check| {
                check
                    .get_ref()
                    .parse()
                    .map_err(|err| fail(check.span(), format!("checks: {err}")))
                    .ok()
            })
            .collect();
        if entry.checks.is_empty() {
            fail(
                span.clone(),
                "checks: none: a sidecar service needs at least one".into(),
            );
        }
        let health = settings(&entry.settings(), &file.defaults(), checks, &mut fail);
        if let (Some(health), Some(Format::Serverset)) = (&health, format) {
            if health.on_fail == OnFail::Disable {
                fail(
                    span.clone(),
                    "a serverset member has no room for a reason: on_fail must be \"deregister\""
                        .into(),
                );
            }
        }
        let metadata = match &entry.metadata {
            Some(table) => match serde_json::to_value(table.get_ref()) {
                Ok(serde_json::Value::Object(map)) => {
                    if let Some(what) = metadata_mistakes(&map) {
                        fail(table.span(), format!("metadata: {what}"));
                    }
                    Some(map)
                }
                _ => {
                    fail(table.span(), "metadata: not a table of plain values".into());
                    None
                }
            },
            None => Some(serde_json::Map::new()),
        };
        let service_name = entry.service_name.clone().unwrap_or_else(|| name.clone());
        // Where its node goes, as the registrar sees it: one address in one
        // parent is one node, whatever the formats (two would flip each
        // other's rotation).
        let parent = match (&base_path, format) {
            (Some(base), Some(format)) => zkutil::Registrar::new(base.clone())
                .format(format)
                .and_then(|registrar| registrar.service(&service_name))
                .map(|registrar| registrar.parent())
                .map_err(|err| fail(span.clone(), format!("service_name: {}", err.chain())))
                .ok(),
            _ => None,
        };
        if let (Some(endpoint), Some(parent)) = (endpoint, parent) {
            if let Some(first) = seen.insert((endpoint, parent.clone()), name.clone()) {
                fail(
                    span.clone(),
                    format!("{endpoint} in {parent} is services.{first} too"),
                );
            }
        }
        if let (Some(endpoint), Some(base_path), Some(format), Some(health), Some(metadata)) =
            (endpoint, base_path, format, health, metadata)
        {
            services.push(Service {
                name: name.clone(),
                endpoint,
                base_path,
                format,
                service_name,
                health,
                weight: entry.weight.as_ref().map(|weight| *weight.get_ref()),
                metadata,
            });
        }
    }
    if errors.is_empty() {
        Ok(services)
    } else {
        Err(errors)
    }
}

/// A service's health settings: its own, else the file's, else the flags'
/// defaults.
fn settings(
    own: &Settings<'_>,
    defaults: &Settings<'_>,
    checks: Vec<Check>,
    fail: &mut impl FnMut(std::ops::Range<usize>, String),
) -> Option<HealthArgs> {
    let mut duration = |value: Option<&Spanned<String>>, what: &str, or: Duration| match value {
        Some(value) => zkutil::cli::timeout(value.get_ref())
            .map_err(|err| fail(value.span(), format!("{what}: {err}")))
            .ok(),
        None => Some(or),
    };
    let interval = duration(
        own.check_interval.or(defaults.check_interval),
        "check_interval",
        Duration::from_secs(2),
    );
    let timeout = duration(
        own.check_timeout.or(defaults.check_timeout),
        "check_timeout",
        Duration::from_secs(1),
    );
    let mut count = |value: Option<&Spanned<u32>>, what: &str, or: u32| match value {
        Some(value) if *value.get_ref() == 0 => {
            fail(value.span(), format!("{what}: must be 1 or more"));
            None
        }
        Some(value) => Some(*value.get_ref()),
        None => Some(or),
    };
    let rise = count(own.rise.or(defaults.rise), "rise", 2);
    let fall = count(own.fall.or(defaults.fall), "fall", 3);
    let on_fail = match own.on_fail.or(defaults.on_fail) {
        None => Some(OnFail::Disable),
        Some(value) => match value.get_ref().as_str() {
            "disable" => Some(OnFail::Disable),
            "deregister" => Some(OnFail::Deregister),
            other => {
                fail(
                    value.span(),
                    format!("on_fail: {other:?}: expected \"disable\" or \"deregister\""),
                );
                None
            }
        },
    };
    Some(HealthArgs {
        checks,
        check_interval: interval?,
        check_timeout: timeout?,
        rise: rise?,
        fall: fall?,
        on_fail: on_fail?,
        // The sidecar's own --drain counts, once for all its services.
        drain: Duration::ZERO,
    })
}

/// The fields a format keeps a registration's rotation and weight in: set
/// by the sidecar, never by metadata (a metadata `enabled = false` would
/// take the service out with no reason the sidecar could tell its own).
const RESERVED: [&str; 5] = [
    "enabled",
    "disabled_reason",
    "weight",
    "instance_status",
    "status",
];

/// The most metadata a service may carry: the record's limit less room for
/// the format's own fields and a reason.
const MAX_METADATA: usize = zkutil::MAX_METADATA_LEN / 2;

/// What is wrong with a service's metadata, if anything.
fn metadata_mistakes(map: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    if let Some(key) = RESERVED.iter().find(|key| map.contains_key(**key)) {
        return Some(format!(
            "{key:?} is the registry's own field (use `weight =` for the weight)"
        ));
    }
    let size = serde_json::to_vec(map).map_or(usize::MAX, |bytes| bytes.len());
    (size > MAX_METADATA).then(|| format!("{size} bytes, more than {MAX_METADATA}"))
}
