//! The network faults, injected in the lab: a time-server cut off from
//! everyone, from ZooKeeper only, or one way only; a ZooKeeper node cut
//! off; a follower split from its peers; a slow link; a flapping one. Each
//! says whether the registry must stay exactly as it was.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use zkutil::testing::lab::Host;

use super::Fault;
use crate::world::{Violation, World};

/// The slow link's round trip and jitter (each answer this late).
const SLOW: Duration = Duration::from_millis(200);
const JITTER: Duration = Duration::from_millis(50);
/// The flapping link: down this long, then up as long, this many times.
const FLAP: Duration = Duration::from_secs(1);
const FLAPS: usize = 5;

/// How a time-server is cut from ZooKeeper.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Its link down: no one reaches it, clients neither.
    Isolate,
    /// Blackhole routes between it and every ZooKeeper node.
    Partition,
    /// What it sends to ZooKeeper is dropped on arrival.
    ToZooKeeper,
    /// What ZooKeeper sends it is dropped on arrival.
    FromZooKeeper,
}

/// What a network fault did: its description, whether the registry must
/// be exactly as before, and when the fault was lifted (the convergence
/// bound counts from there).
pub struct Injected {
    pub description: String,
    pub unchanged: bool,
    pub lifted_at: Instant,
}

impl Injected {
    fn now(description: String, unchanged: bool) -> Injected {
        Injected {
            description,
            unchanged,
            lifted_at: Instant::now(),
        }
    }
}

/// Injects `fault` and lifts it.
pub fn run(fault: Fault, world: &mut World, rng: &mut StdRng) -> Result<Injected, Violation> {
    let Some(net) = &world.net else {
        return Err(world.violation("a network fault, but no lab"));
    };
    let zk = net.zk.clone();
    let server_hosts = net.servers.clone();
    let client = net.client.clone();
    match fault {
        Fault::ServerIsolated => cut_server(world, rng, Cut::Isolate),
        Fault::ServerPartitioned => cut_server(world, rng, Cut::Partition),
        Fault::OneWayCut => {
            let how = if rng.random_bool(0.5) {
                Cut::ToZooKeeper
            } else {
                Cut::FromZooKeeper
            };
            cut_server(world, rng, how)
        }
        Fault::ZooKeeperIsolated => {
            let i = rng.random_range(0..zk.len());
            let role = world.zk.mode(i).unwrap_or_else(|| "?".into());
            let away = Duration::from_millis(rng.random_range(2000..6000));
            if let Some(lab) = lab(world) {
                lab.isolate(&zk[i]);
            }
            world.during(away)?;
            if let Some(lab) = lab(world) {
                lab.heal();
            }
            let description = format!("zk{} ({role}) isolated {:.1}s", i + 1, away.as_secs_f64());
            // A follower's sessions move to the others within their
            // timeout. An isolated leader holds on (for syncLimit ×
            // tickTime, 5 s here) while no session's pings reach it, and
            // expires them when it hears again: with a session timeout
            // below that, the registry may change, by ZooKeeper's design.
            Ok(Injected::now(description, role != "leader"))
        }
        Fault::MinoritySplit => {
            let followers = super::followers(world);
            let f = followers[rng.random_range(0..followers.len())];
            let away = Duration::from_millis(rng.random_range(3000..8000));
            let others: Vec<&Host> = (0..zk.len()).filter(|&i| i != f).map(|i| &zk[i]).collect();
            if let Some(lab) = lab(world) {
                lab.partition(&[&zk[f]], &others);
            }
            world.during(away)?;
            if let Some(lab) = lab(world) {
                lab.heal();
            }
            // Its clients stay connected to it until it gives up on the
            // leader (syncLimit × tickTime, 5 s), while the leader expires
            // their sessions after the session timeout (4 s): a session
            // may end, by ZooKeeper's design, so the registry may change.
            let description = format!(
                "zk{} split from the others {:.1}s",
                f + 1,
                away.as_secs_f64()
            );
            Ok(Injected::now(description, false))
        }
        Fault::SlowLink => {
            let hosts: Vec<&Host> = server_hosts.iter().chain([&client]).collect();
            let host = hosts[rng.random_range(0..hosts.len())].clone();
            let slow_for = Duration::from_millis(rng.random_range(3000..8000));
            if let Some(net) = &mut world.net {
                net.slow(&host, SLOW, JITTER);
            }
            world.during(slow_for)?;
            if let Some(net) = &mut world.net {
                net.slow(&host, Duration::ZERO, Duration::ZERO);
            }
            let description = format!(
                "{}'s ZooKeeper links slow {:.1}s",
                host.name(),
                slow_for.as_secs_f64()
            );
            Ok(Injected::now(description, true))
        }
        Fault::Flapping => {
            let k = rng.random_range(0..server_hosts.len());
            let host = &server_hosts[k];
            for _ in 0..FLAPS {
                if let Some(lab) = lab(world) {
                    lab.isolate(host);
                }
                world.during(FLAP)?;
                if let Some(lab) = lab(world) {
                    lab.heal();
                }
                world.during(FLAP)?;
            }
            // Each cut is far shorter than the session: it survives them
            // all, the same node all along (as the lab test of 20 flaps).
            let description = format!("{}'s link flapped {FLAPS} times", host.name());
            Ok(Injected::now(description, true))
        }
        _ => Err(world.violation(format!("{} is no network fault", fault.name()))),
    }
}

