//! `tls`: the certificates that secure the connection to ZooKeeper.
//!
//! A [`TlsConfig`] names PEM files, not their contents: certificates are
//! rotated by replacing the files, and whoever holds a `TlsConfig` (a
//! session, a four-letter-word probe) reads them again. The server's name is
//! always verified against its certificate: there is no switch to turn that
//! off, since a TLS connection that trusts any certificate only hides a
//! man-in-the-middle.
//!
//! Both users of TLS get their files from here: the session (through the
//! ZooKeeper client's TLS options) and [`crate::admin`]'s four-letter words
//! (a blocking rustls stream, made by [`TlsConfig::rustls_client`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// Where the CA bundle and, optionally, the client certificate and its key
/// are: PEM files, read again whenever they change.
///
/// # Example
///
/// ```
/// let tls = zkutil::TlsConfig::new("/etc/zk/ca.pem")
///     .with_client_cert("/etc/zk/svc.crt", "/etc/zk/svc.key");
/// assert_eq!(tls.ca(), std::path::Path::new("/etc/zk/ca.pem"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    ca: PathBuf,
    identity: Option<(PathBuf, PathBuf)>,
}

/// The contents of a [`TlsConfig`]'s files, checked to hold what each must.
pub(crate) struct TlsPem {
    pub(crate) ca: String,
    pub(crate) identity: Option<(String, String)>,
}

/// When each file was last changed, and its length: what a reload compares.
pub(crate) type Stamp = Vec<Option<(SystemTime, u64)>>;

impl TlsConfig {
    /// TLS that trusts the CA certificates in the PEM file `ca` (a bundle
    /// may hold several, and CRLs).
    pub fn new(ca: impl Into<PathBuf>) -> TlsConfig {
        TlsConfig {
            ca: ca.into(),
            identity: None,
        }
    }

