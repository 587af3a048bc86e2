//! Secured ZooKeeper: TLS only (no plaintext port), identities from client
//! certificates (`x509:CN=…`) and from SASL DIGEST-MD5 (`sasl:user`). A
//! registration is writable by its owner only, readable by all.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zkutil::testing::{TlsMode, ZkOptions, ZkServer, init_test_logging, wait_until};
use zkutil::{
    BasePath, Discovery, Endpoint, Metadata, Registration, Secret, Session, SessionConfig,
};

fn start(options: ZkOptions) -> ZkServer {
    init_test_logging();
    ZkServer::start_with(options).unwrap_or_else(|e| panic!("starting ZooKeeper: {e}"))
}

#[track_caller]
fn connect(zk: &ZkServer, config: SessionConfig) -> Arc<Session> {
    let config = config.with_session_timeout(Duration::from_secs(4));
    config
        .connect()
        .map(Arc::new)
        .unwrap_or_else(|e| panic!("connecting: {e}; zk log:\n{}", zk.log_tail()))
}

fn register(session: &Arc<Session>, address: &str) -> Registration {
    let e: Endpoint = address.parse().expect("a valid literal");
    let metadata = Metadata::for_this_process(e, SystemTime::now(), "test");
    Registration::register(session, &BasePath::from_static("/go_servers"), e, &metadata)
        .expect("registers")
}

/// `who` can read `path` but can neither overwrite nor delete it.
#[track_caller]
fn reads_but_cannot_change(who: &str, session: &Session, path: &str) {
    session
        .get_data(path)
        .unwrap_or_else(|e| panic!("{who} reading {path}: {e}"));
    match session.set_data(path, b"hijacked", None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("{who} overwriting {path}: {other:?}"),
    }
    match session.delete(path, None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("{who} deleting {path}: {other:?}"),
    }
}

#[test]
fn a_registration_over_tls_only_is_discovered_and_the_plaintext_port_does_not_exist() {
    let zk = start(ZkOptions {
        tls: Some(TlsMode::Need),
        ..ZkOptions::default()
    });
    // The fixture's readiness check went over TLS; nothing answers in plaintext.
    let srvr = zk.four_letter_word("srvr").expect("srvr over TLS");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    assert_eq!(zkutil::testing::four_letter_word(zk.port(), "srvr"), None);

    let alice = connect(&zk, zk.session_config(Some("alice")));
    let bob = connect(&zk, zk.session_config(Some("bob")));
    assert_eq!(zk.mntr_value("zk_global_sessions"), Some(2));
    let mut listed = zk.sessions();
    listed.sort_by_key(|id| id.get());
    let mut ours = vec![alice.id(), bob.id()];
    ours.sort_by_key(|id| id.get());
    assert_eq!(listed, ours, "cons over TLS lists both sessions");
    let discovery =
        Discovery::start(bob.clone(), &BasePath::from_static("/go_servers")).expect("starts");
    let reg = register(&alice, "127.0.0.1:8897");
    let seen = discovery.wait_for(Duration::from_secs(10), |snap| snap.instances().len() == 1);
    assert!(seen.is_some(), "bob never saw alice's registration");
    reg.deregister().expect("deregisters");
    let gone = discovery.wait_for(Duration::from_secs(10), |snap| snap.instances().is_empty());
    assert!(gone.is_some(), "bob never saw it go");
}

#[test]
fn a_registration_made_with_alices_certificate_is_closed_to_bob_and_to_no_certificate() {
    let zk = start(ZkOptions {
        tls: Some(TlsMode::Want),
        ..ZkOptions::default()
    });
    let alice = connect(&zk, zk.session_config(Some("alice")));
    let bob = connect(&zk, zk.session_config(Some("bob")));
    let anonymous = connect(&zk, zk.session_config(None));
    let reg = register(&alice, "127.0.0.1:8897");
    let path = reg.path();
    assert_eq!(
        bob.acl(&path).expect("ACL"),
        ["x509:CN=alice:cdrwa", "world:anyone:r"]
    );
    reads_but_cannot_change("bob", &bob, &path);
    reads_but_cannot_change("a client without certificate", &anonymous, &path);
    alice
        .set_data(&path, b"{}", None)
        .expect("alice may change her own node");
    reg.deregister().expect("alice deletes it");
}

