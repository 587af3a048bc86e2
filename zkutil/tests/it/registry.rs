//! Registrations: ephemeral nodes with metadata, owner-aware.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use zkutil::testing::wait_until;
use zkutil::{BasePath, Endpoint, Metadata, Registration};
use zkutil::{OpenParent, Outcome, Registrar, SessionConfig, Takeover};

use crate::support::{proxy_to, session, zookeeper};

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

/// A session with digest auth on `hosts`.
fn with_auth(hosts: String, session_timeout: Duration) -> Arc<zkutil::Session> {
    Arc::new(
        SessionConfig::new(hosts)
            .with_session_timeout(session_timeout)
            .with_digest_auth(zkutil::Secret::new("svc:pw"))
            .connect()
            .expect("an authenticated session"),
    )
}

/// A stranger (no auth) can neither add an instance under `parent` nor
/// delete `ours`.
#[track_caller]
fn closed_to_strangers(stranger: &zkutil::Session, parent: &str, ours: &str) {
    let fake = format!("{parent}/10.6.6.6:80");
    match stranger.create_ephemeral(&fake, b"") {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger creating {fake}: {other:?}"),
    }
    match stranger.delete(ours, None) {
        Err(err) if err.is_no_auth() => {}
        other => panic!("a stranger deleting {ours}: {other:?}"),
    }
}

/// With auth and `OpenParent::Tighten`, a parent that a stranger re-created
/// open while our session was expired (our node gone, the parent empty) is
/// tightened before the keeper re-registers: the re-registration is as
/// closed to strangers as the first one.
#[test]
fn a_parent_recreated_open_during_an_expiry_is_tightened_before_re_registering() {
    let zk = zookeeper();
    let proxy = proxy_to(&zk, Duration::ZERO);
    let owner = with_auth(proxy.addr().to_string(), Duration::from_secs(2));
    let stranger = session(&zk);
    let e = endpoint("127.0.0.1:8897");
    let reg = Registrar::new(BasePath::default())
        .open_parent(OpenParent::Tighten)
        .register(&owner, e, &metadata(e))
        .expect("registers under a fresh (tight) parent");
    let path = reg.path();
    closed_to_strangers(&stranger, "/go_servers", &path);
    // Cut off until ZooKeeper expires the session and deletes our node.
    proxy.hold();
    wait_until(
        Duration::from_secs(20),
        "our node went with the session",
        || stranger.stat(&path).ok()?.is_none().then_some(()),
    );
    stranger
        .delete("/go_servers", None)
        .expect("deletes the empty parent");
    stranger
        .ensure_path("/go_servers")
        .expect("re-creates it open");
    proxy.release();
    wait_until(Duration::from_secs(30), "re-registered", || {
        stranger.stat(&path).ok().flatten()
    });
    closed_to_strangers(&stranger, "/go_servers", &path);
    reg.deregister().expect("deregisters");
}

/// With auth, a parent open to every address through the `ip` scheme
/// (`ip:0.0.0.0/0:cdrwa`: no `world:anyone` in sight) is as open as the
/// world's: refused by default with one line naming that ACL, tightened
/// with `OpenParent::Tighten`.
#[test]
fn a_parent_open_through_the_ip_scheme_is_refused_or_tightened_like_an_open_world() {
    let zk = zookeeper();
    let stranger = session(&zk);
    stranger.ensure_path("/go_servers").expect("creates");
    let out = zkutil::testing::zk_cli(
        &zk.connect_string(),
        &["setAcl", "/go_servers", "ip:0.0.0.0/0:cdrwa"],
    );
    let owner = with_auth(zk.connect_string(), Duration::from_secs(10));
    let e = endpoint("127.0.0.1:8897");
    match Registration::register(&owner, &BasePath::default(), e, &metadata(e)) {
        Err(err @ zkutil::Error::OpenAcl { .. }) => {
            let message = err.to_string();
            assert!(
                message.contains("/go_servers has the open ACL ip:0.0.0.0/0:cdrwa")
                    && !message.contains('\n'),
                "{message}"
            );
        }
        Err(err) => panic!("{err} (setAcl said: {out})"),
        Ok(reg) => panic!(
            "registered {} under a parent open through the ip scheme (setAcl said: {out})",
            reg.path()
        ),
    }
    assert_eq!(
        stranger.children("/go_servers").expect("lists"),
        Vec::<String>::new()
    );
    let reg = Registrar::new(BasePath::default())
        .open_parent(OpenParent::Tighten)
        .register(&owner, e, &metadata(e))
        .expect("tightens, then registers");
    closed_to_strangers(&stranger, "/go_servers", &reg.path());
    reg.deregister().expect("deregisters");
}

/// The last operation and the count of requests ZooKeeper has received on
/// the connection of session `id` (`cons`: `lop=GETD`, `recved=12`).
fn last_operation(zk: &zkutil::testing::ZkServer, id: zkutil::SessionId) -> Option<(String, u64)> {
    let cons = zkutil::testing::four_letter_word(zk.port(), "cons")?;
    let line = cons
        .lines()
        .find(|line| line.contains(&format!("sid={id:#x},")))?;
    let field = |key: &str| {
        let rest = line.split(&format!("{key}=")).nth(1)?;
        Some(rest.split([',', ')']).next()?.to_owned())
    };
    Some((field("lop")?, field("recved")?.parse().ok()?))
}

/// Two serverset registrants racing for one address: when the winner goes
/// after the waiting one has read its member but before it has watched it
/// (an exists-watch on a name that is never created again), the waiting one
/// still takes the address over. The waiting registrant's answers come
/// 500 ms late: the winner stops as soon as ZooKeeper has served the
/// waiting one's read of the winner's member (its connection's last
/// operation), 500 ms before that registrant can ask for the watch.
#[test]
fn a_serverset_registrant_takes_over_from_a_winner_gone_before_it_was_watched() {
    let zk = zookeeper();
    let proxy = proxy_to(&zk, Duration::from_millis(500));
    let slow = Arc::new(
        SessionConfig::new(proxy.addr().to_string())
            .with_session_timeout(Duration::from_secs(30))
            .with_request_timeout(Duration::from_secs(20))
            .connect()
            .expect("a slow session"),
    );
    let (other, operator) = (session(&zk), session(&zk));
    // Made here, not by the slow registrant: fewer slow round trips.
    operator
        .ensure_path("/race/time")
        .expect("creates the parent");
    let e = endpoint("127.0.0.1:8897");
    let registrar = Registrar::new(BasePath::from_static("/race/time"))
        .format(zkutil::Format::Serverset)
        .expect("writable");
    let waiting = registrar
        .register(&slow, e, &metadata(e))
        .expect("registers");
    // Its member deleted: the other registrant takes the address at once,
    // and the slow one's keeper finds it holding it.
    operator.delete(&waiting.path(), None).expect("deletes");
    let (_, before) = last_operation(&zk, slow.id()).expect("the slow session's connection");
    let winner = registrar
        .register(&other, e, &metadata(e))
        .expect("the other registers");
    zkutil::testing::poll_until(Duration::from_secs(15), Duration::from_millis(5), || {
        let (op, received) = last_operation(&zk, slow.id())?;
        (op == "GETD" && received > before).then_some(())
    })
    .expect("the waiting registrant reads the winner's member");
    winner.deregister().expect("the winner stops");
    let members = wait_until(
        Duration::from_secs(15),
        "the waiting registrant took over",
        || {
            let members = members_of(&operator, "/race/time", e);
            (!members.is_empty()).then_some(members)
        },
    );
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].1, slow.id());
    drop(waiting);
}
