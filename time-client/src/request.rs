//! One request to one time-server, every wait bounded.
//!
//! Connect (with a timeout), read first: a daytime server (ours, and the
//! post's Go servers) answers on accept. Only when nothing arrives within a
//! short grace is `timestamp` written (and the write side half-closed), for
//! servers that wait for a request. Then read to EOF (with a deadline and a
//! size cap) and check the reply: one line of text `<address>: <time>`.
//!
//! Reading first matters with the seed Go servers, which write and close
//! without reading: a `timestamp` they never read makes their kernel answer
//! with a reset that destroys the reply in flight (the seed Go client
//! lost requests this way). The time's format is not checked: the Go
//! servers answer in Go's `time.String()`, ours in RFC 3339.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use zkutil::Endpoint;

/// The request the seed Go client sends.
pub const REQUEST: &[u8] = b"timestamp";

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// How long the TCP connect may take.
    pub connect_timeout: Duration,
    /// How long, after connecting, until the whole reply is read.
    pub timeout: Duration,
    /// Largest reply accepted, in bytes.
    pub max_reply: usize,
    /// How long to wait for a reply before sending `timestamp`; zero sends
    /// it at once.
    pub grace: Duration,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            connect_timeout: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            max_reply: 4096,
            grace: Duration::from_millis(50),
        }
    }
}

/// Why a request failed; the message is the one-line cause.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// TCP connect failed or timed out.
    #[error("connecting to {0}: {1}")]
    Connect(Endpoint, #[source] std::io::Error),
    /// Writing the request failed.
    #[error("sending to {0}: {1}")]
    Send(Endpoint, #[source] std::io::Error),
    /// Reading the reply failed (reset, timeout).
    #[error("reading the reply of {0}: {1}")]
    Receive(Endpoint, #[source] std::io::Error),
    /// The reply was longer than the cap.
    #[error("reply of {0} is longer than {1} bytes")]
    TooLarge(Endpoint, usize),
    /// The reply is not one line `<address>: <time>`.
    #[error("malformed reply from {0}: {1}")]
    Malformed(Endpoint, &'static str),
}

/// A server's answer, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The line without its newline.
    pub line: String,
    /// The address the server says it is.
    pub address: Endpoint,
    /// The time, as the server wrote it.
    pub time: String,
}

/// Asks `endpoint` for the time.
///
/// # Errors
///
/// [`RequestError`] saying which step failed and why.
pub fn request(endpoint: Endpoint, limits: &RequestLimits) -> Result<Reply, RequestError> {
    let mut stream = TcpStream::connect_timeout(&endpoint.addr(), limits.connect_timeout)
        .map_err(|e| RequestError::Connect(endpoint, e))?;
    // Saturating: a limit too large to add is no limit at all.
    let now = Instant::now();
    let deadline = now
        .checked_add(limits.timeout)
        .unwrap_or(now + std::time::Duration::from_secs(86_400));
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(limits.timeout))
        .map_err(|e| RequestError::Send(endpoint, e))?;
    if !limits.grace.is_zero()
        && answers_unasked(&stream, endpoint, limits.grace.min(limits.timeout))?
    {
        // The reply is coming without a request: read it, write nothing.
        let body = read_reply(&mut stream, endpoint, deadline, limits.max_reply)?;
        return parse_reply(endpoint, &body);
    }
    // A server that already replied and closed may reset our write: the
    // reply may still be readable, so a send error is only final when the
    // read finds nothing either.
    let sent = stream
        .write_all(REQUEST)
        .and_then(|()| stream.shutdown(Shutdown::Write));
    let body = read_reply(&mut stream, endpoint, deadline, limits.max_reply)?;
    if body.is_empty() {
        if let Err(e) = sent {
            return Err(RequestError::Send(endpoint, e));
        }
    }
    parse_reply(endpoint, &body)
}

/// Whether the server sends something (or closes) within `grace` without
/// being asked.
fn answers_unasked(
    stream: &TcpStream,
    endpoint: Endpoint,
    grace: Duration,
) -> Result<bool, RequestError> {
    stream
        .set_read_timeout(Some(grace))
        .map_err(|e| RequestError::Receive(endpoint, e))?;
    let mut byte = [0u8; 1];
    loop {
        return match stream.peek(&mut byte) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(RequestError::Receive(endpoint, e)),
        };
    }
}

