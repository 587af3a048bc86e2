//! `actions`: `POST /api/action?op=disable|enable|weight&path=…&endpoint=…`,
//! the operator's buttons, with `--allow-writes` only.
//!
//! An action must come from the console's page: a POST with its Origin and
//! this process's token in a custom header. It applies to a base path the
//! console shows, through the same conditional writes as `zkutil disable`,
//! with the console's ZooKeeper identity; each is logged with that
//! identity, the browser's address and the change. A reason is one line of
//! at most [`MAX_REASON`] characters without control or direction
//! characters, so that it cannot forge a log line or read backwards.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;
use zkutil::cli::http::{Answer, Reply, Request};
use zkutil::{BasePath, Control, Endpoint, Session};

/// The longest action may take (its conditional writes retry a few times;
/// each ZooKeeper request has its own timeout).
const ACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// The header that carries the page's token with an action.
pub const TOKEN_HEADER: &str = "x-console-token";
/// The longest reason taken, in characters.
pub const MAX_REASON: usize = 200;

/// The base paths the page shows now (the model keeps it).
pub type Shown = Arc<RwLock<BTreeSet<String>>>;

/// What an action needs.
pub struct Actions {
    /// Set once connected.
    pub session: Arc<OnceLock<Arc<Session>>>,
    /// The ZooKeeper identity the actions use, for the log.
    pub identity: String,
    pub writes: bool,
    pub token: String,
    pub shown: Shown,
}

impl Actions {
    /// Answers `POST /api/action` (the caller has checked Host and Origin);
    /// `secured` adds the headers of every answer.
    pub fn answer(&self, request: &Request<'_>, secured: fn(Answer) -> Answer) -> Reply {
        let refuse =
            |status: u16, why: &str| secured(Answer::text(status, format!("{why}\n"))).into();
        if !self.writes {
            return refuse(
                403,
                "writes are not allowed: the console was started without --allow-writes",
            );
        }
        if request.header("origin").is_none()
            || request.header(TOKEN_HEADER) != Some(self.token.as_str())
        {
            return refuse(
                403,
                "an action must come from the console's page (its token is missing or wrong)",
            );
        }
        let (path, endpoint, control) = match parse(request.query().unwrap_or_default()) {
            Ok(parsed) => parsed,
            Err(why) => return refuse(400, &why),
        };
        let shown = self
            .shown
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(path.as_str());
        if !shown {
            return refuse(
                403,
                &format!("{path} is not a base path this console shows"),
            );
        }
        let Some(session) = self.session.get().cloned() else {
            return refuse(503, "not connected to ZooKeeper yet");
        };
        let who = Who {
            identity: self.identity.clone(),
            browser: request.peer(),
            forwarded_for: request.header_text("x-forwarded-for"),
        };
        let (done, answer) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("console-action".into())
            .spawn(move || {
                let _ = done.send(apply(&session, &path, endpoint, &control, &who));
            });
        if let Err(err) = spawned {
            return refuse(503, &format!("no thread for the action: {err}"));
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

/// Who asked for an action, for the log.
struct Who {
    identity: String,
    browser: SocketAddr,
    /// What a proxy in front said (the client's word: logged, not trusted).
    forwarded_for: Option<String>,
}

/// An action's base path, endpoint and change, from its query; each field
/// once.
fn parse(query: &str) -> Result<(BasePath, Endpoint, Control), String> {
    let mut fields = HashMap::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if fields
            .insert(key.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(format!("{key} is given twice"));
        }
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
            reason: match fields.get("reason").map(|r| r.trim()) {
                Some(reason) if !reason.is_empty() => Some(checked_reason(reason)?),
                _ => None,
            },
        },
        "enable" => Control::Enable,
        "weight" => Control::Weight(
            field("weight")?
                .trim()
                .parse()
                .map_err(|_| "the weight is a whole number from 0 to 4294967295".to_owned())?,
        ),
        other => {
            return Err(format!(
                "unknown action {other:?}: disable, enable or weight"
            ));
        }
    };
    Ok((path, endpoint, control))
}

/// A reason as given, if it is one line of plain text.
fn checked_reason(reason: &str) -> Result<String, String> {
    if reason.chars().count() > MAX_REASON {
        return Err(format!("a reason is at most {MAX_REASON} characters"));
    }
    if reason.chars().any(|c| c.is_control() || invisible(c)) {
        return Err(
            "a reason is one line of text, without control or direction characters".to_owned(),
        );
    }
    Ok(reason.to_owned())
}

/// Unicode's format characters (Cf: direction marks and overrides that
/// reorder displayed text, zero-width characters, the byte-order mark,
/// tags) and its line and paragraph separators (Zl, Zp: a new line to many
/// log viewers); control characters (Cc: a new line, ESC) are
/// `char::is_control`'s.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{0600}'..='\u{0605}' | '\u{061c}' | '\u{06dd}' | '\u{070f}' | '\u{0890}'..='\u{0891}'
        | '\u{08e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{110bd}' | '\u{110cd}'
        | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
        | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// Applies an action, logging who asked and what changed.
fn apply(
    session: &Session,
    path: &BasePath,
    endpoint: Endpoint,
    control: &Control,
    who: &Who,
) -> Result<Vec<String>, (u16, String)> {
    let Who {
        identity,
        browser,
        forwarded_for,
    } = who;
    match control.apply_to(session, path, endpoint) {
        Ok(applied) => {
            let nodes: Vec<String> = applied
                .iter()
                .map(|node| format!("{} (version {})", node.path, node.version))
                .collect();
            tracing::info!(identity = %identity, %browser, ?forwarded_for, base_path = %path, %endpoint,
                change = %control, nodes = %nodes.join(", "), "console: operator action applied");
            Ok(nodes)
        }
        Err(err) => {
            tracing::warn!(identity = %identity, %browser, ?forwarded_for, base_path = %path, %endpoint,
                change = %control, error = %err, "console: operator action failed");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_reads_its_query_and_refuses_what_it_cannot_use() {
        let (path, endpoint, control) =
            parse("op=disable&path=%2Fgo_servers&endpoint=127.0.0.1%3A80&reason=kernel+upgrade")
                .expect("parsed");
        assert_eq!(path.as_str(), "/go_servers");
        assert_eq!(endpoint.to_string(), "127.0.0.1:80");
        assert_eq!(
            control,
            Control::Disable {
                reason: Some("kernel upgrade".to_owned())
            }
        );
        for refused in [
            "op=weight&path=/s&endpoint=1.2.3.4:5&weight=-1",
            "op=drop&path=/s&endpoint=1.2.3.4:5",
            "op=enable&path=relative&endpoint=1.2.3.4:5",
            "op=enable&op=disable&path=/s&endpoint=1.2.3.4:5",
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason=a%0A2026-12-04T00:00:00Z+INFO+forged",
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason=%1B%5B31mred",
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason=%E2%80%AEreversed",
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason=a%D8%9Cb",
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason=a%E2%80%A8b",
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason=a%E2%80%8Bb",
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason=a%EF%BB%BFb",
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
        let long = format!(
            "op=disable&path=/s&endpoint=1.2.3.4:5&reason={}",
            "x".repeat(MAX_REASON + 1)
        );
        assert!(parse(&long).is_err());
    }
}
