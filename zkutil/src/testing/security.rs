//! Secured fixtures: ZooKeeper serving only TLS (no plaintext port at
//! all, as production ensembles increasingly do), identifying clients by
//! certificate (the x509 auth provider), and SASL DIGEST-MD5 users from a
//! JAAS `Server` section.
//!
//! ZooKeeper serves TLS through Netty only (`serverCnxnFactory`), on its
//! `secureClientPort`, with PEM key and trust stores; Debian's package has
//! the Netty jars in `/usr/share/java`, and the ones `zookeeper.jar`'s
//! manifest leaves out are added to the classpath here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::certs::TestCerts;
use crate::TlsConfig;

/// What a TLS fixture asks of its clients' certificates (ZooKeeper's
/// `ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Every client must present a certificate signed by the CA.
    Need,
    /// A client may present one (then its subject is its x509 identity).
    Want,
    /// No client certificate is asked for.
    None,
}

/// How a fixture is secured; the default is plaintext with no SASL.
///
/// Debian's ZooKeeper 3.8.0 has ZOOKEEPER-4839: its DIGEST-MD5 server lets
/// a user name that is not in `sasl_users` in with the password of the last
/// user who logged in (seen here: `carol` with alice's password after
/// alice). A test of a refused login uses a wrong password for a known user.
///
/// # Example
///
/// ```
/// use zkutil::testing::{TlsMode, ZkOptions, ZkServer};
/// let zk = ZkServer::start_with(ZkOptions {
///     tls: Some(TlsMode::Need),
///     ..ZkOptions::default()
/// })
/// .expect("ZooKeeper is installed");
/// let session = zk.session_config(Some("alice")).connect().expect("TLS as alice");
/// session.ensure_path("/secured").expect("served over TLS");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ZkOptions {
    /// Serve only TLS, asking this of client certificates.
    pub tls: Option<TlsMode>,
    /// SASL DIGEST-MD5 users (`user`, `password`); none: no SASL.
    pub sasl_users: Vec<(String, String)>,
    /// With `tls`, serve plaintext too, on a second port of each node
    /// (`clientPort` beside `secureClientPort`, both on Netty): TLS and
    /// plaintext clients of the same ensemble, as while migrating to TLS,
    /// and what a fair measure of TLS's cost compares.
    pub plaintext_too: bool,
    /// Give the server (with `tls`) a certificate that expired in 2001, to
    /// see how clients are told. The fixture's own checks (readiness, four
    /// letter words) verify it as of the year 2000.
    pub expired_server_cert: bool,
    /// The JVM's heap in MiB (none: 256, enough for most tests and small
    /// enough for many servers at once): more for a test that stores
    /// hundreds of megabytes (ZooKeeper keeps every node in memory).
    pub heap_mib: Option<u32>,
}

/// A clock that says it is a day when the expired test certificates were
/// valid ([`super::certs::VALID_FROM`] and a day).
#[derive(Debug)]
struct WhileValid;

impl rustls::time_provider::TimeProvider for WhileValid {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        let (year, month, day) = super::certs::VALID_FROM;
        let seconds = rcgen::date_time_ymd(year, month, day).unix_timestamp() + 86_400;
        let seconds = u64::try_from(seconds).ok()?;
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(seconds),
        ))
    }
}

/// A fixture's security, as its nodes are configured and launched.
#[derive(Debug)]
pub(super) struct Security {
    tls: Option<(TlsMode, TestCerts)>,
    expired_server_cert: bool,
    jaas: Option<PathBuf>,
}

impl Security {
    /// The CA certificate (PEM), for TLS.
    pub(super) fn ca_pem(&self) -> Option<PathBuf> {
        Some(self.tls.as_ref()?.1.ca_pem())
    }

    /// The CA bundle with a CRL revoking the server's certificate, for TLS.
    pub(super) fn ca_revoking_server_pem(&self) -> Option<PathBuf> {
        Some(self.tls.as_ref()?.1.ca_revoking_server_pem())
    }

    /// The certificate and key of client `name`, for TLS.
    pub(super) fn client_cert(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        Some(self.tls.as_ref()?.1.client(name))
    }

    /// Makes the certificates and the JAAS file in `dir`; `None` for a
    /// plaintext fixture without SASL.
    pub(super) fn prepare(
        dir: &Path,
        options: &ZkOptions,
    ) -> std::io::Result<Option<Arc<Security>>> {
        if options.tls.is_none() && options.sasl_users.is_empty() {
            return Ok(None);
        }
        let tls = match options.tls {
            Some(mode) => Some((
                mode,
                TestCerts::generate(&dir.join("tls"), options.expired_server_cert)?,
            )),
            None => None,
        };
        let jaas = if options.sasl_users.is_empty() {
            None
        } else {
            let users: String = options
                .sasl_users
                .iter()
                .map(|(user, password)| format!("\n    user_{user}=\"{password}\""))
                .collect();
            let path = dir.join("jaas.conf");
            let text = format!(
                "Server {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required{users};\n}};\n"
            );
            std::fs::write(&path, text)?;
            Some(path)
        };
        Ok(Some(Arc::new(Security {
            tls,
            expired_server_cert: options.expired_server_cert,
            jaas,
        })))
    }

