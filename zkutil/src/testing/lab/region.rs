//! A second region: ZooKeeper observers far from the voters, the way an
//! ensemble grows past one data centre without a layer of its own.

use std::time::Duration;

use super::{Fault, Host, Lab};
use crate::testing::DelayProxy;
use crate::testing::node::StartError;
use crate::testing::zookeeper::{Site, ZkEnsemble};

/// The link between two regions: a relay on the control host for each
/// voter's quorum port and election port, which the observers' `server.N`
/// lines name instead of the voters' own addresses.
///
/// Why relays named in the observers' config: an observer learns who leads
/// by election, then connects to the leader's quorum port *as its own
/// config spells it*; so every byte between an observer and the voters
/// (elections, proposals, commits, the writes it forwards) goes through a
/// relay from the first connect, and nothing else does (clients in the
/// remote region talk to its observers on the bridge, undelayed). A relay
/// holds back what the voter sends by the round trip, so a commit reaches
/// an observer one round trip after the leader decided it (a real link
/// would take half of that: the figures for changes seen in the remote
/// region are pessimistic by half a round trip; a write forwarded from it
/// pays the full round trip, as it would).
#[derive(Debug)]
pub struct WanLink {
    relays: Vec<DelayProxy>,
}

impl WanLink {
    /// The remote region is cut off: every connection through the link
    /// drops and new ones are refused until [`WanLink::heal`]. Logged in
    /// `lab`'s faults ([`Lab::heal`] does not heal it: the caller owns the
    /// link).
    pub fn cut(&self, lab: &mut Lab) {
        lab.record(Fault::WanCut);
        self.relays.iter().for_each(DelayProxy::hold);
    }

    /// The link is back.
    pub fn heal(&self, lab: &mut Lab) {
        lab.record(Fault::WanHeal);
        self.relays.iter().for_each(DelayProxy::release);
    }
}

impl Lab {
    /// A ZooKeeper ensemble across two regions: a voting node on each of
    /// `voters` (`server.1…`), then an observer (`peerType=observer`) on
    /// each of `observers`, which reach the voters only through a
    /// [`WanLink`] of `rtt` round trip. Ready when every node serves.
    /// Clients of the remote region are given the observers' addresses.
    ///
    /// # Errors
    ///
    /// [`StartError`], with the failing node's log; or a relay that could
    /// not bind (as [`StartError::Io`]).
    pub fn ensemble_with_observers(
        &self,
        voters: &[&Host],
        observers: &[&Host],
        rtt: Duration,
    ) -> Result<(ZkEnsemble, WanLink), StartError> {
        let relay = |port| {
            voters
                .iter()
                .map(|voter| {
                    let bind = (self.control_address(), 0).into();
                    DelayProxy::start_on(bind, voter.socket(port), rtt, Duration::ZERO)
                        .map_err(StartError::io("starting a region relay"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let (peer, election) = (relay(2888)?, relay(3888)?);
        let mut routes: Vec<_> = peer
            .iter()
            .zip(&election)
            .map(|(p, e)| (self.control_address(), p.addr().port(), e.addr().port()))
            .collect();
        // Observers reach each other directly: they are in one region.
        routes.extend(observers.iter().map(|o| (o.address(), 2888, 3888)));
        let site = |host: &&Host, observer: bool| Site {
            address: host.address(),
            launcher: host.launcher(),
            client_port: 2181,
            quorum_ports: Some((2888, 3888)),
            observer,
            peer_routes: observer.then(|| routes.clone()),
        };
        let sites = voters
            .iter()
            .map(|h| site(h, false))
            .chain(observers.iter().map(|h| site(h, true)))
            .collect();
        let ensemble = ZkEnsemble::start_at(sites)?;
        let relays = peer.into_iter().chain(election).collect();
        Ok((ensemble, WanLink { relays }))
    }
}