fn read_reply(
    stream: &mut TcpStream,
    endpoint: Endpoint,
    deadline: Instant,
    max: usize,
) -> Result<Vec<u8>, RequestError> {
    let mut body = Vec::with_capacity(128);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RequestError::Receive(endpoint, ErrorKind::TimedOut.into()));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| RequestError::Receive(endpoint, e))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(body),
            Ok(n) => {
                if body.len() + n > max {
                    return Err(RequestError::TooLarge(endpoint, max));
                }
                body.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(RequestError::Receive(endpoint, ErrorKind::TimedOut.into()));
            }
            Err(e) => return Err(RequestError::Receive(endpoint, e)),
        }
    }
}

/// Checks that `body` is one line `<address>: <time>`.
///
/// # Errors
///
/// [`RequestError::Malformed`] saying what is wrong.
pub fn parse_reply(endpoint: Endpoint, body: &[u8]) -> Result<Reply, RequestError> {
    let malformed = |why| RequestError::Malformed(endpoint, why);
    if body.is_empty() {
        return Err(malformed("empty reply"));
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8 text"))?;
    // The body was read to EOF: a reply ended by the server's close is whole
    // even without a newline (the seed Go servers send none).
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.contains('\n') {
        return Err(malformed("more than one line"));
    }
    if line.chars().any(char::is_control) {
        return Err(malformed("control characters in the reply"));
    }
    let (address, time) = line
        .split_once(": ")
        .ok_or_else(|| malformed("expected `<address>: <time>`"))?;
    let address: Endpoint = address
        .parse()
        .map_err(|_| malformed("the address is not ip:port"))?;
    if time.trim().is_empty() {
        return Err(malformed("no time after the address"));
    }
    Ok(Reply {
        line: line.to_owned(),
        address,
        time: time.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        "127.0.0.1:8897".parse().expect("a valid literal")
    }

    #[track_caller]
    fn check_malformed(body: &[u8], why: &str) {
        match parse_reply(endpoint(), body) {
            Err(RequestError::Malformed(_, w)) => assert_eq!(w, why),
            other => panic!("{body:?}: expected Malformed({why}), got {other:?}"),
        }
    }

    #[test]
    fn accepts_rfc3339_and_go_time_string_replies() {
        let ours = parse_reply(endpoint(), b"127.0.0.1:8897: 2026-11-26T20:51:49.439776Z\n");
        assert_eq!(
            ours.map(|r| r.time).ok().as_deref(),
            Some("2026-11-26T20:51:49.439776Z")
        );
        let go = b"127.0.0.1:8897: 2026-11-26 20:51:49.439776703 +0000 UTC m=+1.339321476\n";
        assert!(parse_reply(endpoint(), go).is_ok());
        let go_closed = b"127.0.0.1:8897: 2026-12-03 07:40:50.944655 +0000 UTC m=+0.012345678";
        assert_eq!(
            parse_reply(endpoint(), go_closed)
                .map(|r| r.line)
                .ok()
                .as_deref(),
            Some("127.0.0.1:8897: 2026-12-03 07:40:50.944655 +0000 UTC m=+0.012345678")
        );
        let v6 = parse_reply(endpoint(), b"[::1]:8897: 2026-11-26T20:51:49Z\r\n");
        assert_eq!(
            v6.map(|r| r.address.to_string()).ok().as_deref(),
            Some("[::1]:8897")
        );
    }

    #[test]
    fn rejects_replies_that_are_not_one_line_of_address_and_time() {
        check_malformed(b"", "empty reply");
        check_malformed(b"\xff\xfe\n", "not UTF-8 text");
        check_malformed(b"127.0.0.1:8897: now\nmore\n", "more than one line");
        check_malformed(b"hello\n", "expected `<address>: <time>`");
        check_malformed(b"nothost:1: now\n", "the address is not ip:port");
        check_malformed(b"127.0.0.1:8897:  \n", "no time after the address");
        check_malformed(
            b"127.0.0.1:8897: a\x07b\n",
            "control characters in the reply",
        );
    }
}
