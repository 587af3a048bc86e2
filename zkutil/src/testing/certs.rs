//! The certificates of a TLS fixture, made in the test (rcgen): a CA, a
//! server certificate for `localhost` and `127.0.0.1`, and client
//! certificates whose subject is `CN=<name>` (ZooKeeper's x509 identity).
//! Each is a PEM file in the fixture's temp dir, as a deployment has them.
//! Expired ones (valid in the year 2000 only) show how an expiry is told:
//! the client [`EXPIRED_CLIENT`] always, the server's on request.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The client identities every TLS fixture has: two users, so that a test
/// can check that one cannot touch the other's nodes.
pub const CLIENT_NAMES: [&str; 2] = ["alice", "bob"];

/// The client certificate of every TLS fixture that has expired
/// (`CN=expired`, valid during the year 2000 only): a session with it
/// fails at once, saying so.
pub const EXPIRED_CLIENT: &str = "expired";

/// When an expired test certificate became valid: 2000-01-01.
pub(super) const VALID_FROM: (i32, u8, u8) = (2000, 1, 1);
/// When an expired test certificate stopped being valid: 2001-01-01.
pub(super) const VALID_UNTIL: (i32, u8, u8) = (2001, 1, 1);

/// The identity the fixture itself presents (readiness checks, four-letter
/// words) where a client certificate is needed: none of the tests' users.
pub(super) const FIXTURE_NAME: &str = "zkutil-fixture";

/// The serial number of the server's certificate, as a CRL names it.
const SERVER_SERIAL: u64 = 2;

/// A CRL (PEM) signed by `ca` that revokes the certificate `serial`.
fn revoking(serial: u64, ca: &CertifiedIssuer<'_, KeyPair>) -> Result<String, rcgen::Error> {
    let date = |(year, month, day): (i32, u8, u8)| rcgen::date_time_ymd(year, month, day);
    rcgen::CertificateRevocationListParams {
        this_update: date(VALID_FROM),
        next_update: date((2100, 1, 1)),
        crl_number: 1u64.into(),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: serial.into(),
            revocation_time: date(VALID_FROM),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(ca)?
    .pem()
}

/// The PEM files of a TLS fixture.
#[derive(Debug, Clone)]
pub(super) struct TestCerts {
    dir: PathBuf,
}

impl TestCerts {
    /// Makes the CA, the server's certificate (expired if `expired_server`)
    /// and one client certificate per name of [`CLIENT_NAMES`], the
    /// fixture's own and [`EXPIRED_CLIENT`]'s, in `dir` (created).
    pub(super) fn generate(dir: &Path, expired_server: bool) -> std::io::Result<TestCerts> {
        let failed = |what: &str| {
            let what = what.to_owned();
            move |err: rcgen::Error| std::io::Error::other(format!("making the test {what}: {err}"))
        };
        std::fs::create_dir_all(dir)?;
        let certs = TestCerts {
            dir: dir.to_owned(),
        };
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed("CA"))?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "zkutil test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().map_err(failed("CA key"))?;
        let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(failed("CA"))?;
        certs.write(&certs.ca_pem(), &ca.pem())?;

        let (server, server_key) = leaf(
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
            expired_server,
        )
        .map_err(failed("server certificate"))?;
        // ZooKeeper's PEM key store: the key, then the certificate.
        certs.write(&certs.server_pem(), &format!("{server_key}{server}"))?;
        let crl = revoking(SERVER_SERIAL, &ca).map_err(failed("CRL"))?;
        certs.write(
            &certs.ca_revoking_server_pem(),
            &format!("{}{crl}", ca.pem()),
        )?;
        for name in CLIENT_NAMES
            .into_iter()
            .chain([FIXTURE_NAME, EXPIRED_CLIENT])
        {
            let expired = name == EXPIRED_CLIENT;
            let (cert, key) = leaf(&[], name, ExtendedKeyUsagePurpose::ClientAuth, &ca, expired)
                .map_err(failed("client certificate"))?;
            let (cert_path, key_path) = certs.client(name);
            certs.write(&cert_path, &cert)?;
            certs.write(&key_path, &key)?;
            certs.write(&certs.client_key_store(name), &format!("{key}{cert}"))?;
        }
        Ok(certs)
    }

    /// The CA certificate (PEM): the trust store of the server and clients.
    pub(super) fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA certificate and a CRL of that CA revoking the server's
    /// certificate: the trust store of a client told the server is revoked.
    pub(super) fn ca_revoking_server_pem(&self) -> PathBuf {
        self.dir.join("ca-revoking-server.pem")
    }

    /// The server's key and certificate in one PEM file (its key store).
    pub(super) fn server_pem(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The certificate and key of client `name`.
    pub(super) fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.crt")),
            self.dir.join(format!("{name}.key")),
        )
    }

    /// The key and certificate of client `name` in one PEM file: a JVM
    /// client's key store (ZooKeeper's PEM key store, as [`Self::server_pem`]).
    pub(super) fn client_key_store(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    fn write(&self, path: &Path, pem: &str) -> std::io::Result<()> {
        std::fs::write(path, pem).map_err(|err| {
            std::io::Error::new(err.kind(), format!("writing {}: {err}", path.display()))
        })
    }
}

/// A certificate signed by `ca` for the names `sans`, with the subject
/// `CN=common_name`, `expired` or valid now: its PEM and its key's (PKCS#8).
fn leaf(
    sans: &[&str],
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    ca: &CertifiedIssuer<'_, KeyPair>,
    expired: bool,
) -> Result<(String, String), rcgen::Error> {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let server = usage == ExtendedKeyUsagePurpose::ServerAuth;
    params.extended_key_usages = vec![usage];
    if expired {
        let date = |(year, month, day): (i32, u8, u8)| rcgen::date_time_ymd(year, month, day);
        params.not_before = date(VALID_FROM);
        params.not_after = date(VALID_UNTIL);
    }
    if server {
        params.serial_number = Some(SERVER_SERIAL.into());
    }
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}
