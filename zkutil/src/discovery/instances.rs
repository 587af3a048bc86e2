//! [`Instances`]: the list a [`Snapshot`](super::Snapshot) holds, sorted by
//! endpoint and persistent, so that one change costs O(log N).

use std::fmt;

use super::instance::Instance;
use crate::endpoint::Endpoint;

/// Instances sorted by endpoint, at most one per endpoint.
///
/// A persistent list (`imbl`'s RRB vector): a snapshot that differs from
/// the one before by one instance shares every other entry with it, so a
/// change costs O(log N) instead of a copy of the list (at 10,000
/// instances, copying would make a change slower to see than in Curator's
/// cache). Reading costs little more than a slice: `get` is
/// O(log N) (a few pointer hops), `iter` walks chunks of 64.
///
/// # Example
///
/// ```
/// use zkutil::{Endpoint, Instance, Instances};
///
/// let at = |s: &str| Instance::new(s.parse::<Endpoint>().unwrap());
/// // Sorted by endpoint, one per endpoint (the first one collected wins).
/// let list: Instances = [at("10.0.0.9:80"), at("10.0.0.7:80"), at("10.0.0.9:80")]
///     .into_iter()
///     .collect();
/// assert_eq!(list.len(), 2);
/// assert_eq!(list.get(0).map(|i| i.endpoint().to_string()).as_deref(), Some("10.0.0.7:80"));
/// assert!(list.find("10.0.0.9:80".parse()?).is_some());
/// for instance in &list {
///     println!("{}", instance.endpoint());
/// }
/// # Ok::<(), zkutil::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Instances(imbl::Vector<Instance>);

impl Instances {
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `index`th by endpoint order (O(log N)).
    pub fn get(&self, index: usize) -> Option<&Instance> {
        self.0.get(index)
    }

    /// In endpoint order.
    pub fn iter(&self) -> InstancesIter<'_> {
        InstancesIter(self.0.iter())
    }

    /// The instance at `endpoint`, if listed (O(log N)).
    pub fn find(&self, endpoint: Endpoint) -> Option<&Instance> {
        self.position(endpoint).ok().and_then(|at| self.0.get(at))
    }

    /// Whether an instance at `endpoint` is listed.
    pub fn contains(&self, endpoint: Endpoint) -> bool {
        self.position(endpoint).is_ok()
    }

    /// A copy as a `Vec` (O(N)).
    pub fn to_vec(&self) -> Vec<Instance> {
        self.0.iter().cloned().collect()
    }

    fn position(&self, endpoint: Endpoint) -> Result<usize, usize> {
        self.0.binary_search_by_key(&endpoint, |i| i.endpoint)
    }

    /// Adds `instance` unless its endpoint is listed already (another
    /// child naming the same endpoint keeps its place); whether it did.
    pub(super) fn insert(&mut self, instance: Instance) -> bool {
        match self.position(instance.endpoint) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, instance);
                true
            }
        }
    }

    /// Removes the instance at `endpoint`, whichever child it was read
    /// from; the removed one.
    pub(super) fn remove(&mut self, endpoint: Endpoint) -> Option<Instance> {
        let at = self.position(endpoint).ok()?;
        Some(self.0.remove(at))
    }

    /// Removes the instance at `endpoint` if it was read from child `node`
    /// (the one at that endpoint may be another child's); the removed one.
    pub(super) fn remove_node(&mut self, endpoint: Endpoint, node: &str) -> Option<Instance> {
        match self.find(endpoint) {
            Some(listed) if *listed.node == *node => self.remove(endpoint),
            _ => None,
        }
    }

    /// Whether the two are the same list, without comparing entries.
    pub(super) fn same(&self, other: &Instances) -> bool {
        self.0.ptr_eq(&other.0)
    }
}

/// Sorts by endpoint and keeps the first instance of each endpoint.
impl FromIterator<Instance> for Instances {
    fn from_iter<I: IntoIterator<Item = Instance>>(iter: I) -> Instances {
        let mut all: Vec<Instance> = iter.into_iter().collect();
        // Stable: the first of equal endpoints stays first.
        all.sort_by_key(|i| i.endpoint);
        all.dedup_by_key(|i| i.endpoint);
        Instances(all.into_iter().collect())
    }
}

