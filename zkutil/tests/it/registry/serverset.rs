//! Serverset members (sequential names): one per endpoint across expiry,
//! restarts and races between registrants.

use std::sync::Arc;
use std::time::Duration;

use zkutil::testing::wait_until;
use zkutil::{BasePath, Endpoint, Registrar, Registration, SessionConfig, Takeover};

use crate::support::{proxy_to, session, zookeeper};

use super::{endpoint, metadata};

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

/// How late the waiting registrant hears ZooKeeper: the time the test has
/// for each step of a race, so a second of it on a busy machine is margin.
const RACE_DELAY: Duration = Duration::from_secs(1);

/// Two registrants of one address under `parent`: the waiting one (its
/// session's answers [`RACE_DELAY`] late, through `proxy`) lost its member to an
/// operator's delete, the holder (`other`'s session) took the address at
/// once, and ZooKeeper has just served the waiting one's read of the
/// holder's member (its connection's last operation): the answer is
/// [`RACE_DELAY`] from the waiting registrant.
struct Race {
    proxy: zkutil::testing::DelayProxy,
    slow: Arc<zkutil::Session>,
    operator: Arc<zkutil::Session>,
    waiting: Registration,
    holder: Registration,
}

impl Race {
    fn start(zk: &zkutil::testing::ZkServer, parent: &'static str, e: Endpoint) -> Race {
        let proxy = proxy_to(zk, RACE_DELAY);
        let slow = Arc::new(
            SessionConfig::new(proxy.addr().to_string())
                .with_session_timeout(Duration::from_secs(30))
                .with_request_timeout(Duration::from_secs(20))
                .connect()
                .expect("a slow session"),
        );
        let (other, operator) = (session(zk), session(zk));
        // Made here, not by the slow registrant: fewer slow round trips.
        operator.ensure_path(parent).expect("creates the parent");
        let registrar = Registrar::new(BasePath::from_static(parent))
            .format(zkutil::Format::Serverset)
            .expect("writable");
        let waiting = registrar
            .register(&slow, e, &metadata(e))
            .expect("registers");
        // Its member deleted: the other registrant takes the address at
        // once, and the slow one's keeper finds it holding it.
        operator.delete(&waiting.path(), None).expect("deletes");
        let (_, before) = last_operation(zk, slow.id()).expect("the slow session's connection");
        let holder = registrar
            .register(&other, e, &metadata(e))
            .expect("the other registers");
        zkutil::testing::poll_until(Duration::from_secs(15), Duration::from_millis(2), || {
            let (op, received) = last_operation(zk, slow.id())?;
            // A read of its data: alone, or in a multi-read (ZooKeeper's
            // `cons` names them GETD and MLTR).
            (["GETD", "MLTR"].contains(&op.as_str()) && received > before).then_some(())
        })
        .expect("the waiting registrant reads the holder's member");
        Race {
            proxy,
            slow,
            operator,
            waiting,
            holder,
        }
    }
}

/// Two serverset registrants racing for one address: when the winner goes
/// after the waiting one has read its member but before it has watched it
/// (an exists-watch on a name that is never created again), the waiting one
/// still takes the address over. The winner stops as soon as ZooKeeper has
/// served the waiting one's read of the winner's member, [`RACE_DELAY`]
/// before that registrant can ask for the watch.
#[test]
fn a_serverset_registrant_takes_over_from_a_winner_gone_before_it_was_watched() {
    let zk = zookeeper();
    let e = endpoint("127.0.0.1:8897");
    let race = Race::start(&zk, "/race/time", e);
    race.holder.deregister().expect("the winner stops");
    let members = wait_until(
        Duration::from_secs(15),
        "the waiting registrant took over",
        || {
            let members = members_of(&race.operator, "/race/time", e);
            (!members.is_empty()).then_some(members)
        },
    );
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].1, race.slow.id());
    drop(race.waiting);
}

/// Whether session `id` watches `path`, as ZooKeeper's `wchp` lists it
/// (each path, then the sessions watching it, indented).
fn watched_by(zk: &zkutil::testing::ZkServer, path: &str, id: zkutil::SessionId) -> bool {
    let Some(listing) = zkutil::testing::four_letter_word(zk.port(), "wchp") else {
        return false;
    };
    let session = format!("{id:#x}");
    let mut watchers = listing
        .lines()
        .skip_while(|line| *line != path)
        .skip(1)
        .take_while(|line| line.starts_with(char::is_whitespace));
    watchers.any(|line| line.trim() == session)
}

/// The sequence number ZooKeeper gave member `name` (`member_0000000042`).
fn sequence_of(name: &str) -> u64 {
    name.trim_start_matches("member_")
        .parse()
        .expect("a sequential member name")
}

/// A registrant waiting for another's member of its address reads that
/// member; a connection cut while the answer is on its way must not make
/// the member look absent: the registrant would create a second member for
/// the address (two live members, one address) until its next look. Seen
/// afterwards by the sequence numbers: ZooKeeper numbers every member
/// created under the parent, so the member the waiting registrant makes
/// when the other one goes must come right after the other's.
#[test]
fn a_connection_cut_while_reading_anothers_member_creates_no_second_member() {
    let zk = zookeeper();
    let e = endpoint("127.0.0.1:8898");
    let Race {
        proxy,
        slow,
        operator,
        waiting,
        holder,
    } = Race::start(&zk, "/cut/time", e);
    // ZooKeeper has answered; the answer is RACE_DELAY from the registrant.
    proxy.cut();
    let held_path = holder.path();
    let held = held_path.rsplit('/').next().expect("a member name");
    // Settled: whatever it made meanwhile, it has made, once it watches
    // the other's member again (waiting for it to go).
    wait_until(
        Duration::from_secs(30),
        "the waiting registrant watches the other's member",
        || watched_by(&zk, &held_path, slow.id()).then_some(()),
    );
    holder.deregister().expect("the other stops");
    let members = wait_until(
        Duration::from_secs(30),
        "the waiting registrant took over",
        || {
            let members = members_of(&operator, "/cut/time", e);
            (members.len() == 1 && members[0].1 == slow.id()).then_some(members)
        },
    );
    assert_eq!(
        sequence_of(&members[0].0),
        sequence_of(held) + 1,
        "the waiting registrant created a member ({} after {held}) while another held the address",
        members[0].0
    );
    drop(waiting);
}
