//! The faults a lab injects, and their log: each with its time, so that a
//! failing test can name the fault in force.

use std::fmt;
use std::time::{Duration, SystemTime};

/// A network fault, as the test asked for it (hosts by name).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Every link of the host is down: it reaches no one, no one reaches it.
    Isolate {
        /// The host cut off.
        host: String,
    },
    /// No host of one side reaches a host of the other, either way; each
    /// side still reaches itself and every host on neither side.
    Partition {
        /// One side.
        left: Vec<String>,
        /// The other.
        right: Vec<String>,
    },
    /// Nothing `from` sends to `to` arrives (so TCP both ways dies between
    /// them; `to` still receives from everyone else).
    CutOneWay {
        /// The sender whose packets are dropped.
        from: String,
        /// The peer they were for.
        to: String,
    },
    /// What `from` sends to `to` is dropped as it arrives; `from` is not
    /// told (its connects time out), `to` still reaches `from`.
    DropOnArrival {
        /// The sender whose packets are dropped.
        from: String,
        /// The receiver that drops them.
        to: String,
    },
    /// The routes and link of one host restored, every other fault kept.
    HealHost {
        /// The host whose cuts were removed.
        host: String,
    },
    /// Packets between two hosts lost at random, each way.
    Lossy {
        /// The two hosts.
        between: [String; 2],
        /// The share lost, in percent.
        percent: u8,
    },
    /// The relays of a host answer this late (zero: fast again).
    Slow {
        /// The host whose relays were slowed.
        host: String,
        /// Each answer this late…
        delay: Duration,
        /// …give or take this much.
        jitter: Duration,
    },
    /// The link between two regions cut ([`WanLink`](super::WanLink)).
    WanCut,
    /// The link between two regions back.
    WanHeal,
    /// Every fault removed.
    Heal,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Isolate { host } => write!(f, "isolate {host}"),
            Fault::Partition { left, right } => {
                write!(
                    f,
                    "partition [{}] | [{}]",
                    left.join(", "),
                    right.join(", ")
                )
            }
            Fault::CutOneWay { from, to } => write!(f, "cut {from} -> {to}"),
            Fault::DropOnArrival { from, to } => write!(f, "drop {from} -> {to} on arrival"),
            Fault::HealHost { host } => write!(f, "heal {host}"),
            Fault::Lossy {
                between: [a, b],
                percent,
            } => write!(f, "lose {percent}% between {a} <-> {b}"),
            Fault::Slow {
                host,
                delay,
                jitter,
            } => write!(f, "slow {host}'s relays to {delay:?} ± {jitter:?}"),
            Fault::WanCut => write!(f, "cut the link between the regions"),
            Fault::WanHeal => write!(f, "heal the link between the regions"),
            Fault::Heal => write!(f, "heal"),
        }
    }
}

/// One fault as it was injected: when, and how long after the lab started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRecord {
    /// The wall-clock time, to match against the processes' logs.
    pub at: SystemTime,
    /// Since the lab was created.
    pub since_start: Duration,
    /// What was done.
    pub fault: Fault,
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (+{:.3}s) {}",
            humantime::format_rfc3339_millis(self.at),
            self.since_start.as_secs_f64(),
            self.fault
        )
    }
}
