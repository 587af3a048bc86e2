//! `format`: the registries people already run, read and written (the
//! post's plain nodes, Curator's, Spring Cloud's, Finagle's serversets).
//!
//! Each format is one file, holding all that the format means: where its
//! nodes go, how its records are written and recognized, where it keeps
//! the in-rotation flag, the weight and an operator's reason, and what in
//! a record proves that its holder was this host. The rest of the crate
//! asks through [`Format`] and never reads a format's JSON itself.
//!
//! A format is added by its file and one entry in the [`formats!`] table
//! below. Discovery detects the format per child, with no flag: a child
//! that fails to parse is skipped on its own.

mod json;
#[cfg(test)]
mod tests;

use std::cell::OnceCell;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::base_path::BasePath;
use crate::endpoint::Endpoint;
use crate::error::Error;

pub use self::curator::instance_id;
pub(crate) use self::serverset::{MEMBER_PREFIX, member_endpoint};

/// Declares the formats, one entry each: the [`Format`] variant with its
/// doc, then the file (whose name is the format's name, as flags spell it)
/// and the [`Codec`] in it. The order is [`Format`]'s order, and detection
/// tries the formats from the last one back: a format built on another
/// one's record (Spring on Curator's) comes after it.
macro_rules! formats {
    ($($(#[$attr:meta])* $variant:ident => $module:ident::$codec:ident,)+) => {
        $(mod $module;)+

        /// A registry format.
        ///
        /// # Example
        ///
        /// ```
        /// use zkutil::Format;
        /// assert_eq!("serverset".parse::<Format>().ok(), Some(Format::Serverset));
        /// assert_eq!(Format::Spring.to_string(), "spring");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[non_exhaustive]
        pub enum Format {
            $($(#[$attr])* $variant,)+
        }

        impl Format {
            /// Every format, in [`Format`]'s order.
            pub(crate) const ALL: [Format; COUNT] = [$(Format::$variant,)+];

            /// The formats that can be written: every one.
            pub const WRITABLE: [Format; COUNT] = [$(Format::$variant,)+];

            /// The lower-case name, as flags and `zkutil ls` spell it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Format::$variant => stringify!($module),)+
                }
            }

            /// What the format means.
            fn codec(self) -> &'static dyn Codec {
                match self {
                    $(Format::$variant => &$module::$codec,)+
                }
            }
        }

        /// How many formats there are.
        const COUNT: usize = [$(stringify!($variant),)+].len();
    };
}

formats! {
    /// `<base>/<ip:port>`, JSON metadata.
    #[default]
    Plain => plain::Plain,
    /// Curator's `ServiceInstance` under `<base>/<service>/<id>`.
    Curator => curator::Curator,
    /// Curator's layout with Spring Cloud Zookeeper's payload.
    Spring => spring::Spring,
    /// A Finagle serverset member, `<base>/member_…`.
    Serverset => serverset::Serverset,
}

/// What one registry format means. Each format's file implements it for a
/// unit struct, and [`formats!`] registers that.
trait Codec: Sync {
    /// The root of a [`Layout`](crate::Layout) its nodes go under, and so
    /// their parent.
    fn root(&self) -> Root;

    /// The name of the node of `endpoint` registered as `service`; `None`
    /// when ZooKeeper gives it (a sequential node).
    fn node_name(&self, service: &str, endpoint: Endpoint) -> Option<String>;

    /// The data of a new registration.
    fn encode(&self, new: &New<'_>) -> Vec<u8>;

    /// Whether `child`, whose name is no endpoint, is one of its records.
    fn recognizes(&self, child: &Child<'_>) -> bool;

    /// The instance `child` describes, and where it stands in the rotation.
    fn decode(&self, child: &Child<'_>) -> Result<(Endpoint, Rotation), String>;

    /// `record` with `change` made in the format's own fields, every other
    /// field kept; a reason when the format has no place for it.
    fn apply(&self, record: &mut Map<String, Value>, change: &Change<'_>) -> Result<(), String>;

    /// The host that registered `record`, where the format keeps it: a
    /// registrant that has just bound the endpoint's port on that same host
    /// knows that the record's holder is gone ([`Takeover::SameHost`](crate::Takeover::SameHost)).
    fn host<'a>(&self, record: &'a Value) -> Option<&'a str>;

    /// Where `record` keeps the registrant's metadata (`zkutil ls` shows
    /// it): the whole record unless the format nests it.
    fn metadata<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        Some(record)
    }
}

impl Format {
    /// The root of a [`Layout`](crate::Layout) its nodes go under.
    pub(crate) fn root(self) -> Root {
        self.codec().root()
    }

    /// The name of the node of `endpoint` registered as `service`; `None`
    /// when ZooKeeper gives it (a serverset member's sequence number).
    pub(crate) fn node_name(self, service: &str, endpoint: Endpoint) -> Option<String> {
        self.codec().node_name(service, endpoint)
    }

    /// Where a record of this format (its node's data, parsed) keeps the
    /// registrant's metadata: the payload of a Curator instance, the
    /// payload's `metadata` of a Spring one, the whole record otherwise.
    ///
    /// ```
    /// use zkutil::{Format, serde_json::json};
    /// let record = json!({"name": "time", "payload": {"metadata": {"zone": "a"}}});
    /// assert_eq!(Format::Spring.metadata_of(&record), Some(&json!({"zone": "a"})));
    /// ```
    pub fn metadata_of(self, record: &Value) -> Option<&Value> {
        self.codec().metadata(record)
    }

    /// The data of a new registration in this format.
    pub(crate) fn encode(self, new: &New<'_>) -> Vec<u8> {
        self.codec().encode(new)
    }

    /// `data` (a record in this format) with `change` made; every other
    /// field kept.
    ///
    /// # Errors
    ///
    /// A reason when the record is not a JSON object (plain data may be
    /// empty: the seed Go servers store none), or the format has no place
    /// for the change (a serverset member's weight).
    pub(crate) fn apply(self, data: &[u8], change: &Change<'_>) -> Result<Vec<u8>, String> {
        let mut record: Map<String, Value> = if data.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice(data) {
                Ok(Value::Object(record)) => record,
                _ => return Err("its data is not a JSON object; left unchanged".into()),
            }
        };
        self.codec().apply(&mut record, change)?;
        serde_json::to_vec(&Value::Object(record)).map_err(|err| err.to_string())
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
        Format::ALL
            .into_iter()
            .find(|format| format.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                let (last, others) = names.split_last().unwrap_or((&"", &[]));
                let expected = format!("expected {} or {last}", others.join(", "));
                Error::invalid("format", text, expected)
            })
    }
}

/// The roots of a [`Layout`](crate::Layout): each format's nodes go under
/// one of them, and formats sharing a root write the same nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// The plain base path: nodes right under it.
    Plain,
    /// Curator's root: `<root>/<service>/<id>`.
    Curator,
    /// A serverset's path: members right under it.
    Serverset,
}

