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
//! * at most [`MAX_STREAMS`](super::events::MAX_STREAMS) live event
//!   streams ([`super::events`]); actions are checked in [`super::actions`].

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use zkutil::cli::http::{Answer, Reply, Request};

use super::actions::Actions;
use super::events::Streams;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the console serves.
pub struct Web {
    registry: watch::Receiver<Bytes>,
    ensemble: watch::Receiver<Bytes>,
    actions: Actions,
    allow_hosts: Vec<String>,
    /// The page, with this process's token in it.
    page: Bytes,
    streams: Arc<Streams>,
}

impl Web {
    /// The console's web side: the registry's and the ensemble's JSON
    /// documents, and the actions (whose token the page carries).
    pub fn new(
        registry: watch::Receiver<Bytes>,
        ensemble: watch::Receiver<Bytes>,
        actions: Actions,
        allow_hosts: Vec<String>,
    ) -> Web {
        let page = INDEX.replace("{{TOKEN}}", &actions.token);
        Web {
            registry,
            ensemble,
            actions,
            allow_hosts,
            page: Bytes::from(page),
            streams: Arc::default(),
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
                let mut body = Vec::with_capacity(registry.len() + ensemble.len() + 32);
                body.extend_from_slice(b"{\"registry\":");
                body.extend_from_slice(&registry);
                body.extend_from_slice(b",\"ensemble\":");
                body.extend_from_slice(&ensemble);
                body.push(b'}');
                Answer::new(200, "application/json", body)
            }
            ("GET", "/api/events") => {
                let peer = request.peer().ip();
                self.streams
                    .open(peer, self.registry.clone(), self.ensemble.clone())
            }
            ("POST", "/api/action") => return self.actions.answer(request, secured),
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
            Some(origin) if !origin_allowed(origin, host, &self.allow_hosts) => {
                Err(format!("Origin {origin:?} is not this console"))
            }
            _ => Ok(()),
        }
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

/// Whether `origin` is this console's page: `http` or `https` (behind a
/// proxy that ends TLS) with the request's own Host, or with a name of
/// `--allow-host` (a proxy that rewrites Host to the console's address).
fn origin_allowed(origin: &str, host: &str, allowed: &[String]) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    if authority == host {
        return true;
    }
    let name = authority
        .rsplit_once(':')
        .map_or(authority, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                authority
            }
        });
    allowed
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
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
    fn an_origin_is_the_consoles_own_host_or_an_allowed_name_over_http_or_https() {
        let named = vec!["console.example".to_owned()];
        assert!(origin_allowed(
            "http://127.0.0.1:7979",
            "127.0.0.1:7979",
            &named
        ));
        assert!(origin_allowed(
            "https://127.0.0.1:7979",
            "127.0.0.1:7979",
            &named
        ));
        assert!(origin_allowed(
            "https://console.example",
            "127.0.0.1:7979",
            &named
        ));
        assert!(origin_allowed(
            "https://console.example:8443",
            "127.0.0.1:7979",
            &named
        ));
        for refused in [
            "null",
            "http://evil.example",
            "http://127.0.0.1:7979/",
            "HTTP://127.0.0.1:7979",
            "ftp://127.0.0.1:7979",
            "http://127.0.0.1:7980",
        ] {
            assert!(
                !origin_allowed(refused, "127.0.0.1:7979", &named),
                "{refused}"
            );
        }
    }
}
