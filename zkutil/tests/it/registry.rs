//! Registrations: ephemeral nodes with metadata, owner-aware.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zkutil::testing::wait_until;
use zkutil::{BasePath, Endpoint, Metadata, Registration};
use zkutil::{Outcome, Takeover};

use crate::support::{session, zookeeper};

fn endpoint(text: &str) -> Endpoint {
    text.parse().expect("a valid literal")
}

fn metadata(e: Endpoint) -> Metadata {
    Metadata::for_this_process(e, SystemTime::now(), "test")
}

#[test]
fn register_creates_base_path_and_an_ephemeral_node_owned_by_the_session() {
    let zk = zookeeper();
    let s = session(&zk);
    let e = endpoint("127.0.0.1:8897");
    let reg = Registration::register(
        &s,
        &BasePath::from_static("/deep/go_servers"),
        e,
        &metadata(e),
    )
    .expect("registers");
    assert_eq!(&reg.path(), "/deep/go_servers/127.0.0.1:8897");
    assert_eq!(reg.outcome(), Outcome::Created);
    let (data, stat) = s.get_data(&reg.path()).expect("reads the node");
    assert_eq!(stat.ephemeral_owner(), s.id());
    let parsed = Metadata::from_json(&reg.path(), &data).expect("valid metadata");
    assert_eq!(parsed.port(), 8897);
    assert_eq!(parsed.pid(), std::process::id());
    // The base path is persistent.
    let base = s
        .stat("/deep/go_servers")
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no base path"));
    assert_eq!(
        base.ephemeral_owner().get(),
        0,
        "the base path is persistent"
    );
}

#[test]
fn concurrent_registrations_tolerate_each_other_creating_the_base_path() {
    let zk = zookeeper();
    let sessions: Vec<_> = (0..4).map(|_| session(&zk)).collect();
    let regs: Vec<Registration> = std::thread::scope(|scope| {
        let handles: Vec<_> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| {
                scope.spawn(move || {
                    let e = endpoint(&format!("127.0.0.1:{}", 9000 + i));
                    Registration::register(s, &BasePath::from_static("/race/a/b"), e, &metadata(e))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| panic!("panicked"))
                    .expect("registers")
            })
            .collect()
    });
    let children = sessions[0]
        .children("/race/a/b")
        .expect("lists the children");
    assert_eq!(children.len(), 4, "{children:?}");
    drop(regs);
}

#[test]
fn another_live_sessions_node_is_replaced_only_with_proof_or_force() {
    let zk = zookeeper();
    let old = session(&zk);
    let new = session(&zk);
    let base = BasePath::default();
    let e = endpoint("127.0.0.1:8898");
    let path = "/go_servers/127.0.0.1:8898";
    new.ensure_path("/go_servers").expect("creates the path");
    let register = |data: &[u8], takeover| {
        Registration::register_with(&new, &base, e, data.to_vec(), takeover)
    };

    // Someone else's node (no metadata naming this host): refused, named.
    old.create_ephemeral(path, b"{}").expect("creates the node");
    for takeover in [Takeover::Refuse, Takeover::SameHost] {
        match register(b"{}", takeover) {
            Err(zkutil::Error::Taken { endpoint, owner }) => {
                assert_eq!((endpoint, owner), (e, old.id()));
            }
            other => panic!("{takeover:?}: expected Taken, got {other:?}"),
        }
    }
    let err = Registration::register(&new, &base, e, &metadata(e)).expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!("127.0.0.1:8898 is registered by live session {}", old.id()),
        "the owner is named, in hex"
    );
    assert!(format!("{}", old.id()).starts_with("0x"));
    let owner = new.stat(path).ok().flatten().map(|s| s.ephemeral_owner());
    assert_eq!(
        owner,
        Some(old.id()),
        "a refused registration leaves the node alone"
    );

    // An earlier run on this host (its metadata names this host): replaced.
    old.delete(path, None).expect("deletes the node");
    old.create_ephemeral(path, &metadata(e).to_json())
        .expect("creates the node");
    let reg = register(&metadata(e).to_json(), Takeover::SameHost).expect("replaces");
    assert_eq!(
        reg.outcome(),
        Outcome::ReplacedStale {
            previous_owner: old.id()
        }
    );
    reg.deregister().expect("deregisters");

    // Forced: replaced whoever holds it.
    old.create_ephemeral(path, b"{}").expect("creates the node");
    let reg = register(b"{}", Takeover::Force).expect("replaces");
    assert_eq!(
        reg.outcome().to_string(),
        format!("replaced the node of session {}", old.id())
    );
    let owner = new.stat(path).ok().flatten().map(|s| s.ephemeral_owner());
    assert_eq!(owner, Some(new.id()));
    reg.deregister().expect("deregisters");
    assert!(new.stat(path).ok().flatten().is_none());
}

