//! PostgreSQL for tests: the database named by `BOTFLOW_TEST_DATABASE_URL`, or a throwaway
//! cluster started from the installed server binaries (one per test binary, `fsync=off`,
//! stopped by a watchdog when the test process is gone), and a fresh schema per test.
//!
//! A missing server is a failure with a message saying what to install, never a skip.

use crate::pg_store::{PgOptions, PgStore};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The environment variable naming an existing database for the tests.
pub const TEST_DATABASE_URL: &str = "BOTFLOW_TEST_DATABASE_URL";

/// A PostgreSQL cluster of the tests' own in a temp dir, listening on 127.0.0.1.
#[derive(Debug)]
pub struct TestCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// `fsync` on (benchmarks comparing durable commits); tests run with it off.
    durable: bool,
    /// `ssl = on` with the certificate and key written in the cluster's directory.
    tls: bool,
}

fn find_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(55_432)
}

fn missing(detail: &str) -> ! {
    panic!(
        "PostgreSQL is needed by the PostgreSQL storage tests and {detail}. Either set \
         {TEST_DATABASE_URL}=postgres://user:password@host:port/database (a database the tests may \
         create schemas in), or install the server binaries (Debian/Ubuntu: apt-get install -y \
         postgresql) so the tests start a throwaway cluster (initdb, pg_ctl){}",
        if std::env::var("CI").as_deref() == Ok("true") {
            " — under CI=true a missing database is a failure, never a skip"
        } else {
            ""
        }
    )
}

impl TestCluster {
    /// Starts a new cluster (initdb into a temp dir, as the `postgres` user when running as
    /// root), on a free port; panics with what to install when the binaries are missing.
    pub fn start() -> Self {
        Self::start_with(false, None)
    }

