//! `register` as a sidecar: it holds a node a real client uses, removes it
//! on SIGTERM, and takes a live server's address only when forced.

use std::time::Duration;

use serde_json::Value;
use zkutil::testing::{Responder, wait_until};

use crate::support::{InProcessServer, server_config, session, zookeeper};

use super::{
    HUGE_NODES, assert_never_held_them_all, megabyte_pad, roomy_zookeeper, running, stop_with,
    text, zkutil,
};

#[test]
fn register_holds_a_node_that_a_time_client_uses_and_removes_it_on_sigterm() {
    let zk = zookeeper();
    let observer = session(&zk);
    let hosts = zk.connect_string();
    let responder = Responder::time().expect("a responder");
    let endpoint = responder.addr().to_string();
    let mut sidecar = running(&[
        "--zk",
        &hosts,
        "register",
        &endpoint,
        "--metadata",
        r#"{"role":"stand-in"}"#,
    ]);
    let path = format!("/go_servers/{endpoint}");
    let (data, _) = wait_until(Duration::from_secs(20), "the sidecar registers", || {
        observer.get_data(&path).ok()
    });
    let metadata: Value = serde_json::from_slice(&data).expect("valid JSON");
    assert_eq!(
        (metadata["role"].as_str(), metadata["port"].as_u64()),
        (Some("stand-in"), Some(u64::from(responder.addr().port())))
    );

    let config = time_client::Config {
        count: 5,
        interval: Duration::ZERO,
        ..time_client::Config::new(&hosts)
    };
    let (_keep, stop) = std::sync::mpsc::channel();
    let summary = time_client::run(&config, &mut std::io::sink(), &stop).expect("the client runs");
    assert_eq!((summary.ok, summary.failed), (5, 0), "{}", summary.line());

    let status = stop_with(&mut sidecar, "TERM");
    assert!(status.success(), "{status}");
    assert!(
        observer.stat(&path).ok().flatten().is_none(),
        "the node outlived the sidecar"
    );
}

#[test]
fn register_refuses_a_live_servers_address_unless_forced() {
    let zk = zookeeper();
    let observer = session(&zk);
    let hosts = zk.connect_string();
    let server = InProcessServer::start(server_config(&hosts));
    let (name, server_session) =
        wait_until(Duration::from_secs(30), "the server registers", || {
            let name = observer.children("/go_servers").ok()?.pop()?;
            let stat = observer.stat(&format!("/go_servers/{name}")).ok()??;
            Some((name, stat.ephemeral_owner()))
        });
    let path = format!("/go_servers/{name}");
    let owner = || {
        observer
            .stat(&path)
            .ok()
            .flatten()
            .map(|s| s.ephemeral_owner())
    };

    let refused = zkutil(&["--zk", &hosts, "register", &name]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let last = text(&refused.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        last,
        format!(
            "zkutil: error: {name} is registered by live session {server_session}; --force to take over"
        )
    );
    assert_eq!(
        owner(),
        Some(server_session),
        "the live server's node is untouched"
    );

    let mut forced = running(&["--zk", &hosts, "register", &name, "--force"]);
    let taken = wait_until(
        Duration::from_secs(20),
        "--force takes the node over",
        || owner().filter(|o| *o != server_session),
    );
    assert_ne!(taken, server_session);
    let status = stop_with(&mut forced, "TERM");
    assert!(status.success(), "{status}");
    // The server's keeper was waiting for the other holder to go.
    wait_until(
        Duration::from_secs(20),
        "the server registers again",
        || (owner() == Some(server_session)).then_some(()),
    );
    server.stop();
}

/// Someone put many serverset members of nearly a megabyte each (for
/// other addresses) under the path a registrant uses: it reads every one
/// to find the members of its own address, but never holds all of their
/// bytes at once. 150 MB of members; the registrant's peak memory must
/// stay well below that.
#[test]
fn a_serverset_registrant_among_many_megabyte_members_never_holds_them_all_in_memory() {
    let zk = roomy_zookeeper();
    let s = session(&zk);
    s.ensure_path("/huge-set").expect("creates the parent");
    let pad = megabyte_pad();
    for i in 0..HUGE_NODES {
        let member = format!(
            r#"{{"serviceEndpoint":{{"host":"10.0.7.{}","port":{}}},"additionalEndpoints":{{}},"status":"ALIVE","pad":"{pad}"}}"#,
            i % 250,
            1000 + i
        );
        s.create_ephemeral_sequential("/huge-set/member_", member.as_bytes())
            .expect("a member of nearly a megabyte");
    }
    let registrant = running(&[
        "--zk",
        &zk.connect_string(),
        "register",
        "--format",
        "serverset",
        "--serverset-path",
        "/huge-set",
        "10.0.0.1:80",
    ]);
    wait_until(Duration::from_secs(60), "its own member is made", || {
        let children = s.children("/huge-set").unwrap_or_default();
        (children.len() == HUGE_NODES + 1).then_some(())
    });
    assert_never_held_them_all(&registrant, "the registrant");
}
