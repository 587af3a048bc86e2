//! `handshake`: why a host that accepts TCP connections still gives no
//! session, found by talking to it the way the session does.
//!
//! The client crate retries a failed TLS handshake, like a refused
//! connection, until the connect timeout: a wrong CA or an expired
//! certificate looks like a 5 s hang ending in "timed out". The probe of a
//! slow connect ([`super::probe`]) asks this module instead: with TLS it
//! makes one rustls handshake with the session's own certificates and names
//! what failed; without TLS it checks whether the host speaks only TLS.
//! Only a definite cause is told; anything that may pass (a timeout, a
//! connection closed mid-way) is `None`, and the connect goes on waiting.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, ClientConfig, ClientConnection};

use crate::tls::TlsConfig;

/// How long a healthy server is given, after the handshake, to reject the
/// client certificate: with TLS 1.3 it says so only after our `Finished`.
const REJECTION_WAIT: Duration = Duration::from_millis(500);

/// How one handshake ended.
enum Outcome {
    /// Completed, and no rejection followed.
    Completed,
    /// rustls refused the server, or the server sent an alert.
    Failed(rustls::Error),
    /// The server closed the connection before sending a byte.
    ClosedBeforeAnswer,
    /// Anything that may pass: a timeout, a reset mid-way.
    Unclear,
}

/// Why a TLS session cannot be had from the host `host` (`name:port`)
/// connected as `stream`, with `tls`; `None` when the handshake succeeds or
/// fails in a way that may pass.
pub(super) fn tls_cause(
    stream: TcpStream,
    host: &str,
    tls: &TlsConfig,
    timeout: Duration,
) -> Option<String> {
    let config = tls.rustls_client().ok()?;
    let name = server_name(host)?;
    let addr = stream.peer_addr().ok()?;
    let outcome = handshake(stream, config, name.clone(), timeout);
    if let Outcome::Failed(err) = &outcome {
        tracing::debug!(host, error = %err, "the probe's TLS handshake failed");
    }
    let cause = match outcome {
        Outcome::Completed | Outcome::Unclear => return None,
        // A TLS server may close at once too (too many connections): only
        // a plaintext answer proves the port is not TLS.
        Outcome::ClosedBeforeAnswer => answers_plaintext(addr, timeout).then(not_tls)?,
        // A certificate valid from a moment from now (a clock behind, a
        // fresh certificate) becomes good by itself: no verdict.
        Outcome::Failed(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        )) => return None,
        Outcome::Failed(rustls::Error::InvalidCertificate(err)) => server_cert(&err, &name, tls),
        Outcome::Failed(rustls::Error::AlertReceived(alert)) => client_cert(alert, tls)?,
        Outcome::Failed(rustls::Error::InvalidMessage(_)) => not_tls(),
        // The two sides cannot agree (versions, ciphers): that stays so.
        Outcome::Failed(
            err @ (rustls::Error::PeerIncompatible(_) | rustls::Error::PeerMisbehaved(_)),
        ) => format!("TLS handshake failed: {err}"),
        // Our own side failed (randomness, the clock): may pass.
        Outcome::Failed(_) => return None,
    };
    Some(cause)
}

/// Whether the host connected as `stream` answers a TLS `ClientHello`: a
/// TLS-only port, where a plaintext session is dropped without a word.
pub(super) fn speaks_tls(stream: TcpStream, host: &str, timeout: Duration) -> bool {
    // No CA at all: any certificate is "unknown", and that it came proves TLS.
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map(|builder| {
                builder
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
            });
    let (Ok(config), Some(name)) = (config, server_name(host)) else {
        return false;
    };
    matches!(
        handshake(stream, Arc::new(config), name, timeout),
        Outcome::Completed
            | Outcome::Failed(
                rustls::Error::InvalidCertificate(_) | rustls::Error::AlertReceived(_)
            )
    )
}

