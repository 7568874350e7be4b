//! TLS of the PostgreSQL connections against a real server: a throwaway cluster with `ssl = on`
//! serving a certificate made here (a test CA and a server certificate for `localhost` and
//! 127.0.0.1), and the plain clusters the other tests use.
//!
//! Like every PostgreSQL test, a missing server is a failure (`botflow_storage::pg_test`).

use super::*;
use botflow_storage::pg_test::{TestCluster, shared_url};
use botflow_storage::{PgOptions, StoreError, check_database_ca_file};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The TLS cluster of this test binary, with the file of the CA that signed its certificate.
struct TlsServer {
    cluster: TestCluster,
    ca_file: PathBuf,
    _dir: TempDir,
}

impl TlsServer {
    /// A URL of the server through `host` with `params` (`sslmode=…`).
    fn url(&self, host: &str, params: &str) -> String {
        let port = self.cluster.port();
        format!("postgres://postgres@{host}:{port}/postgres?{params}")
    }

    /// Options for `url` on a schema of its own (also its node id and, unless the URL names
    /// one, the pool's application name), trusting the test CA when `with_ca`.
    fn options(&self, url: &str, with_ca: bool) -> PgOptions {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("tls_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        PgOptions {
            schema: Some(name.clone()),
            node_id: Some(name.clone()),
            ca_file: with_ca.then(|| self.ca_file.clone()),
            ..PgOptions::new(&with_param(url, &format!("application_name={name}")))
        }
    }
}

/// A CA and a server certificate signed by it for `localhost` and 127.0.0.1, as PEM:
/// (CA certificate, server certificate, server key).
fn make_certificates() -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "botflow test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    // "127.0.0.1" becomes an IP address SAN, "localhost" a DNS name
    let mut server =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    (ca_cert.pem(), server_cert.pem(), server_key.serialize_pem())
}

fn tls_server() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (ca, cert, key) = make_certificates();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        TlsServer {
            cluster: TestCluster::start_tls(&cert, &key),
            ca_file,
            _dir: dir,
        }
    })
}

/// Whether each connection of the store of `options` (its pool's, named by the URL's
/// application name; its lease heartbeat's, `botflow-leases-<node>`) is encrypted, by name,
/// read on a plain connection of the server at `admin_url`.
fn store_connections_ssl(admin_url: &str, options: &PgOptions) -> Vec<(String, bool)> {
    let admin_url = admin_url.to_owned();
    let node = options.node_id.clone().unwrap();
    std::thread::spawn(move || {
        let mut client = ::postgres::Client::connect(&admin_url, ::postgres::NoTls).unwrap();
        client
            .query(
                "SELECT a.application_name, s.ssl FROM pg_stat_activity a
                 JOIN pg_stat_ssl s ON s.pid = a.pid
                 WHERE a.application_name IN ($1, 'botflow-leases-' || $1)
                 ORDER BY 1",
                &[&node],
            )
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    })
    .join()
    .unwrap()
}

/// The message of a failed connect, which must not be transient (a retry does not fix a
/// certificate or a setting).
fn refused(options: &PgOptions) -> String {
    let err = PgStore::connect_with(options).expect_err("connecting must fail");
    assert!(
        matches!(err, StoreError::Postgres { .. }) && !err.is_transient(),
        "a setting problem, not transient: {err}"
    );
    err.to_string()
}

#[test]
fn with_the_ca_file_every_connection_of_the_store_is_encrypted() {
    let server = tls_server();
    for (host, params) in [
        ("127.0.0.1", "sslmode=require"),
        // the default, prefer, takes TLS when the server offers it
        ("127.0.0.1", "connect_timeout=10"),
        // a DNS name of the certificate; libpq's verify-full reads as require
        ("localhost", "sslmode=verify-full"),
    ] {
        let url = server.url(host, params);
        let options = server.options(&url, true);
        let store = PgStore::connect_with(&options)
            .unwrap_or_else(|e| panic!("{url}: the store opens over TLS: {e}"));
        assert!(store.ensure_page(&page(), 1).unwrap());
        assert_eq!(store.list_pages().unwrap(), vec![page()]);
        assert!(store.pooled_connection_uses_tls().unwrap(), "{url}");
        let connections =
            store_connections_ssl(&server.url("127.0.0.1", "sslmode=disable"), &options);
        let node = options.node_id.as_deref().unwrap();
        assert!(
            connections
                .iter()
                .any(|(name, _)| *name == format!("botflow-leases-{node}"))
                && connections.iter().any(|(name, _)| name == node),
            "the pool's and the lease heartbeat's connections are there: {connections:?}"
        );
        assert!(
            connections.iter().all(|(_, ssl)| *ssl),
            "{url}: every connection of the store is encrypted: {connections:?}"
        );
        drop(store);
    }
}

