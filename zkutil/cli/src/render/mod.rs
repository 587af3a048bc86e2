//! `zkutil render`: configuration files rendered from the live registry,
//! for consumers that do not link this crate (HAProxy, nginx, a script),
//! as Synapse and consul-template do.
//!
//! A render happens at start, then after each change of a followed base
//! path's list (after `--wait`'s quiet time, if set). The files change only
//! when their bytes do, atomically ([`write`]), after the operator's
//! `--check`; a write asks for the `--exec` command ([`reload`]). A render
//! never happens from a list the registry did not say ([`data`]): the files
//! keep their last render while ZooKeeper is unreachable.

mod args;
mod data;
mod metrics;
mod reload;
mod templates;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use zkutil::cli::command::{self, End};
use zkutil::{Backoff, Discovery, Session, Snapshot};

pub use self::args::RenderArgs;
use self::data::{Hold, Source};
use self::metrics::Metrics;
use self::reload::Reloader;
use self::templates::Templates;
use self::write::{Refused, Wrote};

/// How often a base path's follower looks at the stop flag.
const FOLLOW_TICK: Duration = Duration::from_millis(200);

/// What wakes the render loop.
enum Event {
    /// A followed list changed, or went stale or fresh.
    Changed,
    /// SIGINT or SIGTERM.
    Stop,
}

/// What one render came to.
enum Outcome {
    /// Every file is in place as rendered now.
    Done,
    /// Nothing rendered now (see [`Hold`]).
    Held(Hold),
    /// A template failed: the files stay until the next change.
    Failed,
    /// `--check` refused a file, or writing it failed: to be tried again.
    Refused,
}

/// What a render needs.
struct Renderer {
    templates: Templates,
    sources: Vec<Source>,
    session: Arc<Session>,
    check: Option<write::Check>,
    allow_empty: bool,
    /// Whether an `--exec` command follows writes.
    exec: bool,
    metrics: Metrics,
}

/// `zkutil render`.
pub fn run(zk: &zkutil::cli::ZkArgs, args: &RenderArgs) -> anyhow::Result<bool> {
    let templates = Templates::load(&args.templates)?;
    let mut seen = std::collections::HashMap::new();
    for dest in templates.destinations() {
        if let Some(other) = seen.insert(write::identity(dest), dest) {
            bail!(
                "{} and {} are one file, the destination of two templates: one would overwrite the other",
                other.display(),
                dest.display()
            );
        }
    }
    let paths = match args.paths.is_empty() {
        true => vec![zk.base_path.clone()],
        false => args.paths.clone(),
    };
    let stop = zkutil::cli::on_signals()?;
    let wait = |delay| stop.recv_timeout(delay).is_ok();
    let meanwhile = "the files keep their last render";
    let Some(session) = crate::connect::retrying(zk, !args.once, meanwhile, wait)? else {
        return Ok(true);
    };
    let metrics = Metrics::default();
    let _server = match args.metrics_listen {
        Some(listen) => {
            let server = metrics
                .serve(listen, &session)
                .with_context(|| format!("serving metrics on {listen}"))?;
            tracing::info!(metrics = %server.addr(), "serving /metrics and /healthz");
            Some(server)
        }
        None => None,
    };
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        let discovery = Discovery::start_with_metadata(session.clone(), &path)?;
        sources.push(Source {
            path,
            discovery: Arc::new(discovery),
        });
    }
    let renderer = Renderer {
        templates,
        sources,
        session,
        check: args.check.clone().map(|command| write::Check {
            command,
            timeout: args.command_timeout,
        }),
        allow_empty: args.allow_empty,
        exec: args.exec.is_some(),
        metrics,
    };
    if args.once {
        return renderer.once(args);
    }
    renderer.follow(args, stop)
}

impl Renderer {
    /// `--once`: one render (and the `--exec` command after a write).
    fn once(&self, args: &RenderArgs) -> anyhow::Result<bool> {
        let (outcome, _) = self.render();
        if let Outcome::Held(hold) = &outcome {
            bail!("{hold}; nothing written");
        }
        // Owed for this run's writes, or for an earlier run's whose
        // command failed or never ran: the markers say.
        let markers = self.owed_markers();
        if let (false, Some(exec)) = (markers.is_empty(), &args.exec) {
            let started = std::time::SystemTime::now();
            let ran = command::run(exec, args.command_timeout, &[], End::OnTimeout);
            reload::log_output(&ran);
            if let Err(why) = ran.result {
                bail!("--exec command failed: {why}");
            }
            reload::clear_owed(&markers, started);
        }
        Ok(matches!(outcome, Outcome::Done))
    }

    /// The markers of commands owed for writes not yet followed by a
    /// passing `--exec`.
    fn owed_markers(&self) -> Vec<std::path::PathBuf> {
        self.templates
            .destinations()
            .map(write::owed_marker)
            .filter(|marker| marker.exists())
            .collect()
    }

