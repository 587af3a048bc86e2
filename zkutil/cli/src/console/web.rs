//! `web`: the console's HTTP side, on the bounded server of the metrics
//! port ([`zkutil::cli::http`]): the page and its assets (embedded: no
//! CDN, no external font), the registry as JSON, a stream of its changes
//! (server-sent events), and the operator's actions.
//!
//! Safe by default:
//! * a Host header that is no IP address, `localhost` or an `--allow-host`
//!   name is refused (DNS rebinding: a page of an attacker's domain that
//!   resolves to 127.0.0.1 would otherwise read the registry);
//! * a request with an `Origin` not this console's is refused;
//! * an action needs `--allow-writes`, this process's token (sent only
//!   inside the page: another site cannot read it) in a custom header (a
//!   cross-site form cannot set one), and a POST;
//! * every answer carries a Content-Security-Policy that allows the page's
//!   own script and style only, so that a value from ZooKeeper that slips
//!   into markup still runs nothing (the page sets text, never HTML);
//! * at most [`MAX_STREAMS`] live event streams.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{oneshot, watch};
use zkutil::cli::http::{Answer, Body, Reply, Request};
use zkutil::{BasePath, Control, Endpoint, Session};

/// Live event streams at once (the server holds 64 connections: the rest
/// stay free for the page, its actions and `/metrics`-style requests).
pub const MAX_STREAMS: usize = 16;
/// A comment line on an idle stream this often: a proxy keeps it open, and
/// a browser that went away is noticed.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// The longest an action may take (its conditional writes retry a few
/// times; each ZooKeeper request has its own timeout).
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The header that carries the page's token with an action.
const TOKEN_HEADER: &str = "x-console-token";

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the console serves.
pub struct Web {
    pub registry: watch::Receiver<Arc<str>>,
    pub ensemble: watch::Receiver<Arc<str>>,
    /// Set once connected.
    pub session: Arc<OnceLock<Arc<Session>>>,
    /// The ZooKeeper identity the actions use, for the log.
    pub identity: String,
    pub writes: bool,
    pub allow_hosts: Vec<String>,
    /// The page, with this process's token in it.
    page: Bytes,
    token: String,
    streams: Arc<AtomicUsize>,
}