impl Root {
    /// The parent of the nodes registered as `service` under `base`.
    pub(crate) fn parent(self, base: &BasePath, service: &str) -> String {
        match self {
            Root::Curator => format!("{base}/{service}"),
            Root::Plain | Root::Serverset => base.as_str().to_owned(),
        }
    }

    /// Where a node under this root is, in words.
    pub(crate) fn node_shape(self) -> &'static str {
        match self {
            Root::Plain => "<base>/<ip:port>",
            Root::Curator => "<root>/<service>/<id>",
            Root::Serverset => "<path>/member_N",
        }
    }
}

/// What a new registration is made of.
#[derive(Debug)]
pub(crate) struct New<'a> {
    /// The service name (Curator's and Spring's records carry it).
    pub(crate) service: &'a str,
    pub(crate) endpoint: Endpoint,
    /// The metadata.
    pub(crate) fields: &'a Map<String, Value>,
    /// Where the registrant serves its metrics.
    pub(crate) metrics: Option<Endpoint>,
    /// The registration time, ms since the epoch.
    pub(crate) registered_ms: i64,
}

/// A change to a record's place in the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change<'a> {
    /// Back in rotation: what taking it out added is removed.
    In,
    /// Out of rotation; the reason kept where the format has room for it.
    Out { reason: Option<&'a str> },
    /// Out of rotation from the start (registered disabled): not yet
    /// alive, where the format tells that apart.
    Starting { reason: Option<&'a str> },
    /// A new weight.
    Weight(u32),
}

/// Where a record stands in the rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rotation {
    /// False when marked out of service.
    pub(crate) enabled: bool,
    /// Its share of the requests, when the record gives one.
    pub(crate) weight: Option<u32>,
    /// Why an operator took it out of rotation, when said.
    pub(crate) reason: Option<String>,
}

