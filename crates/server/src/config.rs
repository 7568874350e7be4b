//! Server configuration: a TOML file overlaid by `BOTFLOW_*` environment variables.
//!
//! Precedence is environment, then file, then defaults. `--demo` fills the secrets with
//! well-known demo values so nothing is required; otherwise a missing required setting stops
//! start-up with an error naming the environment variable and the file key.

use botflow_flow::FlowDuration;
use botflow_storage::PgOptions;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The real Graph API with the version botflow is written against (the messenger crate's
/// `DEFAULT_GRAPH_BASE_URL` and `DEFAULT_API_VERSION`).
pub const DEFAULT_GRAPH_API_URL: &str = "https://graph.facebook.com/v23.0";
/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default limit of a request body (webhook and API): 1 MiB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// Default longest admin API request, in milliseconds.
pub const DEFAULT_ADMIN_TIMEOUT_MS: u64 = 30_000;
/// Default shard lease TTL in milliseconds (several nodes on PostgreSQL).
pub const DEFAULT_SHARD_LEASE_MS: u64 = 10_000;
/// Shortest shard lease TTL accepted, in milliseconds.
pub const MIN_SHARD_LEASE_MS: u64 = 300;
/// Default Send API pace per Page (Messenger allows about 300 calls per second).
pub const DEFAULT_SEND_RATE_PER_SECOND: u32 = 250;
/// Send API pace per Page under `--demo` unless set: slow enough that a notification to the
/// demo's waiting subscribers can be watched (and cancelled) on the topics page.
pub const DEMO_SEND_RATE_PER_SECOND: u32 = 40;
/// Default time a processed event's dedup record is kept (a redelivery inside it is a duplicate).
pub const DEFAULT_DEDUP_RETENTION: &str = "3d";
/// Default time finished messages and used-up tokens are kept.
pub const DEFAULT_HISTORY_RETENTION: &str = "30d";
/// Page id used by `--demo` when no Page is configured.
pub const DEMO_PAGE_ID: &str = "100000000000001";
/// Page access token used by `--demo` (the fake Graph API accepts any token).
pub const DEMO_PAGE_ACCESS_TOKEN: &str = "demo-page-access-token";
/// App secret used by `--demo` to sign webhooks.
pub const DEMO_APP_SECRET: &str = "demo-app-secret";
/// Webhook verify token used by `--demo`.
pub const DEMO_VERIFY_TOKEN: &str = "demo-verify-token";
/// Admin bearer token used by `--demo`.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

/// A Page botflow answers for, with the token the Send API needs for it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageConfig {
    /// The Page id (the `recipient.id` of inbound events).
    pub id: String,
    /// The Page access token used on the Send API.
    pub access_token: String,
}

impl fmt::Debug for PageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageConfig")
            .field("id", &self.id)
            .field("access_token", &"<redacted>")
            .finish()
    }
}

/// Everything `botflow serve` needs to run; secrets are redacted from `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory of the sled database (unused when `database_url` is set).
    pub data_dir: PathBuf,
    /// A `postgres://` URL selecting the PostgreSQL store instead of the embedded sled one
    /// (`BOTFLOW_DATABASE_URL`, file key `database_url`); `None` keeps sled.
    pub database_url: Option<String>,
    /// A PEM file of CA certificates trusted for the database server's TLS certificate besides
    /// the webpki roots (`BOTFLOW_DATABASE_CA_FILE`, file key `database_ca_file`); checked at
    /// load when `database_url` is set, unused otherwise.
    pub database_ca_file: Option<PathBuf>,
    /// This node's id among several nodes sharing the PostgreSQL database (`BOTFLOW_NODE_ID`,
    /// file key `node_id`); `None`: a random UUID per start. Give each node a stable id: a
    /// node restarted with its id takes its shard leases back at once.
    pub node_id: Option<String>,
    /// How long a shard lease lasts without renewal, in milliseconds
    /// (`BOTFLOW_SHARD_LEASE_MS`, file key `shard_lease_ms`; default 10,000): the failover time
    /// after a node dies is about this long. PostgreSQL only.
    pub shard_lease_ms: u64,
    /// Base URL of the Graph API, version included (e.g. `https://graph.facebook.com/v23.0`);
    /// without a trailing `/vN.M` segment the messenger crate's pinned version is used.
    pub graph_api_url: String,
    /// The Pages served; at least one unless in demo mode.
    pub pages: Vec<PageConfig>,
    /// The Meta app secret that signs webhook bodies.
    pub app_secret: String,
    /// The token Meta echoes in the webhook verification handshake.
    pub verify_token: String,
    /// The bearer token required on `/api`.
    pub admin_token: String,
    /// A folder whose flows (`*.json`) are published at start-up.
    pub flows_dir: Option<PathBuf>,
    /// Largest accepted request body in bytes.
    pub body_limit_bytes: usize,
    /// Longest an admin API request may take before it is answered 503 (milliseconds).
    pub admin_timeout_ms: u64,
    /// Send API calls per second per Page the dispatcher allows itself.
    pub send_rate_per_second: u32,
    /// How long a processed event's dedup record is kept (default 3 days).
    pub dedup_retention: FlowDuration,
    /// How long finished messages and used-up tokens are kept (default 30 days).
    pub history_retention: FlowDuration,
    /// Whether `--demo` defaults were applied.
    pub demo: bool,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("database_ca_file", &self.database_ca_file)
            .field("node_id", &self.node_id)
            .field("shard_lease_ms", &self.shard_lease_ms)
            .field("graph_api_url", &self.graph_api_url)
            .field("pages", &self.pages)
            .field("app_secret", &"<redacted>")
            .field("verify_token", &"<redacted>")
            .field("admin_token", &"<redacted>")
            .field("flows_dir", &self.flows_dir)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("admin_timeout_ms", &self.admin_timeout_ms)
            .field("send_rate_per_second", &self.send_rate_per_second)
            .field("dedup_retention", &self.dedup_retention)
            .field("history_retention", &self.history_retention)
            .field("demo", &self.demo)
            .finish()
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid config file {path}: {message}")]
    ParseFile {
        /// The file (or `<text>` when parsed from a string).
        path: PathBuf,
        /// What the TOML parser reported.
        message: String,
    },
    /// Required settings are absent from both the environment and the file (all of them named).
    #[error("{0}")]
    Missing(MissingSettings),
    /// A setting has a value that cannot be used.
    #[error("invalid value for {setting}: {message}")]
    Invalid {
        /// The environment variable or file key.
        setting: &'static str,
        /// Why the value is wrong.
        message: String,
    },
}

