//! `probe`: why a connect is slow, told at once.
//!
//! The client crate retries a refused connection, and a failed TLS
//! handshake, until the connect timeout, so on its own "ZooKeeper is not
//! running" or "wrong CA" looks like a 5 s hang ending in "timed out". While
//! a connect waits, this watcher checks each host the way the session talks
//! to it: a TCP connect, then (see [`super::handshake`]) a TLS handshake
//! with the session's certificates, or without TLS a check that the host
//! does not speak only TLS. When every host fails with a definite cause,
//! the wait ends at once with it. It also says "connecting to …" once when
//! the wait passes a second, so a slow connect is never silent.

use crate::sync::lock;
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cancel::Cancel;
use super::handshake::{answers_plaintext, speaks_tls, tls_cause};
use crate::tls::TlsConfig;

/// How long a connect may take before the hosts are probed: a reachable
/// ZooKeeper answers well within it, so a healthy connect makes no probe.
const PROBE_AFTER: Duration = Duration::from_millis(250);
/// When a still-waiting connect says so.
const SAY_AFTER: Duration = Duration::from_secs(1);
/// The longest one probe connection (or handshake) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a connect cannot succeed, found by the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Every host refused the connection or does not resolve.
    Refused(String),
    /// Every host failed, at least one of them by answering in a way the
    /// session cannot use: TLS where the session has none, or a TLS
    /// handshake that failed (a certificate, a missing client certificate).
    Rejected(String),
}

