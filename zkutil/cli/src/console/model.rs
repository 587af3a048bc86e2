//! `model`: the registry as the console shows it, kept from one
//! [`Discovery`] per base path: the instances with their records (owner
//! session, the format's own metadata), what changed (joins, leaves,
//! disables, enables, weights), and each base path's instance count over
//! the last hour.
//!
//! The page gets the whole of it as one JSON document per change (a slow
//! browser skips to the latest). While ZooKeeper is unreachable the lists
//! are the last known ones, marked stale; nothing is read until it is back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use zkutil::{BasePath, Discovery, Instance, Session, SessionState};

use super::actions::Shown;
use super::timeline::{LOOK_BACK, changes, sample};

/// Events kept in the timeline, at most (the page shows the latest).
const TIMELINE_MAX: usize = 2_000;
/// How often a base path's follower looks at the stop flag.
const FOLLOW_TICK: Duration = Duration::from_millis(200);
/// The most of one instance's metadata (as JSON text) the page gets: it
/// shows 400 characters, and a registrant's 1 MiB record must not become
/// 1 MiB per instance per change per browser.
const METADATA_SHOWN: usize = 2048;

/// What the page shows of one instance besides its [`Instance`]: read from
/// its node, again whenever the instance changes.
struct Record {
    instance: Instance,
    owner: String,
    metadata: Value,
}

/// One base path followed.
struct Source {
    discovery: Arc<Discovery>,
    /// Its follower's stop flag and thread.
    stop: Arc<AtomicBool>,
    follower: Option<std::thread::JoinHandle<()>>,
    /// Its instances at the last build, by node name (`None`: not built
    /// yet, so the first listing is no burst of joins).
    seen: Option<BTreeMap<String, Instance>>,
    /// (ms since the epoch, in rotation, all).
    history: VecDeque<(u64, usize, usize)>,
}

/// The registry as the page shows it.
pub struct Model {
    session: Arc<Session>,
    sources: BTreeMap<String, Source>,
    records: HashMap<String, Record>,
    timeline: VecDeque<Value>,
    /// Woken on every change of a followed list.
    wake: mpsc::Sender<()>,
    /// The base paths shown, for the actions.
    shown: Shown,
    /// This run's id: a page that sees another reloads (a new token).
    boot: String,
}

impl Model {
    /// An empty model; its followers wake `wake` on every change.
    pub fn new(session: Arc<Session>, wake: mpsc::Sender<()>, shown: Shown, boot: String) -> Model {
        Model {
            session,
            sources: BTreeMap::new(),
            records: HashMap::new(),
            timeline: VecDeque::new(),
            wake,
            shown,
            boot,
        }
    }