/// A required setting: the environment variable and the config file key that provide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingSetting {
    /// The environment variable that provides it.
    pub env_var: &'static str,
    /// The key in the TOML file that provides it.
    pub file_key: &'static str,
}

impl fmt::Display for MissingSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (or `{}` in the config file)",
            self.env_var, self.file_key
        )
    }
}

/// Every required setting found missing in one load, so one start-up names them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSettings(pub Vec<MissingSetting>);

impl fmt::Display for MissingSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "missing required setting {one}"),
            many => {
                f.write_str("missing required settings: ")?;
                for (index, setting) in many.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{setting}")?;
                }
                Ok(())
            }
        }
    }
}

const PAGE_ID: MissingSetting = MissingSetting {
    env_var: "BOTFLOW_PAGE_ID",
    file_key: "[[pages]] id",
};
const PAGE_ACCESS_TOKEN: MissingSetting = MissingSetting {
    env_var: "BOTFLOW_PAGE_ACCESS_TOKEN",
    file_key: "[[pages]] access_token",
};

/// The TOML file as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_ca_file: Option<PathBuf>,
    node_id: Option<String>,
    shard_lease_ms: Option<u64>,
    graph_api_url: Option<String>,
    app_secret: Option<String>,
    verify_token: Option<String>,
    admin_token: Option<String>,
    flows_dir: Option<PathBuf>,
    body_limit_bytes: Option<usize>,
    admin_timeout_ms: Option<u64>,
    send_rate_per_second: Option<u32>,
    dedup_retention: Option<String>,
    history_retention: Option<String>,
    #[serde(default)]
    pages: Vec<PageConfig>,
}

impl ServerConfig {
    /// Loads the configuration from an optional TOML file and the process environment.
    pub fn load(file: Option<&Path>, demo: bool) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.to_path_buf(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        Self::from_sources(
            text.as_deref()
                .map(|t| (file.unwrap_or(Path::new("<text>")), t)),
            |name| std::env::var(name).ok(),
            demo,
        )
    }