/// Watches one connect; dropping it (the connect is over) ends the watch.
pub(super) struct ConnectWatch {
    _done: mpsc::Sender<()>,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl ConnectWatch {
    /// Starts watching a connect to `hosts` (the host list, no chroot),
    /// made with `tls` if given; on a verdict, triggers `cancel` to end the
    /// connect's wait.
    pub(super) fn start(
        hosts: Vec<String>,
        tls: Option<TlsConfig>,
        cancel: Cancel,
    ) -> ConnectWatch {
        ConnectWatch::start_with(hosts, cancel, true, move |hosts| {
            failed_everywhere(hosts, tls.as_ref())
        })
    }

    /// [`ConnectWatch::start`] for a rebuild's attempt, which logs its own
    /// progress: no "connecting …" line, and nothing to cancel.
    pub(super) fn start_quietly(hosts: Vec<String>, tls: Option<TlsConfig>) -> ConnectWatch {
        ConnectWatch::start_with(hosts, Cancel::new(), false, move |hosts| {
            failed_everywhere(hosts, tls.as_ref())
        })
    }

    /// [`ConnectWatch::start`] with the probe given (tests make it slow),
    /// saying "connecting …" after a while if `say`.
    fn start_with(
        hosts: Vec<String>,
        cancel: Cancel,
        say: bool,
        failed_everywhere: impl FnOnce(&[String]) -> Option<Verdict> + Send + 'static,
    ) -> ConnectWatch {
        let (done, finished) = mpsc::channel::<()>();
        let verdict = Arc::new(Mutex::new(None));
        let found = verdict.clone();
        let watched = move || {
            let started = Instant::now();
            if !still_waiting(&finished, PROBE_AFTER) {
                return;
            }
            if let Some(cause) = failed_everywhere(&hosts) {
                // A connect that succeeded meanwhile keeps its session.
                if matches!(finished.try_recv(), Err(mpsc::TryRecvError::Empty)) {
                    *lock(&found) = Some(cause);
                    cancel.trigger();
                }
                return;
            }
            if say && still_waiting(&finished, SAY_AFTER.saturating_sub(started.elapsed())) {
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

    /// Why the connect cannot succeed, when every host failed for sure.
    pub(super) fn verdict(&self) -> Option<Verdict> {
        lock(&self.verdict).clone()
    }
}

/// Waits `wait`; false when the connect ended first.
fn still_waiting(finished: &mpsc::Receiver<()>, wait: Duration) -> bool {
    matches!(finished.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
}

/// What probing one host found.
enum Finding {
    /// Refused, or not resolved: the cause.
    Refused(String),
    /// Answered in a way the session cannot use: the cause.
    Rejected(String),
}

/// The verdict when every host fails with a definite cause: refused (or
/// not resolved) everywhere, or rejected somewhere; `None` when one may
/// yet serve, or fails in a way that may pass (a timeout: a slow network
/// or a paused server).
fn failed_everywhere(hosts: &[String], tls: Option<&TlsConfig>) -> Option<Verdict> {
    let mut findings = Vec::with_capacity(hosts.len());
    for host in hosts {
        findings.push((host.as_str(), probe(host, tls)?));
    }
    let rejected = findings
        .iter()
        .filter(|(_, finding)| matches!(finding, Finding::Rejected(_)))
        .count();
    // A host that refuses may come up (an ensemble restarting); one that
    // rejects the session will not. Only all of them rejecting is final.
    if rejected > 0 && rejected < findings.len() {
        return None;
    }
    let causes: Vec<(&str, String)> = findings
        .into_iter()
        .map(|(host, finding)| match finding {
            Finding::Refused(cause) | Finding::Rejected(cause) => (host, cause),
        })
        .collect();
    // One cause for all (the usual case: an ensemble's hosts alike) is said
    // once; different causes each with its host.
    let cause = match causes.split_first() {
        Some(((_, first), rest)) if rest.iter().all(|(_, cause)| cause == first) => first.clone(),
        _ => causes
            .iter()
            .map(|(host, cause)| format!("{host}: {cause}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    Some(if rejected > 0 {
        Verdict::Rejected(cause)
    } else {
        Verdict::Refused(cause)
    })
}

/// Probes `host` as the session talks to it; `None` when it may serve.
fn probe(host: &str, tls: Option<&TlsConfig>) -> Option<Finding> {
    let addrs: Vec<_> = match host.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(err) => return Some(Finding::Refused(format!("cannot resolve ({err})"))),
    };
    if addrs.is_empty() {
        return Some(Finding::Refused("resolves to no address".to_owned()));
    }
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => {}
            Err(_) => return None,
            Ok(stream) => {
                let cause = match tls {
                    Some(tls) => tls_cause(stream, host, tls, PROBE_TIMEOUT),
                    // A port that answers TLS may answer plaintext too
                    // (ZooKeeper's `client.portUnification`): only one
                    // that does not is TLS only.
                    None => (speaks_tls(stream, host, PROBE_TIMEOUT)
                        && !answers_plaintext(addr, PROBE_TIMEOUT))
                    .then(|| {
                        "the server speaks only TLS and this session has no TLS configured"
                            .to_owned()
                    }),
                };
                return cause.map(Finding::Rejected);
            }
        }
    }
    Some(Finding::Refused("connection refused".to_owned()))
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
        let watch = ConnectWatch::start_with(
            vec!["127.0.0.1:1".into()],
            cancel.clone(),
            true,
            move |_| {
                let _ = probing.send(());
                let _ = connect_done.recv_timeout(Duration::from_secs(10));
                Some(Verdict::Refused("connection refused".into()))
            },
        );
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
            failed_everywhere(std::slice::from_ref(&closed), None),
            Some(Verdict::Refused("connection refused".into()))
        );
        assert_eq!(failed_everywhere(&[closed.clone(), open], None), None);
        // Hosts that fail alike (an ensemble, mostly) are told once.
        assert_eq!(
            failed_everywhere(&[closed.clone(), closed.clone()], None),
            Some(Verdict::Refused("connection refused".into()))
        );
        let Some(Verdict::Refused(both)) =
            failed_everywhere(&[closed.clone(), "no-such-host.invalid:2181".into()], None)
        else {
            panic!("a refusal verdict")
        };
        assert!(
            both.starts_with(&format!(
                "{closed}: connection refused, no-such-host.invalid:2181: cannot resolve"
            )),
            "{both}"
        );
    }
}
