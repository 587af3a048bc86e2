//! The wire protocol: a daytime-like reply (RFC 867), as the original post.
//!
//! On accept the server writes one line `<ip:port>: <RFC 3339 time>\n`,
//! shuts down its write side, then reads and discards what the client sent
//! (bounded in bytes and time) until EOF, then closes. Replying before
//! reading keeps `nc host port` working; reading before closing keeps the
//! kernel from answering the client's unread `timestamp` with a reset that
//! would destroy the reply in flight (the original Go server closes without
//! reading, and its own client saw `connection reset by peer`).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use zkutil::Endpoint;

/// Limits of one exchange; every wait is bounded.
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    /// How long writing the reply may take (a client that does not read).
    pub write_timeout: Duration,
    /// How long we read and discard the client's request after replying.
    pub drain_timeout: Duration,
    /// How many request bytes we read and discard at most.
    pub drain_max_bytes: usize,
}

impl Default for ReplyLimits {
    fn default() -> ReplyLimits {
        ReplyLimits {
            write_timeout: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(2),
            drain_max_bytes: 64 * 1024,
        }
    }
}

/// The reply line for `endpoint` at `now`.
pub fn reply_line(endpoint: Endpoint, now: SystemTime) -> String {
    format!("{endpoint}: {}\n", humantime::format_rfc3339_micros(now))
}

/// Writes the reply line and half-closes: the client has its answer. The
/// line is far smaller than a new socket's send buffer, so this does not
/// wait on the client (and the write timeout bounds it if it did).
///
/// # Errors
///
/// I/O errors (a peer that already reset).
pub fn reply(
    stream: &mut TcpStream,
    endpoint: Endpoint,
    limits: &ReplyLimits,
) -> std::io::Result<()> {
    stream.set_write_timeout(Some(limits.write_timeout))?;
    stream.write_all(reply_line(endpoint, SystemTime::now()).as_bytes())?;
    stream.shutdown(Shutdown::Write)
}

/// Reads and discards what the client sent until EOF, the byte cap or the
/// deadline; closing before would reset the connection and could destroy
/// the reply in flight.
///
/// # Errors
///
/// A client that sends too much or too long, or resets.
pub fn drain(stream: &mut TcpStream, limits: &ReplyLimits) -> std::io::Result<()> {
    // Saturating: a limit too large to add is no limit at all.
    let now = Instant::now();
    let deadline = now
        .checked_add(limits.drain_timeout)
        .unwrap_or(now + Duration::from_secs(86_400));
    let mut buf = [0u8; 4096];
    let mut total = 0usize;
    while total < limits.drain_max_bytes {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                ErrorKind::TimedOut,
                "client did not finish sending in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => total += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::new(
        ErrorKind::InvalidData,
        "request larger than the drain limit",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_line_is_endpoint_colon_rfc3339() {
        let endpoint: Endpoint = "127.0.0.1:8897".parse().expect("a valid literal");
        let line = reply_line(
            endpoint,
            SystemTime::UNIX_EPOCH + Duration::from_micros(1_500_000),
        );
        assert_eq!(line, "127.0.0.1:8897: 1970-01-01T00:00:01.500000Z\n");
    }
}
