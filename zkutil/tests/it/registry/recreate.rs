//! A registration kept: re-created after an operator's delete and after an
//! expiry, and never after its deregistration.

use std::time::Duration;

use zkutil::testing::wait_until;
use zkutil::{BasePath, Registration};

use crate::support::{session, zookeeper};

use super::{endpoint, metadata};

#[test]
fn node_deleted_by_operator_is_recreated() {
    let zk = zookeeper();
    let s = session(&zk);
    let operator = session(&zk);
    let e = endpoint("127.0.0.1:8897");
    let reg = Registration::register(&s, &BasePath::from_static("/go_servers"), e, &metadata(e))
        .expect("registers");
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
            Registration::register(&s, &BasePath::from_static("/go_servers"), e, &metadata(e))
                .expect("registers")
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
            Registration::register(&s, &BasePath::from_static("/go_servers"), e, &metadata(e))
                .expect("registers");
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