impl From<Vec<Instance>> for Instances {
    fn from(all: Vec<Instance>) -> Instances {
        all.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Instances {
    type Item = &'a Instance;
    type IntoIter = InstancesIter<'a>;

    fn into_iter(self) -> InstancesIter<'a> {
        self.iter()
    }
}

/// The instances of an [`Instances`] in endpoint order, from
/// [`Instances::iter`] or `for instance in &instances`.
///
/// Our own type over `imbl`'s iterator, so that the persistent list stays
/// an implementation detail: another list could replace it without
/// changing this crate's API.
#[derive(Clone)]
pub struct InstancesIter<'a>(imbl::vector::Iter<'a, Instance, imbl::shared_ptr::DefaultSharedPtr>);

impl<'a> Iterator for InstancesIter<'a> {
    type Item = &'a Instance;

    fn next(&mut self) -> Option<&'a Instance> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for InstancesIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back()
    }
}

impl ExactSizeIterator for InstancesIter<'_> {}

impl std::iter::FusedIterator for InstancesIter<'_> {}

impl fmt::Debug for InstancesIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstancesIter")
            .field("left", &self.0.len())
            .finish()
    }
}

/// As a slice's: panics when `index` is out of bounds ([`Instances::get`]
/// does not).
impl std::ops::Index<usize> for Instances {
    type Output = Instance;

    fn index(&self, index: usize) -> &Instance {
        &self.0[index]
    }
}

impl PartialEq for Instances {
    fn eq(&self, other: &Instances) -> bool {
        self.same(other) || self.0 == other.0
    }
}

impl Eq for Instances {}

impl fmt::Debug for Instances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> Instance {
        Instance::new(Endpoint::new(([127, 0, 0, 1], port).into()))
    }

    fn ports(list: &Instances) -> Vec<u16> {
        list.iter().map(|i| i.endpoint().addr().port()).collect()
    }

    #[test]
    fn collected_instances_are_sorted_by_endpoint_one_per_endpoint() {
        let mut second = at(2);
        second.weight = 7;
        let list: Instances = vec![at(3), second, at(1), at(2)].into();
        assert_eq!(ports(&list), [1, 2, 3]);
        assert_eq!(list.find(at(2).endpoint).map(Instance::weight), Some(7));
        assert!(!list.contains(at(4).endpoint));
    }

    #[test]
    fn an_insert_keeps_the_order_and_an_endpoint_listed_already() {
        let mut list: Instances = (0..200).map(|p| at(p * 2)).collect();
        let before = list.clone();
        assert!(list.insert(at(101)));
        let mut again = at(101);
        again.weight = 1;
        assert!(!list.insert(again), "the endpoint is taken");
        assert_eq!(list.len(), 201);
        assert_eq!(list.find(at(101).endpoint).map(Instance::weight), Some(100));
        assert!(ports(&list).is_sorted());
        assert_eq!(before.len(), 200, "the list before is unchanged");
    }

    #[test]
    fn only_the_child_an_instance_was_read_from_removes_it() {
        let mut list: Instances = (0..10).map(at).collect();
        let endpoint = at(5).endpoint;
        assert_eq!(list.remove_node(endpoint, "another_child"), None);
        assert_eq!(list.len(), 10);
        let removed = list.remove_node(endpoint, "127.0.0.1:5");
        assert_eq!(removed.map(|i| i.endpoint), Some(endpoint));
        assert_eq!(list.len(), 9);
        assert!(!list.contains(endpoint));
        assert_eq!(list.remove_node(endpoint, "127.0.0.1:5"), None);
    }

    #[test]
    fn equal_lists_compare_equal_shared_or_not() {
        let list: Instances = (0..100).map(at).collect();
        let shared = list.clone();
        assert!(list.same(&shared));
        let rebuilt: Instances = (0..100).rev().map(at).collect();
        assert!(!list.same(&rebuilt));
        assert_eq!(list, rebuilt);
        assert_ne!(list, (0..99).map(at).collect());
    }
}