    /// Builds the configuration from file text (with its path, for messages) and an environment
    /// lookup; the environment wins over the file. Pure, so tests need not touch the process env.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl Fn(&str) -> Option<String>,
        demo: bool,
    ) -> Result<Self, ConfigError> {
        let file_config = match file {
            Some((path, text)) => {
                toml::from_str::<FileConfig>(text).map_err(|err| ConfigError::ParseFile {
                    path: path.to_path_buf(),
                    message: err.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        // An empty environment variable counts as unset, as shells make them easily.
        let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());

        let listen_text = env("BOTFLOW_LISTEN")
            .or(file_config.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .parse::<SocketAddr>()
            .map_err(|err| ConfigError::Invalid {
                setting: "BOTFLOW_LISTEN",
                message: format!("{listen_text:?} is not an address like 127.0.0.1:8080 ({err})"),
            })?;
        let data_dir = env("BOTFLOW_DATA_DIR")
            .map(PathBuf::from)
            .or(file_config.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = database_url(env("BOTFLOW_DATABASE_URL").or(file_config.database_url))?;
        let database_ca_file = database_ca_file(
            env("BOTFLOW_DATABASE_CA_FILE")
                .map(PathBuf::from)
                .or(file_config.database_ca_file),
            database_url.is_some(),
        )?;
        let node_id = env("BOTFLOW_NODE_ID")
            .or(file_config.node_id)
            .map(|id| id.trim().to_owned());
        if let Some(id) = &node_id {
            if id.len() > 200 || id.chars().any(char::is_control) {
                return Err(ConfigError::Invalid {
                    setting: "BOTFLOW_NODE_ID",
                    message: format!(
                        "{id:?} must be at most 200 characters without control characters"
                    ),
                });
            }
        }
        let shard_lease_ms = match env("BOTFLOW_SHARD_LEASE_MS") {
            Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
                setting: "BOTFLOW_SHARD_LEASE_MS",
                message: format!("{text:?} is not a number of milliseconds"),
            })?,
            None => file_config.shard_lease_ms.unwrap_or(DEFAULT_SHARD_LEASE_MS),
        };
        if shard_lease_ms < MIN_SHARD_LEASE_MS {
            return Err(ConfigError::Invalid {
                setting: "BOTFLOW_SHARD_LEASE_MS",
                message: format!(
                    "{shard_lease_ms} is too short: at least {MIN_SHARD_LEASE_MS} ms (renewed every third of it)"
                ),
            });
        }
        let graph_api_url = env("BOTFLOW_GRAPH_API_URL")
            .or(file_config.graph_api_url)
            .unwrap_or_else(|| DEFAULT_GRAPH_API_URL.to_owned());
        if !(graph_api_url.starts_with("http://") || graph_api_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                setting: "BOTFLOW_GRAPH_API_URL",
                message: format!("{graph_api_url:?} is not an http(s) URL"),
            });
        }
        let flows_dir = env("BOTFLOW_FLOWS_DIR")
            .map(PathBuf::from)
            .or(file_config.flows_dir);
        let body_limit_bytes = match env("BOTFLOW_BODY_LIMIT_BYTES") {
            Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
                setting: "BOTFLOW_BODY_LIMIT_BYTES",
                message: format!("{text:?} is not a number of bytes"),
            })?,
            None => file_config
                .body_limit_bytes
                .unwrap_or(DEFAULT_BODY_LIMIT_BYTES),
        };
        if body_limit_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "BOTFLOW_BODY_LIMIT_BYTES",
                message: "must be at least 1".to_owned(),
            });
        }

        let admin_timeout_ms = match env("BOTFLOW_ADMIN_TIMEOUT_MS") {
            Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
                setting: "BOTFLOW_ADMIN_TIMEOUT_MS",
                message: format!("{text:?} is not a number of milliseconds"),
            })?,
            None => file_config
                .admin_timeout_ms
                .unwrap_or(DEFAULT_ADMIN_TIMEOUT_MS),
        };
        if admin_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                setting: "BOTFLOW_ADMIN_TIMEOUT_MS",
                message: "must be at least 1".to_owned(),
            });
        }

        let send_rate_per_second = match env("BOTFLOW_SEND_RATE_PER_SECOND") {
            Some(text) => text.trim().parse().map_err(|_| ConfigError::Invalid {
                setting: "BOTFLOW_SEND_RATE_PER_SECOND",
                message: format!("{text:?} is not a whole number of calls per second"),
            })?,
            None => file_config.send_rate_per_second.unwrap_or(match demo {
                true => DEMO_SEND_RATE_PER_SECOND,
                false => DEFAULT_SEND_RATE_PER_SECOND,
            }),
        };
        if send_rate_per_second == 0 {
            return Err(ConfigError::Invalid {
                setting: "BOTFLOW_SEND_RATE_PER_SECOND",
                message: "must be at least 1".to_owned(),
            });
        }

        let dedup_retention = retention(
            env("BOTFLOW_DEDUP_RETENTION").or(file_config.dedup_retention),
            "BOTFLOW_DEDUP_RETENTION (file key `dedup_retention`)",
            DEFAULT_DEDUP_RETENTION,
        )?;
        let history_retention = retention(
            env("BOTFLOW_HISTORY_RETENTION").or(file_config.history_retention),
            "BOTFLOW_HISTORY_RETENTION (file key `history_retention`)",
            DEFAULT_HISTORY_RETENTION,
        )?;

        let mut missing = Vec::new();
        let pages = merge_env_page(file_config.pages, &env, &mut missing)?;
        let pages = match (pages.is_empty(), demo) {
            (true, true) => vec![PageConfig {
                id: DEMO_PAGE_ID.to_owned(),
                access_token: DEMO_PAGE_ACCESS_TOKEN.to_owned(),
            }],
            (true, false) => {
                if missing.is_empty() {
                    missing.extend([PAGE_ID, PAGE_ACCESS_TOKEN]);
                }
                pages
            }
            (false, _) => pages,
        };
        for (index, page) in pages.iter().enumerate() {
            if pages[..index].iter().any(|other| other.id == page.id) {
                return Err(ConfigError::Invalid {
                    setting: "pages",
                    message: format!("Page {} is listed twice", page.id),
                });
            }
        }

        let mut required = |value: Option<String>,
                            env_var: &'static str,
                            file_key: &'static str,
                            demo_value: &str| {
            match value {
                Some(value) => value,
                None if demo => demo_value.to_owned(),
                None => {
                    missing.push(MissingSetting { env_var, file_key });
                    String::new()
                }
            }
        };
        let app_secret = required(
            env("BOTFLOW_APP_SECRET").or(file_config.app_secret),
            "BOTFLOW_APP_SECRET",
            "app_secret",
            DEMO_APP_SECRET,
        );
        let verify_token = required(
            env("BOTFLOW_VERIFY_TOKEN").or(file_config.verify_token),
            "BOTFLOW_VERIFY_TOKEN",
            "verify_token",
            DEMO_VERIFY_TOKEN,
        );
        let admin_token = required(
            env("BOTFLOW_ADMIN_TOKEN").or(file_config.admin_token),
            "BOTFLOW_ADMIN_TOKEN",
            "admin_token",
            DEMO_ADMIN_TOKEN,
        );
        if !missing.is_empty() {
            return Err(ConfigError::Missing(MissingSettings(missing)));
        }

        Ok(Self {
            listen,
            data_dir,
            database_url,
            database_ca_file,
            node_id,
            shard_lease_ms,
            graph_api_url,
            pages,
            app_secret,
            verify_token,
            admin_token,
            flows_dir,
            body_limit_bytes,
            admin_timeout_ms,
            send_rate_per_second,
            dedup_retention,
            history_retention,
            demo,
        })
    }

    /// The database settings alone (URL and CA file), from the same file and environment as
    /// [`ServerConfig::load`] (for `botflow migrate`, which needs no secrets); `None` when the
    /// embedded store is used.
    pub fn load_database(file: Option<&Path>) -> Result<Option<PgOptions>, ConfigError> {
        let from_file = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.to_path_buf(),
                        source,
                    })?;
                toml::from_str::<FileConfig>(&text).map_err(|err| ConfigError::ParseFile {
                    path: path.to_path_buf(),
                    message: err.message().to_owned(),
                })?
            }
            None => FileConfig::default(),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(url) = database_url(env("BOTFLOW_DATABASE_URL").or(from_file.database_url))?
        else {
            return Ok(None);
        };
        let ca_file = database_ca_file(
            env("BOTFLOW_DATABASE_CA_FILE")
                .map(PathBuf::from)
                .or(from_file.database_ca_file),
            true,
        )?;
        Ok(Some(PgOptions {
            ca_file,
            ..PgOptions::new(&url)
        }))
    }

    /// How to reach the PostgreSQL database (`None`: the embedded store): the URL, the CA file,
    /// this node's id and its lease TTL.
    pub fn database_options(&self) -> Option<PgOptions> {
        self.database_url.as_ref().map(|url| PgOptions {
            ca_file: self.database_ca_file.clone(),
            node_id: self.node_id.clone(),
            lease_ttl: std::time::Duration::from_millis(self.shard_lease_ms),
            ..PgOptions::new(url)
        })
    }

    /// The retention sweeper's settings: the two windows, swept every tenth of the shorter
    /// one (at least every second, at most every minute).
    pub fn retention_settings(&self) -> botflow_runtime::RetentionSettings {
        let policy = botflow_storage::RetentionPolicy {
            dedup_ms: self.dedup_retention.as_millis(),
            history_ms: self.history_retention.as_millis(),
        };
        let shorter = policy.dedup_ms.min(policy.history_ms);
        let interval_ms = (shorter / 10).clamp(1_000, 60_000);
        botflow_runtime::RetentionSettings {
            policy,
            interval: std::time::Duration::from_millis(interval_ms),
            ..botflow_runtime::RetentionSettings::default()
        }
    }

    /// The Graph API base URL and API version for the Send API client: `http://h/v23.0` gives
    /// (`http://h`, `v23.0`); a URL without a version segment gets the pinned default version.
    pub fn graph_base_and_version(&self) -> (String, String) {
        let url = self.graph_api_url.trim_end_matches('/');
        if let Some((base, last)) = url.rsplit_once('/') {
            let is_version = last.strip_prefix('v').is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
            if is_version && base.contains("://") && !base.ends_with(':') && !base.ends_with('/') {
                return (base.to_owned(), last.to_owned());
            }
        }
        (
            url.to_owned(),
            botflow_messenger::client::DEFAULT_API_VERSION.to_owned(),
        )
    }

    /// The configuration of one Page, if botflow serves it.
    pub fn page(&self, id: &str) -> Option<&PageConfig> {
        self.pages.iter().find(|page| page.id == id)
    }
}