#[test]
fn a_node_this_session_already_created_is_adopted() {
    let zk = zookeeper();
    let s = session(&zk);
    let e = endpoint("127.0.0.1:8898");
    s.ensure_path("/go_servers").expect("creates the path");
    // As if an earlier create had succeeded but its answer was lost.
    let created = s
        .create_ephemeral("/go_servers/127.0.0.1:8898", b"{}")
        .expect("creates the node");
    let reg = Registration::register(&s, &BasePath::default(), e, &metadata(e)).expect("registers");
    assert_eq!(reg.outcome(), Outcome::Adopted);
    let stat = s
        .stat(&reg.path())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("node missing"));
    assert_eq!(
        (stat.ephemeral_owner(), stat.ctime_ms()),
        (s.id(), created.ctime_ms())
    );
}

#[test]
fn deregister_does_not_delete_a_node_that_another_session_owns_now() {
    let zk = zookeeper();
    let a = session(&zk);
    let b = session(&zk);
    let e = endpoint("127.0.0.1:8899");
    let reg_a =
        Registration::register(&a, &BasePath::default(), e, &metadata(e)).expect("registers");
    // A second live registration of the same address, forced, replaces a's
    // node. a's maintainer may re-create the node
    // in the moment between b's delete and b's create, but b then replaces
    // it again, and a never deletes a node of a live session: once b's
    // register returns, the node is b's.
    let data = metadata(e).to_json();
    let reg_b = Registration::register_with(&b, &BasePath::default(), e, data, Takeover::Force)
        .expect("registers");
    let path = reg_b.path().to_owned();
    let owner = a
        .stat(&path)
        .ok()
        .flatten()
        .map(|stat| stat.ephemeral_owner());
    assert_eq!(owner, Some(b.id()));
    reg_a.deregister().expect("deregisters");
    let stat = a
        .stat(&path)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("b's node was deleted"));
    assert_eq!(stat.ephemeral_owner(), b.id());
    drop(reg_b);
}

#[test]
fn node_deleted_by_operator_is_recreated() {
    let zk = zookeeper();
    let s = session(&zk);
    let operator = session(&zk);
    let e = endpoint("127.0.0.1:8897");
    let reg = Registration::register(&s, &BasePath::default(), e, &metadata(e)).expect("registers");
    let before = operator
        .stat(&reg.path())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("not registered"));
    operator
        .delete(&reg.path(), None)
        .expect("deletes the node");
    let started = std::time::Instant::now();
    let after = wait_until(Duration::from_secs(10), "the node is re-created", || {
        operator
            .stat(&reg.path())
            .ok()
            .flatten()
            .filter(|stat| stat.ctime_ms() >= before.ctime_ms())
    });
    assert_eq!(after.ephemeral_owner(), s.id());
    // Measured well under a second here; generous for a loaded machine.
    eprintln!(
        "re-created {:?} after the operator's delete",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "re-created after {:?}",
        started.elapsed()
    );
}

#[test]
fn registrations_come_back_after_the_session_expires() {
    let zk = zookeeper();
    let s = session(&zk);
    let observer = session(&zk);
    let regs: Vec<Registration> = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        .iter()
        .map(|t| endpoint(t))
        .map(|e| {
            Registration::register(&s, &BasePath::default(), e, &metadata(e)).expect("registers")
        })
        .collect();
    let old = s.id();
    s.expire_for_testing()
        .unwrap_or_else(|err| panic!("{err:?}"));
    wait_until(
        Duration::from_secs(30),
        "all three nodes are back, owned by a new session",
        || {
            let owners: Vec<zkutil::SessionId> = regs
                .iter()
                .filter_map(|r| {
                    observer
                        .stat(&r.path())
                        .ok()
                        .flatten()
                        .map(|stat| stat.ephemeral_owner())
                })
                .collect();
            (owners.len() == 3 && owners.iter().all(|o| *o == s.id() && *o != old)).then_some(())
        },
    );
    assert_eq!(
        observer.children("/go_servers").map(|c| c.len()).ok(),
        Some(3),
        "duplicates or leftovers"
    );
}

#[test]
fn deregister_during_reregistration_does_not_resurrect() {
    let zk = zookeeper();
    let s = session(&zk);
    let operator = session(&zk);
    for round in 0..20 {
        let e = endpoint(&format!("127.0.0.1:{}", 10_000 + round));
        let reg =
            Registration::register(&s, &BasePath::default(), e, &metadata(e)).expect("registers");
        let path = reg.path().to_owned();
        // The operator's delete wakes the maintainer, which re-creates the
        // node while we deregister.
        operator.delete(&path, None).expect("deletes the node");
        reg.deregister().expect("deregisters");
        assert!(
            operator.stat(&path).ok().flatten().is_none(),
            "round {round}: node resurrected"
        );
    }
    // And it stays gone: nothing is left running that could re-create it.
    let children = operator.children("/go_servers").unwrap_or_default();
    assert!(children.is_empty(), "{children:?}");
}

