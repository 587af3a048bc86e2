//! Creating a registration: the base path and the node, adopting our own
//! node, and another live session's node replaced only with proof or force.

use zkutil::{BasePath, Metadata, Outcome, Registration, Takeover};

use crate::support::{session, zookeeper};

use super::{endpoint, metadata};

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
    let base = BasePath::from_static("/go_servers");
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
    let reg = Registration::register(&s, &BasePath::from_static("/go_servers"), e, &metadata(e))
        .expect("registers");
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
    let reg_a = Registration::register(&a, &BasePath::from_static("/go_servers"), e, &metadata(e))
        .expect("registers");
    // A second live registration of the same address, forced, replaces a's
    // node. a's maintainer may re-create the node
    // in the moment between b's delete and b's create, but b then replaces
    // it again, and a never deletes a node of a live session: once b's
    // register returns, the node is b's.
    let data = metadata(e).to_json();
    let reg_b = Registration::register_with(
        &b,
        &BasePath::from_static("/go_servers"),
        e,
        data,
        Takeover::Force,
    )
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

/// A registration dropped (or deregistered) lets the same session register
/// the same endpoint again at once: its claim on the path is gone by the
/// time the drop returns, never "registered already by this session".
#[test]
fn a_dropped_registration_can_be_made_again_at_once_on_the_same_session() {
    let zk = zookeeper();
    let s = session(&zk);
    let e = endpoint("127.0.0.1:8897");
    let base = BasePath::from_static("/again");
    // Busy threads, as on a loaded machine: the keeper thread is then
    // descheduled at any point of its end, where the race was.
    let busy = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let busy = busy.clone();
            std::thread::spawn(move || {
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let _stop = StopSpinning(busy, spinners);
    for round in 0..500 {
        let reg = Registration::register(&s, &base, e, &metadata(e))
            .unwrap_or_else(|err| panic!("round {round}: {err:?}"));
        if round % 2 == 0 {
            drop(reg);
        } else {
            reg.deregister()
                .unwrap_or_else(|err| panic!("round {round}: deregistering: {err:?}"));
        }
    }
}

/// Ends the busy threads when the test ends, also by a panic.
struct StopSpinning(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<std::thread::JoinHandle<()>>,
);

impl Drop for StopSpinning {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
        for spinner in self.1.drain(..) {
            let _ = spinner.join();
        }
    }
}
