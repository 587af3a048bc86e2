//! `SessionConfig`: how to reach ZooKeeper and how long to wait for it,
//! and `Secret`, the credential that is never printed. (`connect`, which
//! opens a [`Session`](crate::Session) with it, is with the session, in
//! `handle`.)

use std::time::Duration;

use super::cancel::Interrupt;
use super::tls::LiveCerts;
use crate::error::{Error, Result};
use crate::tls::TlsConfig;

/// A credential (`user:password`) that must never be printed: its `Debug`
/// and `Display` are `<redacted>`.
///
/// # Example
///
/// ```
/// let secret: zkutil::Secret = "svc:s3cret".parse().expect("user:password");
/// assert_eq!(format!("{secret} {secret:?}"), "<redacted> <redacted>");
/// assert!("no-colon".parse::<zkutil::Secret>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = Error;

    /// Accepts `user:password` with a non-empty user. A rejected value is
    /// not repeated in the error: it may be a mistyped password.
    fn from_str(s: &str) -> Result<Secret> {
        match s.split_once(':') {
            Some((user, _)) if !user.is_empty() => Ok(Secret(s.to_owned())),
            _ => Err(Error::invalid(
                "credentials",
                "<redacted>",
                "expected user:password",
            )),
        }
    }
}

/// ZooKeeper's digest ACL id of `user:password`: `user:` and the base64 of
/// the SHA-1 of the whole `user:password` (what `DigestAuthenticationProvider`
/// computes).
pub(crate) fn digest_id(user_password: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let user = user_password
        .split_once(':')
        .map_or(user_password, |(user, _)| user);
    let hash = sha1::Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// How to reach ZooKeeper, and how long to wait for it.
///
/// Built with `with_*` methods; the defaults suit a service on a LAN.
///
/// # Example
///
/// ```
/// # fn main() -> zkutil::Result<()> {
/// # let zk = zkutil::testing::zookeeper();
/// # let hosts = zk.connect_string();
/// use std::time::Duration;
/// use zkutil::{Secret, SessionConfig};
///
/// let session = SessionConfig::new(format!("{hosts}/my-app")) // a chroot, created when missing
///     .with_digest_auth(Secret::new("svc:s3cret")) // nodes writable by this identity only
///     .with_session_timeout(Duration::from_secs(10))
///     .with_connect_timeout(Duration::from_secs(2))
///     .connect()?;
/// session.ensure_path("/go_servers")?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(super) hosts: String,
    pub(super) session_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    /// `user:password` for ZooKeeper's digest scheme. Never logged.
    pub(super) digest_auth: Option<Secret>,
    /// `user:password` for SASL DIGEST-MD5. Never logged.
    pub(super) sasl_auth: Option<Secret>,
    /// TLS to every host of the connect string, when set.
    pub(super) tls: Option<TlsConfig>,
    /// The certificates of [`SessionConfig::tls`] as read, kept current:
    /// loaded when the session connects, shared by its rebuilds.
    pub(super) live_tls: Option<std::sync::Arc<LiveCerts>>,
    /// The identity (scheme, id) that gets READ and WRITE on the
    /// registrations this session creates: a digest id
    /// (`user:base64(sha1(user:password))`), `x509` and a certificate's
    /// subject, or `sasl` and a user.
    pub(super) operator: Option<(String, String)>,
    /// Ends a waiting connect early (Ctrl-C).
    pub(super) interrupt: Option<Interrupt>,
    /// Told of every call: its operation, how long it took, its error.
    pub(super) observer: Option<CallObserver>,
}

/// What [`SessionConfig::with_call_observer`] calls after every ZooKeeper
/// call: the operation (`create`, `list`, …), how long it took, and its
/// error if it failed.
pub type CallObserver =
    std::sync::Arc<dyn Fn(&'static str, Duration, Option<&Error>) + Send + Sync>;

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("hosts", &self.hosts)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("digest_auth", &self.digest_auth)
            .field("sasl_auth", &self.sasl_auth)
            .field("tls", &self.tls)
            .field("operator", &self.operator)
            .finish()
    }
}

