//! `wake`: how a stop reaches acceptors blocked in `accept()`, which no
//! flag can interrupt: a connection to each, from a port noted first in
//! the [`Shutdown`] so that it is answered but not counted as a client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::listener::{ACCEPTORS, BoundListener};
use crate::shutdown::Shutdown;

/// Wakes every acceptor blocked in `accept()` by connecting to it once;
/// call after [`Shutdown::trigger`]. Each connection's local address is
/// noted in `stop`, so that it is not counted as a client. When a
/// listener cannot be reached so (no local port free, IPv6 off for a
/// `[::]` listener), its blocked accepts are interrupted instead: a stop
/// never waits for a client to come.
pub(crate) fn wake(stop: &Shutdown, listeners: &[BoundListener]) {
    for bound in listeners {
        let mut addr = bound.local_addr();
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        for _ in 0..ACCEPTORS {
            if let Err(err) = wake_one(stop, addr) {
                tracing::warn!(listener = %addr, error = %err, "could not wake an acceptor; interrupting its accepts");
                bound.interrupt_accepts();
                break;
            }
        }
    }
}

/// One wake-up connection to `addr`: from a port bound and noted first,
/// or, with no port free to bind, from whatever port `connect` finds
/// (noted once connected: at worst counted as a client, were it accepted
/// first).
fn wake_one(stop: &Shutdown, addr: SocketAddr) -> std::io::Result<()> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    let mut local = addr;
    local.set_port(0);
    let noted = socket.bind(&local.into()).is_ok();
    if noted {
        if let Some(local) = socket.local_addr()?.as_socket() {
            stop.note_waker(local);
        }
    }
    socket.connect_timeout(&addr.into(), Duration::from_secs(1))?;
    if !noted {
        if let Some(local) = socket.local_addr()?.as_socket() {
            stop.note_waker(local);
        }
    }
    Ok(())
}

impl Shutdown {
    /// Stops the acceptors of `listeners`: flips the switch and wakes each.
    pub fn stop(&self, listeners: &[BoundListener]) {
        self.trigger();
        wake(self, listeners);
    }
}
