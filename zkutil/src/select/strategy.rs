//! [`Strategy`]: how a [`Selector`](super::Selector) chooses among the
//! instances it is given.

use crate::error::Error;

/// How to choose an instance.
///
/// # Example
///
/// ```
/// let strategy: zkutil::Strategy = "p2c".parse().expect("a strategy");
/// assert_eq!(strategy, zkutil::Strategy::P2c);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Uniformly at random, independently for every request.
    #[default]
    Random,
    /// Each instance in turn (each thread sharing a selector keeps its own
    /// turn, as nginx's workers do: no thread waits for another's pick).
    RoundRobin,
    /// At random, in proportion to each instance's weight
    /// ([`Instance::weight`](crate::Instance::weight)).
    Weighted,
    /// In proportion to the weights, deterministically and evenly
    /// interleaved (nginx's smooth weighted round-robin; each thread
    /// sharing a selector keeps its own turn, as nginx's workers do).
    SmoothWeighted,
    /// The less loaded of two random choices, by an exponentially weighted
    /// moving average of each instance's observed latency times its
    /// requests in flight (as Finagle's and Linkerd's balancers do); needs
    /// [`Selector::started`](crate::Selector::started) and [`Selector::finished`](crate::Selector::finished).
    P2c,
}

impl std::str::FromStr for Strategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Strategy, Error> {
        match s {
            "random" => Ok(Strategy::Random),
            "round-robin" => Ok(Strategy::RoundRobin),
            "weighted" => Ok(Strategy::Weighted),
            "smooth-weighted" => Ok(Strategy::SmoothWeighted),
            "p2c" => Ok(Strategy::P2c),
            other => Err(Error::invalid(
                "--strategy",
                other,
                "unknown strategy; use random, round-robin, weighted, smooth-weighted or p2c",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_by_name() {
        for (name, strategy) in [
            ("random", Strategy::Random),
            ("round-robin", Strategy::RoundRobin),
            ("weighted", Strategy::Weighted),
            ("smooth-weighted", Strategy::SmoothWeighted),
            ("p2c", Strategy::P2c),
        ] {
            assert_eq!(name.parse::<Strategy>().ok(), Some(strategy));
        }
        assert!("fastest".parse::<Strategy>().is_err());
    }
}
