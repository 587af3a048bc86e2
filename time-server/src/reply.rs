//! The wire protocol: a daytime-like reply (RFC 867), as the original post.
//!
//! On accept the server writes one line `<ip:port>: <RFC 3339 time>\n`,
//! shuts down its write side, then reads and discards what the client sent
//! (bounded in bytes and time) until EOF, then closes (that wait is the
//! drain thread's, in `drainer`). Replying before
//! reading keeps `nc host port` working; reading before closing keeps the
//! kernel from answering the client's unread `timestamp` with a reset that
//! would destroy the reply in flight (the original Go server closes without
//! reading, and its own client saw `connection reset by peer`).

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, SystemTime};

use zkutil::Endpoint;

/// Limits of one exchange; every wait is bounded.
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimits {
    /// How long we read and discard the client's request after replying.
    pub drain_timeout: Duration,
    /// How many request bytes we read and discard at most.
    pub drain_max_bytes: usize,
}

impl Default for ReplyLimits {
    fn default() -> ReplyLimits {
        ReplyLimits {
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
/// line is far smaller than a new socket's send buffer, so this never
/// waits on the client.
///
/// # Errors
///
/// I/O errors (a peer that already reset).
pub fn reply(stream: &mut TcpStream, endpoint: Endpoint) -> std::io::Result<()> {
    stream.write_all(reply_line(endpoint, SystemTime::now()).as_bytes())?;
    stream.shutdown(Shutdown::Write)
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
