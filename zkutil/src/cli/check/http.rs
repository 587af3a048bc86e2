//! The HTTP check: `GET PATH HTTP/1.1` with `Connection: close`, and the
//! status line of the answer. At most [`MAX_HEAD`] bytes are read: the
//! status is all a health check needs, so a huge or endless body costs
//! nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::left_until;

/// How much of the answer is read, at most: the status line and headers.
const MAX_HEAD: usize = 8 * 1024;

/// Sends the request over `stream` and reads the status by `deadline`.
pub(super) fn get(
    mut stream: TcpStream,
    authority: &str,
    path: &str,
    deadline: Instant,
) -> Result<(), String> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: zkutil-check\r\nConnection: close\r\n\r\n"
    );
    stream
        .set_write_timeout(Some(left_until(deadline)?))
        .map_err(|err| err.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("sending the request: {err}"))?;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.contains(&b'\n') && head.len() < MAX_HEAD {
        stream
            .set_read_timeout(Some(left_until(deadline)?))
            .map_err(|err| err.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out".to_owned());
            }
            Err(err) => return Err(format!("reading the answer: {err}")),
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).trim().to_owned();
    let mut words = line.split_whitespace();
    let status = match (words.next(), words.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => code.parse::<u16>().ok(),
        _ => None,
    };
    match status {
        Some(200..=299) => Ok(()),
        Some(_) => Err(truncated(&line)),
        None if line.is_empty() => Err("no answer".to_owned()),
        None => Err(format!("not an HTTP answer: {}", truncated(&line))),
    }
}

/// At most 100 characters of `line`, for a log line.
fn truncated(line: &str) -> String {
    match line.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}
