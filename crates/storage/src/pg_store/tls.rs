//! TLS of the PostgreSQL connections: the one way every connection of the store is made (the
//! pool's, the lease heartbeat's, the migrations'), a rustls connector, and the messages that
//! say what a failed handshake means and which setting fixes it.
//!
//! The URL's `sslmode` decides whether TLS is used, as libpq does: `disable` never, `prefer`
//! (the default) when the server offers it, `require` always (a server without TLS is refused).
//! Whenever TLS is used the server's certificate is verified, under `prefer` as under `require`:
//! its chain must lead to a trusted CA (the webpki roots, Mozilla's list, plus the certificates of
//! `BOTFLOW_DATABASE_CA_FILE`) and it must name the host of the URL (`host`, even when `hostaddr`
//! gives the address). This is libpq's `verify-full`; `verify-ca` and `verify-full` in the URL
//! are read as `require`, which verifies both. A handshake that fails verification is an error,
//! never a fall back to plain text.

use super::db::db_error;
use crate::error::StoreError;
use crate::store::StoreResult;
use postgres::Client;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The setting that names extra CA certificates, for messages.
pub(super) const CA_SETTING: &str = "BOTFLOW_DATABASE_CA_FILE (file key `database_ca_file`)";
/// The setting that holds `sslmode`, for messages.
const URL_SETTING: &str = "BOTFLOW_DATABASE_URL (file key `database_url`)";

/// The TLS side of a connection: trusted roots and protocol versions, built once per store.
#[derive(Clone)]
pub(super) struct Tls(MakeRustlsConnect);

impl Tls {
    /// Trusts the webpki roots and the certificates of `ca_file` (PEM).
    pub(super) fn new(ca_file: Option<&Path>) -> StoreResult<Self> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            for cert in read_ca_file(path).map_err(|detail| StoreError::Postgres {
                what: format!("reading {CA_SETTING}"),
                detail,
                transient: false,
            })? {
                // read_ca_file checked that each one is usable as a trust anchor
                let _ = roots.add(cert);
            }
        }
        // ring, explicitly: the provider reqwest uses too, and no process-wide default needed
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|err| StoreError::Postgres {
            what: "setting up TLS".to_owned(),
            detail: err.to_string(),
            transient: false,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self(MakeRustlsConnect::new(config)))
    }
}

/// Checks a CA file for `BOTFLOW_DATABASE_CA_FILE` as the store will read it (PEM, at least one
/// certificate, each usable as a trust anchor), returning how many certificates it holds; the
/// error names the file and says what is wrong with it.
pub fn check_database_ca_file(path: &Path) -> Result<usize, String> {
    read_ca_file(path).map(|certs| certs.len())
}

/// Reads a PEM file of CA certificates; the error names the file and says what is wrong with it.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes =
        std::fs::read(path).map_err(|err| format!("{}: cannot read it: {err}", path.display()))?;
    let mut certs = Vec::new();
    for (index, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|err| {
            format!(
                "{}: certificate {} is not valid PEM: {err}",
                path.display(),
                index + 1
            )
        })?;
        let mut check = rustls::RootCertStore::empty();
        check.add(cert.clone()).map_err(|err| {
            let why = match err {
                rustls::Error::InvalidCertificate(problem) => format!("{problem:?}"),
                other => other.to_string(),
            };
            format!(
                "{}: certificate {} cannot be used as a CA certificate (not a valid X.509 \
                 certificate: {why})",
                path.display(),
                index + 1
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE----- blocks, the \
             certificate of the CA that signed the server's certificate)",
            path.display()
        ));
    }
    Ok(certs)
}

/// How to make the connections of one purpose: the driver's settings and the TLS side.
#[derive(Clone)]
pub(super) struct Connector {
    config: postgres::Config,
    tls: Tls,
}

impl Connector {
    /// Connections with `config`, TLS as its `sslmode` says.
    pub(super) fn new(config: postgres::Config, tls: &Tls) -> Self {
        Self {
            config,
            tls: tls.clone(),
        }
    }

    /// A new connection; a failure says what was being done and, for TLS, what failed and which
    /// setting fixes it.
    pub(super) fn connect(&self, what: &str) -> StoreResult<Client> {
        self.config
            .connect(self.tls.0.clone())
            .map_err(|err| connect_error(&format!("{what}: connecting"), &self.config, &err))
    }
}

