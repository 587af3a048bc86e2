//! What a change costs in packets, as ZooKeeper itself counts them: per
//! connection (`cons`) or per server (`mntr`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use zkutil::SessionId;
use zkutil::testing::ZkServer;

/// The packets (received + sent) of `session`'s connection, as ZooKeeper
/// counts them (`cons`).
pub fn of_session(zk: &ZkServer, session: SessionId) -> anyhow::Result<u64> {
    let (received, sent) = counters(zk, session)?;
    Ok(received + sent)
}

/// The requests ZooKeeper received on `session`'s current connection
/// (`cons`' `recved`: a new connection starts from zero).
pub fn requests_of_session(zk: &ZkServer, session: SessionId) -> anyhow::Result<u64> {
    Ok(counters(zk, session)?.0)
}

/// `session`'s connection's packets received and sent, as `cons` says.
fn counters(zk: &ZkServer, session: SessionId) -> anyhow::Result<(u64, u64)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], zk.port()));
    let cons = zkutil::admin::four_letter_word(addr, "cons", Duration::from_secs(2))?;
    let line = cons
        .lines()
        .find(|line| line.contains(&format!("sid={session}")))
        .context("the watcher's connection in cons")?;
    let counter = |name: &str| -> u64 {
        line.split([',', '('])
            .find_map(|field| field.strip_prefix(name)?.parse().ok())
            .unwrap_or(0)
    };
    Ok((counter("recved="), counter("sent=")))
}

/// ZooKeeper's own packet counters (`mntr`), summed over the servers on
/// `ports`.
pub fn of_servers(ports: &[u16]) -> anyhow::Result<u64> {
    let addrs: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    of_addrs(&addrs)
}

/// ZooKeeper's own packet counters (`mntr`), summed over the servers at
/// `addrs`.
pub fn of_addrs(addrs: &[SocketAddr]) -> anyhow::Result<u64> {
    let mut total = 0;
    for &addr in addrs {
        let mntr = zkutil::admin::four_letter_word(addr, "mntr", Duration::from_secs(2))?;
        for line in mntr.lines() {
            let mut parts = line.split_whitespace();
            if let (Some("zk_packets_received" | "zk_packets_sent"), Some(n)) =
                (parts.next(), parts.next())
            {
                total += n.parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(total)
}