/// Reads a retention window (`90s`, `15m`, `25h`, `3d`; more than zero, at most 400 days).
fn retention(
    value: Option<String>,
    setting: &'static str,
    default: &str,
) -> Result<FlowDuration, ConfigError> {
    let text = value.unwrap_or_else(|| default.to_owned());
    let duration: FlowDuration = text.trim().parse().map_err(|_| ConfigError::Invalid {
        setting,
        message: format!(
            "{text:?} is not a duration like \"90s\", \"15m\", \"25h\" or \"3d\" (at most 400 days)"
        ),
    })?;
    if duration.as_secs() == 0 {
        return Err(ConfigError::Invalid {
            setting,
            message: "must be longer than zero (records are kept at least this long)".to_owned(),
        });
    }
    Ok(duration)
}

/// Checks the CA file of the database's TLS when a database is used (`used`): a readable PEM
/// file of CA certificates; the message names the file and what is wrong with it.
fn database_ca_file(value: Option<PathBuf>, used: bool) -> Result<Option<PathBuf>, ConfigError> {
    match value {
        Some(path) if used => match botflow_storage::check_database_ca_file(&path) {
            Ok(_) => Ok(Some(path)),
            Err(message) => Err(ConfigError::Invalid {
                setting: "BOTFLOW_DATABASE_CA_FILE (file key `database_ca_file`)",
                message,
            }),
        },
        other => Ok(other),
    }
}