    /// Presents the client certificate `cert` (PEM, the chain in order) with
    /// its private key `key` (PEM, PKCS#8, PKCS#1 or SEC1), for servers that
    /// ask for one (`ssl.clientAuth=need|want`). With ZooKeeper's x509 auth
    /// provider the certificate's subject (`CN=…`) is the session's identity.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.identity = Some((cert.into(), key.into()));
        self
    }

    /// The CA bundle's path.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// The client certificate's and key's paths, if any.
    pub fn client_cert(&self) -> Option<(&Path, &Path)> {
        self.identity
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()))
    }

    /// Reads every file and checks that it holds what it must: the CA
    /// bundle and the client chain at least one certificate, the key file
    /// the private key of the client certificate.
    ///
    /// # Errors
    ///
    /// [`Error::TlsFile`] naming the file and what is wrong with it.
    pub fn check(&self) -> Result<()> {
        self.read().map(drop)
    }

    pub(crate) fn read(&self) -> Result<TlsPem> {
        let ca = read_pem("CA bundle", &self.ca)?;
        certificates("CA bundle", &self.ca, &ca)?;
        let identity = match &self.identity {
            None => None,
            Some((cert_path, key_path)) => {
                let cert = read_pem("client certificate", cert_path)?;
                let chain = certificates("client certificate", cert_path, &cert)?;
                let key = read_pem("client key", key_path)?;
                let der = private_key(key_path, &key)?;
                // A key of another certificate would be refused only by
                // the client crate, at connect, naming neither file.
                let provider = rustls::crypto::ring::default_provider();
                if let Err(err) = rustls::sign::CertifiedKey::from_der(chain, der, &provider) {
                    let cause = match err {
                        rustls::Error::InconsistentKeys(_) => format!(
                            "it is not the key of the client certificate {}",
                            cert_path.display()
                        ),
                        other => other.to_string(),
                    };
                    return Err(Error::tls_file("client key", key_path, cause));
                }
                Some((cert, key))
            }
        };
        Ok(TlsPem { ca, identity })
    }

    /// What changes when a file is replaced or rewritten (a missing file is
    /// `None`: its return is a change too).
    pub(crate) fn stamp(&self) -> Stamp {
        let mut paths = vec![self.ca.as_path()];
        if let Some((cert, key)) = &self.identity {
            paths.extend([cert.as_path(), key.as_path()]);
        }
        paths
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some((meta.modified().ok()?, meta.len()))
            })
            .collect()
    }

    /// A rustls client configuration from the files as they are now, with
    /// the ring provider and the server's name verified.
    ///
    /// # Errors
    ///
    /// [`Error::TlsFile`] when a file cannot be used.
    pub(crate) fn rustls_client(&self) -> Result<Arc<rustls::ClientConfig>> {
        self.rustls_client_at(Arc::new(rustls::time_provider::DefaultTimeProvider))
    }

    /// [`TlsConfig::rustls_client`] that checks certificates at the time
    /// `clock` gives: the testing fixture's own checks of a server whose
    /// certificate it made expired.
    pub(crate) fn rustls_client_at(
        &self,
        clock: Arc<dyn rustls::time_provider::TimeProvider>,
    ) -> Result<Arc<rustls::ClientConfig>> {
        let pem = self.read()?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates("CA bundle", &self.ca, &pem.ca)? {
            roots.add(cert).map_err(|err| {
                Error::tls_file("CA bundle", &self.ca, format!("bad certificate: {err}"))
            })?;
        }
        // The bundle's CRLs count here as in the session (the client crate
        // reads them too): a revoked server is no healthier to a probe.
        let crls =
            rustls::pki_types::CertificateRevocationListDer::pem_slice_iter(pem.ca.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|err| Error::tls_file("CA bundle", &self.ca, format!("bad CRL: {err}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots.into(),
            provider.clone(),
        )
        .with_crls(crls)
        // As the session's (the client crate's third patch): a CRL for one
        // CA does not fail certificates of the others.
        .allow_unknown_revocation_status()
        .build()
        .map_err(|err| Error::tls_file("CA bundle", &self.ca, err.to_string()))?;
        let builder = rustls::ClientConfig::builder_with_details(provider, clock)
            .with_safe_default_protocol_versions()
            .map_err(|err| Error::tls_file("CA bundle", &self.ca, err.to_string()))?
            .with_webpki_verifier(verifier);
        let config = match (&self.identity, &pem.identity) {
            (Some((cert_path, key_path)), Some((cert, key))) => builder
                .with_client_auth_cert(
                    certificates("client certificate", cert_path, cert)?,
                    private_key(key_path, key)?,
                )
                .map_err(|err| Error::tls_file("client key", key_path, err.to_string()))?,
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

fn read_pem(what: &'static str, path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|err| Error::tls_file(what, path, err.to_string()))
}

pub(crate) fn certificates(
    what: &'static str,
    path: &Path,
    pem: &str,
) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| Error::tls_file(what, path, format!("bad PEM: {err}")))?;
    if certs.is_empty() {
        return Err(Error::tls_file(what, path, "no certificate in it"));
    }
    Ok(certs)
}

fn private_key(path: &Path, pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|err| match err {
        rustls::pki_types::pem::Error::NoItemsFound => {
            Error::tls_file("client key", path, "no private key in it")
        }
        err => Error::tls_file("client key", path, format!("bad PEM: {err}")),
    })
}

#[cfg(test)]
mod tests {
    use super::TlsConfig;

    #[test]
    fn missing_and_empty_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let missing = dir.path().join("missing.pem");
        let err = TlsConfig::new(&missing).check().expect_err("no such file");
        assert!(
            err.to_string()
                .starts_with(&format!("TLS CA bundle {}: ", missing.display())),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let err = TlsConfig::new(&empty).check().expect_err("no certificate");
        assert_eq!(
            err.to_string(),
            format!("TLS CA bundle {}: no certificate in it", empty.display())
        );
    }
}