    /// Renders at start and after every change until a stop signal.
    fn follow(&self, args: &RenderArgs, stop: mpsc::Receiver<i32>) -> anyhow::Result<bool> {
        let (events, woken) = mpsc::channel();
        let stopping = Arc::new(AtomicBool::new(false));
        let mut followers = Vec::new();
        for source in &self.sources {
            let (discovery, events, stopping) =
                (source.discovery.clone(), events.clone(), stopping.clone());
            // Taken before the first render: a change after it is an event.
            let seen = view(&discovery.snapshot());
            followers.push(
                std::thread::Builder::new()
                    .name("follow".into())
                    .spawn(move || follow_changes(&discovery, seen, &events, &stopping))?,
            );
        }
        std::thread::Builder::new()
            .name("stop".into())
            .spawn(move || {
                let _ = stop.recv();
                let _ = events.send(Event::Stop);
            })?;
        let reloader = match &args.exec {
            Some(exec) => {
                let markers = self.templates.destinations().map(write::owed_marker);
                let reloader = Reloader::start(
                    exec.clone(),
                    args.command_timeout,
                    markers.collect(),
                    self.metrics.clone(),
                )?;
                if !self.owed_markers().is_empty() {
                    tracing::info!("an --exec command is owed for an earlier write; running it");
                    reloader.request();
                }
                Some(reloader)
            }
            None => None,
        };
        // The first render is due at once; a change waits out --wait.
        let mut burst: Option<(Instant, Instant)> = None;
        let mut due_now = true;
        let mut retry: Option<Instant> = None;
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut last_hold: Option<Hold> = None;
        loop {
            let now = Instant::now();
            // Due: after the quiet time, at most the wait's maximum after
            // the burst's first change; a retry no earlier than its time.
            let due = match (due_now, burst) {
                (true, _) => Some(now),
                (false, Some((first, last))) => {
                    let quiet = (last + args.wait.min).min(first + args.wait.max);
                    Some(retry.map_or(quiet, |at| quiet.max(at)))
                }
                (false, None) => None,
            };
            if due.is_some_and(|due| due <= now) {
                (burst, due_now) = (None, false);
                let (outcome, wrote) = self.render();
                if let (true, Some(reloader)) = (wrote, &reloader) {
                    reloader.request();
                }
                retry = None;
                match outcome {
                    Outcome::Done | Outcome::Failed => {
                        backoff.reset();
                        last_hold = None;
                    }
                    Outcome::Held(hold) => {
                        if last_hold.as_ref() != Some(&hold) {
                            tracing::warn!(reason = %hold, "not rendering; the files keep their last render");
                        }
                        if let Hold::Retry(_) = hold {
                            retry = Some(Instant::now() + backoff.next_delay());
                            burst = Some((now, now));
                        }
                        last_hold = Some(hold);
                    }
                    Outcome::Refused => {
                        retry = Some(Instant::now() + backoff.next_delay());
                        burst = Some((now, now));
                    }
                }
                continue;
            }
            let wait = due.map_or(Duration::from_secs(3600), |due| {
                due.saturating_duration_since(now)
            });
            match woken.recv_timeout(wait) {
                Ok(Event::Changed) => {
                    let now = Instant::now();
                    burst = Some(burst.map_or((now, now), |(first, _)| (first, now)));
                }
                Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        stopping.store(true, Ordering::SeqCst);
        for follower in followers {
            let _ = follower.join();
        }
        Ok(true)
    }

    /// One render of every template: its outcome, and whether a file was
    /// written.
    fn render(&self) -> (Outcome, bool) {
        let value = match data::gather(&self.sources, &self.session, self.allow_empty) {
            Ok(value) => value,
            Err(hold) => return (Outcome::Held(hold), false),
        };
        let rendered = match self
            .templates
            .render(&minijinja::Value::from_serialize(&value))
        {
            Ok(rendered) => rendered,
            Err((dest, why)) => {
                tracing::error!(error = %why, "a template failed; the files keep their last render");
                self.metrics.failed(&dest.display().to_string(), "template");
                return (Outcome::Failed, false);
            }
        };
        let (mut outcome, mut wrote) = (Outcome::Done, false);
        for (dest, bytes) in rendered {
            let file = dest.display().to_string();
            match write::install(&dest, &bytes, self.check.as_ref(), self.exec) {
                Ok(Wrote::Written) => {
                    tracing::info!(%file, instances = %counts(&self.sources), "rendered");
                    self.metrics.written(&file);
                    wrote = true;
                }
                Ok(Wrote::Unchanged) => {
                    tracing::debug!(%file, "rendered the same bytes; not written");
                    self.metrics.unchanged(&file);
                }
                Err(refused) => {
                    let stage = match refused {
                        Refused::Check(_) => "check",
                        Refused::Write(_) => "write",
                    };
                    tracing::error!(%file, error = %refused, "not replaced; the file keeps its last render");
                    self.metrics.failed(&file, stage);
                    outcome = Outcome::Refused;
                }
            }
        }
        if let Outcome::Done = outcome {
            self.metrics.succeeded();
        }
        (outcome, wrote)
    }
}

/// `path: N in rotation, M out`, for each base path.
fn counts(sources: &[Source]) -> String {
    sources
        .iter()
        .map(|source| {
            let snapshot = source.discovery.snapshot();
            format!(
                "{}: {} in rotation, {} out",
                source.path,
                snapshot.instances().len(),
                snapshot.out_of_service().len()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What of a snapshot a render depends on: its list's version, and
/// whether it is stale.
fn view(snapshot: &Snapshot) -> (u64, bool) {
    (snapshot.version(), snapshot.is_stale())
}

/// Sends [`Event::Changed`] whenever `discovery`'s list changes or its view
/// goes stale or fresh (from `seen`), until `stopping`.
fn follow_changes(
    discovery: &Discovery,
    mut seen: (u64, bool),
    events: &mpsc::Sender<Event>,
    stopping: &AtomicBool,
) {
    while !stopping.load(Ordering::SeqCst) {
        if let Some(snapshot) = discovery.wait_for(FOLLOW_TICK, |snapshot| view(snapshot) != seen) {
            seen = view(&snapshot);
            if events.send(Event::Changed).is_err() {
                return;
            }
        }
    }
}
