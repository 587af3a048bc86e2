//! The library's one error type.
//!
//! Every variant names what it was doing and on what (the znode path, the
//! endpoint, the connect string), so that a binary can print `{err:#}` as the
//! user's one-line cause. The ZooKeeper client crate's own error stays a
//! private detail behind [`ZkError`]: callers ask [`Error::is_retryable`]
//! rather than matching on another crate's variants.

use std::time::Duration;

/// A specialized `Result` for zkutil.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in zkutil.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use zkutil::{Error, SessionConfig};
/// // Nothing listens on port 1: said at once, with the cause, and worth retrying later.
/// let err = SessionConfig::new("127.0.0.1:1")
///     .with_connect_timeout(Duration::from_secs(2))
///     .connect()
///     .expect_err("nothing listens there");
/// assert!(matches!(err, Error::Refused { .. }), "{err}");
/// assert!(err.is_retryable());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string that should have been an `ip:port` was not.
    #[error("invalid endpoint {name:?}: {reason}")]
    InvalidEndpoint {
        /// The offending text, cut to 64 characters.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A connect string or znode path that cannot be used.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        /// What the value was for ("connect string", "base path", …).
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// No session could be established before the connect deadline.
    #[error("timed out after {waited:?} connecting to ZooKeeper at {hosts}")]
    ConnectTimeout {
        /// The connect string.
        hosts: String,
        /// How long we waited.
        waited: Duration,
    },

    /// ZooKeeper refused or broke the session while connecting.
    #[error("connecting to ZooKeeper at {hosts}")]
    Connect {
        /// The connect string.
        hosts: String,
        /// What the client reported.
        #[source]
        source: ZkError,
    },

    /// A ZooKeeper call did not complete within its deadline.
    #[error("{op} {path}: no answer from ZooKeeper within {waited:?}")]
    Timeout {
        /// The operation ("create", "list", …).
        op: &'static str,
        /// The znode it was about.
        path: String,
        /// The deadline that passed.
        waited: Duration,
    },

    /// A call that is not made while the session is not connected (a
    /// deregistration during shutdown must not wait for ZooKeeper).
    #[error("{op} {path}: ZooKeeper is unreachable")]
    Unreachable {
        /// The operation ("delete", …).
        op: &'static str,
        /// The znode it was about.
        path: String,
    },

    /// A ZooKeeper call failed.
    #[error("{op} {path}")]
    Zk {
        /// The operation ("create", "list", …).
        op: &'static str,
        /// The znode it was about.
        path: String,
        /// What ZooKeeper said.
        #[source]
        source: ZkError,
    },

    /// A registration's data could not be encoded or decoded.
    #[error("metadata of {path}: {reason}")]
    Metadata {
        /// The znode it was read from or written to.
        path: String,
        /// Why it was rejected.
        reason: String,
    },

    /// Another live session holds the registration of this endpoint, and
    /// [`Takeover`](crate::Takeover) did not allow replacing it.
    #[error("{endpoint} is registered by live session {owner}")]
    Taken {
        /// The endpoint.
        endpoint: crate::endpoint::Endpoint,
        /// The session holding its node.
        owner: crate::session::SessionId,
    },

    /// No registration of this endpoint under the base path.
    #[error("{endpoint} is not registered under {base_path}")]
    NotRegistered {
        /// The endpoint.
        endpoint: crate::endpoint::Endpoint,
        /// Where it was looked for.
        base_path: String,
    },

    /// A conditional write lost to concurrent writers every time it tried
    /// (each attempt re-read the node and re-applied the change).
    #[error("{path}: changed by someone else on each of {attempts} attempts; nothing written")]
    Conflict {
        /// The znode.
        path: String,
        /// Attempts made.
        attempts: usize,
    },

    /// Every ZooKeeper host refused the connection or did not resolve:
    /// nothing is listening there (yet).
    #[error("cannot connect to ZooKeeper at {hosts}: {cause} — is it running?")]
    Refused {
        /// The connect string.
        hosts: String,
        /// What each host said (`connection refused`, `cannot resolve`).
        cause: String,
    },

    /// Every ZooKeeper host failed, and one (or more) in a way the session
    /// cannot use: TLS on one side only, or a TLS handshake that failed on a
    /// certificate (an unknown CA, a name mismatch, an expired or missing
    /// client certificate). A matter of configuration: not retryable.
    #[error("cannot connect to ZooKeeper at {hosts}: {cause}")]
    Tls {
        /// The connect string.
        hosts: String,
        /// What went wrong, with each host when they differ.
        cause: String,
    },

    /// The parent of a registration with digest auth is open to anyone
    /// (created by a server or a run without auth, or by another tool): an
    /// unauthenticated client could register a fake instance there, or
    /// delete ours (deleting a child needs DELETE on its parent). Refused
    /// rather than run "protected" on an open path; the message says how to
    /// fix it. Not retryable: the ACL stays as it is until someone acts.
    #[error(
        "{path} has the open ACL {acl}: anyone could register a fake instance there or delete ours; {}",
        open_acl_fix(path, *tighten_denied)
    )]
    OpenAcl {
        /// The parent node.
        path: String,
        /// Its ACL, as zkCli's `setAcl` takes it (`world:anyone:cdrwa`).
        acl: String,
        /// Whether tightening was asked and refused (no ADMIN on the node).
        tighten_denied: bool,
    },

    /// A layout that puts one format's parent among another format's
    /// instances (the same node, or below it): every reader of `base`
    /// would list the parent, or its nodes, as a malformed instance.
    #[error(
        "{format} parent {parent} would sit among the {among} instances under {base}: readers of {base} would take it for an instance; give each format its own root"
    )]
    Nested {
        /// The format whose parent is misplaced.
        format: crate::format::Format,
        /// Its parent.
        parent: String,
        /// The format whose instances it would sit among.
        among: crate::format::Format,
        /// That format's parent.
        base: String,
    },

    /// The wait was ended by an [`Interrupt`](crate::Interrupt) (Ctrl-C).
    #[error("interrupted")]
    Interrupted,

    /// The session was closed (or its runtime stopped) before the call.
    #[error("ZooKeeper session is closed")]
    Closed,

    /// A TLS file (the CA bundle, the client certificate or its key) is
    /// missing, unreadable, or does not hold what it must.
    #[error("TLS {what} {}: {reason}", path.display())]
    TlsFile {
        /// Which file: `CA bundle`, `client certificate`, `client key`.
        what: &'static str,
        /// Its path.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An operating-system resource could not be had (a thread, mostly).
    #[error("{what}")]
    Io {
        /// What we were trying to do.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the same call may succeed if repeated later (connection
    /// trouble, timeouts), as opposed to an answer that will not change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout { .. }
            | Error::ConnectTimeout { .. }
            | Error::Unreachable { .. }
            | Error::Refused { .. } => true,
            Error::Zk { source, .. } | Error::Connect { source, .. } => source.is_retryable(),
            _ => false,
        }
    }

    /// Whether this is ZooKeeper's "node does not exist".
    pub fn is_no_node(&self) -> bool {
        matches!(self, Error::Zk { source, .. } if source.kind() == ZkErrorKind::NoNode)
    }

    /// Whether this is ZooKeeper's "node already exists".
    pub fn is_node_exists(&self) -> bool {
        matches!(self, Error::Zk { source, .. } if source.kind() == ZkErrorKind::NodeExists)
    }

    /// Whether ZooKeeper refused the call for lack of permission.
    pub fn is_no_auth(&self) -> bool {
        matches!(self, Error::Zk { source, .. } if source.kind() == ZkErrorKind::NoAuth)
    }

    /// Whether the session behind the call has expired for good.
    pub fn is_session_expired(&self) -> bool {
        matches!(self, Error::Zk { source, .. } | Error::Connect { source, .. }
            if source.kind() == ZkErrorKind::SessionExpired)
    }

    /// The whole chain of causes on one line (`create /a: not authorized`),
    /// for log fields: `error = %err.chain()`.
    pub fn chain(&self) -> impl std::fmt::Display + '_ {
        Chain(self)
    }

    pub(crate) fn tls_file(
        what: &'static str,
        path: &std::path::Path,
        reason: impl Into<String>,
    ) -> Error {
        Error::TlsFile {
            what,
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Error {
        Error::InvalidArgument {
            what,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The fix of [`Error::OpenAcl`]: the flag, or what its admin can do.
fn open_acl_fix(path: &str, tighten_denied: bool) -> String {
    if tighten_denied {
        format!(
            "this identity cannot tighten it (no ADMIN permission on it); ask its admin to give this identity ALL and the world READ only (zkCli: setAcl {path} <scheme>:<id>:cdrwa,world:anyone:r, e.g. x509:CN=<name>, sasl:<user> or digest:<user>:<digest>)"
        )
    } else {
        format!(
            "fix: restart with --tighten-acl (needs ADMIN on it), or in zkCli connected as this identity (its certificate or SASL login; for digest first addauth digest <user:password>): setAcl {path} auth::cdrwa,world:anyone:r"
        )
    }
}

struct Chain<'a>(&'a Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The kinds of ZooKeeper failure that callers act on; everything else is
/// [`ZkErrorKind::Other`].
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// use zkutil::{Error, SessionConfig, ZkErrorKind};
///
/// let session = SessionConfig::new(hosts).connect()?;
/// let err = session.get_data("/no/such/node").expect_err("missing");
/// assert!(err.is_no_node() && !err.is_retryable());
/// match err {
///     Error::Zk { source, .. } => assert_eq!(source.kind(), ZkErrorKind::NoNode),
///     other => panic!("{other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZkErrorKind {
    /// The node does not exist.
    NoNode,
    /// The node already exists.
    NodeExists,
    /// The server does not know the request (an older ZooKeeper).
    Unimplemented,
    /// The node's version is not the one expected.
    BadVersion,
    /// The node has children.
    NotEmpty,
    /// Not authorized by the node's ACL.
    NoAuth,
    /// Authentication failed: fatal for the session.
    AuthFailed,
    /// The session expired: its ephemeral nodes are gone.
    SessionExpired,
    /// The connection broke; the session may still be alive.
    ConnectionLoss,
    /// The client has been closed.
    Closed,
    /// Anything else.
    Other,
}

/// A failure reported by the ZooKeeper client, with its kind. Built only by
/// `session`, the one module that knows the client crate.
///
/// It prints the client's message and has no `source()` of its own: the
/// message *is* the client's error, and an error chain printed with `{:#}`
/// must name each cause once (not `not authorized: not authorized`).
#[derive(Debug, thiserror::Error)]
#[error("{inner}")]
pub struct ZkError {
    kind: ZkErrorKind,
    retryable: bool,
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl ZkError {
    pub(crate) fn new(
        kind: ZkErrorKind,
        retryable: bool,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ZkError {
        ZkError {
            kind,
            retryable,
            inner: Box::new(source),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ZkErrorKind {
        self.kind
    }

    /// Connection trouble, after which the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn messages_name_the_target_in_lowercase() {
        let err = Error::Timeout {
            op: "create",
            path: "/go_servers/a".into(),
            waited: Duration::from_secs(1),
        };
        assert_eq!(
            err.to_string(),
            "create /go_servers/a: no answer from ZooKeeper within 1s"
        );
        assert!(err.is_retryable());
    }

    #[derive(Debug, thiserror::Error)]
    #[error("not authorized")]
    struct NoAuth;

    #[test]
    fn a_zookeeper_cause_is_printed_once() {
        let err = Error::Zk {
            op: "create",
            path: "/go_servers/a".into(),
            source: ZkError::new(ZkErrorKind::NoAuth, false, NoAuth),
        };
        let chain = format!("{:#}", anyhow::Error::new(err).context("registering a"));
        assert_eq!(chain, "registering a: create /go_servers/a: not authorized");
    }
}
