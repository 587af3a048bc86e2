//! [`Responder`]: a stand-in server on `127.0.0.1:0` for tests, speaking
//! the time protocol or misbehaving on purpose ([`Behaviour`]).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// What a [`Responder`] does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
///
/// # Example
///
/// ```
/// use std::io::Read;
/// let go = zkutil::testing::Responder::start(zkutil::testing::Behaviour::WriteAndClose).expect("a server");
/// let mut reply = String::new();
/// std::net::TcpStream::connect(go.addr()).expect("connects").read_to_string(&mut reply).expect("reads");
/// assert!(reply.starts_with(&go.addr().to_string()), "{reply}");
/// ```
pub enum Behaviour {
    /// The time protocol: `<ip:port>: <RFC 3339 time>`, half-close, drain.
    Time,
    /// 10 MiB without a newline.
    HugeReply,
    /// Bytes until the client gives up.
    EndlessReply,
    /// Accepts and never answers (holds the connection).
    NoReply,
    /// A reply without the final newline, ended by the close (whole, as
    /// the seed Go servers send theirs).
    NoNewline,
    /// A line that is not UTF-8.
    NotUtf8,
    /// Closes at once, reading nothing.
    ImmediateClose,
    /// The seed Go server: writes the time (in Go's `time.String()`
    /// format) and closes without reading what the client sent.
    WriteAndClose,
    /// Answers only after reading the client's request (`timestamp`).
    AnswerWhenAsked,
}

/// A server on a free loopback port, until dropped.
#[derive(Debug)]
pub struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    /// A responder that speaks the time protocol.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub fn time() -> std::io::Result<Responder> {
        Responder::start(Behaviour::Time)
    }

    /// A responder behaving as `how`.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub fn start(how: Behaviour) -> std::io::Result<Responder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                match how {
                    Behaviour::Time => {
                        let now = humantime::format_rfc3339(SystemTime::now());
                        let _ = stream.write_all(format!("{addr}: {now}\n").as_bytes());
                        close_politely(stream);
                    }
                    Behaviour::HugeReply => {
                        let chunk = vec![b'a'; 1 << 16];
                        for _ in 0..160 {
                            if stream.write_all(&chunk).is_err() {
                                break;
                            }
                        }
                    }
                    Behaviour::EndlessReply => {
                        let chunk = vec![b'z'; 1 << 16];
                        while !flag.load(Ordering::SeqCst) && stream.write_all(&chunk).is_ok() {}
                    }
                    Behaviour::NoReply => held.push(stream),
                    Behaviour::NoNewline => {
                        let _ = stream.write_all(format!("{addr}: now").as_bytes());
                        close_politely(stream);
                    }
                    Behaviour::NotUtf8 => {
                        let _ = stream.write_all(b"\xff\xfe\xfd\n");
                        close_politely(stream);
                    }
                    Behaviour::ImmediateClose => {}
                    Behaviour::WriteAndClose => {
                        let line = format!(
                            "{addr}: 2026-11-27 20:51:49.439776703 +0000 UTC m=+1.339321476\n"
                        );
                        let _ = stream.write_all(line.as_bytes());
                        // Dropped unread, as the seed Go server does.
                    }
                    Behaviour::AnswerWhenAsked => {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut request = [0u8; 9];
                        if stream.read_exact(&mut request).is_ok() {
                            let now = humantime::format_rfc3339(SystemTime::now());
                            let _ = stream.write_all(format!("{addr}: {now}\n").as_bytes());
                        }
                        close_politely(stream);
                    }
                }
            }
        });
        Ok(Responder {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Half-closes, reads what the client sent, closes: the reply itself
/// reaches the client instead of a reset.
fn close_politely(mut stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.read_to_end(&mut Vec::new());
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
