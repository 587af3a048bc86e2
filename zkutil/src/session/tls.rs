//! A session's TLS certificates, kept current: the client crate takes them
//! through a dynamic cell that it reads at every (re)connect, and a small
//! thread puts the files' new contents there when they change, so that a
//! rotated certificate is used from the next connection on, without a
//! restart.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use zookeeper_client as zk;

use crate::error::{Error, Result};
use crate::tls::{Stamp, TlsConfig, TlsPem};

/// How often the files are looked at: a `stat` each, so cheap; a rotation
/// is then in use within this much plus one reconnect.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The certificates a session connects with, re-read when their files change.
pub(crate) struct LiveCerts {
    config: TlsConfig,
    certs: zk::TlsDynamicCerts,
    /// Dropped with this value: the reload thread then ends at once.
    _stop: Sender<()>,
}

impl std::fmt::Debug for LiveCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCerts")
            .field("config", &self.config)
            .finish()
    }
}

impl LiveCerts {
    /// Reads the files now (a bad one is an error before any connect) and
    /// starts the thread that follows them; it ends when the returned value
    /// is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::TlsFile`] for a missing or bad file; [`Error::Io`] when the
    /// thread cannot start.
    pub(crate) fn load(config: &TlsConfig) -> Result<LiveCerts> {
        let stamp = config.stamp();
        let certs = zk::TlsDynamicCerts::new(certs(config, &config.read()?)?);
        let (stop, stopped) = channel();
        let (followed, cell) = (config.clone(), certs.clone());
        std::thread::Builder::new()
            .name("zk-tls-reload".into())
            .spawn(move || follow(&followed, &cell, stamp, &stopped))
            .map_err(|source| Error::Io {
                what: "starting the TLS certificate reload thread",
                source,
            })?;
        Ok(LiveCerts {
            config: config.clone(),
            certs,
            _stop: stop,
        })
    }

    /// The client crate's options: these certificates, the server's name
    /// always verified.
    pub(crate) fn options(&self) -> zk::TlsOptions {
        zk::TlsOptions::new().with_certs(self.certs.clone())
    }
}

/// Puts the files' contents in `cell` whenever their stamp changes, until
/// `stopped` says the session's [`LiveCerts`] is gone. A file caught
/// half-written, or replaced by a bad one, is skipped with a warning (the
/// certificates in use stay) and read again at its next change.
fn follow(config: &TlsConfig, cell: &zk::TlsDynamicCerts, mut seen: Stamp, stopped: &Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(RELOAD_EVERY) {
        let stamp = config.stamp();
        if stamp == seen {
            continue;
        }
        seen = stamp;
        match config.read().and_then(|pem| certs(config, &pem)) {
            Ok(certs) => {
                cell.update(certs);
                tracing::info!(ca = %config.ca().display(),
                    "TLS certificates changed: the next connection uses them");
            }
            Err(err) => tracing::warn!(error = %err,
                "TLS certificates changed but cannot be used: keeping the previous ones"),
        }
    }
}

fn certs(config: &TlsConfig, pem: &TlsPem) -> Result<zk::TlsCerts> {
    let ca = zk::TlsCa::from_pem(&pem.ca)
        .map_err(|err| Error::tls_file("CA bundle", config.ca(), err.to_string()))?;
    let builder = zk::TlsCerts::builder().with_ca(ca);
    let builder = match (config.client_cert(), &pem.identity) {
        (Some((cert_path, _)), Some((cert, key))) => builder
            .with_identity(zk::TlsIdentity::from_pem(cert, key).map_err(|err| {
                Error::tls_file("client certificate", cert_path, err.to_string())
            })?),
        _ => builder,
    };
    builder
        .build()
        .map_err(|err| Error::tls_file("CA bundle", config.ca(), err.to_string()))
}
