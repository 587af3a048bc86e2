//! A secured connect that cannot succeed says why at once, in one line
//! naming the host: TLS on one side only, an unknown CA, a name mismatch,
//! an expired or missing certificate, a wrong SASL password. Never a 5 s
//! "timed out" (the client crate retries these as if the network failed).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use zkutil::testing::{
    DelayProxy, EXPIRED_CLIENT, TlsMode, ZkOptions, ZkServer, init_test_logging, zookeeper,
};
use zkutil::{Secret, SessionConfig, TlsConfig};

/// The connect timeout: every error below must come well before it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// "At once", generously: a 2-core machine running other tests.
const AT_ONCE: Duration = Duration::from_secs(2);

fn start(options: ZkOptions) -> ZkServer {
    init_test_logging();
    ZkServer::start_with(options).unwrap_or_else(|e| panic!("starting ZooKeeper: {e}"))
}

fn tls_need() -> ZkServer {
    start(ZkOptions {
        tls: Some(TlsMode::Need),
        ..ZkOptions::default()
    })
}

/// Connecting with `config` (a 5 s connect timeout) fails within
/// [`AT_ONCE`], its whole error chain the one line `expected`.
#[track_caller]
fn fails_at_once(what: &str, config: SessionConfig, expected: &str) {
    let started = Instant::now();
    let result = config.with_connect_timeout(CONNECT_TIMEOUT).connect();
    let took = started.elapsed();
    let err = match result {
        Err(err) => err,
        Ok(session) => panic!("{what}: connected: {session:?}"),
    };
    let line = err.chain().to_string();
    eprintln!("{what}: {took:?}: {line}");
    assert_eq!(line, expected, "{what}");
    assert!(took < AT_ONCE, "{what}: took {took:?}, not at once");
}

/// A CA certificate (PEM) in `dir` that signed nothing the fixture uses.
fn stranger_ca(dir: &std::path::Path) -> PathBuf {
    stranger_ca_with(dir, false)
}

/// [`stranger_ca`], followed in its file by a CRL of its own (revoking a
/// serial it never issued) when `with_crl`.
fn stranger_ca_with(dir: &std::path::Path, with_crl: bool) -> PathBuf {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "a stranger's CA");
    let key = rcgen::KeyPair::generate().expect("a key");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(params, key).expect("a self-signed CA");
    let mut pem = ca.pem();
    if with_crl {
        let crl = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2020, 1, 1),
            next_update: rcgen::date_time_ymd(2100, 1, 1),
            crl_number: 1u64.into(),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: 77u64.into(),
                revocation_time: rcgen::date_time_ymd(2020, 1, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        pem.push_str(&crl.signed_by(&ca).and_then(|crl| crl.pem()).expect("a CRL"));
    }
    let path = dir.join("stranger-ca.pem");
    std::fs::write(&path, pem).expect("writes the CA");
    path
}

#[test]
fn a_tls_only_server_tells_each_client_side_mistake_at_once() {
    let zk = tls_need();
    let hosts = zk.connect_string();
    let line = |cause: &str| format!("cannot connect to ZooKeeper at {hosts}: {cause}");
    let (alice_cert, alice_key) = zk.client_cert("alice").expect("a TLS fixture");
    let dir = tempfile::tempdir().expect("a temp dir");

    fails_at_once(
        "plaintext",
        SessionConfig::new(&hosts),
        &line("the server speaks only TLS and this session has no TLS configured"),
    );

    let stranger = stranger_ca(dir.path());
    fails_at_once(
        "unknown CA",
        SessionConfig::new(&hosts)
            .with_tls(TlsConfig::new(&stranger).with_client_cert(&alice_cert, &alice_key)),
        &line(&format!(
            "the server's certificate is not signed by a CA in {}",
            stranger.display()
        )),
    );

    let revoking = zk.ca_pem_revoking_server().expect("a TLS fixture");
    fails_at_once(
        "revoked server certificate",
        SessionConfig::new(&hosts)
            .with_tls(TlsConfig::new(&revoking).with_client_cert(&alice_cert, &alice_key)),
        &line(&format!(
            "the server's certificate is revoked by a CRL in {}",
            revoking.display()
        )),
    );

    // The certificate is for localhost and 127.0.0.1; 127.0.0.2 reaches the
    // same server through a relay.
    let target = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
    let relay = DelayProxy::start_on(
        ([127, 0, 0, 2], 0).into(),
        target,
        Duration::ZERO,
        Duration::ZERO,
    )
    .expect("a relay on 127.0.0.2");
    let other_name = relay.addr().to_string();
    fails_at_once(
        "name mismatch",
        SessionConfig::new(&other_name).with_tls(zk.session_config(Some("alice")).tls().cloned()),
        &format!(
            "cannot connect to ZooKeeper at {other_name}: the server's certificate is not valid for the name 127.0.0.2"
        ),
    );

    let (expired_cert, _) = zk.client_cert(EXPIRED_CLIENT).expect("a TLS fixture");
    fails_at_once(
        "expired client certificate",
        zk.session_config(Some(EXPIRED_CLIENT)),
        &line(&format!(
            "the server rejected the client certificate {}: it expired on 2001-01-01T00:00:00Z",
            expired_cert.display()
        )),
    );

    fails_at_once(
        "no client certificate",
        zk.session_config(None),
        &line("the server requires a client certificate and none is configured"),
    );
}

#[test]
fn tls_to_a_plaintext_server_is_told_at_once() {
    let zk = zookeeper();
    let dir = tempfile::tempdir().expect("a temp dir");
    let hosts = zk.connect_string();
    fails_at_once(
        "TLS to plaintext",
        SessionConfig::new(&hosts).with_tls(TlsConfig::new(stranger_ca(dir.path()))),
        &format!(
            "cannot connect to ZooKeeper at {hosts}: the server does not speak TLS (is this its plaintext port?)"
        ),
    );
}

