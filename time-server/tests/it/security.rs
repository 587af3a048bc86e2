//! Auth and ACLs: with credentials, only the registering identity can
//! delete or overwrite a registration; anyone can discover it.

use std::time::Duration;

use zkutil::{Secret, Session, SessionConfig, ZkErrorKind};

use crate::support::{ServerProcess, children, observer, zookeeper};

const PASSWORD: &str = "s3cret-Pa55";

fn session_as(hosts: &str, auth: Option<&str>) -> Session {
    let mut config = SessionConfig::new(hosts);
    if let Some(auth) = auth {
        config = config.with_digest_auth(Secret::new(auth));
    }
    config.connect().expect("connects to ZooKeeper")
}

#[track_caller]
fn assert_no_auth(result: zkutil::Result<impl std::fmt::Debug>, what: &str) {
    match result {
        Err(zkutil::Error::Zk { source, .. }) if source.kind() == ZkErrorKind::NoAuth => {}
        other => panic!("{what}: expected NoAuth, got {other:?}"),
    }
}

#[test]
fn with_auth_others_can_list_but_not_delete_overwrite_or_forge_registrations() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let auth = format!("svc:{PASSWORD}");
    let server = ServerProcess::start_with_log_filter(
        &[
            "--zk",
            &hosts,
            "--zk-auth",
            &auth,
            "--listen",
            "127.0.0.1:0,127.0.0.1:0",
        ],
        "trace",
    );
    let names = server.registered(2);
    for (label, credentials) in [
        ("no credentials", None),
        ("wrong credentials", Some("svc:wrong")),
    ] {
        let intruder = session_as(&hosts, credentials);
        let listed = intruder
            .children("/go_servers")
            .unwrap_or_else(|e| panic!("{label}: cannot list: {e}"));
        assert_eq!(listed.len(), 2, "{label}");
        for name in &names {
            let path = format!("/go_servers/{name}");
            assert_no_auth(
                intruder.delete(&path, None),
                &format!("{label} deleting {path}"),
            );
            assert_no_auth(
                intruder.set_data(&path, b"{}", None),
                &format!("{label} overwriting {path}"),
            );
            intruder
                .get_data(&path)
                .unwrap_or_else(|e| panic!("{label}: cannot read {path}: {e}"));
        }
        assert_no_auth(
            intruder.create_ephemeral("/go_servers/10.6.6.6:6666", b"{}"),
            &format!("{label} registering a fake endpoint"),
        );
    }
    let obs = observer(&zk);
    let mut after = children(&obs, "/go_servers");
    let mut expected = names.clone();
    after.sort();
    expected.sort();
    assert_eq!(after, expected, "the server's nodes must stay");
    let log = server.stderr();
    assert!(!log.is_empty());
    assert!(
        !log.contains(PASSWORD),
        "the password appears in the server's trace log"
    );
    assert!(!log.contains("open ACL"), "{log}");
}

#[test]
fn without_auth_one_warning_says_registrations_are_open() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--listen",
        "127.0.0.1:0,127.0.0.1:0,127.0.0.1:0",
    ]);
    server.registered(3);
    server.wait_for_log("open ACL", 1, Duration::from_secs(5));
    assert_eq!(server.log_count("open ACL"), 1, "{}", server.stderr());
}

#[test]
fn the_password_is_not_shown_by_help_or_errors() {
    let hosts = "127.0.0.1:1";
    let mut server = ServerProcess::start(&[
        "--zk",
        hosts,
        "--zk-auth",
        &format!("svc:{PASSWORD}"),
        "--startup-timeout",
        "1s",
        "--zk-connect-timeout",
        "500ms",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!server.wait(Duration::from_secs(20)).success());
    assert!(!server.stderr().contains(PASSWORD), "{}", server.stderr());
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_time-server"))
        .arg("--help")
        .env("ZK_AUTH", format!("svc:{PASSWORD}"))
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--zk-auth") && !help.contains(PASSWORD),
        "{help}"
    );
}