impl SessionConfig {
    /// A configuration for the connect string `host:port[,host:port...][/chroot]`
    /// (blanks around a host are dropped: `zk1:2181, zk2:2181` is two hosts).
    ///
    /// Defaults: session timeout 10 s, connect timeout 5 s, request timeout 5 s.
    pub fn new(hosts: impl Into<String>) -> SessionConfig {
        SessionConfig {
            hosts: crate::connect_string::without_blanks(&hosts.into()),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            digest_auth: None,
            sasl_auth: None,
            tls: None,
            live_tls: None,
            operator: None,
            interrupt: None,
            observer: None,
        }
    }

    /// Authenticates with ZooKeeper's digest scheme as `user:password`
    /// (kept out of every log and `Debug` output).
    ///
    /// With auth, the nodes this session creates get creator-ALL +
    /// world-READ: only this identity can delete or overwrite them, anyone
    /// can discover them. Without, they are open to all.
    /// Takes a `Secret`, or an `Option<Secret>` (`None`: no auth).
    pub fn with_digest_auth(mut self, user_password: impl Into<Option<Secret>>) -> Self {
        self.digest_auth = user_password.into();
        self
    }

    /// Grants the digest identity `user:password` READ and WRITE on the
    /// EPHEMERAL nodes (registrations) this session creates, besides the
    /// session's own identity: an operator can then take a server out of
    /// rotation (`zkutil disable --zk-auth user:password`) but not delete
    /// its node or change its ACL. Only the password's digest is kept (the
    /// ACL id ZooKeeper stores, `user:base64(SHA-1(user:password))`).
    /// Matters with [`SessionConfig::with_digest_auth`] only: without auth
    /// every node is open to all anyway. `None`: no operator.
    pub fn with_operator(mut self, user_password: impl Into<Option<Secret>>) -> Self {
        self.operator = user_password
            .into()
            .map(|secret| ("digest".to_owned(), digest_id(secret.expose())));
        self
    }

    /// Grants the identity `scheme:id` READ and WRITE on the registrations
    /// this session creates, as [`SessionConfig::with_operator`] does for a
    /// digest identity, for identities named without a password: `x509` and
    /// a client certificate's subject (`CN=ops`), `sasl` and a user name.
    /// Matters only when the session has an identity of its own
    /// ([`SessionConfig::has_auth`]).
    pub fn with_operator_id(mut self, scheme: &str, id: &str) -> Self {
        self.operator = Some((scheme.to_owned(), id.to_owned()));
        self
    }

    /// Authenticates with SASL DIGEST-MD5 as `user:password` (a user of the
    /// server's JAAS `Server` section; kept out of every log and `Debug`
    /// output). As with [`SessionConfig::with_digest_auth`], the nodes this
    /// session creates are then writable by this identity only (ACL
    /// `sasl:user`). `None`: no SASL.
    ///
    /// Beware ZooKeeper before the fix of ZOOKEEPER-4839 (Debian's 3.8.0
    /// has the bug, seen here): its DIGEST-MD5 server accepts a user name
    /// missing from the JAAS file with the password of the last user who
    /// logged in, as that name. Grant rights to names in the JAAS file only.
    pub fn with_sasl_auth(mut self, user_password: impl Into<Option<Secret>>) -> Self {
        self.sasl_auth = user_password.into();
        self
    }