#[test]
fn an_expired_server_certificate_is_told_at_once() {
    let zk = start(ZkOptions {
        tls: Some(TlsMode::None),
        expired_server_cert: true,
        ..ZkOptions::default()
    });
    let hosts = zk.connect_string();
    fails_at_once(
        "expired server certificate",
        zk.session_config(None),
        &format!(
            "cannot connect to ZooKeeper at {hosts}: the server's certificate expired on 2001-01-01T00:00:00Z"
        ),
    );
}

#[test]
fn a_wrong_sasl_password_is_told_at_once() {
    let zk = start(ZkOptions {
        sasl_users: vec![("alice".into(), "alice-pw".into())],
        ..ZkOptions::default()
    });
    let hosts = zk.connect_string();
    // A known user (ZOOKEEPER-4839 lets an unknown one in: see ZkOptions).
    fails_at_once(
        "wrong SASL password",
        zk.session_config(None)
            .with_sasl_auth(Secret::new("alice:not-alices-pw")),
        &format!(
            "connecting to ZooKeeper at {hosts}: SASL authentication failed: wrong user name or password"
        ),
    );
}

/// A host name the client crate could not turn into a TLS name (it would
/// panic) is refused before any connect, naming the host.
#[test]
fn a_host_tls_cannot_verify_is_an_error_naming_it_not_a_panic() {
    let zk = tls_need();
    let host = format!("127.1:{}", zk.port());
    let tls = zk.session_config(Some("alice")).tls().cloned();
    fails_at_once(
        "an unverifiable name",
        SessionConfig::new(&host).with_tls(tls),
        &format!(
            "cannot connect to ZooKeeper at {host}: {host} is not a name TLS can verify: give a DNS name or an IP address as the certificate names it"
        ),
    );
}

/// One host refusing (it may come up: an ensemble restarting) and one
/// rejecting the session's TLS: not final, the connect waits as long as
/// it may instead of ending at once.
#[test]
fn one_host_refusing_and_one_rejecting_is_not_a_verdict() {
    let zk = tls_need();
    let relay = DelayProxy::start_on(
        ([127, 0, 0, 2], 0).into(),
        std::net::SocketAddr::from(([127, 0, 0, 1], zk.port())),
        Duration::ZERO,
        Duration::ZERO,
    )
    .expect("a relay on 127.0.0.2");
    let closed = zkutil::testing::free_ports(1).expect("a free port")[0];
    let hosts = format!("127.0.0.1:{closed},{}", relay.addr());
    let tls = zk.session_config(Some("alice")).tls().cloned();
    let started = Instant::now();
    let result = SessionConfig::new(&hosts)
        .with_tls(tls)
        .with_connect_timeout(Duration::from_secs(2))
        .connect();
    let took = started.elapsed();
    match result {
        Err(zkutil::Error::Tls { .. }) => panic!("a TLS verdict after {took:?}: {result:?}"),
        Err(_) => assert!(took >= Duration::from_secs(2), "ended after {took:?}"),
        Ok(session) => panic!("connected: {session:?}"),
    }
}

/// A host written `tcp://host:port` would be plaintext to the client crate
/// even with TLS configured, a password then crossing in the clear: the
/// connect string takes no scheme, and says so before any connect.
#[test]
fn a_scheme_in_the_connect_string_is_refused_not_sent_in_the_clear() {
    let zk = tls_need();
    let tls = zk.session_config(Some("alice")).tls().cloned();
    for hosts in [
        format!("tcp://127.0.0.1:{}", zk.port()),
        format!("127.0.0.1:{},tcp+tls://127.0.0.1:{}", zk.port(), zk.port()),
    ] {
        fails_at_once(
            "a scheme in the connect string",
            SessionConfig::new(&hosts)
                .with_tls(tls.clone())
                .with_sasl_auth(Secret::new("alice:secret")),
            &format!(
                "invalid connect string {hosts:?}: a scheme such as tcp:// or tcp+tls:// is not read here: give host:port[,host:port][/chroot], and TLS with SessionConfig::with_tls (--zk-tls-ca)"
            ),
        );
    }
}

/// A CA bundle holding two CAs and a CRL of only one (the old CA's, during
/// a rotation): the other CA's server is not refused for want of a CRL,
/// neither by the session nor by a four-letter word over TLS.
#[test]
fn a_crl_for_another_ca_does_not_refuse_this_cas_server() {
    let zk = tls_need();
    let dir = tempfile::tempdir().expect("a temp dir");
    let ours = std::fs::read_to_string(zk.ca_pem().expect("a TLS fixture")).expect("reads the CA");
    let theirs = std::fs::read_to_string(stranger_ca_with(dir.path(), true)).expect("reads it");
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, format!("{theirs}{ours}")).expect("writes the bundle");
    let (cert, key) = zk.client_cert("alice").expect("a TLS fixture");
    let tls = TlsConfig::new(&bundle).with_client_cert(cert, key);
    let session = SessionConfig::new(zk.connect_string())
        .with_tls(tls.clone())
        .with_connect_timeout(CONNECT_TIMEOUT)
        .connect()
        .unwrap_or_else(|err| panic!("a bundle with another CA's CRL: {err}"));
    session.ensure_path("/crl").expect("served over TLS");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
    let srvr =
        zkutil::admin::four_letter_word_tls(addr, "127.0.0.1", "srvr", CONNECT_TIMEOUT, &tls);
    assert!(
        srvr.as_deref().is_ok_and(|answer| answer.contains("Mode:")),
        "srvr with that bundle: {srvr:?}"
    );
}
