//! A network lab in Linux network namespaces, for the faults that break
//! service registries: a server that clients reach but ZooKeeper does not,
//! a client cut off from ZooKeeper but not from the servers, a ZooKeeper
//! node split from its peers.
//!
//! A [`Lab`] is one Linux bridge; each [`Host`] is a network namespace
//! with one veth on it and one address of a private /24 that exists only
//! on that bridge (the namespaces get no default route: no traffic leaves
//! the lab). The test process itself is the lab's control host, `.1` on
//! the bridge, which no fault cuts: it watches ZooKeeper and the servers
//! from outside. Programs run in a host through `ip netns exec` (see
//! [`Host::command`]); [`Lab::ensemble`] starts one ZooKeeper node per host.
//!
//! Faults: [`Lab::isolate`] (the host's veth down: connects time out),
//! [`Lab::partition`] and [`Lab::cut_one_way`] (blackhole routes inside
//! the namespaces: a connect fails at once with EINVAL),
//! [`Lab::drop_on_arrival`] (an nftables rule in the receiver: the sender
//! learns nothing, its connects time out), [`Lab::lossy`] (random loss,
//! with nftables, where the packets arrive), [`Lab::heal`] (everything) and
//! [`Lab::heal_host`] (one host's routes and link); a slow link is a relay
//! in the host's path ([`Host::relay`], [`Lab::slow`]).
//! Each is logged with `tracing` and kept, with its time, in
//! [`Lab::faults`], so that a failing test can say which fault was in force.
//!
//! Needs root (`ip netns`). Everything a lab creates is named with a
//! per-run prefix and deleted on drop; a run killed before its drop is
//! swept by the next [`Lab::new`] (see `sweep`), and the programs it
//! started die with it (a parent-death signal). Labs share the machine's
//! bridges and routes: run lab tests one at a time.
//!
//! * `host`: [`Host`], a namespace and what runs in it.
//! * `fault`: [`Fault`] and [`FaultRecord`], the log.
//! * `sweep`: the names, and the removal of dead runs' leftovers.
//! * `ip`: the `ip` commands.
//! * `nft`: the nftables rules (drops on arrival, loss).

mod fault;
mod host;
mod ip;
mod nft;
mod region;
mod slow;
mod sweep;

use std::net::Ipv4Addr;
use std::time::{Instant, SystemTime};

pub use self::fault::{Fault, FaultRecord};
pub use self::host::Host;
pub use self::region::WanLink;

use self::ip::ip;
use super::node::StartError;
use super::zookeeper::{Site, ZkEnsemble};

/// The lab's /16: each lab takes one /24 of it that no address of this
/// machine is in (a private range, unused here).
const NETWORK: [u8; 2] = [10, 251];

/// A network lab: a bridge, hosts on it, and the faults in force.
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    bridge: String,
    /// The third octet of the lab's /24.
    subnet: u8,
    hosts: Vec<Host>,
    /// Hosts isolated (their veth down).
    down: Vec<Host>,
    /// Blackhole routes in force: in this host's namespace, to that address.
    cuts: Vec<(Host, Ipv4Addr)>,
    /// Hosts with nftables rules in force (drops on arrival, loss): a
    /// table in their namespace.
    drops: Vec<Host>,
    faults: Vec<FaultRecord>,
    started: Instant,
}