    /// Starts a cluster with `ssl = on` serving `cert_pem` (the server certificate, followed by
    /// any intermediate certificates) with the private key `key_pem`; both files are written
    /// with mode 0600 and owned by the user the server runs as, as PostgreSQL requires of the
    /// key. The server accepts plain connections too (`sslmode=disable`).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        Self::start_with(false, Some((cert_pem, key_pem)))
    }

    /// Starts a cluster that syncs its WAL like a production server (`fsync` and full page
    /// writes on), for benchmarks set against the sled store's `fdatasync`.
    pub fn start_durable() -> Self {
        Self::start_with(true, None)
    }

    fn start_with(durable: bool, tls: Option<(&str, &str)>) -> Self {
        let Some(bin) = find_bin() else {
            missing("no initdb/pg_ctl was found in /usr/lib/postgresql/*/bin or on PATH")
        };
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "botflow-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "chown postgres {} failed: does the `postgres` user exist?",
                dir.display()
            );
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_postgres,
            durable,
            tls: tls.is_some(),
        };
        let data = cluster.dir.join("data");
        let out = cluster
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("running initdb: {e}"));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some((cert, key)) = tls {
            cluster.write_private("server.crt", cert);
            cluster.write_private("server.key", key);
        }
        cluster.watch();
        cluster.start_server();
        cluster
    }

    /// Writes a file of the server's into the cluster's directory: mode 0600, owned by the
    /// user the server runs as.
    fn write_private(&self, name: &str, text: &str) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        if self.as_postgres {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&path)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "chown postgres {} failed",
                path.display()
            );
        }
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command.stdin(Stdio::null());
        command
    }

    /// A watchdog process that stops the server and removes the directory once this process
    /// is gone (test binaries exit without running destructors of statics).
    fn watch(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = self.stop_command_line(),
            dir = self.dir.display()
        );
        let spawned = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            panic!("starting the PostgreSQL test watchdog: {e}");
        }
    }

    fn stop_command_line(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let prefix = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        format!(
            "{prefix}'{}' -D '{}' -m immediate stop >/dev/null 2>&1",
            pg_ctl.display(),
            data.display()
        )
    }

    fn start_server(&mut self) {
        let mut last = String::new();
        for _ in 0..3 {
            let port = if self.port == 0 {
                free_port()
            } else {
                self.port
            };
            let out = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={sync} \
                     -c full_page_writes={sync} -c max_connections=300{ssl}",
                    self.dir.display(),
                    sync = if self.durable { "on" } else { "off" },
                    ssl = if self.tls {
                        format!(
                            " -c ssl=on -c ssl_cert_file={dir}/server.crt \
                             -c ssl_key_file={dir}/server.key",
                            dir = self.dir.display()
                        )
                    } else {
                        String::new()
                    }
                ))
                .arg("start")
                .output()
                .unwrap_or_else(|e| panic!("running pg_ctl start: {e}"));
            if out.status.success() {
                self.port = port;
                return;
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            );
        }
        panic!("pg_ctl start failed three times: {last}");
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's directory (data in `data/`, the server log in `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server at once (`-m immediate`: like a crash), for outage tests.
    pub fn stop(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .unwrap_or_else(|e| panic!("running pg_ctl stop: {e}"));
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.start_server();
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The database the tests of this process share: `BOTFLOW_TEST_DATABASE_URL`, or one
/// throwaway cluster started on first use.
pub fn shared_url() -> String {
    static SHARED: OnceLock<(String, Option<TestCluster>)> = OnceLock::new();
    SHARED
        .get_or_init(|| match std::env::var(TEST_DATABASE_URL) {
            Ok(url) if !url.trim().is_empty() => (url, None),
            _ => {
                let cluster = TestCluster::start();
                (cluster.url(), Some(cluster))
            }
        })
        .0
        .clone()
}

/// A database of one test on the shared server (for a real `botflow serve`, which uses the
/// database's default schema), dropped when this guard drops.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a new empty database on the shared server.
    pub fn new() -> Self {
        Self::on(&shared_url())
    }

    /// Creates a new empty database on the server of `admin_url` (a URL whose user may create
    /// databases).
    pub fn on(admin_url: &str) -> Self {
        let admin_url = admin_url.to_owned();
        let name = format!("e2e_{}", uuid::Uuid::new_v4().simple());
        let config: postgres::Config = admin_url
            .parse()
            .unwrap_or_else(|e| panic!("{TEST_DATABASE_URL} is not a postgres URL: {e}"));
        let create = format!("CREATE DATABASE {name}");
        std::thread::spawn(move || {
            let mut client = config
                .connect(postgres::NoTls)
                .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
            client
                .batch_execute(&create)
                .unwrap_or_else(|e| panic!("{create}: {e}"));
        })
        .join()
        .unwrap_or_else(|_| panic!("creating the test database failed"));
        let url = match admin_url.rsplit_once('/') {
            Some((server, _database)) => format!("{server}/{name}"),
            None => panic!("{admin_url} names no database"),
        };
        Self {
            admin_url,
            name,
            url,
        }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(config) = self.admin_url.parse::<postgres::Config>() {
            let drop_sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = std::thread::spawn(move || {
                if let Ok(mut client) = config.connect(postgres::NoTls) {
                    let _ = client.batch_execute(&drop_sql);
                }
            })
            .join();
        }
    }
}

/// A schema of one test, dropped (with everything in it) when this guard drops.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// A new empty schema in the shared database.
    pub fn new() -> Self {
        Self::on(&shared_url())
    }

    /// A new schema name in the database at `url` (created by the first connect).
    pub fn on(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("t_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// How to connect to it.
    pub fn options(&self) -> PgOptions {
        // one node id per schema: a reopen is the same node restarting (it takes its leases
        // back at once)
        PgOptions {
            schema: Some(self.name.clone()),
            node_id: Some(self.name.clone()),
            ..PgOptions::new(&self.url)
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A migrated store on this schema.
    pub fn store(&self) -> PgStore {
        PgStore::connect_with(&self.options())
            .unwrap_or_else(|e| panic!("connecting the test store: {e}"))
    }
}

impl Default for TestSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(config) = self.url.parse::<postgres::Config>() {
            let name = self.name.clone();
            // never on a runtime thread: the driver starts its own
            let _ = std::thread::spawn(move || {
                if let Ok(mut client) = config.connect(postgres::NoTls) {
                    let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
                }
            })
            .join();
        }
    }
}
