//! The faults: how each is injected and recovered from, and whether the
//! registry may change because of it.

use std::net::TcpStream;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use zkutil::SessionId;
use zkutil::testing::sessions_on;

use crate::world::{BASE, Violation, World};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The ZooKeeper leader is killed, then restarted.
    LeaderKill,
    /// A ZooKeeper follower is killed, then restarted.
    FollowerKill,
    /// All ZooKeeper nodes down for less than the session timeout.
    ZooKeeperDownShort,
    /// All ZooKeeper nodes down for longer than the session timeout.
    ZooKeeperDownLong,
    /// A follower frozen (SIGSTOP) past the session timeout, preferably
    /// the one a time-server is attached to.
    ZooKeeperNodeFrozen,
    /// A time-server SIGKILLed and started again on the same ports.
    ServerKilled,
    /// A time-server SIGSTOPped past its session timeout, then resumed.
    ServerFrozen,
    /// A time-server SIGTERMed and started again.
    ServerRestarted,
    /// An operator deletes one registration.
    OperatorDelete,
    /// The client cut off from ZooKeeper (its links down, ZooKeeper and
    /// the servers fine) while an operator disables one listener and
    /// re-weights another; once back, no request reaches the disabled one.
    ClientCutOff,
    /// Two of the three time-servers SIGKILLed at once, their nodes still
    /// registered until their sessions expire; then started again.
    MajorityKilled,
    /// A time-server filled to its `--max-connections` by clients that read
    /// their reply and then neither send nor close: all let go at the drain
    /// timeout.
    IdleAtCap,
    /// A time-server's metrics port held by a hostile client (a header
    /// line that never ends), idle connections and a pipelining client that
    /// never reads: `/healthz` still answers.
    HostileMetrics,
}

const ALL: [Fault; 13] = [
    Fault::LeaderKill,
    Fault::FollowerKill,
    Fault::ZooKeeperDownShort,
    Fault::ZooKeeperDownLong,
    Fault::ZooKeeperNodeFrozen,
    Fault::ServerKilled,
    Fault::ServerFrozen,
    Fault::ServerRestarted,
    Fault::OperatorDelete,
    Fault::ClientCutOff,
    Fault::MajorityKilled,
    Fault::IdleAtCap,
    Fault::HostileMetrics,
];

/// What one fault did.
pub struct Outcome {
    pub description: String,
    /// From the recovery to a registry equal to the live listeners.
    pub convergence: Duration,
    /// Whether the registry differs from before the fault (owners or
    /// creation times).
    pub changed: bool,
}

impl Fault {
    pub fn draw(rng: &mut StdRng) -> Fault {
        ALL[rng.random_range(0..ALL.len())]
    }

