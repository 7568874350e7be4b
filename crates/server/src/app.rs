//! Starting and stopping the whole server: store, start-up publishing, runtime and HTTP.

use crate::config::ServerConfig;
use crate::ingest::now_ms;
use crate::metrics::ServerMetrics;
use crate::router::router;
use crate::startup::{self, PublishedFile, StartupError};
use crate::state::AppState;
use botflow_messenger::{ClientConfig, SendClient};
use botflow_runtime::{
    LatencyHook, PageClients, RetentionSweeper, Runtime, RuntimeConfig, SystemClock,
};
use botflow_storage::{PageId, PgStore, SledStore, Store, StoreError, StoreOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened.
    #[error("cannot open the database in {path}: {source}")]
    OpenStore {
        /// The data directory.
        path: String,
        /// What the store reported.
        source: StoreError,
    },
    /// The PostgreSQL database could not be reached or migrated.
    #[error("cannot open the PostgreSQL database (BOTFLOW_DATABASE_URL): {source}")]
    OpenDatabase {
        /// What the store reported.
        source: StoreError,
    },
    /// Registering Pages or publishing the start-up flows failed.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server: {0}")]
    Http(std::io::Error),
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// A Send API client could not be built from the configuration.
    #[error("Send API client for Page {page}: {message}")]
    Client {
        /// The Page.
        page: String,
        /// What was wrong.
        message: String,
    },
    /// The runtime could not be started or stopped.
    #[error("runtime: {0}")]
    Runtime(String),
    /// The final flush of the store failed.
    #[error("final flush: {0}")]
    Flush(StoreError),
}

/// A running server; [`RunningServer::shutdown`] stops it gracefully.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    state: Arc<AppState>,
    published: Vec<PublishedFile>,
    stop_http: oneshot::Sender<()>,
    http: JoinHandle<std::io::Result<()>>,
    retention: RetentionSweeper,
}

/// One Send API client per configured Page, on the configured Graph API base URL and version.
pub fn page_clients(config: &ServerConfig) -> Result<PageClients, ServeError> {
    let (graph_base_url, api_version) = config.graph_base_and_version();
    let mut clients: Option<PageClients> = None;
    for page in &config.pages {
        let mut client_config = ClientConfig::new(page.access_token.clone());
        client_config.graph_base_url = graph_base_url.clone();
        client_config.api_version = api_version.clone();
        let client = SendClient::new(client_config).map_err(|err| ServeError::Client {
            page: page.id.clone(),
            message: err.to_string(),
        })?;
        let id = PageId::from(page.id.as_str());
        clients = Some(match clients {
            None => PageClients::single(client.clone()).with_page(id, client),
            Some(clients) => clients.with_page(id, client),
        });
    }
    clients.ok_or_else(|| ServeError::Client {
        page: String::new(),
        message: "no Page is configured".to_owned(),
    })
}

/// The runtime hook that feeds the server's webhook-to-send latency histogram.
pub fn latency_hook(metrics: &Arc<ServerMetrics>) -> LatencyHook {
    let metrics = Arc::clone(metrics);
    Arc::new(move |latency| metrics.webhook_to_send.observe(latency))
}

/// Starts the runtime on `store` with the configured clients and pace, feeding `metrics`.
pub async fn start_runtime(
    config: &ServerConfig,
    store: Arc<dyn Store>,
    metrics: &Arc<ServerMetrics>,
) -> Result<Runtime, ServeError> {
    let runtime_config = RuntimeConfig {
        page_rate_per_sec: config.send_rate_per_second,
        latency_hook: Some(latency_hook(metrics)),
        ..RuntimeConfig::default()
    };
    Runtime::start_with_clients(store, page_clients(config)?, runtime_config)
        .await
        .map_err(|err| ServeError::Runtime(err.to_string()))
}

/// Opens the store in `config.data_dir`, registers the Pages, publishes `flows` (origin and JSON
/// text; unchanged flows make no new version), starts the runtime (which resumes unprocessed
/// journal events and pending messages) and serves HTTP on `config.listen` (port 0 picks a free
/// port; see [`RunningServer::local_addr`]).
pub async fn start(
    config: ServerConfig,
    flows: Vec<(String, String)>,
) -> Result<RunningServer, ServeError> {
    let data_dir = config.data_dir.clone();
    let pages: Vec<PageId> = config
        .pages
        .iter()
        .map(|p| PageId::from(p.id.as_str()))
        .collect();
    let database = config.database_options();
    let (store, database, published) = tokio::task::spawn_blocking(move || {
        let (store, database): (Arc<dyn Store>, Option<Arc<PgStore>>) = match &database {
            Some(options) => {
                let pg = Arc::new(
                    PgStore::connect_with(options)
                        .map_err(|source| ServeError::OpenDatabase { source })?,
                );
                (pg.clone(), Some(pg))
            }
            None => {
                let sled =
                    SledStore::open(&data_dir, StoreOptions::default()).map_err(|source| {
                        ServeError::OpenStore {
                            path: data_dir.display().to_string(),
                            source,
                        }
                    })?;
                (Arc::new(sled), None)
            }
        };
        let now = now_ms();
        startup::register_pages(&*store, &pages, now)?;
        let published = startup::publish_flows(&*store, &pages, &flows, now)?;
        Ok::<_, ServeError>((store, database, published))
    })
    .await
    .map_err(|err| ServeError::Task(err.to_string()))??;
    for file in &published {
        tracing::info!(
            origin = %file.origin,
            page = %file.page,
            flow = %file.published.flow,
            version = file.published.version,
            unchanged = file.published.unchanged,
            "flow published at start-up"
        );
    }

    let metrics = Arc::new(ServerMetrics::default());
    let runtime = Arc::new(start_runtime(&config, store.clone(), &metrics).await?);
    let retention = RetentionSweeper::start(
        store.clone(),
        config.retention_settings(),
        Arc::new(SystemClock),
        Arc::clone(&metrics.retention),
    );
    let listen = config.listen;
    let state = Arc::new(AppState::new(config, store, runtime, metrics).with_database(database));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: listen,
        source,
    })?;
    let (stop_http, stopped) = oneshot::channel::<()>();
    let app = router(state.clone());
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%local_addr, "botflow listening");
    Ok(RunningServer {
        local_addr,
        state,
        published,
        stop_http,
        http,
        retention,
    })
}

impl RunningServer {
    /// The address the HTTP server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The shared state (store, configuration, metrics).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The flows published at start-up.
    pub fn published(&self) -> &[PublishedFile] {
        &self.published
    }

    /// Stops accepting connections, lets in-flight requests finish, then lets the runtime finish
    /// the work it has queued and the sends in flight, and flushes the store.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop_http.send(());
        self.http
            .await
            .map_err(|err| ServeError::Task(err.to_string()))?
            .map_err(ServeError::Http)?;
        self.state
            .runtime
            .shutdown()
            .await
            .map_err(|err| ServeError::Runtime(err.to_string()))?;
        self.retention
            .stop()
            .await
            .map_err(|err| ServeError::Runtime(err.to_string()))?;
        let store = self.state.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|err| ServeError::Task(err.to_string()))?
            .map_err(ServeError::Flush)?;
        if let Some(database) = self.state.database.clone() {
            // hand the shard leases to the other nodes now, not after their TTL
            tokio::task::spawn_blocking(move || database.leave())
                .await
                .map_err(|err| ServeError::Task(err.to_string()))?;
        }
        tracing::info!("botflow stopped");
        Ok(())
    }
}
