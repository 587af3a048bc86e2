//! Reading the registry: child names parsed strictly, metadata read in one
//! pipelined batch, a bad child skipped on its own and warned about once
//! (with a bounded memory of what was warned).

use std::collections::HashSet;

use super::Instance;
use crate::base_path::BasePath;
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::metadata::Metadata;
use crate::session::Session;
pub(super) use crate::text::truncate;

/// Paths already warned about, so that a bad child is logged once, not on
/// every refresh. Bounded: only children still present are remembered, by a
/// hash of their whole path (a name may be very long), and never more than
/// [`WarnOnce::MAX`] (a hostile stream of bad names cannot grow it without
/// limit; past it, a few warnings may repeat).
#[derive(Debug, Default)]
pub(super) struct WarnOnce {
    paths: HashSet<u64>,
}

impl WarnOnce {
    const MAX: usize = 4096;

    fn key(path: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut hasher);
        hasher.finish()
    }

    /// True the first time `path` is seen.
    pub(super) fn first(&mut self, path: &str) -> bool {
        let key = WarnOnce::key(path);
        if self.paths.contains(&key) {
            return false;
        }
        if self.paths.len() >= WarnOnce::MAX {
            self.paths.clear();
        }
        self.paths.insert(key)
    }

    /// Forgets paths that are no longer children of `base_path`.
    pub(super) fn retain_children(&mut self, base_path: &BasePath, names: &HashSet<&str>) {
        let present: HashSet<u64> = names
            .iter()
            .map(|name| WarnOnce::key(&format!("{base_path}/{name}")))
            .collect();
        self.paths.retain(|key| present.contains(key));
    }
}

/// The instances registered under `base_path` now, read directly (one
/// listing, plus one read per instance with `with_metadata`); malformed
/// names are skipped with a warning. For one-off inspection; clients use
/// [`Discovery`](super::Discovery).
///
/// # Errors
///
/// ZooKeeper errors naming the base path; a missing base path is an empty list.
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// use zkutil::{BasePath, SessionConfig};
///
/// let session = SessionConfig::new(hosts).connect()?;
/// session.ensure_path("/go_servers")?;
/// session.create_ephemeral("/go_servers/10.0.0.1:8897", br#"{"weight":300}"#)?;
/// let listed = zkutil::list_instances(&session, &BasePath::from_static("/go_servers"), true)?;
/// assert_eq!((listed[0].endpoint().port(), listed[0].weight()), (8897, 300));
/// # Ok(())
/// # }
/// ```
pub fn list(session: &Session, base_path: &BasePath, with_metadata: bool) -> Result<Vec<Instance>> {
    let names = match session.children(base_path.as_str()) {
        Ok(names) => names,
        Err(err) if err.is_no_node() => Vec::new(),
        Err(err) => return Err(err),
    };
    let warn = |path: &str, error: &str, message: &str| tracing::warn!(path = %truncate(path), error, "{message}");
    let (endpoints, others) = parse_children(&names);
    let mut instances = if with_metadata {
        read_instances(session, base_path, &endpoints, warn)?
    } else {
        endpoints.into_iter().map(Instance::new).collect()
    };
    instances.extend(
        read_decoded(session, base_path, &others, warn)?
            .into_iter()
            .flat_map(|(_, i)| i),
    );
    Ok(sorted_distinct(instances))
}

/// How many nodes [`list_under`] looks at, at most: an overview of a
/// registry, not a dump of a ZooKeeper holding other data.
pub const LIST_UNDER_MAX_NODES: usize = 10_000;

