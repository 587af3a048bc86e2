//! The faults of peers and operators: an operator acting while the client
//! is cut off, idle clients at a server's cap, hostile clients on a
//! metrics port.

use std::net::TcpStream;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

use crate::world::{BASE, Violation, World};

/// Cuts the client off (shorter or longer than its session timeout); while
/// it is away an operator disables one listener and re-weights another.
/// Once the client says its view is fresh again, no request of it may go to
/// the disabled listener; then the listener is enabled again.
pub fn client_cut_off(world: &mut World, rng: &mut StdRng) -> Result<String, Violation> {
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
pub fn idle_at_cap(world: &mut World, rng: &mut StdRng) -> Result<String, Violation> {
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
pub fn hostile_metrics(world: &mut World, rng: &mut StdRng) -> Result<String, Violation> {
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
