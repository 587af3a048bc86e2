//! `Discovery`: the registered instances under a base path.
//!
//! Child names come from anyone who can write to ZooKeeper, so each is
//! parsed as an [`Endpoint`]; a name that does not parse is skipped and
//! logged once (not on every listing, which would flood the log of a
//! client that lists once a second). A missing base path means no server
//! has registered yet: an empty list, not an error.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::registry::{Metadata, check_base_path, node_path};
use crate::session::Session;

/// One registered server: where to connect, and what it said about itself
/// when that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    endpoint: Endpoint,
    metadata: Option<Metadata>,
}

impl Instance {
    /// An instance known only by its endpoint.
    pub fn new(endpoint: Endpoint) -> Instance {
        Instance {
            endpoint,
            metadata: None,
        }
    }

    /// Where to connect.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The registration's metadata, when it was read and valid.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }
}

/// Lists the instances registered under one base path, over one session.
#[derive(Debug)]
pub struct Discovery {
    session: Arc<Session>,
    base_path: String,
    warned: Mutex<HashSet<String>>,
}

impl Discovery {
    /// Discovery of the children of `base_path`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidArgument`] for a malformed base path.
    pub fn new(session: Arc<Session>, base_path: &str) -> Result<Discovery> {
        check_base_path(base_path)?;
        Ok(Discovery {
            session,
            base_path: base_path.to_owned(),
            warned: Mutex::new(HashSet::new()),
        })
    }

    /// The base path.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// The session used.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The instances registered now, sorted by endpoint, without metadata
    /// (one ZooKeeper read).
    ///
    /// # Errors
    ///
    /// ZooKeeper errors naming the base path.
    pub fn instances(&self) -> Result<Vec<Instance>> {
        let names = match self.session.children(&self.base_path) {
            Ok(names) => names,
            Err(err) if err.is_no_node() => Vec::new(),
            Err(err) => return Err(err),
        };
        let mut instances: Vec<Instance> = names
            .iter()
            .filter_map(|name| self.parse_child(name))
            .map(Instance::new)
            .collect();
        instances.sort_by_key(Instance::endpoint);
        instances.dedup();
        Ok(instances)
    }

    /// The instances registered now, with their metadata (one read per
    /// instance). Metadata that cannot be read or parsed is logged once and
    /// left out; the instance is still listed.
    ///
    /// # Errors
    ///
    /// ZooKeeper errors naming the base path.
    pub fn instances_with_metadata(&self) -> Result<Vec<Instance>> {
        let mut instances = self.instances()?;
        for instance in &mut instances {
            let path = node_path(&self.base_path, &instance.endpoint);
            match self.session.get_data(&path) {
                Ok((data, _)) => match Metadata::from_json(&path, &data) {
                    Ok(metadata) => instance.metadata = Some(metadata),
                    Err(err) => {
                        self.warn_once(&path, &err.to_string(), "skipping malformed metadata")
                    }
                },
                Err(err) if err.is_no_node() => {}
                Err(err) => return Err(err),
            }
        }
        Ok(instances)
    }

    fn parse_child(&self, name: &str) -> Option<Endpoint> {
        match Endpoint::from_node_name(name) {
            Ok(endpoint) => Some(endpoint),
            Err(err) => {
                let path = format!("{}/{name}", self.base_path.trim_end_matches('/'));
                self.warn_once(&path, &err.to_string(), "skipping malformed child");
                None
            }
        }
    }

    fn warn_once(&self, path: &str, error: &str, message: &str) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned());
        if first {
            tracing::warn!(path = %truncate(path), error, "{message}");
        }
    }
}

fn truncate(text: &str) -> &str {
    match text.char_indices().nth(128) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}