impl Web {
    /// The console's web side; `token` is a random secret of this process.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: watch::Receiver<Arc<str>>,
        ensemble: watch::Receiver<Arc<str>>,
        session: Arc<OnceLock<Arc<Session>>>,
        identity: String,
        writes: bool,
        allow_hosts: Vec<String>,
        token: String,
    ) -> Web {
        let page = INDEX.replace("{{TOKEN}}", &token);
        Web {
            registry,
            ensemble,
            session,
            identity,
            writes,
            allow_hosts,
            page: Bytes::from(page),
            token,
            streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Answers one request.
    pub fn answer(&self, request: &Request<'_>) -> Reply {
        if let Err(why) = self.admitted(request) {
            return secured(Answer::text(403, format!("{why}\n"))).into();
        }
        let answer = match (request.method(), request.path()) {
            ("GET", "/") => Answer::new(200, "text/html; charset=utf-8", self.page.clone()),
            ("GET", "/console.js") => Answer::new(200, "text/javascript; charset=utf-8", SCRIPT),
            ("GET", "/console.css") => Answer::new(200, "text/css; charset=utf-8", STYLE),
            ("GET", "/api/state") => {
                let (registry, ensemble) = (
                    self.registry.borrow().clone(),
                    self.ensemble.borrow().clone(),
                );
                let body = format!("{{\"registry\":{registry},\"ensemble\":{ensemble}}}");
                Answer::new(200, "application/json", body)
            }
            ("GET", "/api/events") => self.events(),
            ("POST", "/api/action") => return self.action(request),
            (
                _,
                "/" | "/console.js" | "/console.css" | "/api/state" | "/api/events" | "/api/action",
            ) => Answer::text(405, "method not allowed\n"),
            _ => Answer::text(404, "not found\n"),
        };
        secured(answer).into()
    }

    /// Host and Origin checks (see the module's doc).
    fn admitted(&self, request: &Request<'_>) -> Result<(), String> {
        let Some(host) = request.header("host") else {
            return Err("no Host header".to_owned());
        };
        if !host_allowed(host, &self.allow_hosts) {
            return Err(format!(
                "Host {host:?} is not allowed: use an IP address or localhost, or start the console with --allow-host NAME"
            ));
        }
        match request.header("origin") {
            Some(origin) if origin != format!("http://{host}") => {
                Err(format!("Origin {origin:?} is not this console"))
            }
            _ => Ok(()),
        }
    }

    /// `GET /api/events`: the registry and the ensemble now, then each
    /// change (a slow reader skips to the latest).
    fn events(&self) -> Answer {
        let streams = self.streams.clone();
        if streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
            streams.fetch_sub(1, Ordering::SeqCst);
            return Answer::text(503, format!("at most {MAX_STREAMS} live consoles\n"))
                .with_header("retry-after", "5");
        }
        let state = Stream {
            registry: self.registry.clone(),
            ensemble: self.ensemble.clone(),
            first: true,
            _held: Held(streams),
        };
        let stream = futures_lite::stream::unfold(state, next_event);
        Answer {
            status: 200,
            content_type: "text/event-stream",
            headers: vec![("cache-control", "no-store".to_owned())],
            body: Body::Stream(Box::pin(stream)),
        }
    }

    /// `POST /api/action?op=disable|enable|weight&path=…&endpoint=…[&reason=…][&weight=N]`.
    fn action(&self, request: &Request<'_>) -> Reply {
        let refuse =
            |status: u16, why: String| secured(Answer::text(status, format!("{why}\n"))).into();
        if !self.writes {
            return refuse(
                403,
                "writes are not allowed: the console was started without --allow-writes".to_owned(),
            );
        }
        if request.header("origin").is_none()
            || request.header(TOKEN_HEADER) != Some(self.token.as_str())
        {
            return refuse(
                403,
                "an action must come from the console's page (its token is missing or wrong)"
                    .to_owned(),
            );
        }
        let (path, endpoint, control) = match parse_action(request.query().unwrap_or_default()) {
            Ok(parsed) => parsed,
            Err(why) => return refuse(400, why),
        };
        let Some(session) = self.session.get().cloned() else {
            return refuse(503, "not connected to ZooKeeper yet".to_owned());
        };
        let (identity, peer) = (self.identity.clone(), request.peer());
        let (done, answer) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("console-action".into())
            .spawn(move || {
                let result = run_action(&session, &path, endpoint, &control, &identity, peer);
                let _ = done.send(result);
            });
        if let Err(err) = spawned {
            return refuse(503, format!("no thread for the action: {err}"));
        }
        Reply::Later(Box::pin(async move {
            let answer = match tokio::time::timeout(ACTION_TIMEOUT, answer).await {
                Ok(Ok(Ok(nodes))) => Answer::new(
                    200,
                    "application/json",
                    json!({ "ok": true, "nodes": nodes }).to_string(),
                ),
                Ok(Ok(Err((status, why)))) => Answer::text(status, format!("{why}\n")),
                Ok(Err(_)) => Answer::text(500, "the action ended without an answer\n"),
                Err(_) => Answer::text(
                    504,
                    "the action is taking too long; see the console's log\n",
                ),
            };
            secured(answer)
        }))
    }
}

/// The headers of every answer.
fn secured(answer: Answer) -> Answer {
    answer
        .with_header("content-security-policy", CSP)
        .with_header("x-content-type-options", "nosniff")
        .with_header("x-frame-options", "DENY")
        .with_header("referrer-policy", "no-referrer")
        .with_header("cache-control", "no-store")
}

/// Whether a browser may reach the console under `host` (the Host header).
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.starts_with(':') => {
                return v6.parse::<Ipv6Addr>().is_ok();
            }
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// An action's base path, endpoint and change, from its query.
fn parse_action(query: &str) -> Result<(BasePath, Endpoint, Control), String> {
    let mut fields = std::collections::HashMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        fields.insert(key.into_owned(), value.into_owned());
    }
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .ok_or(format!("no {name} given"))
    };
    let path = BasePath::new(field("path")?).map_err(|err| err.to_string())?;
    let endpoint: Endpoint = field("endpoint")?
        .parse()
        .map_err(|err: zkutil::Error| err.to_string())?;
    let control = match field("op")? {
        "disable" => Control::Disable {
            reason: fields
                .get("reason")
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty()),
        },
        "enable" => Control::Enable,
        "weight" => Control::Weight(
            field("weight")?
                .trim()
                .parse()
                .map_err(|_| "the weight is a whole number from 0".to_owned())?,
        ),
        other => {
            return Err(format!(
                "unknown action {other:?}: disable, enable or weight"
            ));
        }
    };
    Ok((path, endpoint, control))
}

