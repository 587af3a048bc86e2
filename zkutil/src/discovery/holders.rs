//! [`Holders`]: which children name each endpoint.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::endpoint::Endpoint;

/// Which children name each endpoint, while changes come as per-child
/// events: one server registered in two formats at once (a migration from
/// Curator to Spring, say) is two children and one instance, and a change
/// to one of them must leave the other's instance listed.
///
/// A child named by its endpoint as the plain format writes it (`ip:port`)
/// is the common case, and one endpoint has at most one such child: those
/// are kept as a set of endpoints, an IPv4 one packed in 8 bytes, not as a
/// name per endpoint. At 100,000 instances that is about 2 MiB instead of
/// about 15 (issue 33: memory per instance).
#[derive(Debug, Default)]
pub(super) struct Holders {
    /// Endpoints with a child named `ip:port` by them (IPv4, packed).
    canonical_v4: HashSet<u64>,
    /// The same for the other endpoints (IPv6).
    canonical_other: HashSet<Endpoint>,
    /// Every other child, by the endpoint it names.
    named: HashMap<Endpoint, Vec<Box<str>>>,
}

/// `endpoint` packed in 8 bytes, when it is IPv4.
fn packed(endpoint: Endpoint) -> Option<u64> {
    match endpoint.ip() {
        IpAddr::V4(ip) => Some((u64::from(u32::from(ip)) << 16) | u64::from(endpoint.port())),
        IpAddr::V6(_) => None,
    }
}

/// The index of a listing, from each child's endpoint and name.
impl FromIterator<(Endpoint, String)> for Holders {
    fn from_iter<I: IntoIterator<Item = (Endpoint, String)>>(children: I) -> Holders {
        let mut holders = Holders::default();
        for (endpoint, name) in children {
            holders.moved(&name, None, Some(endpoint));
        }
        holders
    }
}

impl Holders {
    /// Child `name` now names `to` (none: gone, or none of the formats)
    /// instead of `from`.
    pub(super) fn moved(&mut self, name: &str, from: Option<Endpoint>, to: Option<Endpoint>) {
        if let Some(from) = from {
            if is_canonical(name, from) {
                self.set_canonical(from, false);
            } else if let Some(names) = self.named.get_mut(&from) {
                names.retain(|n| &**n != name);
                if names.is_empty() {
                    self.named.remove(&from);
                }
            }
        }
        if let Some(to) = to {
            if is_canonical(name, to) {
                self.set_canonical(to, true);
            } else {
                let names = self.named.entry(to).or_default();
                if !names.iter().any(|n| &**n == name) {
                    names.push(name.into());
                }
            }
        }
    }

    fn set_canonical(&mut self, endpoint: Endpoint, held: bool) {
        match (packed(endpoint), held) {
            (Some(key), true) => drop(self.canonical_v4.insert(key)),
            (Some(key), false) => drop(self.canonical_v4.remove(&key)),
            (None, true) => drop(self.canonical_other.insert(endpoint)),
            (None, false) => drop(self.canonical_other.remove(&endpoint)),
        }
    }

    fn has_canonical(&self, endpoint: Endpoint) -> bool {
        match packed(endpoint) {
            Some(key) => self.canonical_v4.contains(&key),
            None => self.canonical_other.contains(&endpoint),
        }
    }

    /// The children other than `name` naming `endpoint`.
    pub(super) fn others(&self, endpoint: Endpoint, name: &str) -> Vec<String> {
        let mut others: Vec<String> = self
            .named
            .get(&endpoint)
            .into_iter()
            .flatten()
            .filter(|n| &***n != name)
            .map(|n| n.to_string())
            .collect();
        if self.has_canonical(endpoint) && !is_canonical(name, endpoint) {
            others.push(endpoint.node_name());
        }
        others
    }
}

/// Whether `name` is `endpoint` as the plain format names it.
fn is_canonical(name: &str, endpoint: Endpoint) -> bool {
    // Cheap first: most names that are not canonical are not even close.
    name.len() <= 47 && endpoint.node_name() == name
}