#[test]
fn an_x509_operator_may_change_a_registration_but_not_delete_it() {
    let zk = start(ZkOptions {
        tls: Some(TlsMode::Need),
        ..ZkOptions::default()
    });
    let alice = connect(
        &zk,
        zk.session_config(Some("alice"))
            .with_operator_id("x509", "CN=bob"),
    );
    let bob = connect(&zk, zk.session_config(Some("bob")));
    let reg = register(&alice, "127.0.0.1:8897");
    let path = reg.path();
    assert_eq!(
        bob.acl(&path).expect("ACL"),
        ["x509:CN=alice:cdrwa", "world:anyone:r", "x509:CN=bob:rw"]
    );
    bob.set_data(&path, b"{}", None)
        .expect("the operator may change it");
    match bob.delete(&path, None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("the operator deleting {path}: {other:?}"),
    }
}

#[test]
fn a_sasl_users_registration_is_closed_to_another_user_and_to_strangers() {
    let users = [("alice", "alice-pw"), ("bob", "bob-pw")];
    let zk = start(ZkOptions {
        sasl_users: users
            .iter()
            .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
            .collect(),
        ..ZkOptions::default()
    });
    let sasl = |user: &str, password: &str| {
        zk.session_config(None)
            .with_sasl_auth(Secret::new(format!("{user}:{password}")))
    };
    let alice = connect(&zk, sasl("alice", "alice-pw"));
    let bob = connect(&zk, sasl("bob", "bob-pw"));
    let stranger = connect(&zk, zk.session_config(None));
    let reg = register(&alice, "127.0.0.1:8897");
    let path = reg.path();
    assert_eq!(
        bob.acl(&path).expect("ACL"),
        ["sasl:alice:cdrwa", "world:anyone:r"]
    );
    reads_but_cannot_change("bob", &bob, &path);
    reads_but_cannot_change("a stranger", &stranger, &path);
    reg.deregister().expect("alice deletes it");
}

#[test]
fn a_client_certificate_replaced_on_disk_is_used_from_the_next_connection_on() {
    let mut zk = start(ZkOptions {
        tls: Some(TlsMode::Need),
        ..ZkOptions::default()
    });
    let dir = tempfile::tempdir().expect("a temp dir");
    let (cert, key) = (dir.path().join("svc.crt"), dir.path().join("svc.key"));
    let install = |name: &str| {
        let (from_cert, from_key) = zk.client_cert(name).expect("a TLS fixture");
        std::fs::copy(from_cert, &cert).expect("copies the certificate");
        std::fs::copy(from_key, &key).expect("copies the key");
    };
    install("alice");
    let ca = zk.ca_pem().expect("a TLS fixture");
    let tls = zkutil::TlsConfig::new(ca).with_client_cert(&cert, &key);
    let session = connect(&zk, zk.session_config(None).with_tls(tls));
    session.create_ephemeral("/who-0", b"").expect("creates");
    assert_eq!(
        session.acl("/who-0").expect("ACL")[0],
        "x509:CN=alice:cdrwa"
    );

    install("bob");
    // The session keeps its connection (and alice) until it reconnects:
    // restart ZooKeeper until a connection made after the reload shows bob.
    let mut attempt = 0;
    wait_until(
        Duration::from_secs(60),
        "a connection made with bob's certificate",
        || {
            zk.restart().ok()?;
            attempt += 1;
            let path = format!("/who-{attempt}");
            session.create_ephemeral(&path, b"").ok()?;
            let acl = session.acl(&path).ok()?;
            (acl[0] == "x509:CN=bob:cdrwa").then_some(())
        },
    );
    eprintln!("bob's certificate in use after {attempt} restart(s)");
}