#[test]
fn without_the_ca_file_an_unknown_issuer_is_refused_with_the_setting_that_fixes_it() {
    let server = tls_server();
    for params in ["sslmode=require", "sslmode=prefer"] {
        let url = server.url("127.0.0.1", params);
        let message = refused(&server.options(&url, false));
        assert!(
            message.contains("unknown issuer")
                && message.contains("BOTFLOW_DATABASE_CA_FILE")
                && message.contains("database_ca_file")
                && message.contains("connecting"),
            "{params}: no fall back to plain text, and the message says what to set: {message}"
        );
    }
}

#[test]
fn a_host_name_the_certificate_does_not_name_is_refused() {
    let server = tls_server();
    let port = server.cluster.port();
    // the address of the server, checked against a name its certificate does not carry
    let url = format!(
        "host=db.wrong.example hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres \
         sslmode=require"
    );
    let message = refused(&server.options(&url, true));
    assert!(
        message.contains("not valid for the host \"db.wrong.example\"")
            && message.contains("BOTFLOW_DATABASE_URL"),
        "{message}"
    );
}

#[test]
fn require_against_a_server_without_tls_says_so() {
    // the plain cluster (or BOTFLOW_TEST_DATABASE_URL) of the other tests
    let url = with_param(&shared_url(), "sslmode=require");
    let message = refused(&PgOptions::new(&url));
    assert!(
        message.contains("does not accept TLS") && message.contains("sslmode"),
        "{message}"
    );
}

#[test]
fn sslmode_disable_connects_in_plain_text_to_either_server() {
    let plain = with_param(&shared_url(), "sslmode=disable");
    let schema = botflow_storage::pg_test::TestSchema::on(&plain);
    let store = schema.store();
    assert!(store.ensure_page(&page(), 1).unwrap());
    assert!(!store.pooled_connection_uses_tls().unwrap());
    drop(store);

    // the TLS server takes plain connections too when asked for none
    let server = tls_server();
    let url = server.url("127.0.0.1", "sslmode=disable");
    let store = PgStore::connect_with(&server.options(&url, false)).unwrap();
    assert!(!store.pooled_connection_uses_tls().unwrap());
}

#[test]
fn a_bad_ca_file_is_refused_naming_the_file_and_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for (file, expected) in [
        (&missing, "cannot read it"),
        (&empty, "no certificate in it"),
        (&broken, "certificate 1 cannot be used as a CA certificate"),
    ] {
        let err = check_database_ca_file(file).unwrap_err();
        assert!(
            err.contains(&file.display().to_string()) && err.contains(expected),
            "{err}"
        );
        // the store says the same before it connects
        let options = PgOptions {
            ca_file: Some(file.clone()),
            ..PgOptions::new("postgres://botflow@127.0.0.1:1/botflow")
        };
        let message = refused(&options);
        assert!(
            message.contains("BOTFLOW_DATABASE_CA_FILE") && message.contains(expected),
            "{message}"
        );
    }
    let (ca, _, _) = make_certificates();
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, format!("{ca}{ca}")).unwrap();
    assert_eq!(check_database_ca_file(&good), Ok(2));
}

/// `url` with one more parameter (a query parameter of a `postgres://` URL, or one more
/// `key=value` of a connection string).
fn with_param(url: &str, param: &str) -> String {
    let separator = if !url.starts_with("postgres") {
        ' '
    } else if url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{url}{separator}{param}")
}