#[test]
fn an_operator_identity_may_take_a_server_out_of_rotation_but_not_delete_it() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    let server = ServerProcess::start_with_log_filter(
        &[
            "--zk",
            &hosts,
            "--zk-auth",
            &format!("svc:{PASSWORD}"),
            "--operator",
            "ops:0p-Pa55",
            "--listen",
            "127.0.0.1:0",
        ],
        "trace",
    );
    let name = server.registered(1).remove(0);
    let endpoint: zkutil::Endpoint = name.parse().expect("an endpoint");
    let path = format!("/go_servers/{name}");
    let base = zkutil::BasePath::from_static("/go_servers");
    let off = zkutil::Control::Disable {
        reason: Some("ops".into()),
    };
    for (label, credentials) in [
        ("no credentials", None),
        ("another identity", Some("dev:0p-Pa55")),
        (
            "the operator's name with a wrong password",
            Some("ops:wrong"),
        ),
    ] {
        let session = session_as(&hosts, credentials);
        match off.apply_to(&session, &base, endpoint) {
            Err(err) if err.is_no_auth() => {}
            other => panic!("{label}: expected NoAuth, got {other:?}"),
        }
    }
    let operator = session_as(&hosts, Some("ops:0p-Pa55"));
    off.apply_to(&operator, &base, endpoint)
        .expect("the operator may disable it");
    assert_no_auth(operator.delete(&path, None), "the operator deleting it");
    let instance = zkutil::list_instances(&operator, &base, true)
        .expect("lists")
        .pop()
        .expect("still registered");
    assert!(!instance.is_enabled());
    zkutil::Control::Enable
        .apply_to(&operator, &base, endpoint)
        .expect("and enable it again");
    let log = server.stderr();
    assert!(
        !log.contains("0p-Pa55"),
        "the operator's password is logged"
    );
}

/// `/go_servers` as the post's Go server leaves it: created without auth,
/// with ZooKeeper's open ACL (`WorldACL(PermAll)`, `world:anyone:cdrwa`).
fn base_path_left_open(hosts: &str, path: &str) {
    session_as(hosts, None)
        .ensure_path(path)
        .unwrap_or_else(|e| panic!("creating {path}: {e}"));
}

/// What a stranger without credentials can do to `parent` and to the
/// registration `node` under it: list, forge a child, delete the node.
#[track_caller]
fn assert_stranger_can_only_list(hosts: &str, parent: &str, node: &str) {
    let stranger = session_as(hosts, None);
    let listed = stranger
        .children(parent)
        .unwrap_or_else(|e| panic!("the world can no longer list {parent}: {e}"));
    assert!(
        listed.iter().any(|name| format!("{parent}/{name}") == node),
        "{node} is not listed in {listed:?}"
    );
    let forged = format!("{parent}/6.6.6.6:80");
    assert_no_auth(
        stranger.create_ephemeral(&forged, b""),
        &format!("a stranger creating {forged}"),
    );
    assert_no_auth(
        stranger.delete(node, None),
        &format!("a stranger deleting {node}"),
    );
}

#[test]
fn with_auth_the_server_refuses_a_base_path_left_open_naming_path_acl_and_fix() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    base_path_left_open(&hosts, "/go_servers");
    let mut server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth",
        &format!("svc:{PASSWORD}"),
        "--listen",
        "127.0.0.1:0",
    ]);
    let status = server.wait(Duration::from_secs(20));
    let log = server.stderr();
    assert!(!status.success(), "it started on an open path: {log}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("time-server: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {log}");
    for part in ["/go_servers", "world:anyone:cdrwa", "--tighten-acl"] {
        assert!(
            errors[0].contains(part),
            "{part:?} not named: {}",
            errors[0]
        );
    }
    assert!(
        children(&observer(&zk), "/go_servers").is_empty(),
        "it registered under the open path"
    );
}

