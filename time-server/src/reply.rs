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

use std::io::ErrorKind;
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
/// On Linux the line is sent with `MSG_MORE`: the kernel holds it until
/// the half-close, which then sends it with the FIN in one segment. One
/// segment instead of two through the network stack, one ACK less, and the
/// client reads its line and its EOF in one wake-up, for no extra system
/// call (bench section 4).
///
/// # Errors
///
/// I/O errors (a peer that already reset).
pub fn reply(stream: &mut TcpStream, endpoint: Endpoint) -> std::io::Result<()> {
    let line = reply_line(endpoint, SystemTime::now());
    let socket = socket2::SockRef::from(&*stream);
    let mut rest = line.as_bytes();
    while !rest.is_empty() {
        match socket.send_with_flags(rest, SEND_FLAGS) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    // Sends what `MSG_MORE` held, with the FIN.
    stream.shutdown(Shutdown::Write)
}

/// Hold the line for the FIN that follows; no `SIGPIPE` when the peer has
/// gone (the error is returned instead).
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: i32 = libc::MSG_MORE | libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: i32 = 0;

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
