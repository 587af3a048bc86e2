//! `admin`: ZooKeeper's four-letter words, for health checks.
//!
//! `srvr` tells whether a server serves and in which mode (`standalone`,
//! `leader`, `follower`), its last zxid, connection count and latency. It is
//! a plain TCP exchange outside any session, so it also works on a server
//! that has lost quorum, and every wait is bounded. A server that serves
//! only TLS answers them over TLS ([`four_letter_word_tls`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

pub use crate::connect_string::{DEFAULT_PORT, connect_string_hosts};
use crate::tls::TlsConfig;

/// What `srvr` says about one server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerStatus {
    /// `standalone`, `leader`, `follower`, `observer`, `read-only`.
    pub mode: String,
    /// Last transaction id, as printed (`0x…`).
    pub zxid: String,
    /// Open client connections.
    pub connections: u64,
    /// `min/avg/max` request latency in ms, as printed.
    pub latency: String,
    /// The version line.
    pub version: String,
}

/// Sends a four-letter word (`srvr`, `ruok`, `mntr`, `cons`, …) and returns
/// the answer (at most 1 MiB), taking at most `timeout` in all: a server
/// that trickles its answer a byte at a time cannot hold the caller.
///
/// # Errors
///
/// Connection or read failures, timeouts.
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// use std::time::Duration;
/// let addr = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
/// let srvr = zkutil::admin::four_letter_word(addr, "srvr", Duration::from_secs(2))?;
/// let status = zkutil::admin::parse_srvr(&srvr).ok_or("not serving")?;
/// assert_eq!(status.mode, "standalone");
/// # Ok(())
/// # }
/// ```
pub fn four_letter_word(
    addr: SocketAddr,
    word: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let mut stream = connect(addr, timeout)?;
    stream.write_all(word.as_bytes())?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// [`four_letter_word`] over TLS, for a server that serves only on its
/// `secureClientPort` (a TLS-only ensemble has no plaintext port). The
/// server's certificate must be valid for `server_name` (the host as the
/// connect string names it: `localhost`, `127.0.0.1`, …) and signed by
/// `tls`'s CA; `tls`'s client certificate is presented if it has one (a
/// server with `ssl.clientAuth=need` asks for it even for these words).
///
/// # Errors
///
/// As [`four_letter_word`]; a TLS file that cannot be used, or a failed
/// handshake (an unknown CA, a name mismatch), is `InvalidData`.
pub fn four_letter_word_tls(
    addr: SocketAddr,
    server_name: &str,
    word: &str,
    timeout: Duration,
    tls: &TlsConfig,
) -> std::io::Result<String> {
    let config = tls
        .rustls_client()
        .map_err(|err| invalid(err.to_string()))?;
    four_letter_word_rustls(addr, server_name, word, timeout, config)
}

/// [`four_letter_word_tls`] with the rustls configuration made.
pub(crate) fn four_letter_word_rustls(
    addr: SocketAddr,
    server_name: &str,
    word: &str,
    timeout: Duration,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> std::io::Result<String> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
        .map_err(|err| invalid(format!("server name {server_name:?}: {err}")))?;
    let client =
        rustls::ClientConnection::new(config, name).map_err(|err| invalid(err.to_string()))?;
    let mut stream = rustls::StreamOwned::new(client, connect(addr, timeout)?);
    stream.write_all(word.as_bytes())?;
    stream.flush()?;
    let mut answer = Vec::new();
    match stream.take(MAX_ANSWER).read_to_end(&mut answer) {
        // ZooKeeper closes the connection after its answer without TLS's
        // close_notify: that end is the answer's end, not a truncation.
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {}
        other => drop(other?),
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

fn invalid(err: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, err)
}

/// The largest answer read (`cons` on a busy server is long, not endless).
const MAX_ANSWER: u64 = 1 << 20;

fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<Bounded> {
    let deadline = Instant::now() + timeout;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    Ok(Bounded { stream, deadline })
}

/// A connection whose every read and write ends by one deadline: the
/// socket's timeouts are set to what is left before each call.
struct Bounded {
    stream: TcpStream,
    deadline: Instant,
}

impl Bounded {
    fn left(&self) -> std::io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the server did not finish its answer in time",
            ));
        }
        Ok(left)
    }
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// Parses a `srvr` answer; `None` when it has no `Mode:` (the server does
/// not serve, e.g. it has no quorum, or `srvr` is not whitelisted).
pub fn parse_srvr(answer: &str) -> Option<ServerStatus> {
    let field = |name: &str| {
        answer
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_owned())
    };
    Some(ServerStatus {
        mode: field("Mode:")?,
        zxid: field("Zxid:").unwrap_or_default(),
        connections: field("Connections:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        latency: field("Latency min/avg/max:").unwrap_or_default(),
        version: field("Zookeeper version:").unwrap_or_default(),
    })
}

/// Sends `word` to `host` (`name:port` of a connect string), over TLS with
/// `tls` (the server's name checked against the host's), as
/// [`four_letter_word`] otherwise.
///
/// # Errors
///
/// As [`resolve`] and [`four_letter_word`].
pub fn ask_host(
    host: &str,
    word: &str,
    timeout: Duration,
    tls: Option<&TlsConfig>,
) -> std::io::Result<String> {
    let addr = resolve(host)?;
    match tls {
        Some(tls) => {
            let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
            let name = name.trim_start_matches('[').trim_end_matches(']');
            four_letter_word_tls(addr, name, word, timeout, tls)
        }
        None => four_letter_word(addr, word, timeout),
    }
}

/// Resolves `host:port` (a name, an IPv4 address or `[v6]:port`).
///
/// # Errors
///
/// When it does not resolve.
pub fn resolve(host: &str) -> std::io::Result<SocketAddr> {
    host.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} resolves to no address"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_that_trickles_its_answer_cannot_hold_the_caller() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("bound");
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                // A byte every 100 ms, well inside any per-read timeout,
                // until the caller hangs up.
                while conn.write_all(b"x").is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        let started = Instant::now();
        let answer = four_letter_word(addr, "srvr", Duration::from_millis(500));
        let took = started.elapsed();
        assert!(answer.is_err(), "an endless answer ended: {answer:?}");
        assert!(took < Duration::from_secs(3), "held for {took:?}");
    }

    #[test]
    fn srvr_answers_parse() {
        let answer = "Zookeeper version: 3.8.0-abc, built on 2024\nLatency min/avg/max: 0/0.5/3\nReceived: 4\n\
                      Sent: 3\nConnections: 2\nOutstanding: 0\nZxid: 0x100000005\nMode: follower\nNode count: 5\n";
        let status = parse_srvr(answer).unwrap_or_else(|| panic!("no status"));
        assert_eq!(
            (
                status.mode.as_str(),
                status.zxid.as_str(),
                status.connections
            ),
            ("follower", "0x100000005", 2)
        );
        assert_eq!(status.latency, "0/0.5/3");
        assert_eq!(
            parse_srvr("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }
}