/// Cuts a random time-server from ZooKeeper `how`, for less than its
/// session timeout (nothing may change) or for longer (its nodes must go
/// within the bound, and come back once the cut is lifted).
fn cut_server(world: &mut World, rng: &mut StdRng, how: Cut) -> Result<Injected, Violation> {
    let k = rng.random_range(0..world.servers.len());
    let Some((host, net)) = world.servers[k].host.clone().zip(world.net.as_mut()) else {
        return Err(world.violation("a network fault, but no lab"));
    };
    let zk = net.zk.clone();
    let lab = &mut net.lab;
    match how {
        Cut::Isolate => lab.isolate(&host),
        Cut::Partition => lab.partition(&[&host], &zk.iter().collect::<Vec<_>>()),
        Cut::ToZooKeeper => zk.iter().for_each(|z| lab.drop_on_arrival(&host, z)),
        Cut::FromZooKeeper => zk.iter().for_each(|z| lab.drop_on_arrival(z, &host)),
    }
    let started = Instant::now();
    let long = rng.random_bool(0.5);
    if long {
        world.servers[k].cut_off = true;
        // ZooKeeper expires a session the session timeout after it last
        // heard of it. Dropped answers still let the server's pings in
        // until its client gives up the connection (within the session
        // timeout), so that session may last twice as long.
        let expiry = match how {
            Cut::FromZooKeeper => world.session_timeout * 2,
            _ => world.session_timeout,
        };
        world.converge(
            "its session expiring",
            started + expiry + Duration::from_secs(1),
        )?;
        world.during(Duration::from_millis(rng.random_range(500..2000)))?;
    } else {
        // Short enough that the session outlives it however late the last
        // ping before it was (up to 0.6 s) and however the reconnect's
        // backoff falls (up to 1.1 s): 4 s in all.
        world.during(Duration::from_millis(rng.random_range(300..2000)))?;
    }
    if let Some(net) = &mut world.net {
        net.lab.heal();
    }
    world.servers[k].cut_off = false;
    let description = format!(
        "{} {} {:.1}s",
        host.name(),
        match how {
            Cut::Isolate => "isolated",
            Cut::Partition => "partitioned from ZooKeeper",
            Cut::ToZooKeeper => "-> ZooKeeper dropped",
            Cut::FromZooKeeper => "<- ZooKeeper dropped",
        },
        started.elapsed().as_secs_f64()
    );
    Ok(Injected::now(description, !long))
}

/// The lab, to inject or lift a fault.
fn lab(world: &mut World) -> Option<&mut zkutil::testing::lab::Lab> {
    world.net.as_mut().map(|net| &mut net.lab)
}