    /// The clock of the fixture's own TLS checks: now, or a day when an
    /// expired server certificate was still valid.
    pub(super) fn check_clock(&self) -> Arc<dyn rustls::time_provider::TimeProvider> {
        if self.expired_server_cert {
            Arc::new(WhileValid)
        } else {
            Arc::new(rustls::time_provider::DefaultTimeProvider)
        }
    }

    /// Whether the nodes serve only TLS.
    pub(super) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The zoo.cfg lines of the client port: `secureClientPort` and the TLS
    /// stores instead of `clientPort`, and the auth providers.
    pub(super) fn client_port_config(&self, address: &str, port: u16) -> String {
        let mut cfg = String::new();
        match &self.tls {
            Some((mode, certs)) => {
                let client_auth = match mode {
                    TlsMode::Need => "need",
                    TlsMode::Want => "want",
                    TlsMode::None => "none",
                };
                cfg.push_str(&format!(
                    "secureClientPort={port}\nsecureClientPortAddress={address}\n\
                     serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
                     ssl.keyStore.location={keystore}\nssl.keyStore.type=PEM\n\
                     ssl.trustStore.location={ca}\nssl.trustStore.type=PEM\n\
                     ssl.clientAuth={client_auth}\n\
                     authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n",
                    keystore = certs.server_pem().display(),
                    ca = certs.ca_pem().display(),
                ));
            }
            None => cfg.push_str(&format!("clientPort={port}\nclientPortAddress={address}\n")),
        }
        if self.jaas.is_some() {
            cfg.push_str(
                "authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n",
            );
        }
        cfg
    }

    /// The JVM's extra arguments: where the JAAS file is.
    pub(super) fn jvm_args(&self) -> Vec<String> {
        self.jaas
            .iter()
            .map(|path| format!("-Djava.security.auth.login.config={}", path.display()))
            .collect()
    }

    /// `classpath` with, for TLS, the Netty jars of [`with_netty_jars`].
    pub(super) fn classpath(&self, classpath: &str) -> String {
        if self.is_tls() {
            with_netty_jars(classpath)
        } else {
            classpath.to_owned()
        }
    }

    /// The system properties (`-D…`) that make a JVM's ZooKeeper client
    /// (Curator's, zkCli's) speak TLS to this fixture as client `name`
    /// (its certificate and key in one PEM file: ZooKeeper's PEM key store
    /// reads both from `keyStore.location`), or with no client certificate;
    /// none for a plaintext fixture. The client needs Netty
    /// ([`with_netty_jars`]): its NIO socket has no TLS.
    pub(super) fn jvm_client_properties(&self, name: Option<&str>) -> Vec<String> {
        let Some((_, certs)) = &self.tls else {
            return Vec::new();
        };
        let mut properties = vec![
            "-Dzookeeper.client.secure=true".to_owned(),
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty".to_owned(),
            format!(
                "-Dzookeeper.ssl.trustStore.location={}",
                certs.ca_pem().display()
            ),
            "-Dzookeeper.ssl.trustStore.type=PEM".to_owned(),
        ];
        if let Some(name) = name {
            properties.push(format!(
                "-Dzookeeper.ssl.keyStore.location={}",
                certs.client_key_store(name).display()
            ));
            properties.push("-Dzookeeper.ssl.keyStore.type=PEM".to_owned());
        }
        properties
    }

    /// TLS as client `name` (a certificate of [`super::certs::CLIENT_NAMES`]
    /// or the fixture's own), or with no client certificate.
    pub(super) fn tls_config(&self, name: Option<&str>) -> Option<TlsConfig> {
        let (_, certs) = self.tls.as_ref()?;
        let config = TlsConfig::new(certs.ca_pem());
        Some(match name {
            Some(name) => {
                let (cert, key) = certs.client(name);
                config.with_client_cert(cert, key)
            }
            None => config,
        })
    }
}

/// `classpath` with the Netty jars that `zookeeper.jar`'s manifest does not
/// name (codec, resolver, …): the unversioned `netty-*.jar` beside its
/// first jar. ZooKeeper's TLS, server and client, runs on Netty only.
pub(super) fn with_netty_jars(classpath: &str) -> String {
    let Some(dir) = classpath
        .split(':')
        .next()
        .map(Path::new)
        .and_then(Path::parent)
    else {
        return classpath.to_owned();
    };
    let mut jars: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix("netty-")
                .and_then(|rest| rest.strip_suffix(".jar"))
                .is_some_and(|stem| !stem.contains('.'))
        })
        .map(|name| dir.join(name).display().to_string())
        .collect();
    jars.sort();
    std::iter::once(classpath.to_owned())
        .chain(jars)
        .collect::<Vec<_>>()
        .join(":")
}