    pub fn name(&self) -> &'static str {
        match self {
            Fault::LeaderKill => "ZooKeeper leader killed, restarted",
            Fault::FollowerKill => "ZooKeeper follower killed, restarted",
            Fault::ZooKeeperDownShort => "all ZooKeeper down < session timeout",
            Fault::ZooKeeperDownLong => "all ZooKeeper down > session timeout",
            Fault::ZooKeeperNodeFrozen => "ZooKeeper follower frozen",
            Fault::ServerKilled => "time-server SIGKILL, restarted",
            Fault::ServerFrozen => "time-server frozen past its timeout",
            Fault::ServerRestarted => "time-server SIGTERM, restarted",
            Fault::OperatorDelete => "registration deleted by an operator",
            Fault::ClientCutOff => "client cut off while operators act",
            Fault::MajorityKilled => "two of three time-servers SIGKILL",
            Fault::IdleAtCap => "idle clients fill a time-server's cap",
            Fault::HostileMetrics => "hostile clients on a metrics port",
        }
    }

    /// Faults that must leave the registry exactly as it was: ZooKeeper
    /// losing a node while a quorum lives, or an outage within the session
    /// timeout. The sessions survive, so no node may be deleted or
    /// re-created.
    fn changes_nothing(&self) -> bool {
        matches!(
            self,
            Fault::LeaderKill
                | Fault::FollowerKill
                | Fault::ZooKeeperDownShort
                | Fault::ZooKeeperNodeFrozen
                | Fault::ClientCutOff
                | Fault::IdleAtCap
                | Fault::HostileMetrics
        )
    }

    pub fn run(&self, world: &mut World, rng: &mut StdRng) -> Result<Outcome, Violation> {
        world.begin(self.name());
        let before = world
            .registry()
            .map_err(|e| world.violation(format!("reading the registry: {}", e.chain())))?;
        world.drain_changes();
        let timeout = world.session_timeout;
        let restart_failed = |world: &World, e: &dyn std::fmt::Display| {
            world.violation(format!("restarting ZooKeeper: {e}"))
        };
        let description = match self {
            Fault::LeaderKill => {
                let leader = world.zk.leader().unwrap_or(0);
                kill_and_restart(world, leader, rng.random_range(500..2000))?;
                format!("leader (node {leader}) killed")
            }
            Fault::FollowerKill => {
                let follower = followers(world)[rng.random_range(0..2)];
                kill_and_restart(world, follower, rng.random_range(1000..3000))?;
                format!("follower (node {follower}) killed")
            }
            Fault::ZooKeeperDownShort | Fault::ZooKeeperDownLong => {
                let down = if *self == Fault::ZooKeeperDownShort {
                    Duration::from_millis(rng.random_range(300..1000))
                } else {
                    timeout + Duration::from_millis(rng.random_range(1000..4000))
                };
                let all: Vec<usize> = (0..world.zk.len()).collect();
                for &i in &all {
                    world.zk.kill(i);
                }
                world.during(down)?;
                world
                    .zk
                    .restart_nodes(&all)
                    .map_err(|e| restart_failed(world, &e))?;
                format!("all ZooKeeper down {:.1}s", down.as_secs_f64())
            }
            Fault::ZooKeeperNodeFrozen => {
                let owners: Vec<SessionId> = before.values().map(|(owner, _)| *owner).collect();
                let candidates = followers(world);
                let attached = candidates.iter().copied().find(|&i| {
                    sessions_on(world.zk.port(i))
                        .iter()
                        .any(|s| owners.contains(s))
                });
                let node = attached.unwrap_or(candidates[rng.random_range(0..2)]);
                world.zk.pause(node);
                // Past the session timeout, and past the ensemble's sync
                // limit (5 s), so that the leader drops the node.
                world.during(timeout.max(Duration::from_secs(5)) + Duration::from_secs(1))?;
                world.zk.resume(node);
                // It re-syncs with the leader before it serves again; the
                // next fault must find a quorum that serves.
                if !world.zk.wait_serving(node, Duration::from_secs(60)) {
                    return Err(world.violation(format!("node {node} did not serve again")));
                }
                format!(
                    "follower (node {node}{}) frozen",
                    if attached.is_some() {
                        ", a server's"
                    } else {
                        ""
                    }
                )
            }
            Fault::ServerKilled => {
                let k = rng.random_range(0..world.servers.len());
                world.restart_server(k, "KILL")?;
                format!("server{} killed", k + 1)
            }
            Fault::ServerFrozen => {
                let k = rng.random_range(0..world.servers.len());
                world.signal_server(k, "STOP");
                // Its nodes go once ZooKeeper expires its session.
                let deadline = world.settle_deadline();
                world.converge("its session expiring", deadline)?;
                world.during(Duration::from_millis(rng.random_range(500..2000)))?;
                world.signal_server(k, "CONT");
                format!("server{} frozen", k + 1)
            }
            Fault::ServerRestarted => {
                let k = rng.random_range(0..world.servers.len());
                world.restart_server(k, "TERM")?;
                format!("server{} restarted", k + 1)
            }
            Fault::OperatorDelete => {
                let names: Vec<&String> = before.keys().collect();
                let name = names[rng.random_range(0..names.len())].clone();
                let _ = world.observer.delete(&format!("{BASE}/{name}"), None);
                format!("{name} deleted")
            }
            Fault::ClientCutOff => client_cut_off(world, rng)?,
            Fault::IdleAtCap => idle_at_cap(world, rng)?,
            Fault::HostileMetrics => hostile_metrics(world, rng)?,
            Fault::MajorityKilled => {
                let spared = rng.random_range(0..world.servers.len());
                let killed: Vec<usize> =
                    (0..world.servers.len()).filter(|&k| k != spared).collect();
                for &k in &killed {
                    world.signal_server(k, "KILL");
                }
                for &k in &killed {
                    world.reap_server(k, true)?;
                }
                world.during(Duration::from_millis(rng.random_range(200..2000)))?;
                for &k in &killed {
                    world.start_server(k);
                }
                format!("all servers but server{} killed", spared + 1)
            }
        };
        // Every ZooKeeper node serves again (synced with the leader) before
        // the next fault, which must find a quorum.
        for i in 0..world.zk.len() {
            if !world.zk.wait_serving(i, Duration::from_secs(60)) {
                return Err(world.violation(format!("ZooKeeper node {i} does not serve again")));
            }
        }
        let deadline = world.settle_deadline();
        let convergence = world.converge(self.name(), deadline)?;
        let after = world
            .registry()
            .map_err(|e| world.violation(format!("reading the registry: {}", e.chain())))?;
        let changed = after != before;
        if self.changes_nothing() {
            let changes = world.drain_changes();
            if changed || !changes.is_empty() {
                return Err(world.violation(format!(
                    "the registry changed: before {before:?}, after {after:?}, watcher saw {changes:?}"
                )));
            }
        } else {
            world.drain_changes();
        }
        Ok(Outcome {
            description,
            convergence,
            changed,
        })
    }
}