/// Checks a database URL: only `postgres://` (or `postgresql://`) selects a database.
fn database_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        None => Ok(None),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Some(url))
        }
        Some(url) => Err(ConfigError::Invalid {
            setting: "BOTFLOW_DATABASE_URL",
            message: format!(
                "{:?} is not a postgres:// URL (like postgres://botflow:secret@db:5432/botflow); \
                 leave it unset to use the embedded database in data_dir",
                url.split('@').next_back().unwrap_or_default()
            ),
        }),
    }
}

/// Adds the Page given by `BOTFLOW_PAGE_ID`/`BOTFLOW_PAGE_ACCESS_TOKEN` to the file's Pages; when
/// the file lists the same Page, the environment's token replaces the file's.
fn merge_env_page(
    mut pages: Vec<PageConfig>,
    env: &impl Fn(&str) -> Option<String>,
    missing: &mut Vec<MissingSetting>,
) -> Result<Vec<PageConfig>, ConfigError> {
    match (env("BOTFLOW_PAGE_ID"), env("BOTFLOW_PAGE_ACCESS_TOKEN")) {
        (None, None) => {}
        (Some(id), Some(access_token)) => match pages.iter_mut().find(|page| page.id == id) {
            Some(page) => page.access_token = access_token,
            None => pages.push(PageConfig { id, access_token }),
        },
        (Some(id), None) => {
            if !pages.iter().any(|page| page.id == id) {
                missing.push(PAGE_ACCESS_TOKEN);
            }
        }
        (None, Some(_)) => missing.push(PAGE_ID),
    }
    for page in &pages {
        if page.id.trim().is_empty() || page.access_token.trim().is_empty() {
            return Err(ConfigError::Invalid {
                setting: "pages",
                message: "every Page needs a non-empty id and access_token".to_owned(),
            });
        }
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(
        file: Option<&str>,
        env: &[(&str, &str)],
        demo: bool,
    ) -> Result<ServerConfig, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ServerConfig::from_sources(
            file.map(|text| (Path::new("botflow.toml"), text)),
            |name| env.get(name).cloned(),
            demo,
        )
    }

    const FULL_ENV: [(&str, &str); 5] = [
        ("BOTFLOW_PAGE_ID", "p1"),
        ("BOTFLOW_PAGE_ACCESS_TOKEN", "t1"),
        ("BOTFLOW_APP_SECRET", "secret"),
        ("BOTFLOW_VERIFY_TOKEN", "verify"),
        ("BOTFLOW_ADMIN_TOKEN", "admin"),
    ];

    #[test]
    fn env_only_gives_defaults_for_optional_settings() {
        let config = load(None, &FULL_ENV, false).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.graph_api_url, DEFAULT_GRAPH_API_URL);
        assert_eq!(config.body_limit_bytes, 1024 * 1024);
        assert_eq!(config.send_rate_per_second, 250);
        assert_eq!(config.flows_dir, None);
        assert_eq!(config.pages.len(), 1);
        assert_eq!(config.pages[0].id, "p1");
        assert_eq!(config.pages[0].access_token, "t1");
        assert_eq!(config.app_secret, "secret");
        assert_eq!(config.verify_token, "verify");
        assert_eq!(config.admin_token, "admin");
        assert!(!config.demo);
    }

    #[test]
    fn each_missing_required_setting_is_named() {
        for missing in [
            "BOTFLOW_APP_SECRET",
            "BOTFLOW_VERIFY_TOKEN",
            "BOTFLOW_ADMIN_TOKEN",
            "BOTFLOW_PAGE_ID",
            "BOTFLOW_PAGE_ACCESS_TOKEN",
        ] {
            let env: Vec<_> = FULL_ENV
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = load(None, &env, false).unwrap_err();
            assert!(
                err.to_string().contains(missing),
                "error for missing {missing} was: {err}"
            );
        }
    }

    #[test]
    fn every_missing_required_setting_is_named_at_once() {
        let err = load(None, &[], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required settings: BOTFLOW_PAGE_ID (or `[[pages]] id` in the config file), \
             BOTFLOW_PAGE_ACCESS_TOKEN (or `[[pages]] access_token` in the config file), \
             BOTFLOW_APP_SECRET (or `app_secret` in the config file), \
             BOTFLOW_VERIFY_TOKEN (or `verify_token` in the config file), \
             BOTFLOW_ADMIN_TOKEN (or `admin_token` in the config file)"
        );
        let one_missing: Vec<_> = FULL_ENV
            .iter()
            .copied()
            .filter(|(k, _)| *k != "BOTFLOW_VERIFY_TOKEN")
            .collect();
        assert_eq!(
            load(None, &one_missing, false).unwrap_err().to_string(),
            "missing required setting BOTFLOW_VERIFY_TOKEN (or `verify_token` in the config file)"
        );
    }

    #[test]
    fn node_id_and_shard_lease_come_from_the_file_or_the_environment_and_are_checked() {
        let defaults = load(None, &FULL_ENV, false).unwrap();
        assert_eq!(defaults.node_id, None);
        assert_eq!(defaults.shard_lease_ms, DEFAULT_SHARD_LEASE_MS);
        let file = "node_id = \"a\"\nshard_lease_ms = 2000";
        let from_file = load(Some(file), &FULL_ENV, false).unwrap();
        assert_eq!(
            (from_file.node_id.as_deref(), from_file.shard_lease_ms),
            (Some("a"), 2000)
        );
        let mut env = FULL_ENV.to_vec();
        env.extend([("BOTFLOW_NODE_ID", "b"), ("BOTFLOW_SHARD_LEASE_MS", "3000")]);
        let from_env = load(Some(file), &env, false).unwrap();
        assert_eq!(
            (from_env.node_id.as_deref(), from_env.shard_lease_ms),
            (Some("b"), 3000)
        );
        for (value, expected) in [("soon", "not a number"), ("100", "too short")] {
            let mut env = FULL_ENV.to_vec();
            env.push(("BOTFLOW_SHARD_LEASE_MS", value));
            let err = load(None, &env, false).unwrap_err().to_string();
            assert!(
                err.contains("BOTFLOW_SHARD_LEASE_MS") && err.contains(expected),
                "{err}"
            );
        }
    }

    #[test]
    fn a_database_url_selects_postgres_from_the_file_or_the_environment() {
        assert_eq!(load(None, &FULL_ENV, false).unwrap().database_url, None);
        let file = r#"database_url = "postgres://botflow:file-secret@db:5432/botflow""#;
        let from_file = load(Some(file), &FULL_ENV, false).unwrap();
        assert_eq!(
            from_file.database_url.as_deref(),
            Some("postgres://botflow:file-secret@db:5432/botflow")
        );
        assert!(
            !format!("{from_file:?}").contains("file-secret"),
            "the URL's password stays out of Debug"
        );
        let mut env = FULL_ENV.to_vec();
        env.push(("BOTFLOW_DATABASE_URL", "postgresql://botflow@other/botflow"));
        let from_env = load(Some(file), &env, false).unwrap();
        assert_eq!(
            from_env.database_url.as_deref(),
            Some("postgresql://botflow@other/botflow")
        );
        env.pop();
        env.push(("BOTFLOW_DATABASE_URL", "mysql://root:hunter2@db/botflow"));
        let err = load(None, &env, false).unwrap_err().to_string();
        assert!(
            err.contains("BOTFLOW_DATABASE_URL") && err.contains("postgres://"),
            "{err}"
        );
        assert!(
            !err.contains("hunter2"),
            "the password stays out of the message: {err}"
        );
    }

    #[test]
    fn the_database_ca_file_comes_from_the_file_or_the_environment_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(
                &path,
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            )
            .unwrap();
            path
        };
        let broken = ca("broken.pem");
        let missing = dir.path().join("missing.pem");
        let mut env = FULL_ENV.to_vec();
        env.push(("BOTFLOW_DATABASE_URL", "postgres://botflow@db/botflow"));
        // unset: only the webpki roots
        let config = load(None, &env, false).unwrap();
        assert_eq!(config.database_ca_file, None);
        assert_eq!(config.database_options().unwrap().ca_file, None);
        // from the file, and the environment wins; each is read and checked
        let file = format!("database_ca_file = {:?}", missing.display().to_string());
        let err = load(Some(&file), &env, false).unwrap_err().to_string();
        assert!(
            err.contains("BOTFLOW_DATABASE_CA_FILE")
                && err.contains("database_ca_file")
                && err.contains(&missing.display().to_string())
                && err.contains("cannot read it"),
            "{err}"
        );
        let broken_text = broken.display().to_string();
        env.push(("BOTFLOW_DATABASE_CA_FILE", &broken_text));
        let err = load(Some(&file), &env, false).unwrap_err().to_string();
        assert!(
            err.contains(&broken_text) && err.contains("cannot be used as a CA certificate"),
            "the environment's file is the one read: {err}"
        );
        // a good one: a CA certificate in PEM (with text around it, as providers ship them)
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, format!("Test CA\n{TEST_CA_PEM}")).unwrap();
        env.pop();
        let good_text = good.display().to_string();
        env.push(("BOTFLOW_DATABASE_CA_FILE", &good_text));
        let config = load(Some(&file), &env, false).unwrap();
        assert_eq!(config.database_ca_file.as_deref(), Some(good.as_path()));
        let options = config.database_options().unwrap();
        assert_eq!(options.ca_file.as_deref(), Some(good.as_path()));
        assert_eq!(options.url, "postgres://botflow@db/botflow");
        // without a database it is not used, so not read
        let config = load(Some(&file), &FULL_ENV, false).unwrap();
        assert_eq!(config.database_ca_file, Some(missing.clone()));
        assert!(config.database_options().is_none());
    }

    /// A self-signed CA certificate (P-256, valid until 2126) for the CA file checks.
    const TEST_CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBmTCCAT+gAwIBAgIUaTChpKhP5D1K9BaivpWozA1RdcowCgYIKoZIzj0EAwIw\n\
