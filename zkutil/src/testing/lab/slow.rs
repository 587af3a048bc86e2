//! Slow links: a host's relays (see [`Host::relay`]) made to answer late,
//! as a fault of the log.

use std::time::Duration;

use super::{Fault, Host, Lab};
use crate::testing::DelayProxy;

impl Lab {
    /// Every answer that `relays` (relays inside `host`) carry is now
    /// `delay` late, give or take `jitter`; [`Duration::ZERO`] makes them
    /// fast again. [`Lab::heal`] does not: the caller owns the relays.
    pub fn slow(&mut self, host: &Host, relays: &[DelayProxy], delay: Duration, jitter: Duration) {
        self.record(Fault::Slow {
            host: host.name().to_owned(),
            delay,
            jitter,
        });
        for relay in relays {
            relay.set_delay(delay, jitter);
        }
    }
}