/// Cuts the client off (shorter or longer than its session timeout); while
/// it is away an operator disables one listener and re-weights another.
/// Once the client says its view is fresh again, no request of it may go to
/// the disabled listener; then the listener is enabled again.
fn client_cut_off(world: &mut World, rng: &mut StdRng) -> Result<String, Violation> {
    let names = world.listener_names();
    let disabled: zkutil::Endpoint = names[rng.random_range(0..names.len())]
        .parse()
        .map_err(|e| world.violation(format!("a listener name: {e}")))?;
    let others: Vec<&String> = names
        .iter()
        .filter(|n| **n != disabled.to_string())
        .collect();
    let reweighted: zkutil::Endpoint = others[rng.random_range(0..others.len())]
        .parse()
        .map_err(|e| world.violation(format!("a listener name: {e}")))?;
    let long = rng.random_bool(0.5);
    let away = if long {
        world.session_timeout + Duration::from_millis(rng.random_range(500..2000))
    } else {
        Duration::from_millis(rng.random_range(300..1500))
    };
    let base = zkutil::BasePath::from_static(BASE);
    let (stderr_mark, _) = world.client_marks();
    world.cut_client(true);
    world.client_logs(
        "ZooKeeper unreachable",
        stderr_mark,
        std::time::Instant::now() + Duration::from_secs(30),
    )?;
    let operate = |world: &World, control: zkutil::Control, endpoint| {
        control
            .apply_to(&world.observer, &base, endpoint)
            .map_err(|e| world.violation(format!("{control} on {endpoint}: {}", e.chain())))
    };
    operate(
        world,
        zkutil::Control::Disable {
            reason: Some("chaos".into()),
        },
        disabled,
    )?;
    operate(
        world,
        zkutil::Control::Weight(rng.random_range(1..500)),
        reweighted,
    )?;
    world.during(away)?;
    world.cut_client(false);
    let fresh_at = world.client_logs(
        "server list is fresh again",
        stderr_mark,
        world.settle_deadline() + Duration::from_secs(1),
    )?;
    // One request may have been under way as the view turned fresh.
    world.during(Duration::from_millis(500))?;
    let reached = world
        .client_servers_since(fresh_at + 1)
        .iter()
        .filter(|s| **s == disabled.to_string())
        .count();
    if reached > 0 {
        return Err(world.violation(format!(
            "{reached} requests reached {disabled}, disabled while the client was cut off, after its view was fresh again"
        )));
    }
    operate(world, zkutil::Control::Enable, disabled)?;
    Ok(format!(
        "client away {:.1}s, {disabled} disabled",
        away.as_secs_f64()
    ))
}

