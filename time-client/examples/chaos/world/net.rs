//! The network lab under the soak, when it runs as root: every ZooKeeper
//! node, every time-server and the client in a host of its own (a network
//! namespace), so that the network faults can cut, split and slow their
//! links. The soak itself is the lab's control host: it watches ZooKeeper
//! and the servers from outside, and no fault cuts it.
//!
//! Each time-server and the client reach ZooKeeper through relays inside
//! their own host (one per ZooKeeper node): every fault of the host cuts
//! them as it would cut a direct link, and a relay can turn slow. One
//! difference remains: a connect to a relay always succeeds, and the relay
//! closes it when it cannot reach ZooKeeper (within 1 s), where a direct
//! connect would fail at once (a blackhole route) or time out (a link
//! down); the client sees a lost connection either way.

use std::time::Duration;

use zkutil::testing::DelayProxy;
use zkutil::testing::lab::{Host, Lab};

/// The hosts and their relays. Fields drop in order: the relays before
/// the lab, which deletes the namespaces.
pub struct Net {
    /// Per time-server, then the client's: one relay per ZooKeeper node.
    relays: Vec<Vec<DelayProxy>>,
    pub zk: Vec<Host>,
    pub servers: Vec<Host>,
    pub client: Host,
    pub lab: Lab,
}

impl Net {
    /// A lab with `zk1`–`zk3`, `s1`… (one per server) and `client`, and
    /// their relays to ZooKeeper's client port.
    pub fn build(servers: usize) -> std::io::Result<Net> {
        let mut lab = Lab::new()?;
        let zk = (1..=3)
            .map(|i| lab.host(&format!("zk{i}")))
            .collect::<std::io::Result<Vec<_>>>()?;
        let servers = (1..=servers)
            .map(|k| lab.host(&format!("s{k}")))
            .collect::<std::io::Result<Vec<_>>>()?;
        let client = lab.host("client")?;
        let relays = servers
            .iter()
            .chain([&client])
            .map(|host| {
                zk.iter()
                    .map(|node| host.relay(node.socket(2181)))
                    .collect::<std::io::Result<Vec<_>>>()
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Net {
            relays,
            zk,
            servers,
            client,
            lab,
        })
    }

    /// The connect string of server `k` (its relays, in its host).
    pub fn server_connect(&self, k: usize) -> String {
        connect_string(&self.relays[k])
    }

    /// The connect string of the client (its relays, in its host).
    pub fn client_connect(&self) -> String {
        connect_string(&self.relays[self.servers.len()])
    }

    /// Every ZooKeeper link of `host` (a server's or the client's) now
    /// answers `delay` late, give or take `jitter`.
    pub fn slow(&mut self, host: &Host, delay: Duration, jitter: Duration) {
        let index = if *host == self.client {
            Some(self.servers.len())
        } else {
            self.servers.iter().position(|h| h == host)
        };
        let relays = index.map_or(&[][..], |i| &self.relays[i]);
        self.lab.slow(host, relays, delay, jitter);
    }
}

fn connect_string(relays: &[DelayProxy]) -> String {
    relays
        .iter()
        .map(|r| r.addr().to_string())
        .collect::<Vec<_>>()
        .join(",")
}
