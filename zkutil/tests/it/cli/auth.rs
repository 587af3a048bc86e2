//! `--zk-auth`: discovery still works for everyone, and a registration is
//! made only under a parent closed to strangers, also after an expiry.

use std::sync::Arc;
use std::time::Duration;

use zkutil::Endpoint;
use zkutil::testing::{Responder, wait_until};

use crate::support::{session, zookeeper};

use super::{register, running, stop_with, text, zkutil};

#[test]
fn with_auth_the_cli_and_the_client_can_still_discover() {
    let zk = zookeeper();
    let owner = zkutil::SessionConfig::new(zk.connect_string())
        .with_digest_auth(zkutil::Secret::new("svc:pw"))
        .connect()
        .map(Arc::new)
        .expect("connects to ZooKeeper");
    let responder = Responder::time().expect("a responder");
    let _reg = register(&owner, Endpoint::new(responder.addr()));
    let hosts = zk.connect_string();
    let output = zkutil(&["--zk", &hosts, "ls", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains(&responder.addr().to_string()));
    let config = time_client::Config {
        count: 3,
        interval: Duration::ZERO,
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!(summary.ok, 3);
    // Another identity cannot hijack the registration, even with the
    // owner-aware takeover that replaces stale nodes.
    let output = zkutil(&[
        "--zk",
        &hosts,
        "--zk-auth",
        "intruder:pw",
        "register",
        &responder.addr().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr.matches("not authorized").count(),
        1,
        "one cause, once: {stderr}"
    );
    let stat = owner
        .stat(&format!("/go_servers/{}", responder.addr()))
        .ok()
        .flatten();
    assert_eq!(stat.map(|s| s.ephemeral_owner()), Some(owner.id()));
}

#[test]
fn register_with_auth_refuses_an_open_parent_in_every_format_and_tightens_it_when_asked() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    // Created without auth, as the post's Go server creates /go_servers:
    // ZooKeeper's open ACL, world:anyone:cdrwa.
    let stranger = zkutil::SessionConfig::new(&hosts)
        .connect()
        .expect("connects to ZooKeeper");
    let responder = Responder::time().expect("a responder");
    let endpoint = responder.addr().to_string();
    for (format, parent) in [
        ("plain", "/go_servers"),
        ("curator", "/services/time"),
        ("serverset", "/aurora/time"),
    ] {
        stranger.ensure_path(parent).expect("an open parent");
        let args = [
            "--zk",
            &hosts,
            "--zk-auth",
            "svc:pw",
            "register",
            &endpoint,
            "--format",
            format,
            "--serverset-path",
            "/aurora/time",
        ];
        // A process with a deadline: a registrant that does not refuse
        // holds its node until stopped.
        let mut refused = running(&args);
        let status = refused.wait(Duration::from_secs(20));
        let stderr = refused.stderr_text();
        assert_eq!(status.code(), Some(1), "{format}: {stderr}");
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|line| line.starts_with("zkutil: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{format}: one error line: {stderr}");
        for part in [
            format!("{parent} has the open ACL world:anyone:cdrwa"),
            "--tighten-acl".to_owned(),
        ] {
            assert!(
                errors[0].contains(&part),
                "{format}: {part:?} not in {stderr}"
            );
        }
        assert_eq!(
            stranger.children(parent).expect("lists"),
            Vec::<String>::new(),
            "{format}: registered under an open parent"
        );

        let mut tightening = args.to_vec();
        tightening.push("--tighten-acl");
        let mut sidecar = running(&tightening);
        let node =
            zkutil::testing::poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
                let name = stranger.children(parent).ok()?.pop()?;
                Some(format!("{parent}/{name}"))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{format}: not registered with --tighten-acl: {}",
                    sidecar.stderr_text()
                )
            });
        let forged = format!("{parent}/6.6.6.6:80");
        match stranger.create_ephemeral(&forged, b"") {
            Err(err) if err.is_no_auth() => {}
            other => panic!("{format}: a stranger creating {forged}: {other:?}"),
        }
        match stranger.delete(&node, None) {
            Err(err) if err.is_no_auth() => {}
            other => panic!("{format}: a stranger deleting {node}: {other:?}"),
        }
        assert!(
            stranger.get_data(&node).is_ok(),
            "{format}: the world still reads it"
        );
        let status = stop_with(&mut sidecar, "TERM");
        assert!(status.success(), "{format}: {status}");
    }
}

