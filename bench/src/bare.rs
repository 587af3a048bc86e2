//! The baselines of the request sections: a responder and a client as
//! lean as TCP gets, with no discovery and no protocol beyond one line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// The bare responder: one accept-write-close loop.
pub struct BareResponder {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BareResponder {
    pub fn start() -> anyhow::Result<BareResponder> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(mut stream) = stream {
                    let _ = stream.write_all(
                        format!(
                            "{addr}: {}\n",
                            humantime::format_rfc3339_micros(SystemTime::now())
                        )
                        .as_bytes(),
                    );
                }
            }
        });
        Ok(BareResponder {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for BareResponder {
    /// Stops the loop: the flag, then a connection to wake the accept.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A bare TCP exchange: connect, write `timestamp`, half-close, read to EOF.
pub fn bare_request(addr: SocketAddr) -> std::io::Result<usize> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"timestamp")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut buf = Vec::with_capacity(128);
    stream.read_to_end(&mut buf)?;
    Ok(buf.len())
}
