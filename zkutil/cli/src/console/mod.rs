//! `zkutil console`: the registry live in a browser, as Consul's UI or
//! Eureka's dashboard show theirs: every base path under a root in every
//! format, each instance's state, what changed, each base path's count
//! over the last hour, and the ensemble's health; with `--allow-writes`,
//! disable, enable and weight buttons.
//!
//! One page served by this process ([`web`], every asset embedded), fed by
//! one [`Discovery`](zkutil::Discovery) per base path ([`model`]) through
//! server-sent events: a change shows without a reload. The ensemble's
//! four-letter words are asked on their own thread ([`ensemble`]).

mod actions;
mod args;
mod ensemble;
mod events;
mod model;
mod timeline;
mod web;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::watch;
use zkutil::Session;
use zkutil::cli::ZkArgs;
use zkutil::cli::http::HttpServer;

use self::actions::Actions;
use self::actions::Shown;
pub use self::args::ConsoleArgs;
use self::model::Model;
use self::web::Web;

/// After a change, further changes for this long join it in one update of
/// the page (a burst of registrations is one redraw, not hundreds).
const COALESCE: Duration = Duration::from_millis(100);
/// The page's clock and charts move at least this often.
const TICK: Duration = Duration::from_secs(30);

/// `zkutil console`.
pub fn run(zk: &ZkArgs, args: &ConsoleArgs) -> anyhow::Result<bool> {
    let stop = zkutil::cli::on_signals()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let boot = format!("{:016x}", rand::random::<u64>());
    let waiting = json!({
        "boot": boot, "now_ms": 0, "writes": args.allow_writes, "services": [], "timeline": [],
        "zookeeper": { "connected": false, "state": "Connecting", "session": null },
    });
    let (registry, registry_rx) = watch::channel(Bytes::from(waiting.to_string()));
    let (ensemble, ensemble_rx) = watch::channel(Bytes::from_static(b"[]"));
    let session_cell: Arc<std::sync::OnceLock<Arc<Session>>> = Arc::default();
    let shown = Shown::default();
    let actions = Actions {
        session: session_cell.clone(),
        identity: identity(zk),
        writes: args.allow_writes,
        token: format!("{:032x}", rand::random::<u128>()),
        shown: shown.clone(),
    };
    let web = Web::new(registry_rx, ensemble_rx, actions, args.allow_hosts.clone());
    if args.allow_writes && !args.listen.ip().is_loopback() {
        tracing::warn!(listen = %args.listen, "console: writes allowed on a port others can reach: \
            whoever reaches it does what this ZooKeeper identity may (the console has no login)");
    }
    let server = HttpServer::start(
        args.listen,
        "console",
        Box::new(move |request| web.answer(request)),
    )
    .with_context(|| format!("serving the console on {}", args.listen))?;
    tracing::info!(console = %server.addr(), url = %format!("http://{}/", server.addr()), writes = args.allow_writes, "console: serving");

    let (tick, ticked) = mpsc::channel();
    let poller = {
        let (zk, stopping) = (zk.clone(), stopping.clone());
        std::thread::Builder::new()
            .name("console-ensemble".into())
            .spawn(move || {
                ensemble::poll(
                    &zk,
                    |value| {
                        ensemble.send_replace(Bytes::from(value.to_string()));
                    },
                    &stopping,
                    &ticked,
                );
            })?
    };
    let (wake, woken) = mpsc::channel();
    {
        let (wake, stopping) = (wake.clone(), stopping.clone());
        std::thread::Builder::new()
            .name("stop".into())
            .spawn(move || {
                let _ = stop.recv();
                stopping.store(true, Ordering::SeqCst);
                let _ = wake.send(());
            })?;
    }
    // The page is served meanwhile and says it is connecting.
    let wait = |delay| {
        let _ = woken.recv_timeout(delay);
        stopping.load(Ordering::SeqCst)
    };
    let Some(session) = crate::connect::retrying(zk, true, "the console says so", wait)? else {
        return Ok(true);
    };
    let _ = session_cell.set(session.clone());
    {
        // The page says at once when the connection goes or comes back.
        let (wake, tick) = (wake.clone(), tick.clone());
        session.subscribe(move |_| wake.send(()).is_ok() && tick.send(()).is_ok());
    }
    let mut model = Model::new(session, wake, shown, boot);
    for path in &args.paths {
        model
            .follow(path)
            .with_context(|| format!("following {path}"))?;
    }
    let scanning = args.paths.is_empty();
    let mut next_scan = Instant::now();
    while !stopping.load(Ordering::SeqCst) {
        if scanning && Instant::now() >= next_scan {
            model.scan(&args.root);
            next_scan = Instant::now() + args.rescan;
        }
        registry.send_replace(Bytes::from(model.build(args.allow_writes).to_string()));
        let wait = match scanning {
            true => next_scan
                .saturating_duration_since(Instant::now())
                .min(TICK),
            false => TICK,
        };
        match woken.recv_timeout(wait) {
            Ok(()) => {
                let until = Instant::now() + COALESCE;
                while woken
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                    .is_ok()
                {}
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    model.stop();
    drop(tick);
    let _ = poller.join();
    drop(server);
    Ok(true)
}

/// The ZooKeeper identity of the session, as the action log names it.
fn identity(zk: &ZkArgs) -> String {
    let user = |secret: &zkutil::Secret| {
        secret
            .expose()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    if let Some(cert) = &zk.zk_tls_cert {
        return format!("x509:{}", cert.display());
    }
    if let Some(digest) = zk.digest_auth() {
        return format!("digest:{}", user(digest));
    }
    match zk.zk_sasl.as_ref().or(zk.zk_sasl_file.as_ref()) {
        Some(sasl) => format!("sasl:{}", user(sasl)),
        None => "anonymous".to_owned(),
    }
}