    /// Follows `path` from now on (nothing when it is followed already).
    ///
    /// # Errors
    ///
    /// Starting its discovery.
    pub fn follow(&mut self, path: &BasePath) -> zkutil::Result<()> {
        if self.sources.contains_key(path.as_str()) {
            return Ok(());
        }
        let discovery = Arc::new(Discovery::start_with_metadata(self.session.clone(), path)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (follower, wake, stopping) = (discovery.clone(), self.wake.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("console-follow".into())
            .spawn(move || follow_changes(&follower, &wake, &stopping));
        let follower = match thread {
            Ok(thread) => Some(thread),
            Err(err) => {
                tracing::warn!(error = %err, "no follower thread; changes show at the next tick");
                None
            }
        };
        tracing::info!(path = %path, "console: following");
        self.sources.insert(
            path.as_str().to_owned(),
            Source {
                discovery,
                stop,
                follower,
                seen: None,
                history: VecDeque::new(),
            },
        );
        Ok(())
    }

    /// The base paths under `root` that hold instances, followed from now.
    pub fn scan(&mut self, root: &str) {
        if self.session.state() != SessionState::Connected {
            return;
        }
        let found = match zkutil::list_instances_under(&self.session, root, false) {
            Ok(found) => found,
            Err(err) => {
                tracing::warn!(root, error = %err, "console: scanning for base paths failed");
                return;
            }
        };
        let holding: std::collections::HashSet<String> = found
            .iter()
            .map(|(path, _)| path.as_str().to_owned())
            .collect();
        for (path, _) in found {
            if let Err(err) = self.follow(&path) {
                tracing::warn!(path = %path, error = %err, "console: not followed; tried again at the next scan");
            }
        }
        // A base path that holds nothing any more (deleted, or emptied) is
        // let go, with its thread and watch; it comes back if it fills.
        let empty: Vec<String> = self
            .sources
            .iter()
            .filter(|(path, source)| {
                let snapshot = source.discovery.snapshot();
                !holding.contains(*path)
                    && snapshot.version() > 0
                    && !snapshot.is_stale()
                    && snapshot.instances().is_empty()
                    && snapshot.out_of_service().is_empty()
            })
            .map(|(path, _)| path.clone())
            .collect();
        let mut gone = Vec::with_capacity(empty.len());
        for path in empty {
            if let Some(source) = self.sources.remove(&path) {
                tracing::info!(path, "console: no instance left; not followed any more");
                source.stop.store(true, Ordering::SeqCst);
                gone.push(source);
            }
        }
        // Their followers notice the stop within a tick, and a discovery
        // ends its watch when dropped: off this loop, which goes on.
        if !gone.is_empty() {
            let dropped = std::thread::Builder::new()
                .name("console-drop".into())
                .spawn(move || end(gone));
            if let Err(err) = dropped {
                tracing::warn!(error = %err, "console: no thread to end dropped base paths");
            }
        }
    }

    /// The registry now, as the page's JSON; records are read for the
    /// instances new or changed since the last build.
    pub fn build(&mut self, writes: bool) -> Value {
        let now = SystemTime::now();
        let now_ms = millis(now);
        let connected = self.session.state() == SessionState::Connected;
        let mut services = Vec::with_capacity(self.sources.len());
        let paths: Vec<String> = self.sources.keys().cloned().collect();
        let mut live = std::collections::HashSet::new();
        for path in paths {
            let Some(source) = self.sources.get(&path) else {
                continue;
            };
            let snapshot = source.discovery.snapshot();
            let stale = snapshot.is_stale() || !connected;
            let all: Vec<Instance> = snapshot
                .instances()
                .iter()
                .chain(snapshot.out_of_service().iter())
                .cloned()
                .collect();
            if !stale {
                self.read_records(&path, &all);
            }
            let mut rows = Vec::with_capacity(all.len());
            let mut now_seen = BTreeMap::new();
            for instance in &all {
                let node = format!("{path}/{}", instance.node_name());
                let record = self.records.get(&node);
                rows.push(instance_row(instance, record));
                live.insert(node);
                now_seen.insert(instance.node_name().to_owned(), instance.clone());
            }
            let in_rotation = snapshot.instances().len();
            let Some(source) = self.sources.get_mut(&path) else {
                continue;
            };
            if !stale && snapshot.version() > 0 {
                if let Some(before) = &source.seen {
                    for event in changes(&path, before, &now_seen, now_ms) {
                        self.timeline.push_back(event);
                    }
                }
                source.seen = Some(now_seen);
                sample(&mut source.history, now_ms, in_rotation, all.len());
            }
            let formats: std::collections::BTreeSet<&str> =
                all.iter().map(|i| i.format().name()).collect();
            services.push(json!({
                "path": path,
                "formats": formats,
                "listed": snapshot.version() > 0,
                "stale": stale,
                "stale_for_ms": snapshot.stale_for().map(|d| d.as_millis() as u64),
                "in_rotation": in_rotation,
                "instances": rows,
                "history": source.history,
            }));
        }
        // Records of nodes no longer listed; and the old end of the timeline.
        if connected {
            self.records.retain(|node, _| live.contains(node));
        }
        let oldest = now_ms.saturating_sub(LOOK_BACK.as_millis() as u64);
        while self.timeline.len() > TIMELINE_MAX
            || self
                .timeline
                .front()
                .is_some_and(|event| event["at"].as_u64().unwrap_or(0) < oldest)
        {
            self.timeline.pop_front();
        }
        *self
            .shown
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            self.sources.keys().cloned().collect();
        json!({
            "boot": self.boot,
            "now_ms": now_ms,
            "writes": writes,
            "zookeeper": {
                "connected": connected,
                "state": format!("{:?}", self.session.state()),
                "session": self.session.id().to_string(),
            },
            "services": services,
            "timeline": self.timeline,
        })
    }

    /// Reads the records of `instances` under `path` not read since they
    /// last changed, in one pipelined batch. A failed read leaves the
    /// instance without its record, tried again at the next build.
    fn read_records(&mut self, path: &str, instances: &[Instance]) {
        let wanted: Vec<(String, &Instance)> = instances
            .iter()
            .map(|instance| (format!("{path}/{}", instance.node_name()), instance))
            .filter(|(node, instance)| {
                self.records
                    .get(node)
                    .is_none_or(|record| record.instance != **instance)
            })
            .collect();
        if wanted.is_empty() {
            return;
        }
        let nodes: Vec<String> = wanted.iter().map(|(node, _)| node.clone()).collect();
        let reads = match self.session.get_data_many(&nodes) {
            Ok(reads) => reads,
            Err(err) => {
                tracing::debug!(path, error = %err, "console: records not read; tried again later");
                return;
            }
        };
        for ((node, instance), read) in wanted.into_iter().zip(reads) {
            let Ok((data, stat)) = read else { continue };
            let metadata = serde_json::from_slice::<Value>(&data)
                .ok()
                .and_then(|record| instance.format().metadata_of(&record).cloned())
                .map_or(Value::Null, shown_metadata);
            self.records.insert(
                node,
                Record {
                    instance: instance.clone(),
                    owner: stat.ephemeral_owner().to_string(),
                    metadata,
                },
            );
        }
    }

    /// Stops the followers.
    pub fn stop(self) {
        end(self.sources.into_values().collect());
    }
}

/// Stops `sources`' followers (all at once, then waits for each) and drops
/// their discoveries.
fn end(sources: Vec<Source>) {
    for source in &sources {
        source.stop.store(true, Ordering::SeqCst);
    }
    for mut source in sources {
        if let Some(follower) = source.follower.take() {
            let _ = follower.join();
        }
    }
}

/// One row of the page's table.
fn instance_row(instance: &Instance, record: Option<&Record>) -> Value {
    json!({
        "endpoint": instance.endpoint().to_string(),
        "node": instance.node_name(),
        "format": instance.format().name(),
        "in_rotation": instance.is_enabled(),
        "reason": instance.disabled_reason(),
        "weight": instance.weight(),
        "registered_ms": instance.registered_at().map(millis),
        "owner": record.map(|record| record.owner.as_str()),
        "metadata": record.map_or(&Value::Null, |record| &record.metadata),
    })
}

/// `metadata` as the page gets it: whole, or when its JSON is longer than
/// [`METADATA_SHOWN`], the start of that text and its length.
fn shown_metadata(metadata: Value) -> Value {
    let text = metadata.to_string();
    if text.len() <= METADATA_SHOWN {
        return metadata;
    }
    let mut end = METADATA_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(format!(
        "{}… ({} bytes in all: zkutil get shows them)",
        &text[..end],
        text.len()
    ))
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// Wakes `wake` whenever `discovery`'s list changes or its view goes stale
/// or fresh, until `stopping`.
fn follow_changes(discovery: &Discovery, wake: &mpsc::Sender<()>, stopping: &AtomicBool) {
    let view = |snapshot: &zkutil::Snapshot| (snapshot.version(), snapshot.is_stale());
    let mut seen = view(&discovery.snapshot());
    while !stopping.load(Ordering::SeqCst) {
        if let Some(snapshot) = discovery.wait_for(FOLLOW_TICK, |snapshot| view(snapshot) != seen) {
            seen = view(&snapshot);
            if wake.send(()).is_err() {
                return;
            }
        }
    }
}
