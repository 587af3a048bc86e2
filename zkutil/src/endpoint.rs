//! `Endpoint`: the `ip:port` a server listens on, which is also the name of
//! its znode.
//!
//! Node names come from outside the process (anyone with access to
//! ZooKeeper can create a child), so parsing is strict and total: `1.2.3.4:80`
//! and `[::1]:80` are accepted, anything else is a typed
//! [`Error::InvalidEndpoint`], never a panic. Printing gives back the same
//! canonical text, so a name parsed and printed again is the same name.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Longest node name we look at; real ones are at most 47 bytes
/// (`[ffff:…:ffff]:65535`). Longer input is rejected before parsing.
const MAX_NAME_LEN: usize = 64;

/// An IP address and port: a listener, and the znode that advertises it.
///
/// # Example
///
/// ```
/// use zkutil::Endpoint;
/// let endpoint: Endpoint = "[::1]:8897".parse().expect("an endpoint");
/// assert_eq!(endpoint.node_name(), "[::1]:8897");
/// assert_eq!(Endpoint::from_node_name("10.0.0.1:80").map(|e| e.port()).ok(), Some(80));
/// // Child names come from anyone who can write to ZooKeeper: bad ones are errors, never panics.
/// for bad in ["foo", "1.2.3.4:99999", "0.0.0.0:80", ":80"] {
///     assert!(Endpoint::from_node_name(bad).is_err(), "{bad}");
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint(SocketAddr);

impl Endpoint {
    /// The endpoint of a socket address.
    pub fn new(addr: SocketAddr) -> Endpoint {
        Endpoint(addr)
    }

    /// The socket address, to connect or bind to.
    pub fn addr(&self) -> SocketAddr {
        self.0
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.0.ip()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Parses a znode name, which must be a concrete, reachable-looking
    /// address: besides what [`FromStr`] checks, port 0 and the unspecified
    /// addresses (`0.0.0.0`, `::`) are refused, since a client could never
    /// connect to them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEndpoint`] naming the text and the reason.
    pub fn from_node_name(name: &str) -> Result<Endpoint> {
        let endpoint: Endpoint = name.parse()?;
        if endpoint.port() == 0 {
            return Err(invalid(name, "port 0 is not a listening port"));
        }
        if endpoint.ip().is_unspecified() {
            return Err(invalid(name, "unspecified address cannot be connected to"));
        }
        Ok(endpoint)
    }

    /// The znode name of this endpoint (the same text as `Display`).
    pub fn node_name(&self) -> String {
        self.to_string()
    }
}

fn invalid(name: &str, reason: &'static str) -> Error {
    let name = match name.char_indices().nth(MAX_NAME_LEN) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    };
    Error::InvalidEndpoint { name, reason }
}

impl FromStr for Endpoint {
    type Err = Error;

    /// Parses `ip:port` or `[ipv6]:port`. Host names are not endpoints: a
    /// registry entry must say exactly where to connect.
    fn from_str(s: &str) -> Result<Endpoint> {
        if s.is_empty() {
            return Err(invalid(s, "empty"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(invalid(s, "too long"));
        }
        let Some(colon) = s.rfind(':') else {
            return Err(invalid(s, "expected ip:port"));
        };
        let (host, port) = (&s[..colon], &s[colon + 1..]);
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(s, "port is not a number"));
        }
        if port.len() > 1 && port.starts_with('0') {
            return Err(invalid(s, "port has a leading zero"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(s, "port is out of range"))?;
        let ip: IpAddr = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        {
            let ip: std::net::Ipv6Addr =
                v6.parse().map_err(|_| invalid(s, "invalid IPv6 address"))?;
            IpAddr::V6(ip)
        } else if host.contains(':') {
            return Err(invalid(s, "IPv6 address must be in brackets"));
        } else if host.is_empty() {
            return Err(invalid(s, "missing address"));
        } else {
            let ip: std::net::Ipv4Addr = host
                .parse()
                .map_err(|_| invalid(s, "invalid IPv4 address"))?;
            IpAddr::V4(ip)
        };
        Ok(Endpoint(SocketAddr::new(ip, port)))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr prints `1.2.3.4:80` and `[::1]:80`: the canonical form.
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.0)
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(addr: SocketAddr) -> Endpoint {
        Endpoint(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_ok(input: &str, printed: &str) {
        let endpoint = Endpoint::from_node_name(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(endpoint.to_string(), printed);
        assert_eq!(
            Endpoint::from_node_name(&endpoint.node_name()).ok(),
            Some(endpoint)
        );
    }

    #[track_caller]
    fn check_err(input: &str, reason: &str) {
        match Endpoint::from_node_name(input) {
            Ok(e) => panic!("{input:?} parsed as {e}"),
            Err(Error::InvalidEndpoint { reason: r, .. }) => assert_eq!(r, reason, "{input:?}"),
            Err(other) => panic!("{input:?}: unexpected error {other}"),
        }
    }

    #[test]
    fn accepts_ipv4_and_bracketed_ipv6() {
        check_ok("127.0.0.1:8897", "127.0.0.1:8897");
        check_ok("10.1.2.3:65535", "10.1.2.3:65535");
        check_ok("[::1]:8897", "[::1]:8897");
        check_ok("[2001:db8:0:0:0:0:0:1]:80", "[2001:db8::1]:80");
    }

    #[test]
    fn rejects_malformed_names_with_a_reason() {
        check_err("", "empty");
        check_err("foo", "expected ip:port");
        check_err(":80", "missing address");
        check_err("1.2.3.4:99999", "port is out of range");
        check_err("1.2.3.4:", "port is not a number");
        check_err("1.2.3.4:+80", "port is not a number");
        check_err("1.2.3.4:080", "port has a leading zero");
        check_err("256.0.0.1:80", "invalid IPv4 address");
        check_err("localhost:80", "invalid IPv4 address");
        check_err("::1:80", "IPv6 address must be in brackets");
        check_err("[::g]:80", "invalid IPv6 address");
        check_err("1.2.3.4:0", "port 0 is not a listening port");
        check_err("0.0.0.0:80", "unspecified address cannot be connected to");
        check_err("[::]:80", "unspecified address cannot be connected to");
        check_err(&"1".repeat(1024), "too long");
    }

    #[test]
    fn long_names_are_cut_in_the_error_message() {
        let err = Endpoint::from_node_name(&"x".repeat(1024))
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.len() < 120, "{msg}");
    }

    #[test]
    fn from_str_allows_port_zero_for_listening() {
        let endpoint: Endpoint = "127.0.0.1:0".parse().expect("a valid literal");
        assert_eq!(endpoint.port(), 0);
        let endpoint: Endpoint = "0.0.0.0:8897".parse().expect("a valid literal");
        assert!(endpoint.ip().is_unspecified());
    }
}