/// The serverset members under `base` naming `endpoint`: (name, owner).
fn members_of(
    s: &zkutil::Session,
    base: &str,
    endpoint: Endpoint,
) -> Vec<(String, zkutil::SessionId)> {
    let mut found = Vec::new();
    for name in s.children(base).unwrap_or_default() {
        let path = format!("{base}/{name}");
        let Ok((data, stat)) = s.get_data(&path) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_slice(&data).unwrap_or_default();
        let named = format!(
            "{}:{}",
            value["serviceEndpoint"]["host"]
                .as_str()
                .unwrap_or_default(),
            value["serviceEndpoint"]["port"]
        );
        if named == endpoint.to_string() {
            found.push((name, stat.ephemeral_owner()));
        }
    }
    found
}

#[test]
fn a_serverset_member_is_kept_one_per_endpoint_across_expiry_and_restarts() {
    let zk = zookeeper();
    let s = session(&zk);
    let e = endpoint("127.0.0.1:8897");
    let registrar = zkutil::Registrar::new(BasePath::from_static("/aurora/time"))
        .format(zkutil::Format::Serverset)
        .expect("writable");
    let reg = registrar.register(&s, e, &metadata(e)).expect("registers");
    let first = reg.path();
    assert!(first.starts_with("/aurora/time/member_"), "{first}");
    let (data, _) = s.get_data(&first).expect("reads the member");
    let value: serde_json::Value = serde_json::from_slice(&data).expect("JSON");
    assert_eq!(
        value,
        serde_json::json!({"serviceEndpoint":{"host":"127.0.0.1","port":8897},"additionalEndpoints":{},"status":"ALIVE"})
    );

    // Expiry: the member goes with the old session; a new one (a new
    // sequence number) is made under the new session, and only one.
    let old = s.id();
    s.expire_for_testing().expect("expires the session");
    let members = wait_until(
        Duration::from_secs(30),
        "one member under the new session",
        || {
            let members = members_of(&s, "/aurora/time", e);
            // The registration learns the new member's name once made.
            (members.len() == 1
                && members[0].1 == s.id()
                && s.id() != old
                && reg.path() == format!("/aurora/time/{}", members[0].0))
            .then_some(members)
        },
    );
    assert_eq!(members.len(), 1);
    assert_ne!(reg.path(), first);

    // An operator deletes it: re-created.
    let operator = session(&zk);
    operator
        .delete(&reg.path(), None)
        .expect("deletes the member");
    wait_until(Duration::from_secs(30), "re-created", || {
        let members = members_of(&s, "/aurora/time", e);
        (members.len() == 1 && members[0].1 == s.id()).then_some(())
    });

    // Another live session's member of the same endpoint: refused unless
    // the registrant has the proof (SameHost: it just bound the port).
    let other = session(&zk);
    match registrar.clone().register(&other, e, &metadata(e)) {
        Err(zkutil::Error::Taken { owner, .. }) => assert_eq!(owner, s.id()),
        other => panic!("expected Taken, got {other:?}"),
    }
    let restarted = registrar
        .clone()
        .takeover(Takeover::SameHost)
        .register(&other, e, &metadata(e))
        .expect("a fast restart replaces the member");
    let members = members_of(&other, "/aurora/time", e);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].1, other.id());
    restarted.deregister().expect("deregisters");
    drop(reg);
    assert!(members_of(&other, "/aurora/time", e).is_empty());
}

#[test]
fn two_serverset_registrants_racing_for_one_endpoint_never_both_give_up() {
    let zk = zookeeper();
    let sessions = [session(&zk), session(&zk)];
    let e = endpoint("127.0.0.1:8897");
    let registrar = zkutil::Registrar::new(BasePath::from_static("/race/time"))
        .format(zkutil::Format::Serverset)
        .expect("writable");
    let observer = session(&zk);
    let mut both_lost = 0;
    for round in 0..30 {
        let start = Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = sessions
            .iter()
            .map(|s| {
                let (s, start, registrar) = (s.clone(), start.clone(), registrar.clone());
                std::thread::spawn(move || {
                    start.wait();
                    registrar.register(&s, e, &metadata(e))
                })
            })
            .collect();
        let results: Vec<_> = racers
            .into_iter()
            .map(|racer| racer.join().expect("the racer panicked"))
            .collect();
        let won: Vec<&Registration> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        for result in &results {
            if let Err(err) = result {
                assert!(
                    matches!(err, zkutil::Error::Taken { .. }),
                    "round {round}: {err:?}"
                );
            }
        }
        if won.is_empty() {
            both_lost += 1;
            continue;
        }
        assert_eq!(won.len(), 1, "round {round}: both won");
        let members = members_of(&observer, "/race/time", e);
        assert_eq!(members.len(), 1, "round {round}: {members:?}");
        assert_eq!(format!("/race/time/{}", members[0].0), won[0].path());
        drop(results);
        wait_until(Duration::from_secs(10), "the winner deregistered", || {
            members_of(&observer, "/race/time", e)
                .is_empty()
                .then_some(())
        });
    }
    assert_eq!(
        both_lost, 0,
        "rounds in which both registrants gave up, of 30"
    );
}