ITEfMB0GA1UEAwwWYm90ZmxvdyBjb25maWcgdGVzdCBDQTAgFw0yNjEyMDEwODI3\n\
NTZaGA8yMTI2MTEwNzA4Mjc1NlowITEfMB0GA1UEAwwWYm90ZmxvdyBjb25maWcg\n\
dGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABEPxGWgaL8Ia6dW+jHY6\n\
oqY+uvoESfikTsnB2LWj4wHEbDcdR6lngBPjw2YxHfyaX/YWwljtzFOgbm8+yazw\n\
ojyjUzBRMB0GA1UdDgQWBBRDbXvRtJjVGvy1YtcC6R1xlC9CHTAfBgNVHSMEGDAW\n\
gBRDbXvRtJjVGvy1YtcC6R1xlC9CHTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49\n\
BAMCA0gAMEUCIQDzfzitzV+6jTDqmRNkEDR/zU/cPvl6DufG0WEqsGZiSwIgf2je\n\
FV5+e4onUjSYWvspPZNn3RhgNnNTwfiCPLQ83qk=\n\
-----END CERTIFICATE-----\n\
";

    #[test]
    fn demo_requires_nothing() {
        let config = load(None, &[], true).unwrap();
        assert!(config.demo);
        assert_eq!(config.pages[0].id, DEMO_PAGE_ID);
        assert_eq!(config.app_secret, DEMO_APP_SECRET);
        assert_eq!(config.verify_token, DEMO_VERIFY_TOKEN);
        assert_eq!(config.admin_token, DEMO_ADMIN_TOKEN);
    }

    #[test]
    fn env_wins_over_file_and_file_wins_over_defaults() {
        let file = r#"
            listen = "127.0.0.1:9000"
            data_dir = "/var/lib/botflow"
            graph_api_url = "http://127.0.0.1:1234/v21.0"
            app_secret = "file-secret"
            verify_token = "file-verify"
            admin_token = "file-admin"
            flows_dir = "flows"
            body_limit_bytes = 2048
            send_rate_per_second = 100

            [[pages]]
            id = "p1"
            access_token = "file-t1"

            [[pages]]
            id = "p2"
            access_token = "file-t2"
        "#;
        let config = load(Some(file), &[], false).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/botflow"));
        assert_eq!(config.graph_api_url, "http://127.0.0.1:1234/v21.0");
        assert_eq!(config.flows_dir, Some(PathBuf::from("flows")));
        assert_eq!(config.body_limit_bytes, 2048);
        assert_eq!(config.send_rate_per_second, 100);
        assert_eq!(config.pages.len(), 2);
        assert_eq!(config.app_secret, "file-secret");

        let config = load(
            Some(file),
            &[
                ("BOTFLOW_LISTEN", "0.0.0.0:8081"),
                ("BOTFLOW_APP_SECRET", "env-secret"),
                ("BOTFLOW_PAGE_ID", "p2"),
                ("BOTFLOW_PAGE_ACCESS_TOKEN", "env-t2"),
                ("BOTFLOW_BODY_LIMIT_BYTES", "4096"),
                ("BOTFLOW_SEND_RATE_PER_SECOND", "1000"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(config.app_secret, "env-secret");
        assert_eq!(config.verify_token, "file-verify");
        assert_eq!(config.body_limit_bytes, 4096);
        assert_eq!(config.send_rate_per_second, 1000);
        assert_eq!(config.pages.len(), 2, "same Page id replaces, not adds");
        assert_eq!(config.page("p2").unwrap().access_token, "env-t2");
        assert_eq!(config.page("p1").unwrap().access_token, "file-t1");
    }

    #[test]
    fn env_page_is_added_to_file_pages() {
        let file = "app_secret = \"s\"\nverify_token = \"v\"\nadmin_token = \"a\"\n[[pages]]\nid = \"p1\"\naccess_token = \"t1\"\n";
        let config = load(
            Some(file),
            &[
                ("BOTFLOW_PAGE_ID", "p9"),
                ("BOTFLOW_PAGE_ACCESS_TOKEN", "t9"),
            ],
            false,
        )
        .unwrap();
        let ids: Vec<_> = config.pages.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["p1", "p9"]);
    }

    #[test]
    fn bad_values_are_reported_with_their_setting() {
        let mut env = FULL_ENV.to_vec();
        env.push(("BOTFLOW_LISTEN", "localhost"));
        assert!(
            load(None, &env, false)
                .unwrap_err()
                .to_string()
                .contains("BOTFLOW_LISTEN")
        );

        let mut env = FULL_ENV.to_vec();
        env.push(("BOTFLOW_GRAPH_API_URL", "graph.facebook.com"));
        assert!(
            load(None, &env, false)
                .unwrap_err()
                .to_string()
                .contains("BOTFLOW_GRAPH_API_URL")
        );

        let mut env = FULL_ENV.to_vec();
        env.push(("BOTFLOW_SEND_RATE_PER_SECOND", "0"));
        assert!(
            load(None, &env, false)
                .unwrap_err()
                .to_string()
                .contains("BOTFLOW_SEND_RATE_PER_SECOND")
        );

        let err = load(Some("listen = 5\n"), &FULL_ENV, false).unwrap_err();
        assert!(matches!(err, ConfigError::ParseFile { .. }), "{err}");
        let err = load(Some("unknown_key = 1\n"), &FULL_ENV, false).unwrap_err();
        assert!(err.to_string().contains("unknown_key"), "{err}");
    }

    #[test]
    fn retention_windows_come_from_env_file_or_defaults_and_are_checked() {
        let config = load(None, &FULL_ENV, false).unwrap();
        assert_eq!(config.dedup_retention.to_string(), "3d");
        assert_eq!(config.history_retention.to_string(), "30d");
        let settings = config.retention_settings();
        assert_eq!(settings.policy.dedup_ms, 3 * 86_400_000);
        assert_eq!(settings.policy.history_ms, 30 * 86_400_000);
        assert_eq!(settings.interval, std::time::Duration::from_secs(60));

        let file = "dedup_retention = \"25h\"\nhistory_retention = \"15m\"\n";
        let config = load(Some(file), &FULL_ENV, false).unwrap();
        assert_eq!(config.dedup_retention.as_secs(), 25 * 3_600);
        assert_eq!(config.history_retention.as_secs(), 15 * 60);

        let mut env = FULL_ENV.to_vec();
        env.extend([
            ("BOTFLOW_DEDUP_RETENTION", "90s"),
            ("BOTFLOW_HISTORY_RETENTION", "2d"),
        ]);
        let config = load(Some(file), &env, false).unwrap();
        assert_eq!(config.dedup_retention.as_secs(), 90);
        assert_eq!(config.history_retention.as_secs(), 2 * 86_400);
        // Swept every tenth of the shorter window, at least every second.
        assert_eq!(
            config.retention_settings().interval,
            std::time::Duration::from_secs(9)
        );

        for (name, value) in [
            ("BOTFLOW_DEDUP_RETENTION", "3 days"),
            ("BOTFLOW_DEDUP_RETENTION", "0s"),
            ("BOTFLOW_HISTORY_RETENTION", "401d"),
            ("BOTFLOW_HISTORY_RETENTION", "-1d"),
        ] {
            let mut env = FULL_ENV.to_vec();
            env.push((name, value));
            let err = load(None, &env, false).unwrap_err().to_string();
            assert!(err.contains(name), "{value}: {err}");
        }
        let err = load(Some("history_retention = \"soon\"\n"), &FULL_ENV, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("history_retention") && err.contains("\"soon\""),
            "{err}"
        );
    }

    #[test]
    fn default_graph_url_is_the_messenger_crates_pinned_version() {
        assert_eq!(
            DEFAULT_GRAPH_API_URL,
            format!(
                "{}/{}",
                botflow_messenger::client::DEFAULT_GRAPH_BASE_URL,
                botflow_messenger::client::DEFAULT_API_VERSION
            )
        );
    }

    #[test]
    fn graph_url_splits_into_base_and_version() {
        let mut config = load(None, &FULL_ENV, false).unwrap();
        for (url, base, version) in [
            ("http://127.0.0.1:9/v21.0", "http://127.0.0.1:9", "v21.0"),
            ("http://127.0.0.1:9/v21.0/", "http://127.0.0.1:9", "v21.0"),
            (
                "http://127.0.0.1:9/graph/v3",
                "http://127.0.0.1:9/graph",
                "v3",
            ),
            ("http://127.0.0.1:9", "http://127.0.0.1:9", "v23.0"),
            (
                "http://127.0.0.1:9/graph",
                "http://127.0.0.1:9/graph",
                "v23.0",
            ),
        ] {
            config.graph_api_url = url.to_owned();
            assert_eq!(
                config.graph_base_and_version(),
                (base.to_owned(), version.to_owned()),
                "{url}"
            );
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = load(None, &FULL_ENV, false).unwrap();
        let text = format!("{config:?}");
        assert!(!text.contains("secret\""), "{text}");
        assert!(!text.contains("\"t1\""), "{text}");
        assert!(text.contains("<redacted>"));
    }
}
