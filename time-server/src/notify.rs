//! `notify`: systemd's readiness protocol (`Type=notify`): `STATUS=` lines
//! while the server waits for ZooKeeper and registers, `READY=1` once every
//! listener is registered, `STOPPING=1` at a stop. Through the sd-notify
//! crate (one datagram to `$NOTIFY_SOCKET`); nothing at all when systemd
//! did not set that variable, so the server runs the same anywhere else.

use sd_notify::NotifyState;

/// A line for `systemctl status`.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

/// Every listener is registered: the unit's start is done.
pub fn ready(text: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(text)]);
}

/// A stop has begun (deregistering, draining).
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: deregistering, then draining"),
    ]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(false, states) {
        tracing::debug!(error = %err, "cannot tell systemd");
    }
}
