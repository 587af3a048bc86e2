//! The public face of secured fixtures ([`ZkOptions`]): starting them,
//! and what a test needs to connect to them (the CA, each client's
//! certificate, a ready [`SessionConfig`]).

use std::path::PathBuf;

use super::inspect::{cons_sessions, mntr_field};
use super::node::StartError;
use super::security::{TlsMode, ZkOptions};
use super::standalone::ZkServer;
use super::zookeeper::ZkEnsemble;
use crate::SessionConfig;

impl ZkEnsemble {
    /// Starts `size` nodes secured as `options` says and waits until they
    /// serve (over TLS for a TLS fixture: it has no plaintext port).
    ///
    /// # Errors
    ///
    /// [`StartError`], with the log tail of the node that failed.
    pub fn start_with(size: usize, options: ZkOptions) -> Result<ZkEnsemble, StartError> {
        ZkEnsemble::start_secured(size, &options)
    }

    /// The CA certificate (PEM) of a TLS fixture.
    pub fn ca_pem(&self) -> Option<PathBuf> {
        self.security()?.ca_pem()
    }

    /// A CA bundle (PEM) of a TLS fixture that trusts its CA but holds a
    /// CRL revoking its server's certificate: how a client is told that
    /// the server it reached is revoked.
    pub fn ca_pem_revoking_server(&self) -> Option<PathBuf> {
        self.security()?.ca_revoking_server_pem()
    }

    /// The certificate and key (PEM) of client `name` (`alice`, `bob`) of a
    /// TLS fixture: its x509 identity is `CN=name`.
    pub fn client_cert(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        self.security()?.client_cert(name)
    }

    /// A session configuration for this fixture: its connect string, and
    /// for a TLS fixture its CA and the certificate of client `name` (none
    /// for `None`). A plaintext fixture ignores `name`.
    pub fn session_config(&self, name: Option<&str>) -> SessionConfig {
        let tls = self
            .security()
            .and_then(|security| security.tls_config(name));
        SessionConfig::new(self.connect_string()).with_tls(tls)
    }

    /// What [`session_config`](Self::session_config) is to our client, for
    /// a JVM's ZooKeeper client (Curator's): the `-D` system properties
    /// that make it speak TLS to this fixture as client `name` (none for
    /// `None`), empty for a plaintext fixture. The JVM also needs Netty's
    /// jars on its classpath: ZooKeeper's client does TLS over Netty only.
    pub fn jvm_client_properties(&self, name: Option<&str>) -> Vec<String> {
        self.security()
            .map(|security| security.jvm_client_properties(name))
            .unwrap_or_default()
    }

    /// What [`session_config`](Self::session_config) is to our client, for
    /// our binaries: `--zk-tls-ca`, `--zk-tls-cert` and `--zk-tls-key` with
    /// this fixture's CA and the certificate of client `name`; empty for a
    /// plaintext fixture.
    pub fn cli_tls_flags(&self, name: &str) -> Vec<String> {
        let (Some(ca), Some((cert, key))) = (self.ca_pem(), self.client_cert(name)) else {
            return Vec::new();
        };
        [
            ("--zk-tls-ca", ca),
            ("--zk-tls-cert", cert),
            ("--zk-tls-key", key),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
        .collect()
    }
}

impl ZkServer {
    /// A standalone server secured as `options` says.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the log tail.
    pub fn start_with(options: ZkOptions) -> Result<ZkServer, StartError> {
        ZkEnsemble::start_with(1, options).map(ZkServer)
    }

    /// A standalone server that serves only TLS, asking `mode` of client
    /// certificates.
    ///
    /// # Errors
    ///
    /// [`StartError`] with the log tail.
    pub fn start_tls(mode: TlsMode) -> Result<ZkServer, StartError> {
        ZkServer::start_with(ZkOptions {
            tls: Some(mode),
            ..ZkOptions::default()
        })
    }

    /// See [`ZkEnsemble::ca_pem`].
    pub fn ca_pem(&self) -> Option<PathBuf> {
        self.0.ca_pem()
    }

    /// See [`ZkEnsemble::ca_pem_revoking_server`].
    pub fn ca_pem_revoking_server(&self) -> Option<PathBuf> {
        self.0.ca_pem_revoking_server()
    }

    /// See [`ZkEnsemble::client_cert`].
    pub fn client_cert(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        self.0.client_cert(name)
    }

    /// See [`ZkEnsemble::session_config`].
    pub fn session_config(&self, name: Option<&str>) -> SessionConfig {
        self.0.session_config(name)
    }

    /// See [`ZkEnsemble::jvm_client_properties`].
    pub fn jvm_client_properties(&self, name: Option<&str>) -> Vec<String> {
        self.0.jvm_client_properties(name)
    }

    /// See [`ZkEnsemble::cli_tls_flags`].
    pub fn cli_tls_flags(&self, name: &str) -> Vec<String> {
        self.0.cli_tls_flags(name)
    }

    /// See [`ZkEnsemble::four_letter_word`].
    pub fn four_letter_word(&self, word: &str) -> Option<String> {
        self.0.four_letter_word(0, word)
    }

    /// [`mntr_value`](super::mntr_value) of this server, over TLS for a TLS
    /// fixture.
    pub fn mntr_value(&self, key: &str) -> Option<u64> {
        mntr_field(&self.four_letter_word("mntr")?, key)
    }

    /// [`sessions_on`](super::sessions_on) this server, over TLS for a TLS
    /// fixture.
    pub fn sessions(&self) -> Vec<crate::SessionId> {
        cons_sessions(&self.four_letter_word("cons").unwrap_or_default())
    }
}
