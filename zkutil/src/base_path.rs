//! `base_path`: the znode under which instances register, checked once.
//!
//! A typo in a base path (`go_servers`, `/go_servers/`) is caught where the
//! text enters the program — flag parsing, or the one constructor — instead
//! of by every function that takes a path; after that, a [`BasePath`] is
//! known to be usable, so the registry and discovery take one and check
//! nothing.

use std::fmt;
use std::str::FromStr;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// An absolute, clean znode path that registrations live under, such as
/// `/go_servers`: no trailing or doubled `/`, no `.`/`..` component, no
/// control character, neither `/` itself (the root holds ZooKeeper's own
/// nodes) nor anything under `/zookeeper` (reserved by ZooKeeper).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
///
/// # Example
///
/// ```
/// use zkutil::{BasePath, Endpoint};
/// let base = BasePath::new("/services/time").expect("a base path");
/// let endpoint: Endpoint = "10.0.0.1:80".parse().expect("an endpoint");
/// assert_eq!(base.node_path(&endpoint), "/services/time/10.0.0.1:80");
/// for typo in ["go_servers", "/go_servers/", "/", "/zookeeper/x", "/a//b"] {
///     assert!(BasePath::new(typo).is_err(), "{typo}");
/// }
/// ```
pub struct BasePath(String);

impl BasePath {
    /// Checks `path` and wraps it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] saying what is wrong.
    pub fn new(path: &str) -> Result<BasePath> {
        let reason = if path == "/" {
            "the root itself cannot hold registrations; name a node such as /go_servers"
        } else if !path.starts_with('/') {
            "must start with '/'"
        } else if path.ends_with('/') {
            "must not end with '/'"
        } else if path.split('/').skip(1).any(str::is_empty) {
            "has an empty component ('//')"
        } else if path.split('/').any(|part| part == "." || part == "..") {
            "has a '.' or '..' component"
        } else if path.chars().any(char::is_control) {
            "has a control character"
        } else if path == "/zookeeper" || path.starts_with("/zookeeper/") {
            "/zookeeper is reserved by ZooKeeper"
        } else {
            return Ok(BasePath(path.to_owned()));
        };
        Err(Error::invalid("base path", path, reason))
    }

    /// A base path written in the program's own source.
    ///
    /// # Panics
    ///
    /// When `path` is not a valid base path: a bug in the program, like an
    /// invalid literal regex.
    pub fn from_static(path: &'static str) -> BasePath {
        match BasePath::new(path) {
            Ok(base) => base,
            Err(err) => panic!("{err}"),
        }
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The znode path of `endpoint`'s registration: `<base>/<ip:port>`.
    pub fn node_path(&self, endpoint: &Endpoint) -> String {
        format!("{}/{endpoint}", self.0)
    }
}

impl FromStr for BasePath {
    type Err = Error;

    fn from_str(text: &str) -> Result<BasePath> {
        BasePath::new(text)
    }
}

impl fmt::Display for BasePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BasePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_must_be_absolute_clean_and_not_zookeepers_own() {
        for good in ["/go_servers", "/a/b", "/zookeeper_apps", "/apps/zookeeper"] {
            assert_eq!(
                BasePath::new(good).map(|b| b.to_string()).ok().as_deref(),
                Some(good)
            );
        }
        for bad in [
            "",
            "/",
            "go_servers",
            "/a/",
            "/a//b",
            "//a",
            "/a/../b",
            "/./a",
            "/a\nb",
            "/zookeeper",
            "/zookeeper/quota",
        ] {
            assert!(BasePath::new(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn an_instance_node_is_named_after_its_endpoint_under_the_base() {
        let endpoint: Endpoint = "[::1]:80".parse().expect("endpoint");
        assert_eq!(
            BasePath::from_static("/go_servers").node_path(&endpoint),
            "/go_servers/[::1]:80"
        );
    }
}