/// Fills one time-server to its cap with clients that read their reply and
/// stay; the server must let every one go at its drain timeout (2 s), and
/// then serve a new client under the cap.
fn idle_at_cap(world: &mut World, rng: &mut StdRng) -> Result<String, Violation> {
    use std::io::Read;
    let k = rng.random_range(0..world.servers.len());
    let listeners = world.server_listeners(k);
    let addr = listeners[rng.random_range(0..listeners.len())];
    let mut idle = Vec::new();
    for _ in 0..crate::world::MAX_CONNECTIONS {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = stream.read(&mut [0u8; 128]);
        idle.push(stream);
    }
    // Let go at the drain timeout: each idle client sees the server close.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for stream in &mut idle {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let mut rest = Vec::new();
        if (&*stream).take(4096).read_to_end(&mut rest).is_err() {
            return Err(world.violation(format!(
                "an idle client of {addr} was not let go within 10 s"
            )));
        }
        world.during(Duration::ZERO)?;
    }
    let mut fresh = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| world.violation(format!("{addr} after the idle clients: {e}")))?;
    let _ = fresh.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reply = String::new();
    let _ = fresh.read_to_string(&mut reply);
    if !reply.starts_with(&format!("{addr}: ")) {
        return Err(world.violation(format!("{addr} after the idle clients answered {reply:?}")));
    }
    Ok(format!("{} idle clients on {addr}", idle.len()))
}

/// Holds one time-server's metrics port with hostile clients: a header
/// line that never ends (1 MiB of it), 100 idle connections and a client
/// that pipelines requests and never reads. `/healthz` must answer within
/// 2 s all the while.
fn hostile_metrics(world: &mut World, rng: &mut StdRng) -> Result<String, Violation> {
    use std::io::Write;
    let k = rng.random_range(0..world.servers.len());
    let Some(metrics) = world.metrics_addr(k) else {
        return Err(world.violation(format!("server{} logged no metrics address", k + 1)));
    };
    let connect = || TcpStream::connect_timeout(&metrics, Duration::from_secs(1)).ok();
    let mut held = Vec::new();
    if let Some(mut header) = connect() {
        let _ = header.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = header.write_all(b"GET /metrics HTTP/1.1\r\nX-Long: ");
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..16 {
            if header.write_all(&chunk).is_err() {
                break;
            }
        }
        held.push(header);
    }
    held.extend((0..100).filter_map(|_| connect()));
    if let Some(mut pipeliner) = connect() {
        let _ = pipeliner.set_write_timeout(Some(Duration::from_millis(500)));
        for _ in 0..1000 {
            if pipeliner
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .is_err()
            {
                break;
            }
        }
        held.push(pipeliner);
    }
    let started = std::time::Instant::now();
    let answered = zkutil::testing::http_get(metrics, "/healthz");
    let took = started.elapsed();
    match answered {
        Ok((200 | 503, _)) if took < Duration::from_secs(2) => {}
        other => {
            return Err(world.violation(format!(
                "/healthz of server{} under hostile clients: {other:?} after {took:?}",
                k + 1
            )));
        }
    }
    world.during(Duration::from_millis(rng.random_range(200..1000)))?;
    drop(held);
    Ok(format!(
        "server{} metrics port held, /healthz in {:.0} ms",
        k + 1,
        took.as_secs_f64() * 1000.0
    ))
}

/// Kills ZooKeeper node `i`, lets `down_ms` pass (the client checked all
/// along), and starts it again.
fn kill_and_restart(world: &mut World, i: usize, down_ms: u64) -> Result<(), Violation> {
    world.zk.kill(i);
    world.during(Duration::from_millis(down_ms))?;
    world
        .zk
        .restart(i)
        .map_err(|e| world.violation(format!("restarting ZooKeeper: {e}")))
}

/// The ensemble's followers (by index).
fn followers(world: &World) -> Vec<usize> {
    let leader = world.zk.leader();
    (0..world.zk.len()).filter(|&i| Some(i) != leader).collect()
}