impl Rotation {
    /// What a record that says nothing about its rotation means.
    pub(crate) const IN: Rotation = Rotation {
        enabled: true,
        weight: None,
        reason: None,
    };
}

/// A child of a base path, as the formats look at it: its name and data,
/// the data parsed as a JSON object once, by the first format that asks.
pub(crate) struct Child<'a> {
    name: &'a str,
    data: &'a [u8],
    object: OnceCell<Result<Map<String, Value>, String>>,
}

impl<'a> Child<'a> {
    fn new(name: &'a str, data: &'a [u8]) -> Child<'a> {
        Child {
            name,
            data,
            object: OnceCell::new(),
        }
    }

    /// Its name under its parent.
    fn name(&self) -> &str {
        self.name
    }

    /// Its data as a JSON object, or why it is none.
    fn object(&self) -> Result<&Map<String, Value>, &str> {
        self.object
            .get_or_init(|| match serde_json::from_slice::<Value>(self.data) {
                Ok(Value::Object(object)) => Ok(object),
                Ok(_) => Err("not a JSON object".to_owned()),
                Err(err) => Err(format!("not JSON: {err}")),
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// What a child of a base path says about one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) endpoint: Endpoint,
    pub(crate) format: Format,
    /// False when marked out of service, in the format's own field.
    pub(crate) enabled: bool,
    /// The weight the record gives.
    pub(crate) weight: Option<u32>,
    /// Why an operator took it out of rotation, when said.
    pub(crate) reason: Option<String>,
}

impl Decoded {
    fn new(endpoint: Endpoint, format: Format, rotation: Rotation) -> Decoded {
        Decoded {
            endpoint,
            format,
            enabled: rotation.enabled,
            weight: rotation.weight,
            reason: rotation.reason,
        }
    }
}

/// The instance of the plain child named by `endpoint`, holding `data`:
/// the rotation fields are read from any JSON object (an operator may
/// have disabled a server that stores no metadata); other data says
/// nothing.
pub(crate) fn decode_plain(endpoint: Endpoint, data: &[u8]) -> Decoded {
    let rotation = plain::rotation(&Child::new("", data));
    Decoded::new(endpoint, Format::Plain, rotation)
}

/// Decodes the data of child `name` in whichever format it is in. A plain
/// child is named by its endpoint and needs no data; this is for the
/// others.
pub(crate) fn decode(name: &str, data: &[u8]) -> Result<Decoded, String> {
    let child = Child::new(name, data);
    let format = recognize(&child)?;
    let (endpoint, rotation) = format.codec().decode(&child)?;
    Ok(Decoded::new(endpoint, format, rotation))
}

/// The format of child `name` holding `data` and where it stands in the
/// rotation: plain when the name is an endpoint, whatever the data;
/// otherwise what the data says.
pub(crate) fn read(name: &str, data: &[u8]) -> Result<(Format, Rotation), String> {
    let child = Child::new(name, data);
    let format = match Endpoint::from_node_name(name) {
        Ok(_) => Format::Plain,
        Err(_) => recognize(&child)?,
    };
    let (_, rotation) = format.codec().decode(&child)?;
    Ok((format, rotation))
}

/// The format whose record `child` is, trying the last registered first.
fn recognize(child: &Child<'_>) -> Result<Format, String> {
    if let Some(format) = Format::ALL
        .into_iter()
        .rev()
        .find(|format| format.codec().recognizes(child))
    {
        return Ok(format);
    }
    // Not JSON at all says more than "no format".
    let _ = child.object()?;
    Err(format!(
        "{}: not a record of any known format",
        child.name()
    ))
}

/// The host that registered the record `data`, wherever a format keeps it
/// (a node in the way may be in any format; the first format in
/// [`Format`]'s order that finds one decides).
pub(crate) fn host_of(data: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(data).ok()?;
    Format::ALL
        .into_iter()
        .find_map(|format| format.codec().host(&value).map(str::to_owned))
}
