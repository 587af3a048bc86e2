//! The faults: how each is injected and recovered from, and whether the
//! registry may change because of it.

mod network;
mod peers;

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use zkutil::SessionId;

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
    /// In the lab: a time-server's host cut off from everyone, shorter or
    /// longer than its session.
    ServerIsolated,
    /// In the lab: a time-server partitioned from ZooKeeper, its clients
    /// still reaching it.
    ServerPartitioned,
    /// In the lab: one direction between a time-server and ZooKeeper
    /// dropped where it arrives.
    OneWayCut,
    /// In the lab: a ZooKeeper node's host cut off, the leader or not.
    ZooKeeperIsolated,
    /// In the lab: a follower split from the two other nodes, its clients
    /// still reaching it.
    MinoritySplit,
    /// In the lab: a time-server's or the client's ZooKeeper links slow
    /// (200 ms round trip, 50 ms jitter).
    SlowLink,
    /// In the lab: a time-server's link down 1 s, up 1 s, five times.
    Flapping,
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

/// The faults that need the network lab.
const NETWORK: [Fault; 7] = [
    Fault::ServerIsolated,
    Fault::ServerPartitioned,
    Fault::OneWayCut,
    Fault::ZooKeeperIsolated,
    Fault::MinoritySplit,
    Fault::SlowLink,
    Fault::Flapping,
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
    /// The faults to draw from: the process faults, and the network faults
    /// too when the soak runs in the lab (`network`); only those whose name
    /// contains `only`, when given.
    pub fn candidates(network: bool, only: Option<&str>) -> Vec<Fault> {
        let network: &[Fault] = if network { &NETWORK } else { &[] };
        ALL.iter()
            .chain(network)
            .copied()
            .filter(|f| only.is_none_or(|text| f.name().contains(text)))
            .collect()
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
            Fault::ServerIsolated => "net: time-server isolated",
            Fault::ServerPartitioned => "net: time-server cut from ZooKeeper",
            Fault::OneWayCut => "net: time-server <-> ZooKeeper one way",
            Fault::ZooKeeperIsolated => "net: ZooKeeper node isolated",
            Fault::MinoritySplit => "net: follower split from its peers",
            Fault::SlowLink => "net: slow ZooKeeper link",
            Fault::Flapping => "net: time-server link flapping",
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
        let mut unchanged = self.changes_nothing();
        let mut lifted_at = None;
        let description = match self {
            Fault::LeaderKill => {
                let leader = world.zk.leader().unwrap_or(0);
                kill_and_restart(world, leader, rng.random_range(500..2000))?;
                format!("leader (zk{}) killed", leader + 1)
            }
            Fault::FollowerKill => {
                let follower = followers(world)[rng.random_range(0..2)];
                kill_and_restart(world, follower, rng.random_range(1000..3000))?;
                format!("follower (zk{}) killed", follower + 1)
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
                let attached = candidates
                    .iter()
                    .copied()
                    .find(|&i| world.zk.sessions_on(i).iter().any(|s| owners.contains(s)));
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
                    "follower (zk{}{}) frozen",
                    node + 1,
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
            Fault::ClientCutOff => peers::client_cut_off(world, rng)?,
            Fault::IdleAtCap => peers::idle_at_cap(world, rng)?,
            Fault::HostileMetrics => peers::hostile_metrics(world, rng)?,
            Fault::ServerIsolated
            | Fault::ServerPartitioned
            | Fault::OneWayCut
            | Fault::ZooKeeperIsolated
            | Fault::MinoritySplit
            | Fault::SlowLink
            | Fault::Flapping => {
                let injected = network::run(*self, world, rng)?;
                unchanged = injected.unchanged;
                lifted_at = Some(injected.lifted_at);
                injected.description
            }
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
        // A network fault's bound counts from its lifting: the session
        // timeout + 2 s, whatever the lifted node's own rejoin takes.
        let deadline = match lifted_at {
            Some(at) => at + timeout + Duration::from_secs(2),
            None => world.settle_deadline(),
        };
        let convergence = world.converge(self.name(), deadline)?;
        let convergence = lifted_at.map_or(convergence, |at| at.elapsed());
        let after = world
            .registry()
            .map_err(|e| world.violation(format!("reading the registry: {}", e.chain())))?;
        let changed = after != before;
        if unchanged {
            let changes = world.drain_changes();
            if changed || !changes.is_empty() {
                return Err(world.violation(format!(
                    "the registry changed: before {before:?}, after {after:?}, watcher saw {changes:?}"
                )));
            }
        } else {
            world.drain_changes();
        }
        world.check_growth()?;
        Ok(Outcome {
            description,
            convergence,
            changed,
        })
    }
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
pub(super) fn followers(world: &World) -> Vec<usize> {
    let leader = world.zk.leader();
    (0..world.zk.len()).filter(|&i| Some(i) != leader).collect()
}