/// Every parent below `root` (`/` for the whole tree, ZooKeeper's own
/// `/zookeeper` left out) that holds instances, in any format, with its
/// instances: one view of a registry whose formats each live under their
/// own root (`/go_servers`, `/services/<service>`, a serverset path).
/// Parents come sorted, each one's instances as [`list`] gives them. A
/// node that is no instance is looked into when it has children, and
/// otherwise passed over without a warning (here a service's parent is no
/// malformed instance); at most [`LIST_UNDER_MAX_NODES`] nodes are looked at.
///
/// # Errors
///
/// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a root
/// that is neither `/` nor a valid base path; ZooKeeper errors naming the
/// path. A missing root is an empty list.
pub fn list_under(
    session: &Session,
    root: &str,
    with_metadata: bool,
) -> Result<Vec<(BasePath, Vec<Instance>)>> {
    if root != "/" {
        BasePath::new(root)?;
    }
    let quiet = |_: &str, _: &str, _: &str| {};
    let mut found = Vec::new();
    let mut queue = std::collections::VecDeque::from([root.to_owned()]);
    let mut looked_at = 0;
    while let Some(dir) = queue.pop_front() {
        let names = match session.children(&dir) {
            Ok(names) => names,
            Err(err) if err.is_no_node() => continue,
            Err(err) => return Err(err),
        };
        let child = |name: &str| match dir.as_str() {
            "/" => format!("/{name}"),
            _ => format!("{dir}/{name}"),
        };
        let (endpoints, others) = parse_children(&names);
        looked_at += names.len();
        if looked_at > LIST_UNDER_MAX_NODES {
            tracing::warn!(
                root,
                max = LIST_UNDER_MAX_NODES,
                "stopped looking: too many nodes"
            );
            break;
        }
        let paths: Vec<String> = others.iter().map(|name| child(name)).collect();
        let mut instances = Vec::new();
        session.get_data_each(&paths, |at, read| {
            let (name, path) = (&others[at], &paths[at]);
            let Ok((data, stat)) = read else {
                return Ok(());
            };
            match crate::format::decode(name, &data) {
                Ok(decoded) => instances.push(Instance::decoded(name, decoded, stat.ctime_ms())),
                Err(_) if stat.num_children() > 0 && path != "/zookeeper" => {
                    queue.push_back(path.clone());
                }
                Err(_) => {}
            }
            Ok(())
        })?;
        let Ok(parent) = BasePath::new(&dir) else {
            // Nothing registers right under `/`.
            continue;
        };
        if with_metadata {
            instances.extend(read_instances(session, &parent, &endpoints, quiet)?);
        } else {
            instances.extend(endpoints.into_iter().map(Instance::new));
        }
        if !instances.is_empty() {
            found.push((parent, sorted_distinct(instances)));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The names of every child of `base_path` that registers `endpoint`, in
/// any format (a server registered in several formats during a migration
/// has one each; `list` keeps one instance per endpoint). One listing, and
/// one read of each child that is not a plain `ip:port` name.
///
/// # Errors
///
/// As [`list`]; a missing base path has no children.
pub(crate) fn nodes_of(
    session: &Session,
    base_path: &BasePath,
    endpoint: Endpoint,
) -> Result<Vec<String>> {
    let names = match session.children(base_path.as_str()) {
        Ok(names) => names,
        Err(err) if err.is_no_node() => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let (endpoints, others) = parse_children(&names);
    let quiet = |_: &str, _: &str, _: &str| {};
    let mut nodes: Vec<String> = endpoints
        .contains(&endpoint)
        .then(|| endpoint.node_name())
        .into_iter()
        .collect();
    nodes.extend(
        read_decoded(session, base_path, &others, quiet)?
            .into_iter()
            .filter(|(_, instance)| instance.as_ref().is_some_and(|i| i.endpoint == endpoint))
            .map(|(name, _)| name),
    );
    Ok(nodes)
}

/// Instances sorted by endpoint, one per endpoint (the first one in
/// service, when one endpoint is registered twice).
pub(super) fn sorted_distinct(mut instances: Vec<Instance>) -> Vec<Instance> {
    instances.sort_by_key(|i| (i.endpoint, !i.enabled));
    instances.dedup_by_key(|i| i.endpoint);
    instances
}

/// Reads and decodes the children `names` that are not plain `ip:port`
/// names in canonical spelling (Curator, Spring, serverset, a plain name
/// spelt another way), in one pipelined batch: each name
/// with its instance, `None` for a child that is none of them (reported to
/// `warn`). A child gone since the listing is left out.
///
/// # Errors
///
/// Only when the batch as a whole gets no answer in time.
pub(super) fn read_decoded(
    session: &Session,
    base_path: &BasePath,
    names: &[String],
    warn: impl Fn(&str, &str, &str),
) -> Result<Vec<(String, Option<Instance>)>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let paths: Vec<String> = names
        .iter()
        .map(|name| format!("{base_path}/{name}"))
        .collect();
    let mut decoded = Vec::with_capacity(names.len());
    session.get_data_each(&paths, |at, result| {
        let (name, path) = (&names[at], &paths[at]);
        match result {
            Ok((data, stat)) => match Endpoint::from_node_name(name) {
                // A plain name in another spelling.
                Ok(endpoint) => decoded.push((
                    name.clone(),
                    Some(plain_instance(endpoint, name, path, &data, &stat, &warn)),
                )),
                Err(_) => match crate::format::decode(name, &data) {
                    Ok(d) => decoded.push((
                        name.clone(),
                        Some(Instance::decoded(name, d, stat.ctime_ms())),
                    )),
                    Err(err) => {
                        warn(path, &err, "skipping malformed child");
                        decoded.push((name.clone(), None));
                    }
                },
            },
            Err(err) if err.is_no_node() => {}
            Err(err) => {
                warn(
                    path,
                    &err.chain().to_string(),
                    "skipping a child whose data cannot be read",
                );
                decoded.push((name.clone(), None));
            }
        }
        Ok(())
    })?;
    Ok(decoded)
}

/// Child `names` split into plain `ip:port` endpoints in canonical spelling
/// (sorted, distinct) and the others, read by name: Curator ids, serverset
/// members, plain names spelt another way, or malformed names.
pub(super) fn parse_children(names: &[String]) -> (Vec<Endpoint>, Vec<String>) {
    let mut endpoints = Vec::new();
    let mut others = Vec::new();
    for name in names {
        match Endpoint::from_node_name(name) {
            // Only the canonical spelling is found again from its endpoint;
            // another (`[2001:db8:0:0:0:0:0:1]:80`, as Java prints it) is
            // read by its own name, so that its deletion finds it.
            Ok(endpoint) if endpoint.node_name() == *name => endpoints.push(endpoint),
            Ok(_) | Err(_) => others.push(name.clone()),
        }
    }
    endpoints.sort();
    endpoints.dedup();
    (endpoints, others)
}

/// The instances of `endpoints` with their metadata, read in one pipelined
/// batch. A node gone since the listing is left out; one whose data cannot
/// be read (no READ permission, malformed JSON, a failed read) is listed by
/// its name alone, reported to `warn`: one bad child never hides the others.
///
/// # Errors
///
/// Only when the batch as a whole gets no answer in time.
pub(super) fn read_instances(
    session: &Session,
    base_path: &BasePath,
    endpoints: &[Endpoint],
    warn: impl Fn(&str, &str, &str),
) -> Result<Vec<Instance>> {
    let paths: Vec<String> = endpoints.iter().map(|e| base_path.node_path(e)).collect();
    let mut instances = Vec::with_capacity(endpoints.len());
    session.get_data_each(&paths, |at, result| {
        let (endpoint, path) = (endpoints[at], &paths[at]);
        match result {
            Ok((data, stat)) => {
                let name = endpoint.node_name();
                instances.push(plain_instance(endpoint, &name, path, &data, &stat, &warn));
            }
            Err(err) if err.is_no_node() => {}
            Err(err) => {
                warn(
                    path,
                    &err.chain().to_string(),
                    "cannot read metadata; listed by its name alone",
                );
                instances.push(Instance::new(endpoint));
            }
        }
        Ok(())
    })?;
    Ok(instances)
}

/// The instance of the plain child `name` (at `path`) of `endpoint`, from
/// its data. The rotation fields are read from any JSON object (an operator
/// may have disabled a server that stores no metadata); the metadata only
/// from ours.
fn plain_instance(
    endpoint: Endpoint,
    name: &str,
    path: &str,
    data: &[u8],
    stat: &crate::session::NodeStat,
    warn: &impl Fn(&str, &str, &str),
) -> Instance {
    let decoded = crate::format::decode_plain(endpoint, data);
    let metadata = if data.is_empty() {
        None
    } else {
        match Metadata::from_json(path, data) {
            Ok(metadata) => Some(metadata),
            Err(_) if !decoded.enabled || decoded.weight.is_some() => None,
            Err(err) => {
                warn(path, &err.to_string(), "skipping malformed metadata");
                None
            }
        }
    };
    let mut instance = Instance::decoded(name, decoded, stat.ctime_ms());
    instance.metadata = metadata.map(std::sync::Arc::new);
    instance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_bad_name_is_warned_about_once() {
        let mut warned = WarnOnce::default();
        let name = "x".repeat(300);
        let path = format!("/b/{name}");
        assert!(warned.first(&path));
        warned.retain_children(
            &BasePath::from_static("/b"),
            &HashSet::from([name.as_str()]),
        );
        assert!(!warned.first(&path), "warned again on the next listing");
    }

    #[test]
    fn warn_once_remembers_a_bounded_number_of_present_paths() {
        let mut warned = WarnOnce::default();
        assert!(warned.first("/b/x"));
        assert!(!warned.first("/b/x"), "warned twice");
        for i in 0..WarnOnce::MAX * 3 {
            warned.first(&format!("/b/bad-{i}"));
            assert!(warned.paths.len() <= WarnOnce::MAX);
        }
        warned.first("/b/x");
        warned.retain_children(&BasePath::from_static("/b"), &HashSet::from(["x"]));
        assert_eq!(
            warned.paths.len(),
            1,
            "only present children are remembered"
        );
    }
}
