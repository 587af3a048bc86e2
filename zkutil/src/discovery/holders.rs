//! [`Holders`]: which children name each endpoint.

use std::collections::HashMap;

use crate::endpoint::Endpoint;

/// Which children name each endpoint, while changes come as per-child
/// events: one server registered in two formats at once (a migration from
/// Curator to Spring, say) is two children and one instance, and a change
/// to one of them must leave the other's instance listed.
#[derive(Debug, Default)]
pub(super) struct Holders {
    by_endpoint: HashMap<Endpoint, Vec<Box<str>>>,
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
        // (No let chains: the MSRV is 1.85.)
        if let Some((from, names)) = from.and_then(|f| self.by_endpoint.get_mut(&f).map(|n| (f, n)))
        {
            names.retain(|n| &**n != name);
            if names.is_empty() {
                self.by_endpoint.remove(&from);
            }
        }
        if let Some(to) = to {
            let names = self.by_endpoint.entry(to).or_default();
            if !names.iter().any(|n| &**n == name) {
                names.push(name.into());
            }
        }
    }

    /// The children other than `name` naming `endpoint`.
    pub(super) fn others<'a>(
        &'a self,
        endpoint: Endpoint,
        name: &'a str,
    ) -> impl Iterator<Item = &'a str> {
        self.by_endpoint
            .get(&endpoint)
            .into_iter()
            .flatten()
            .map(|n| &**n)
            .filter(move |n| *n != name)
    }
}