/// Applies an action, logging who asked and what changed.
fn run_action(
    session: &Session,
    path: &BasePath,
    endpoint: Endpoint,
    control: &Control,
    identity: &str,
    browser: SocketAddr,
) -> Result<Vec<String>, (u16, String)> {
    match control.apply_to(session, path, endpoint) {
        Ok(applied) => {
            let nodes: Vec<String> = applied
                .iter()
                .map(|node| format!("{} (version {})", node.path, node.version))
                .collect();
            tracing::info!(identity = %identity, %browser, base_path = %path, %endpoint, change = %control,
                nodes = %nodes.join(", "), "console: operator action applied");
            Ok(nodes)
        }
        Err(err) => {
            tracing::warn!(identity = %identity, %browser, base_path = %path, %endpoint, change = %control,
                error = %err, "console: operator action failed");
            let status = match &err {
                err if err.is_no_auth() => 403,
                zkutil::Error::NotRegistered { .. } => 404,
                zkutil::Error::Conflict { .. } => 409,
                _ => 502,
            };
            let why = match status {
                403 => format!(
                    "{err}: the console's ZooKeeper identity ({identity}) has no WRITE permission on it"
                ),
                _ => err.to_string(),
            };
            Err((status, why))
        }
    }
}

/// An event stream's state.
struct Stream {
    registry: watch::Receiver<Arc<str>>,
    ensemble: watch::Receiver<Arc<str>>,
    first: bool,
    _held: Held,
}

/// One of the [`MAX_STREAMS`], until the stream ends.
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The stream's next chunk: an event, or a heartbeat; none once the
/// console stops.
async fn next_event(mut state: Stream) -> Option<(Bytes, Stream)> {
    if state.first {
        state.first = false;
        let registry = state.registry.borrow_and_update().clone();
        let ensemble = state.ensemble.borrow_and_update().clone();
        let chunk = format!(
            "retry: 1000\n\n{}{}",
            event("registry", &registry),
            event("ensemble", &ensemble)
        );
        return Some((Bytes::from(chunk), state));
    }
    let chunk = tokio::select! {
        changed = state.registry.changed() => {
            changed.ok()?;
            event("registry", &state.registry.borrow_and_update().clone())
        }
        changed = state.ensemble.changed() => {
            changed.ok()?;
            event("ensemble", &state.ensemble.borrow_and_update().clone())
        }
        () = tokio::time::sleep(HEARTBEAT) => ": keep-alive\n\n".to_owned(),
    };
    Some((Bytes::from(chunk), state))
}

/// One server-sent event (`data` is one line of JSON).
fn event(name: &str, data: &str) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_addresses_localhost_and_named_hosts_are_admitted() {
        let named = vec!["console.example".to_owned()];
        for host in [
            "127.0.0.1:7979",
            "localhost:7979",
            "LOCALHOST",
            "[::1]:7979",
            "10.1.2.3",
            "console.example:80",
        ] {
            assert!(host_allowed(host, &named), "{host}");
        }
        for host in [
            "evil.example:7979",
            "127.0.0.1.nip.io:7979",
            "[::1",
            "[evil]:80",
            "localhost.evil:1",
            "",
        ] {
            assert!(!host_allowed(host, &named), "{host}");
        }
    }

    #[test]
    fn an_action_reads_its_query_and_refuses_what_it_cannot_use() {
        let (path, endpoint, control) = parse_action(
            "op=disable&path=%2Fgo_servers&endpoint=127.0.0.1%3A80&reason=kernel+upgrade",
        )
        .expect("parsed");
        assert_eq!(path.as_str(), "/go_servers");
        assert_eq!(endpoint.to_string(), "127.0.0.1:80");
        assert_eq!(
            control,
            Control::Disable {
                reason: Some("kernel upgrade".to_owned())
            }
        );
        assert!(parse_action("op=weight&path=/s&endpoint=1.2.3.4:5&weight=-1").is_err());
        assert!(parse_action("op=drop&path=/s&endpoint=1.2.3.4:5").is_err());
        assert!(parse_action("op=enable&path=relative&endpoint=1.2.3.4:5").is_err());
    }
}