    /// Connects to every host of the connect string over TLS, verifying the
    /// server's certificate against `tls`'s CA and its name against the
    /// host's (always). With a client certificate and a server that maps it
    /// to an identity (ZooKeeper's x509 auth provider), the nodes this
    /// session creates are writable by that identity only (ACL
    /// `x509:CN=…`). The files are read when the session connects (a bad
    /// one is [`Error::TlsFile`]) and again whenever they change, so
    /// certificates rotate without a restart. `None`: plaintext.
    ///
    /// # Example
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let zk = zkutil::testing::ZkServer::start_tls(zkutil::testing::TlsMode::Need)?;
    /// # let (ca, (cert, key)) = (zk.ca_pem().ok_or("TLS")?, zk.client_cert("alice").ok_or("TLS")?);
    /// use zkutil::{SessionConfig, TlsConfig};
    ///
    /// let session = SessionConfig::new(zk.connect_string()) // 127.0.0.1:PORT, its secureClientPort
    ///     .with_tls(TlsConfig::new(ca).with_client_cert(cert, key))
    ///     .connect()?;
    /// session.ensure_path("/go_servers")?;
    /// assert_eq!(session.acl("/go_servers")?, ["x509:CN=alice:cdrwa", "world:anyone:r"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_tls(mut self, tls: impl Into<Option<TlsConfig>>) -> Self {
        self.tls = tls.into();
        self.live_tls = None;
        self
    }

    /// The TLS configuration, if any.
    pub fn tls(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }

    /// Whether the session has an identity of its own (digest, SASL, or a
    /// TLS client certificate), which then owns the nodes it creates.
    pub fn has_auth(&self) -> bool {
        self.digest_auth.is_some()
            || self.sasl_auth.is_some()
            || self
                .tls
                .as_ref()
                .is_some_and(|tls| tls.client_cert().is_some())
    }

    /// Reads the TLS files, once per session (its rebuilds share them).
    pub(super) fn load_tls(&mut self) -> Result<()> {
        if self.tls.is_some() {
            // The client crate turns a host into a TLS server name with an
            // unwrap: a name TLS cannot verify (`127.1`, a zone index) is
            // refused here, with its host, instead of a panic there.
            let hosts = crate::connect_string::connect_string_hosts(&self.hosts);
            if let Some(bad) = hosts
                .iter()
                .find(|host| !super::handshake::is_server_name(host))
            {
                return Err(Error::Tls {
                    hosts: self.hosts.clone(),
                    cause: format!(
                        "{bad} is not a name TLS can verify: give a DNS name or an IP address as the certificate names it"
                    ),
                });
            }
        }
        if let (Some(tls), None) = (&self.tls, &self.live_tls) {
            self.live_tls = Some(std::sync::Arc::new(LiveCerts::load(tls)?));
        }
        Ok(())
    }

    /// The session timeout asked of ZooKeeper: how long after the last
    /// contact the server expires the session and deletes its ephemeral
    /// nodes. The server clamps it to its own min/max.
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long [`SessionConfig::connect`] waits for a session.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Lets `interrupt` end the wait of [`SessionConfig::connect`] at once,
    /// for a Ctrl-C that should not wait out the connect timeout. (Once
    /// connected, the session's own reconnects are not affected.)
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = Some(interrupt);
        self
    }

    /// Calls `observer` after every ZooKeeper call of the session (for
    /// metrics: latency and errors by kind). It runs on the calling thread
    /// and must be quick.
    ///
    /// # Example
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let zk = zkutil::testing::zookeeper();
    /// # let hosts = zk.connect_string();
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use zkutil::SessionConfig;
    ///
    /// let calls = Arc::new(AtomicUsize::new(0));
    /// let counted = calls.clone();
    /// let session = SessionConfig::new(hosts)
    ///     .with_call_observer(move |_op, _took, _error| {
    ///         counted.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .connect()?;
    /// session.children("/")?;
    /// assert!(calls.load(Ordering::Relaxed) >= 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_call_observer(
        mut self,
        observer: impl Fn(&'static str, Duration, Option<&Error>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(std::sync::Arc::new(observer));
        self
    }

    /// The deadline of every call on the session.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The connect string.
    pub fn hosts(&self) -> &str {
        &self.hosts
    }

    /// How long [`SessionConfig::connect`] waits for a session.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The session timeout asked for.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// The deadline of every call on the session.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_digest_id_is_zookeepers() {
        // Printed by ZooKeeper 3.8's own tool (Debian's zookeeper.jar):
        // java org.apache.zookeeper.server.auth.DigestAuthenticationProvider super:secret
        assert_eq!(
            super::digest_id("super:secret"),
            "super:lK75jTNcA+U9vtVEw5vB51mj/w4="
        );
    }
}