/// Whether the server at `addr` answers a four-letter word in plaintext
/// (`imok`, or that `ruok` is not allowed: words all the same, printable
/// text; a TLS alert is bytes, not an answer).
pub(super) fn answers_plaintext(addr: std::net::SocketAddr, timeout: Duration) -> bool {
    crate::admin::four_letter_word(addr, "ruok", timeout).is_ok_and(|answer| {
        !answer.is_empty()
            && answer
                .bytes()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    })
}

/// Whether `host` (`name:port`) names a server TLS can verify.
pub(super) fn is_server_name(host: &str) -> bool {
    server_name(host).is_some()
}

/// The name the session verifies: the host without its port (an address
/// or a DNS name).
fn server_name(host: &str) -> Option<ServerName<'static>> {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_owned()).ok()
}

/// One handshake over `stream`, every read and write bounded by `timeout`
/// in all; after it completes, a short wait for the server's rejection.
fn handshake(
    mut stream: TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> Outcome {
    let Ok(mut conn) = ClientConnection::new(config, name) else {
        return Outcome::Unclear;
    };
    let mut deadline = Instant::now() + timeout;
    let mut answered = false;
    loop {
        while conn.wants_write() {
            if conn.write_tls(&mut stream).is_err() {
                return Outcome::Unclear;
            }
        }
        if !conn.is_handshaking() {
            deadline = deadline.min(Instant::now() + REJECTION_WAIT);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return settled(&conn);
        }
        match conn.read_tls(&mut stream) {
            Ok(0) if !answered => return Outcome::ClosedBeforeAnswer,
            Ok(0) => return Outcome::Unclear,
            Ok(_) => answered = true,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return settled(&conn);
            }
            Err(err) if err.kind() == ErrorKind::ConnectionReset && !answered => {
                return Outcome::ClosedBeforeAnswer;
            }
            Err(_) => return Outcome::Unclear,
        }
        if let Err(err) = conn.process_new_packets() {
            // Our alert, as a polite client sends it; the server may be gone.
            let _ = conn.write_tls(&mut stream);
            return Outcome::Failed(err);
        }
    }
}

/// A handshake that ran out of time: fine when it had completed.
fn settled(conn: &ClientConnection) -> Outcome {
    if conn.is_handshaking() {
        Outcome::Unclear
    } else {
        Outcome::Completed
    }
}

fn not_tls() -> String {
    "the server does not speak TLS (is this its plaintext port?)".to_owned()
}

/// What is wrong with the server's certificate, as rustls found it.
fn server_cert(err: &CertificateError, name: &ServerName<'_>, tls: &TlsConfig) -> String {
    match err {
        CertificateError::UnknownIssuer => format!(
            "the server's certificate is not signed by a CA in {}",
            tls.ca().display()
        ),
        CertificateError::Revoked => format!(
            "the server's certificate is revoked by a CRL in {}",
            tls.ca().display()
        ),
        CertificateError::Expired => "the server's certificate has expired".to_owned(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("the server's certificate expired on {}", date(*not_after))
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate is not valid for the name {}",
                name.to_str()
            )
        }
        other => format!("the server's certificate is not accepted: {other}"),
    }
}

/// Why the server ended the handshake with `alert`: about our client
/// certificate for the alerts that are, told as precisely as our own look
/// at it allows; `None` for an alert that may pass (a server's internal
/// error while it reloads its key store, a cancel).
fn client_cert(alert: AlertDescription, tls: &TlsConfig) -> Option<String> {
    use AlertDescription as A;
    let final_alert = matches!(
        alert,
        A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity | A::AccessDenied
    );
    let about_ours = matches!(
        alert,
        A::BadCertificate
            | A::CertificateRequired
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::CertificateRevoked
            | A::UnknownCA
            | A::UnsupportedCertificate
    );
    if !about_ours && !final_alert {
        return None;
    }
    Some(match tls.client_cert() {
        // TLS 1.2 servers say "handshake failure" for a missing certificate.
        None if about_ours || alert == A::HandshakeFailure => {
            "the server requires a client certificate and none is configured".to_owned()
        }
        Some((cert, _)) if about_ours => match expiry(tls) {
            Some(not_after) => format!(
                "the server rejected the client certificate {}: it expired on {}",
                cert.display(),
                date(not_after)
            ),
            None => format!(
                "the server rejected the client certificate {} ({alert:?})",
                cert.display()
            ),
        },
        _ => format!("the server ended the TLS handshake ({alert:?})"),
    })
}