/// With `--zk-auth`, nobody else can add an instance under our parent or
/// delete ours, across an expiry too: while the registrant was away (its
/// session expired, the parent left empty), a stranger replaced the parent
/// by an open one. The registrant does not re-register there: one error
/// line naming the path, the ACL and the fix; it keeps trying, and
/// registers once the parent is fixed, under a parent closed to strangers.
#[test]
fn register_with_auth_does_not_re_register_under_a_parent_recreated_open_meanwhile() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let stranger = session(&zk); // no auth
    let responder = Responder::time().expect("a responder");
    let endpoint = responder.addr().to_string();
    let node = format!("/go_servers/{endpoint}");
    let mut sidecar = running(&[
        "--zk",
        &hosts,
        "--zk-auth",
        "svc:pw",
        "--session-timeout",
        "2s",
        "register",
        &endpoint,
    ]);
    wait_until(Duration::from_secs(20), "registered", || {
        stranger.stat(&node).ok().flatten()
    });
    // Frozen past its session timeout: ZooKeeper expires the session and
    // deletes the node; the parent is left empty.
    sidecar.signal("STOP");
    wait_until(
        Duration::from_secs(20),
        "the sidecar's session expired",
        || (zkutil::testing::mntr_value(zk.port(), "zk_global_sessions") == Some(1)).then_some(()),
    );
    // The stranger replaces it by an open one (DELETE on `/` is
    // ZooKeeper's default; so is the world's ALL on a new node).
    stranger
        .delete("/go_servers", None)
        .expect("deletes the empty parent");
    stranger
        .ensure_path("/go_servers")
        .expect("re-creates it open");
    sidecar.signal("CONT");
    sidecar.wait_for_log(
        "/go_servers has the open ACL world:anyone:cdrwa",
        1,
        Duration::from_secs(20),
    );
    assert_eq!(
        stranger.children("/go_servers").expect("lists"),
        Vec::<String>::new(),
        "re-registered under the open parent: {}",
        sidecar.stderr_text()
    );
    // Fixed (here: the open parent removed, so the registrant creates it
    // with its own ACL): registered again, closed to strangers.
    stranger
        .delete("/go_servers", None)
        .expect("deletes the open parent");
    wait_until(Duration::from_secs(20), "re-registered", || {
        stranger.stat(&node).ok().flatten()
    });
    match stranger.create_ephemeral("/go_servers/10.6.6.6:80", b"") {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger adding a fake instance: {other:?}"),
    }
    match stranger.delete(&node, None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger deleting {node}: {other:?}"),
    }
    assert_eq!(
        sidecar.log_count("has the open ACL"),
        1,
        "one error line while refusing: {}",
        sidecar.stderr_text()
    );
    assert!(stop_with(&mut sidecar, "TERM").success());
}

/// `--tighten-acl` takes any identity, a client certificate too: the open
/// parent a certificate-less client made becomes the certificate's ALL and
/// the world's READ, and the registration is made under it.
#[test]
fn register_with_a_client_certificate_tightens_an_open_parent_when_asked() {
    let zk = zkutil::testing::ZkServer::start_with(zkutil::testing::ZkOptions {
        tls: Some(zkutil::testing::TlsMode::Want),
        ..zkutil::testing::ZkOptions::default()
    })
    .expect("starts a TLS ZooKeeper");
    let anonymous = zk
        .session_config(None)
        .connect()
        .expect("connects without a certificate");
    anonymous.ensure_path("/open").expect("an open parent");
    assert_eq!(
        anonymous.acl("/open").expect("reads the ACL"),
        ["world:anyone:cdrwa"]
    );
    let hosts = zk.connect_string();
    let mut args = vec!["--zk", &hosts, "--base-path", "/open"];
    let flags = zk.cli_tls_flags("alice");
    args.extend(flags.iter().map(String::as_str));
    args.extend(["register", "127.0.0.1:18123", "--tighten-acl"]);
    let mut sidecar = running(&args);
    let registered =
        zkutil::testing::poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
            (!anonymous.children("/open").ok()?.is_empty()).then_some(())
        });
    assert!(
        registered.is_some(),
        "not registered with --tighten-acl: {}",
        sidecar.stderr_text()
    );
    assert_eq!(
        anonymous.acl("/open").expect("reads the ACL"),
        ["x509:CN=alice:cdrwa", "world:anyone:r"]
    );
    assert!(stop_with(&mut sidecar, "TERM").success());
}