#[test]
fn with_tighten_acl_an_open_base_path_is_closed_to_strangers_and_still_listed() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    base_path_left_open(&hosts, "/go_servers");
    let server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth",
        &format!("svc:{PASSWORD}"),
        "--operator",
        "ops:0p-Pa55",
        "--tighten-acl",
        "--listen",
        "127.0.0.1:0",
    ]);
    let name = server.registered(1).remove(0);
    assert_stranger_can_only_list(&hosts, "/go_servers", &format!("/go_servers/{name}"));
    // The operator still has what it needs: it lists the parent and takes
    // the server out of rotation.
    let operator = session_as(&hosts, Some("ops:0p-Pa55"));
    let endpoint: zkutil::Endpoint = name.parse().expect("an endpoint");
    zkutil::Control::Disable { reason: None }
        .apply_to(
            &operator,
            &zkutil::BasePath::from_static("/go_servers"),
            endpoint,
        )
        .expect("the operator may disable it");
}

#[test]
fn with_tighten_acl_but_no_admin_on_the_open_path_the_server_refuses_saying_so() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    base_path_left_open(&hosts, "/go_servers");
    // Open to create and delete children, but nobody may change its ACL.
    zkutil::testing::zk_cli(&hosts, &["setAcl", "/go_servers", "world:anyone:cdrw"]);
    let mut server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth",
        &format!("svc:{PASSWORD}"),
        "--tighten-acl",
        "--listen",
        "127.0.0.1:0",
    ]);
    let status = server.wait(Duration::from_secs(20));
    let log = server.stderr();
    assert!(!status.success(), "it started on an open path: {log}");
    let errors: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("time-server: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {log}");
    for part in [
        "/go_servers has the open ACL world:anyone:cdrw",
        "cannot tighten it (no ADMIN permission on it)",
    ] {
        assert!(
            errors[0].contains(part),
            "{part:?} not named: {}",
            errors[0]
        );
    }
}

#[test]
fn with_auth_a_curator_service_path_left_open_is_refused_or_tightened() {
    let zk = zookeeper();
    let hosts = zk.connect_string();
    base_path_left_open(&hosts, "/services/time");
    let auth = format!("svc:{PASSWORD}");
    let common = [
        "--zk",
        &hosts,
        "--zk-auth",
        &auth,
        "--format",
        "curator",
        "--listen",
        "127.0.0.1:0",
    ];
    let mut refused = ServerProcess::start(&common);
    assert!(!refused.wait(Duration::from_secs(20)).success());
    let log = refused.stderr();
    assert!(
        log.contains("/services/time has the open ACL world:anyone:cdrwa"),
        "{log}"
    );
    let mut tightening = common.to_vec();
    tightening.push("--tighten-acl");
    let server = ServerProcess::start(&tightening);
    let name = server.registered(1).remove(0);
    assert_stranger_can_only_list(&hosts, "/services/time", &format!("/services/time/{name}"));
}

#[test]
fn with_auth_zookeeper_down_at_start_is_retried_and_then_an_open_base_path_refused() {
    let mut zk = zookeeper();
    let hosts = zk.connect_string();
    base_path_left_open(&hosts, "/go_servers");
    zk.kill();
    let mut server = ServerProcess::start(&[
        "--zk",
        &hosts,
        "--zk-auth",
        &format!("svc:{PASSWORD}"),
        "--zk-connect-timeout",
        "500ms",
        "--listen",
        "127.0.0.1:0",
    ]);
    // Down is not a reason to give up: retried, as without auth.
    server.wait_for_log("ZooKeeper unreachable", 2, Duration::from_secs(30));
    assert!(server.try_status().is_none(), "{}", server.stderr());
    zk.restart().unwrap_or_else(|e| panic!("restart: {e}"));
    let status = server.wait(Duration::from_secs(30));
    let log = server.stderr();
    assert!(!status.success(), "{log}");
    assert_eq!(
        log.matches("/go_servers has the open ACL world:anyone:cdrwa")
            .count(),
        1,
        "{log}"
    );
}