/// What went wrong in a TLS handshake, when it is one of the failures a setting fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TlsFailure {
    /// `sslmode=require` and the server answered that it does not do TLS.
    ServerWithoutTls,
    /// The certificate chain leads to no trusted CA.
    UnknownIssuer,
    /// The certificate does not name the host connected to.
    WrongHost,
    /// The certificate has expired or is not valid yet.
    Expired,
    /// Any other certificate problem (revoked, bad signature, wrong usage…).
    BadCertificate,
    /// Another handshake failure (no common protocol version or cipher, an alert).
    Handshake,
    /// TLS without a host name to verify (only `hostaddr` given).
    NoHostName,
}

fn tls_failure(err: &postgres::Error) -> Option<TlsFailure> {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        // tokio-rustls wraps the rustls error in an io::Error, whose `source` skips it
        let rustls_error = s.downcast_ref::<rustls::Error>().or_else(|| {
            s.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = rustls_error {
            return Some(classify(tls));
        }
        // the driver's own refusals are plain messages
        match s.to_string().as_str() {
            "server does not support TLS" => return Some(TlsFailure::ServerWithoutTls),
            "no hostname provided for TLS handshake" => return Some(TlsFailure::NoHostName),
            _ => {}
        }
        source = s.source();
    }
    None
}

fn classify(err: &rustls::Error) -> TlsFailure {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => TlsFailure::UnknownIssuer,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsFailure::WrongHost,
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => TlsFailure::Expired,
            _ => TlsFailure::BadCertificate,
        },
        _ => TlsFailure::Handshake,
    }
}

/// The first TCP host of the URL, for messages.
fn host_of(config: &postgres::Config) -> String {
    config
        .get_hosts()
        .iter()
        .find_map(|host| match host {
            postgres::config::Host::Tcp(name) => Some(name.clone()),
            #[cfg(unix)]
            postgres::config::Host::Unix(_) => None,
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// [`db_error`] for a failed connect, explaining a TLS failure (never transient: retrying does
/// not change a certificate).
pub(super) fn connect_error(
    what: &str,
    config: &postgres::Config,
    err: &postgres::Error,
) -> StoreError {
    let base = db_error(what, err);
    let Some(failure) = tls_failure(err) else {
        return base;
    };
    let host = host_of(config);
    let explained = match failure {
        TlsFailure::ServerWithoutTls => format!(
            "TLS: the server does not accept TLS connections and the URL asks for sslmode=require: \
             turn `ssl` on at the server, or (on a network you trust) set sslmode=prefer or \
             sslmode=disable in {URL_SETTING}"
        ),
        TlsFailure::UnknownIssuer => format!(
            "TLS: the server's certificate is not signed by a CA this node trusts (unknown \
             issuer): give the certificate of the CA that signed it, in PEM, with {CA_SETTING} \
             (your provider publishes it; a self-signed server certificate is its own CA), or \
             (on a network you trust) set sslmode=disable in {URL_SETTING}"
        ),
        TlsFailure::WrongHost => format!(
            "TLS: the server's certificate is not valid for the host {host:?} of {URL_SETTING}: \
             connect with a host name the certificate names (its subject alternative names; \
             with hostaddr=… for the address, host=… stays the name checked)"
        ),
        TlsFailure::Expired => "TLS: the server's certificate has expired or is not valid yet \
             (check this machine's clock, or renew the server's certificate)"
            .to_owned(),
        TlsFailure::BadCertificate => format!(
            "TLS: the server's certificate was refused; check the server's certificate and \
             {CA_SETTING}"
        ),
        TlsFailure::Handshake => format!(
            "TLS: the handshake with the server failed (TLS 1.2 or 1.3 is needed); check the \
             server's `ssl` settings, or the sslmode of {URL_SETTING}"
        ),
        TlsFailure::NoHostName => format!(
            "TLS: the server's certificate is checked against a host name and the URL gives \
             only an address: add host=… (the name on the certificate) to {URL_SETTING}"
        ),
    };
    match base {
        StoreError::Postgres { what, detail, .. } => StoreError::Postgres {
            what,
            detail: format!("{explained} ({detail})"),
            transient: false,
        },
        other => other,
    }
}