impl Lab {
    /// Whether this process may build a lab (it runs as root); the reason
    /// when not, for a test to print as it skips.
    pub fn available() -> Result<(), String> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1));
        if uid == Some("0") {
            Ok(())
        } else {
            Err("needs root (network namespaces)".to_owned())
        }
    }

    /// Sweeps what dead runs left, then creates the bridge with the control
    /// address `.1` of a free /24.
    ///
    /// # Errors
    ///
    /// When an `ip` command fails (not root, or no free /24).
    pub fn new() -> std::io::Result<Lab> {
        let swept = sweep::sweep_dead_runs();
        if !swept.is_empty() {
            tracing::info!(?swept, "lab: removed what dead runs left");
        }
        let prefix = sweep::new_prefix();
        let bridge = format!("{prefix}br");
        let mut lab = Lab {
            prefix,
            bridge,
            subnet: 0,
            hosts: Vec::new(),
            down: Vec::new(),
            cuts: Vec::new(),
            drops: Vec::new(),
            faults: Vec::new(),
            started: Instant::now(),
        };
        // From here on, a failure is cleaned up by the drop.
        ip(&["link", "add", &lab.bridge, "type", "bridge"])?;
        lab.subnet = claim_subnet(&lab.bridge)?;
        ip(&["link", "set", &lab.bridge, "up"])?;
        tracing::info!(prefix = %lab.prefix, control = %lab.address(1), "lab up");
        Ok(lab)
    }

    fn address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(NETWORK[0], NETWORK[1], self.subnet, last)
    }

    /// The run's prefix: every name the lab creates starts with it.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The test process's own address on the lab's bridge.
    pub fn control_address(&self) -> Ipv4Addr {
        self.address(1)
    }

    /// Adds the host `name`, at the next address (`.10`, `.11`, …).
    ///
    /// # Errors
    ///
    /// When an `ip` command fails, or after 90 hosts.
    pub fn host(&mut self, name: &str) -> std::io::Result<Host> {
        let number = self.hosts.len();
        let last = u8::try_from(10 + number)
            .ok()
            .filter(|_| number < 90)
            .ok_or_else(|| std::io::Error::other("a lab holds at most 90 hosts"))?;
        let address = self.address(last);
        let host = Host::new(&self.prefix, number, name, address);
        // Known before it is made: the drop removes even a half-made host.
        self.hosts.push(host.clone());
        host.create(&self.bridge)?;
        tracing::info!(host = name, %address, namespace = host.namespace(), "lab host");
        Ok(host)
    }

    /// A ZooKeeper ensemble with one node in each of `hosts` (`server.N`
    /// is the Nth host's address; client port 2181), ready when it returns.
    ///
    /// # Errors
    ///
    /// [`StartError`], with the failing node's log.
    pub fn ensemble(&self, hosts: &[&Host]) -> Result<ZkEnsemble, StartError> {
        let quorum = hosts.len() > 1;
        let sites = hosts
            .iter()
            .map(|host| Site {
                address: host.address(),
                launcher: host.launcher(),
                client_port: 2181,
                quorum_ports: quorum.then_some((2888, 3888)),
                observer: false,
                peer_routes: None,
            })
            .collect();
        ZkEnsemble::start_at(sites)
    }

    /// Cuts `host` off: its veth on the bridge goes down. Its packets go
    /// nowhere and none reach it; connects to or from it time out.
    ///
    /// # Panics
    ///
    /// When `ip` fails.
    #[track_caller]
    pub fn isolate(&mut self, host: &Host) {
        self.record(Fault::Isolate {
            host: host.name().to_owned(),
        });
        must(ip(&["link", "set", host.veth(), "down"]));
        self.down.push(host.clone());
    }

    /// No host of `left` reaches a host of `right` and back: a blackhole
    /// route to each peer in each namespace. Both sides still reach the
    /// control host and every host on neither side.
    ///
    /// # Panics
    ///
    /// When `ip` fails.
    #[track_caller]
    pub fn partition(&mut self, left: &[&Host], right: &[&Host]) {
        let names = |hosts: &[&Host]| hosts.iter().map(|h| h.name().to_owned()).collect();
        self.record(Fault::Partition {
            left: names(left),
            right: names(right),
        });
        for a in left {
            for b in right {
                self.blackhole(a, b);
                self.blackhole(b, a);
            }
        }
    }

    /// Nothing `from` sends to `to` arrives: a blackhole route to `to` in
    /// `from`'s namespace (a connect from `from` fails at once; `to`'s
    /// connects to `from` get no answer).
    ///
    /// # Panics
    ///
    /// When `ip` fails.
    #[track_caller]
    pub fn cut_one_way(&mut self, from: &Host, to: &Host) {
        self.record(Fault::CutOneWay {
            from: from.name().to_owned(),
            to: to.name().to_owned(),
        });
        self.blackhole(from, to);
    }

    /// Nothing `from` sends to `to` arrives, and `from` cannot tell: an
    /// nftables rule on `to`'s input hook drops it (`from`'s connects time
    /// out, its packets on a connection go unanswered; `to` still sends to
    /// `from`, and hears everyone else). The one-way cut a firewall or a
    /// broken link makes, where [`Lab::cut_one_way`] fails the sender's
    /// sends at once.
    ///
    /// # Panics
    ///
    /// When `nft` is missing (saying which package has it) or fails.
    #[track_caller]
    pub fn drop_on_arrival(&mut self, from: &Host, to: &Host) {
        self.record(Fault::DropOnArrival {
            from: from.name().to_owned(),
            to: to.name().to_owned(),
        });
        if !self.drops.contains(to) {
            self.drops.push(to.clone());
        }
        if let Err(err) = nft::drop_from(to.namespace(), from.address(), 100) {
            panic!("lab: {err}");
        }
    }

    #[track_caller]
    fn blackhole(&mut self, from: &Host, to: &Host) {
        if self
            .cuts
            .iter()
            .any(|(h, a)| h == from && *a == to.address())
        {
            return;
        }
        let route = format!("{}/32", to.address());
        must(ip(&[
            "-n",
            from.namespace(),
            "route",
            "add",
            "blackhole",
            &route,
        ]));
        self.cuts.push((from.clone(), to.address()));
    }

    /// Between `a` and `b`, `percent` % of the packets are lost each way,
    /// at random: a rule on the input hook of each (nftables), so the
    /// packet is sent and then dropped where it arrives, and TCP
    /// retransmits as on a bad link. 100 is a silent cut both ways.
    /// [`Lab::heal`] removes it, and so does the drop (with the hosts).
    ///
    /// # Panics
    ///
    /// When `nft` fails (not installed: `scripts/zk.sh install`).
    #[track_caller]
    pub fn lossy(&mut self, a: &Host, b: &Host, percent: u8) {
        self.record(Fault::Lossy {
            between: [a.name().to_owned(), b.name().to_owned()],
            percent,
        });
        for (to, from) in [(a, b), (b, a)] {
            if let Err(err) = nft::drop_from(to.namespace(), from.address(), percent) {
                panic!("lab: {err}");
            }
            if !self.drops.contains(to) {
                self.drops.push(to.clone());
            }
        }
    }

    /// Removes every fault: veths up, blackhole routes, drop and loss
    /// rules gone.
    ///
    /// # Panics
    ///
    /// When `ip` fails.
    #[track_caller]
    pub fn heal(&mut self) {
        self.record(Fault::Heal);
        for host in std::mem::take(&mut self.down) {
            must(ip(&["link", "set", host.veth(), "up"]));
        }
        for host in std::mem::take(&mut self.drops) {
            if let Err(err) = nft::clear(host.namespace()) {
                panic!("lab: {err}");
            }
        }
        remove_blackholes(std::mem::take(&mut self.cuts));
    }

    /// Removes the faults that cut `host` by route or link: its veth up,
    /// the blackhole routes from it and to it; every other fault stays (the
    /// links of a partition coming back one host at a time). Drop rules
    /// stay until [`Lab::heal`].
    ///
    /// # Panics
    ///
    /// When `ip` fails.
    #[track_caller]
    pub fn heal_host(&mut self, host: &Host) {
        self.record(Fault::HealHost {
            host: host.name().to_owned(),
        });
        if let Some(at) = self.down.iter().position(|h| h == host) {
            self.down.remove(at);
            must(ip(&["link", "set", host.veth(), "up"]));
        }
        let (undone, kept) = std::mem::take(&mut self.cuts)
            .into_iter()
            .partition(|(from, to)| from == host || *to == host.address());
        self.cuts = kept;
        remove_blackholes(undone);
    }

    pub(super) fn record(&mut self, fault: Fault) {
        let record = FaultRecord {
            at: SystemTime::now(),
            since_start: self.started.elapsed(),
            fault,
        };
        tracing::info!(fault = %record.fault, since_start = ?record.since_start, "lab fault");
        self.faults.push(record);
    }

    /// Every fault injected so far, oldest first.
    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }

    /// The faults, one a line, for a failure message.
    pub fn fault_log(&self) -> String {
        self.faults
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Gives `bridge` the control address `.1` of a /24 of [`NETWORK`] that
/// no other interface of the machine is in, and returns its third octet.
/// Two labs starting at once may pick the same one: the one that sees the
/// other's address too gives it up and tries the next.
fn claim_subnet(bridge: &str) -> std::io::Result<u8> {
    let [a, b] = NETWORK;
    let holders = |n: u8| -> std::io::Result<usize> {
        let pattern = format!(" {a}.{b}.{n}.");
        let addrs = ip(&["-4", "-o", "addr", "show"])?;
        Ok(addrs.lines().filter(|l| l.contains(&pattern)).count())
    };
    let mut n = 0u8;
    for _ in 0..8 {
        while holders(n)? > 0 {
            n = n
                .checked_add(1)
                .ok_or_else(|| std::io::Error::other("no free /24 in 10.251.0.0/16"))?;
        }
        let control = format!("{a}.{b}.{n}.1/24");
        ip(&["addr", "add", &control, "dev", bridge])?;
        if holders(n)? == 1 {
            return Ok(n);
        }
        ip(&["addr", "del", &control, "dev", bridge])?;
    }
    Err(std::io::Error::other(
        "no /24 of 10.251.0.0/16 could be claimed",
    ))
}

/// Deletes each blackhole route: in this host's namespace, to that address.
#[track_caller]
fn remove_blackholes(cuts: Vec<(Host, Ipv4Addr)>) {
    for (host, to) in cuts {
        let route = format!("{to}/32");
        must(ip(&[
            "-n",
            host.namespace(),
            "route",
            "del",
            "blackhole",
            &route,
        ]));
    }
}

#[track_caller]
fn must(result: std::io::Result<String>) {
    if let Err(err) = result {
        panic!("lab: {err}");
    }
}

impl Drop for Lab {
    /// Kills what runs in the hosts and deletes the namespaces, veths and
    /// bridge; never panics (what is already gone is skipped).
    fn drop(&mut self) {
        let namespaces: Vec<String> = self
            .hosts
            .iter()
            .map(|h| h.namespace().to_owned())
            .collect();
        let links: Vec<String> = self
            .hosts
            .iter()
            .map(|h| h.veth().to_owned())
            .chain([self.bridge.clone()])
            .collect();
        sweep::remove(&namespaces, &links);
        tracing::info!(prefix = %self.prefix, "lab down");
    }
}