/// When our own client certificate expired, if it has: checked against our
/// own CA bundle, as a server that trusts that CA would.
fn expiry(tls: &TlsConfig) -> Option<UnixTime> {
    let pem = tls.read().ok()?;
    let (cert, _) = pem.identity?;
    let chain = crate::tls::certificates("client certificate", tls.ca(), &cert).ok()?;
    let (leaf, intermediates) = chain.split_first()?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in crate::tls::certificates("CA bundle", tls.ca(), &pem.ca).ok()? {
        roots.add(ca).ok()?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .ok()?;
    let intermediates: Vec<CertificateDer<'static>> = intermediates.to_vec();
    match verifier.verify_client_cert(leaf, &intermediates, UnixTime::now()) {
        Err(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            not_after,
            ..
        })) => Some(not_after),
        _ => None,
    }
}

/// `2001-01-01T00:00:00Z`.
fn date(time: UnixTime) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_secs(time.as_secs());
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A TLS configuration whose CA (made here) signed nothing.
    fn some_tls(dir: &std::path::Path) -> TlsConfig {
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("a key");
        let ca = params.self_signed(&key).expect("a CA");
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.pem()).expect("writes the CA");
        TlsConfig::new(path)
    }

    /// A server on a loopback port that reads what comes, then answers
    /// `answer` (nothing: closes at once) to each connection.
    fn server(answer: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("bound");
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                if !answer.is_empty() {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                    let _ = conn.read(&mut [0; 512]);
                    let _ = conn.write_all(answer);
                }
            }
        });
        addr
    }

    fn tls_cause_at(addr: std::net::SocketAddr, tls: &TlsConfig) -> Option<String> {
        let stream = TcpStream::connect(addr).expect("connects");
        tls_cause(stream, &addr.to_string(), tls, Duration::from_secs(2))
    }

    #[test]
    fn a_port_that_answers_in_plaintext_does_not_speak_tls_and_one_that_just_closes_is_unclear() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let tls = some_tls(dir.path());
        assert_eq!(tls_cause_at(server(b"imok"), &tls), Some(not_tls()));
        assert_eq!(tls_cause_at(server(b""), &tls), None);
        let plaintext = TcpStream::connect(server(b"imok")).expect("connects");
        assert!(!speaks_tls(
            plaintext,
            "127.0.0.1:1",
            Duration::from_secs(2)
        ));
    }

    #[test]
    fn an_alert_that_may_pass_is_no_verdict_and_a_final_one_is() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let tls = some_tls(dir.path());
        // A fatal alert record (TLS 1.2 framing), as a server sends it.
        const INTERNAL_ERROR: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80];
        const HANDSHAKE_FAILURE: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40];
        assert_eq!(tls_cause_at(server(INTERNAL_ERROR), &tls), None);
        assert_eq!(
            tls_cause_at(server(HANDSHAKE_FAILURE), &tls).as_deref(),
            Some("the server requires a client certificate and none is configured")
        );
    }

    #[test]
    fn the_verified_name_is_the_host_without_its_port() {
        let name = |host: &str| server_name(host).map(|name| name.to_str().into_owned());
        assert_eq!(
            name("zk1.example.com:2181").as_deref(),
            Some("zk1.example.com")
        );
        assert_eq!(name("127.0.0.1:2181").as_deref(), Some("127.0.0.1"));
        assert_eq!(name("[::1]:2181").as_deref(), Some("::1"));
    }
}
