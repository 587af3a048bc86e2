//! `check`: health checks of a service that does not link this crate, for
//! the `zkutil register` sidecar (and the time-server's ready check): an
//! HTTP GET that must answer 2xx, a TCP connect that must be accepted, or a
//! command that must exit 0. Each run is bounded by its timeout, whatever
//! the service does: a hung HTTP server, a black-holed port, a command
//! that forks and sleeps (its whole process group is killed).
//!
//! [`Health`] turns results into a state with HAProxy's `rise` and `fall`:
//! so many consecutive results of the other kind to change it.

mod exec;
mod http;

use std::fmt;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// One health check, as written on the command line or in a config file:
/// `http://HOST:PORT/PATH`, `tcp://HOST:PORT` or `exec:COMMAND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `GET PATH` on `HOST:PORT`: a 2xx status passes.
    Http {
        /// `HOST:PORT` as written.
        authority: String,
        /// The path and query, `/` at least.
        path: String,
    },
    /// A TCP connection to `HOST:PORT` is accepted.
    Tcp {
        /// `HOST:PORT` as written.
        authority: String,
    },
    /// `sh -c COMMAND` exits 0.
    Exec {
        /// The command line.
        command: String,
    },
}

impl FromStr for Check {
    type Err = String;

    fn from_str(text: &str) -> Result<Check, String> {
        let text = text.trim();
        if let Some(command) = text.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err("exec: needs a command, e.g. exec:'pg_isready -q'".into());
            }
            return Ok(Check::Exec {
                command: command.to_owned(),
            });
        }
        if let Some(rest) = text.strip_prefix("http://") {
            let (authority, path) = match rest.find('/') {
                Some(slash) => (&rest[..slash], &rest[slash..]),
                None => (rest, "/"),
            };
            let authority = authority_of(authority)?;
            if path.chars().any(|c| c.is_ascii_control() || c == ' ') {
                return Err(format!(
                    "{path:?}: the path has a space or a control character"
                ));
            }
            return Ok(Check::Http {
                authority,
                path: path.to_owned(),
            });
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            return Ok(Check::Tcp {
                authority: authority_of(rest.trim_end_matches('/'))?,
            });
        }
        if text.starts_with("https://") {
            return Err("https:// checks are not offered: check the plain port, or use exec:'curl -fsS https://…'".into());
        }
        Err(format!(
            "{text:?}: expected http://HOST:PORT/PATH, tcp://HOST:PORT or exec:COMMAND"
        ))
    }
}

/// `HOST:PORT` with a port that parses; the host is resolved at each run.
fn authority_of(text: &str) -> Result<String, String> {
    let port = text
        .rsplit_once(':')
        .map(|(_, port)| port)
        .ok_or_else(|| format!("{text:?}: expected HOST:PORT"))?;
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(text.to_owned()),
        _ => Err(format!("{text:?}: the port must be 1-65535")),
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Http { authority, path } => write!(f, "http://{authority}{path}"),
            Check::Tcp { authority } => write!(f, "tcp://{authority}"),
            Check::Exec { command } => write!(f, "exec:{command}"),
        }
    }
}

impl Check {
    /// Runs the check once, taking at most about `timeout`: `Err` says why
    /// it failed, in a few words (a status line, an exit code, "timed out
    /// after 1s").
    pub fn run(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        match self {
            Check::Http { authority, path } => {
                http::get(connect(authority, deadline)?, authority, path, deadline)
            }
            Check::Tcp { authority } => connect(authority, deadline).map(drop),
            Check::Exec { command } => exec::run(command, timeout),
        }
    }
}

/// A connection to `authority` (each address it resolves to, in turn)
/// made by `deadline`.
fn connect(authority: &str, deadline: Instant) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map_err(|err| format!("{authority} does not resolve: {err}"))?
        .collect();
    let mut last = format!("{authority} resolves to no address");
    for addr in addrs {
        let left = left_until(deadline)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = format!("connecting to {addr}: {err}"),
        }
    }
    Err(last)
}

/// What is left until `deadline`, or the timeout as the failure.
fn left_until(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".to_owned())
    } else {
        Ok(left)
    }
}

/// A service's health from its checks' results, with HAProxy's meaning of
/// `rise` and `fall`: `rise` consecutive passes make a failing service
/// healthy, `fall` consecutive failures make a healthy one failing; a
/// result of the current kind resets the count.
#[derive(Debug, Clone)]
pub struct Health {
    rise: u32,
    fall: u32,
    healthy: bool,
    /// Consecutive results against the current state.
    against: u32,
}

impl Health {
    /// Starts failing (a service is healthy only once it has passed `rise`
    /// times) unless `healthy`; `rise` and `fall` of 0 count as 1.
    pub fn new(rise: u32, fall: u32, healthy: bool) -> Health {
        Health {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy,
            against: 0,
        }
    }

    /// Whether the service counts as healthy.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Consecutive results against the current state (a healthy service's
    /// failures, a failing one's passes).
    pub fn against(&self) -> u32 {
        self.against
    }

    /// Records one result; `true` when it changed the state.
    pub fn record(&mut self, passed: bool) -> bool {
        if passed == self.healthy {
            self.against = 0;
            return false;
        }
        self.against += 1;
        let needed = if self.healthy { self.fall } else { self.rise };
        if self.against >= needed {
            self.healthy = passed;
            self.against = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_parse_from_what_users_write() {
        let parse = |text: &str| text.parse::<Check>();
        assert_eq!(
            parse("http://127.0.0.1:80/health?deep=1"),
            Ok(Check::Http {
                authority: "127.0.0.1:80".into(),
                path: "/health?deep=1".into()
            })
        );
        assert_eq!(
            parse("http://localhost:8080"),
            Ok(Check::Http {
                authority: "localhost:8080".into(),
                path: "/".into()
            })
        );
        assert_eq!(
            parse("tcp://[::1]:6379"),
            Ok(Check::Tcp {
                authority: "[::1]:6379".into()
            })
        );
        assert_eq!(
            parse("exec:pg_isready -q"),
            Ok(Check::Exec {
                command: "pg_isready -q".into()
            })
        );
        for bad in [
            "http://host",
            "tcp://host:0",
            "tcp://host:99999",
            "exec:",
            "ftp://x:1",
            "https://x:443/",
            "http://h:1/a b",
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn rise_and_fall_count_consecutive_results_only() {
        let mut health = Health::new(3, 2, true);
        // One failure, then a pass: the count starts over.
        assert!(!health.record(false));
        assert!(!health.record(true));
        assert!(!health.record(false));
        assert!(health.record(false), "two failures in a row: failing");
        assert!(!health.is_healthy());
        assert!(!health.record(true));
        assert!(!health.record(true));
        assert!(!health.record(false));
        for _ in 0..2 {
            assert!(!health.record(true));
        }
        assert!(health.record(true), "three passes in a row: healthy");
        assert!(health.is_healthy());
    }

    #[test]
    fn a_flapping_result_never_changes_a_state_that_needs_three_in_a_row() {
        let mut health = Health::new(3, 3, true);
        // Healthy 1 s, unhealthy 1 s, checked every 500 ms: two of each.
        let changes = [true, true, false, false]
            .iter()
            .cycle()
            .take(400)
            .filter(|&&passed| health.record(passed))
            .count();
        assert_eq!(changes, 0);
    }
}
