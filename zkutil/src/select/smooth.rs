//! The state of nginx's smooth weighted round-robin
//! ([`Strategy::SmoothWeighted`](super::Strategy::SmoothWeighted)): each
//! instance's current weight.

use std::collections::HashMap;

use crate::discovery::Instance;
use crate::endpoint::Endpoint;

/// Each candidate's current weight, in the candidates' order.
///
/// Every pick adds each candidate's weight to its current weight, picks
/// the highest and takes the total off it, so a pick reads and writes the
/// whole list: each thread shard of the selector has its own, so that
/// threads do not wait for each other's picks. It is kept as a
/// list in the candidates' order (endpoint order, as in `Instances`) so
/// that a pick walks it beside the candidates, without hashing or
/// allocating; it is rebuilt only when the candidates change, keeping the
/// current weights of those that stay (new ones start at 0, those gone are
/// forgotten).
#[derive(Debug, Default)]
pub(super) struct Current(Vec<(Endpoint, i64)>);

impl Current {
    /// The index of the candidate picked among `candidates`, whose
    /// weights (`weight` of each) add up to `total`, more than 0.
    pub(super) fn pick<'a>(
        &mut self,
        candidates: impl Iterator<Item = &'a Instance> + Clone,
        weight: impl Fn(&Instance) -> i64,
        total: i64,
    ) -> Option<usize> {
        let same = {
            let mut listed = self.0.iter();
            candidates
                .clone()
                .all(|i| listed.next().is_some_and(|(e, _)| *e == i.endpoint()))
                && listed.next().is_none()
        };
        if !same {
            let old: HashMap<Endpoint, i64> = self.0.drain(..).collect();
            self.0.extend(candidates.clone().map(|i| {
                let endpoint = i.endpoint();
                (endpoint, old.get(&endpoint).copied().unwrap_or(0))
            }));
        }
        let mut best: Option<(usize, i64)> = None;
        for (at, (instance, (_, value))) in candidates.zip(self.0.iter_mut()).enumerate() {
            *value += weight(instance);
            if best.is_none_or(|(_, top)| *value > top) {
                best = Some((at, *value));
            }
        }
        let (at, _) = best?;
        if let Some((_, value)) = self.0.get_mut(at) {
            *value -= total;
        }
        Some(at)
    }
}
