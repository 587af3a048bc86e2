//! `probe`: why a connect is slow, told at once.
//!
//! The client crate retries a refused connection until the connect timeout,
//! so on its own "ZooKeeper is not running" looks like a 5 s hang ending in
//! "timed out". While a connect waits, this watcher checks each host with a
//! plain TCP connect: when every host refuses (or does not resolve), the
//! wait ends at once with that cause. It also says "connecting to …" once
//! when the wait passes a second, so a slow connect is never silent.

use crate::sync::lock;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cancel::Cancel;

/// How long a connect may take before the hosts are probed: a reachable
/// ZooKeeper answers well within it, so a healthy connect makes no probe.
const PROBE_AFTER: Duration = Duration::from_millis(250);
/// When a still-waiting connect says so.
const SAY_AFTER: Duration = Duration::from_secs(1);
/// The longest one probe connection may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Watches one connect; dropping it (the connect is over) ends the watch.
pub(super) struct ConnectWatch {
    _done: mpsc::Sender<()>,
    verdict: Arc<Mutex<Option<String>>>,
}

impl ConnectWatch {
    /// Starts watching a connect to `hosts` (the host list, no chroot); on
    /// a verdict, triggers `cancel` to end the connect's wait.
    pub(super) fn start(hosts: Vec<String>, cancel: Cancel) -> ConnectWatch {
        ConnectWatch::start_with(hosts, cancel, refused_everywhere)
    }

    /// [`ConnectWatch::start`] with the probe given (tests make it slow).
    fn start_with(
        hosts: Vec<String>,
        cancel: Cancel,
        refused_everywhere: impl FnOnce(&[String]) -> Option<String> + Send + 'static,
    ) -> ConnectWatch {
        let (done, finished) = mpsc::channel::<()>();
        let verdict = Arc::new(Mutex::new(None));
        let found = verdict.clone();
        let watched = move || {
            let started = Instant::now();
            if !still_waiting(&finished, PROBE_AFTER) {
                return;
            }
            if let Some(cause) = refused_everywhere(&hosts) {
                // A connect that succeeded meanwhile keeps its session.
                if matches!(finished.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                    *lock(&found) = Some(cause);
                    cancel.trigger();
                }
                return;
            }
            if still_waiting(&finished, SAY_AFTER.saturating_sub(started.elapsed())) {
                tracing::info!("connecting to ZooKeeper at {} …", hosts.join(","));
            }
        };
        // Without the thread, connects are as before: no verdict.
        let _ = std::thread::Builder::new()
            .name("zk-connect-watch".into())
            .spawn(watched);
        ConnectWatch {
            _done: done,
            verdict,
        }
    }

    /// Why the connect cannot succeed, when every host refused.
    pub(super) fn verdict(&self) -> Option<String> {
        lock(&self.verdict).clone()
    }
}

/// Waits `wait`; false when the connect ended first.
fn still_waiting(finished: &mpsc::Receiver<()>, wait: Duration) -> bool {
    matches!(finished.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
}

/// The cause when no host accepts a TCP connection because each refused it
/// or does not resolve; `None` when one accepts, or one fails in a way
/// that may pass (a timeout: a slow network or a paused server).
fn refused_everywhere(hosts: &[String]) -> Option<String> {
    let mut causes = Vec::with_capacity(hosts.len());
    for host in hosts {
        let addrs: Vec<_> = match host.to_socket_addrs() {
            Ok(addrs) => addrs.collect(),
            Err(err) => {
                causes.push(format!("{host}: cannot resolve ({err})"));
                continue;
            }
        };
        if addrs.is_empty() {
            causes.push(format!("{host}: resolves to no address"));
            continue;
        }
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
                Err(err) if err.kind() == ErrorKind::ConnectionRefused => {}
                _ => return None,
            }
        }
        causes.push(format!("{host}: connection refused"));
    }
    Some(if causes.len() == 1 {
        causes
            .pop()
            .map(|cause| {
                cause
                    .split_once(": ")
                    .map_or(cause.clone(), |(_, c)| c.to_owned())
            })
            .unwrap_or_default()
    } else {
        causes.join(", ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_that_comes_after_the_connect_succeeded_cancels_nothing() {
        // The race, made certain: every host refuses the probe, but the
        // connect succeeds (and the watch is dropped) before the verdict.
        let cancel = Cancel::new();
        let (probing, probe_started) = mpsc::channel();
        let (connected, connect_done) = mpsc::channel::<()>();
        let watch =
            ConnectWatch::start_with(vec!["127.0.0.1:1".into()], cancel.clone(), move |_| {
                let _ = probing.send(());
                let _ = connect_done.recv_timeout(Duration::from_secs(10));
                Some("connection refused".into())
            });
        probe_started
            .recv_timeout(Duration::from_secs(10))
            .expect("the probe runs after PROBE_AFTER");
        drop(watch);
        let _ = connected.send(());
        // The verdict comes now, on the watch thread: give it the time.
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline && !cancel.is_triggered() {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !cancel.is_triggered(),
            "a late verdict cancelled a connect that had succeeded"
        );
    }

    #[test]
    fn a_closed_port_is_refused_and_a_listening_one_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
        let open = listener.local_addr().expect("bound").to_string();
        let closed = {
            let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
            gone.local_addr().expect("bound").to_string()
        };
        assert_eq!(
            refused_everywhere(std::slice::from_ref(&closed)).as_deref(),
            Some("connection refused")
        );
        assert_eq!(refused_everywhere(&[closed.clone(), open]), None);
        let both = refused_everywhere(&[closed.clone(), "no-such-host.invalid:2181".into()])
            .expect("a verdict");
        assert!(
            both.starts_with(&format!(
                "{closed}: connection refused, no-such-host.invalid:2181: cannot resolve"
            )),
            "{both}"
        );
    }
}
