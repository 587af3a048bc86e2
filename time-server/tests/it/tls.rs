//! The binaries over TLS, with the flags a user types: a time-server on a
//! TLS-only ZooKeeper registers as its certificate's identity, `zkutil`
//! reports the ensemble's status and lists it over TLS, and only the operator the server named with
//! `--operator-id` may take it out of rotation.

use std::process::{Command, Output};

use zkutil::testing::{TlsMode, ZkServer};

use crate::support::{ServerProcess, zkutil_binary};

/// The endpoint `server` registered, or a panic with its log.
fn registered(server: &ServerProcess, zk: &ZkServer) -> String {
    let found = zkutil::testing::poll_until(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(50),
        || {
            server
                .stderr()
                .lines()
                .find(|l| l.contains("registered") && !l.contains("deregistered"))
                .and_then(|l| {
                    l.split("path=/")
                        .nth(1)?
                        .split_once('/')
                        .map(|(_, rest)| rest.to_owned())
                })
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        },
    );
    found.unwrap_or_else(|| {
        panic!(
            "not registered within 30 s; log:\n{}\nZooKeeper's:\n{}",
            server.stderr(),
            zk.log_tail()
        )
    })
}

fn zkutil_as(zk: &ZkServer, name: &str, args: &[&str]) -> Output {
    Command::new(zkutil_binary())
        .args(["--zk", &zk.connect_string()])
        .args(zk.cli_tls_flags(name))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs zkutil")
}

#[test]
fn over_tls_a_server_registers_as_its_certificate_and_only_its_named_operator_steers_it() {
    let zk = ZkServer::start_tls(TlsMode::Need).expect("a TLS-only ZooKeeper");
    let hosts = zk.connect_string();
    let mut args: Vec<String> = ["--zk", &hosts, "--listen", "127.0.0.1:0"]
        .map(str::to_owned)
        .to_vec();
    args.extend(zk.cli_tls_flags("alice"));
    // Spelled as openssl prints a subject: ZooKeeper names it `CN=bob`.
    args.extend(["--operator-id".to_owned(), "x509:cn = bob".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&args);
    let name = registered(&server, &zk);

    let bob = zk
        .session_config(Some("bob"))
        .connect()
        .expect("bob over TLS");
    let acl = bob.acl(&format!("/go_servers/{name}")).expect("readable");
    assert!(
        acl.contains(&"x509:CN=alice:cdrwa".to_owned())
            && acl.iter().any(|a| a.starts_with("x509:CN=bob:"))
            && acl.contains(&"world:anyone:r".to_owned()),
        "{acl:?}"
    );

    // The four letters over TLS: a TLS-only ensemble has no other port.
    let status = zkutil_as(&zk, "bob", &["status"]);
    assert!(
        status.status.success() && String::from_utf8_lossy(&status.stdout).contains("standalone"),
        "{status:?}"
    );

    let listed = zkutil_as(&zk, "bob", &["ls"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && stdout.contains(&name),
        "{listed:?}"
    );

    // Bob is the named operator; alice's own certificate owns the node.
    let disabled = zkutil_as(&zk, "bob", &["disable", &name, "--reason", "tls test"]);
    assert!(disabled.status.success(), "{disabled:?}");
    let stat = bob.get_data(&format!("/go_servers/{name}")).expect("read");
    assert!(String::from_utf8_lossy(&stat.0).contains("tls test"));

    // A second server, registered as bob with no operator (under its own
    // parent: alice's admits no other registrant): alice may not steer
    // it, and says so in one line.
    let mut args2: Vec<String> = [
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0",
        "--base-path",
        "/bob_servers",
    ]
    .map(str::to_owned)
    .to_vec();
    args2.extend(zk.cli_tls_flags("bob"));
    let args2: Vec<&str> = args2.iter().map(String::as_str).collect();
    let second = ServerProcess::start(&args2);
    let other = registered(&second, &zk);
    let refused = zkutil_as(
        &zk,
        "alice",
        &["--base-path", "/bob_servers", "disable", &other],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("no WRITE permission"),
        "{refused:?}"
    );
}

/// A certificate that goes bad while the server runs (replaced on disk by
/// an expired one, then ZooKeeper restarted so that the session must
/// connect again with it) is logged as what it is, naming the expiry, not
/// as the client crate's "timed out".
#[test]
fn a_client_certificate_gone_bad_while_running_is_logged_as_such() {
    let mut zk = ZkServer::start_tls(TlsMode::Need).expect("a TLS-only ZooKeeper");
    let ca = zk.ca_pem().expect("a TLS fixture");
    let dir = tempfile::tempdir().expect("a temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let install = |name: &str| {
        let (from_cert, from_key) = zk.client_cert(name).expect("a fixture client");
        std::fs::copy(from_key, &key).expect("copies the key");
        std::fs::copy(from_cert, &cert).expect("copies the certificate");
    };
    install("alice");
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0",
        "--session-timeout",
        "2s",
        "--zk-tls-ca",
        ca.to_str().expect("a UTF-8 path"),
        "--zk-tls-cert",
        cert.to_str().expect("a UTF-8 path"),
        "--zk-tls-key",
        key.to_str().expect("a UTF-8 path"),
    ]);
    registered(&server, &zk);
    install(zkutil::testing::EXPIRED_CLIENT);
    let reloaded = zkutil::testing::poll_until(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || {
            server
                .stderr()
                .contains("TLS certificates changed: the next connection uses them")
                .then_some(())
        },
    );
    assert!(reloaded.is_some(), "no reload: {}", server.stderr());
    zk.restart().expect("ZooKeeper restarts");
    let told = zkutil::testing::poll_until(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(100),
        || {
            server
                .stderr()
                .lines()
                .find(|line| {
                    line.contains("WARN") && line.contains("it expired on 2001-01-01T00:00:00Z")
                })
                .map(str::to_owned)
        },
    );
    assert!(
        told.is_some(),
        "the expiry was never named:\n{}",
        server.stderr()
    );
}