#[test]
fn a_registration_over_tls_is_recreated_with_its_x509_owner_after_session_expiry() {
    let zk = start(ZkOptions {
        tls: Some(TlsMode::Need),
        ..ZkOptions::default()
    });
    let alice = connect(&zk, zk.session_config(Some("alice")));
    let bob = connect(&zk, zk.session_config(Some("bob")));
    let reg = register(&alice, "127.0.0.1:8897");
    let path = reg.path();
    let first = alice.id();
    alice.expire_for_testing().expect("expires the session");
    // The rebuilt session (a new TLS connection with the same certificate)
    // re-creates the node: a new owner, the same x509 identity.
    let owner = wait_until(Duration::from_secs(30), "re-registered", || {
        let stat = bob.stat(&path).ok()??;
        (stat.ephemeral_owner() != first).then(|| stat.ephemeral_owner())
    });
    assert_eq!(owner, alice.id());
    assert_eq!(
        bob.acl(&path).expect("ACL"),
        ["x509:CN=alice:cdrwa", "world:anyone:r"]
    );
}

#[test]
fn a_missing_ca_file_is_a_typed_error_at_once() {
    let config = SessionConfig::new("127.0.0.1:1")
        .with_tls(zkutil::TlsConfig::new("/nonexistent/ca.pem"))
        .with_connect_timeout(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let err = config.connect().expect_err("no CA file");
    assert!(
        matches!(
            &err,
            zkutil::Error::TlsFile {
                what: "CA bundle",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "TLS CA bundle /nonexistent/ca.pem: No such file or directory (os error 2)"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// bob's key with alice's certificate: a file error naming both files,
/// before any connect (the client crate would refuse it at connect, naming
/// neither).
#[test]
fn a_key_that_is_not_the_certificates_is_a_file_error_naming_both() {
    let zk = zkutil::testing::ZkServer::start_tls(zkutil::testing::TlsMode::Need)
        .expect("starts a TLS ZooKeeper");
    let ca = zk.ca_pem().expect("a TLS fixture");
    let (alice, _) = zk.client_cert("alice").expect("alice");
    let (_, bobs_key) = zk.client_cert("bob").expect("bob");
    let err = SessionConfig::new(zk.connect_string())
        .with_tls(zkutil::TlsConfig::new(ca).with_client_cert(&alice, &bobs_key))
        .connect()
        .expect_err("a key of another certificate");
    assert_eq!(
        err.to_string(),
        format!(
            "TLS client key {}: it is not the key of the client certificate {}",
            bobs_key.display(),
            alice.display()
        )
    );
}

#[test]
fn a_tls_only_ensemble_elects_a_leader_and_serves_sessions() {
    init_test_logging();
    let ensemble = zkutil::testing::ZkEnsemble::start_with(
        3,
        ZkOptions {
            tls: Some(TlsMode::Need),
            ..ZkOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("starting a TLS ensemble: {e}"));
    let leader = ensemble.leader().expect("a leader, seen over TLS");
    let mntr = ensemble
        .four_letter_word(leader, "mntr")
        .expect("mntr over TLS");
    assert!(mntr.contains("zk_synced_followers\t2"), "{mntr}");
    let session = ensemble
        .session_config(Some("alice"))
        .connect()
        .expect("a session over TLS");
    session.ensure_path("/over-tls").expect("written");
}

#[test]
fn four_letter_words_over_tls_verify_the_servers_name_and_present_the_client_certificate() {
    let zk = start(ZkOptions {
        tls: Some(TlsMode::Need),
        ..ZkOptions::default()
    });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], zk.port()));
    let ca = zk.ca_pem().expect("a TLS fixture");
    let (cert, key) = zk.client_cert("alice").expect("a TLS fixture");
    let alice = zkutil::TlsConfig::new(&ca).with_client_cert(cert, key);
    let ask = |name: &str, tls: &zkutil::TlsConfig| {
        zkutil::admin::four_letter_word_tls(addr, name, "ruok", Duration::from_secs(2), tls)
    };
    for name in ["localhost", "127.0.0.1"] {
        assert_eq!(ask(name, &alice).expect("answers over TLS"), "imok");
    }
    let err = ask("zk.example.com", &alice).expect_err("not the certificate's name");
    assert!(
        err.to_string()
            .contains("certificate not valid for name \"zk.example.com\""),
        "{err}"
    );
    let err = ask("localhost", &zkutil::TlsConfig::new(&ca)).expect_err("need asks a certificate");
    // The server's alert, or, when it closes first (a loaded machine), the
    // reset of a connection it refused.
    assert!(
        err.to_string().contains("BadCertificate")
            || err.kind() == std::io::ErrorKind::ConnectionReset,
        "{err}"
    );
}
