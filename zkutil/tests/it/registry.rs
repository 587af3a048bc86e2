//! Registrations: ephemeral nodes with metadata, owner-aware.

use std::time::{Duration, SystemTime};

use zkutil::Outcome;
use zkutil::testing::wait_until;
use zkutil::{BasePath, Endpoint, Metadata, Registration};

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
    assert_eq!(reg.path(), "/deep/go_servers/127.0.0.1:8897");
    assert_eq!(reg.outcome(), Outcome::Created);
    let (data, stat) = s.get_data(reg.path()).expect("reads the node");
    assert_eq!(stat.ephemeral_owner(), s.id());
    let parsed = Metadata::from_json(reg.path(), &data).expect("valid metadata");
    assert_eq!(parsed.port(), 8897);
    assert_eq!(parsed.pid(), std::process::id());
    // The base path is persistent.
    let base = s
        .stat("/deep/go_servers")
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no base path"));
    assert_eq!(base.ephemeral_owner(), 0);
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
fn a_stale_node_of_another_session_is_replaced_and_our_own_is_adopted() {
    let zk = zookeeper();
    let old = session(&zk);
    let new = session(&zk);
    let e = endpoint("127.0.0.1:8898");
    let path = "/go_servers/127.0.0.1:8898";
    new.ensure_path("/go_servers").expect("creates the path");
    old.create_ephemeral(path, b"{}").expect("creates the node");
    let reg =
        Registration::register(&new, &BasePath::default(), e, &metadata(e)).expect("registers");
    assert_eq!(
        reg.outcome(),
        Outcome::ReplacedStale {
            previous_owner: old.id()
        }
    );
    let stat = new
        .stat(path)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("node missing"));
    assert_eq!(stat.ephemeral_owner(), new.id());
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
        .stat(reg.path())
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
    // A second live registration of the same address replaces a's node at
    // start, as it would a stale one. a's maintainer may re-create the node
    // in the moment between b's delete and b's create, but b then replaces
    // it again, and a never deletes a node of a live session: once b's
    // register returns, the node is b's.
    let reg_b =
        Registration::register(&b, &BasePath::default(), e, &metadata(e)).expect("registers");
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
        .stat(reg.path())
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("not registered"));
    operator.delete(reg.path(), None).expect("deletes the node");
    let started = std::time::Instant::now();
    let after = wait_until(Duration::from_secs(10), "the node is re-created", || {
        operator
            .stat(reg.path())
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
            let owners: Vec<i64> = regs
                .iter()
                .filter_map(|r| {
                    observer
                        .stat(r.path())
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
