//! Starting and stopping the whole server: store, start-up publishing, runtime and HTTP.

use crate::config::ServerConfig;
use crate::ingest::now_ms;
use crate::router::router;
use crate::startup::{self, PublishedFile, StartupError};
use crate::state::AppState;
use botflow_storage::{PageId, SledStore, StoreError, StoreOptions};
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
}

/// Opens the store in `config.data_dir`, registers the Pages, publishes `flows` (origin and JSON
/// text; unchanged flows make no new version), starts the runtime and serves HTTP on
/// `config.listen` (port 0 picks a free port; see [`RunningServer::local_addr`]).
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
    let (store, published) = tokio::task::spawn_blocking(move || {
        let store = SledStore::open(&data_dir, StoreOptions::default()).map_err(|source| {
            ServeError::OpenStore {
                path: data_dir.display().to_string(),
                source,
            }
        })?;
        let now = now_ms();
        startup::register_pages(&store, &pages, now)?;
        let published = startup::publish_flows(&store, &pages, &flows, now)?;
        Ok::<_, ServeError>((store, published))
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

    let listen = config.listen;
    let state = Arc::new(AppState::new(config, Arc::new(store)));
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
    /// the work it has started and flushes the store.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let _ = self.stop_http.send(());
        self.http
            .await
            .map_err(|err| ServeError::Task(err.to_string()))?
            .map_err(ServeError::Http)?;
        let store = self.state.store.clone();
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|err| ServeError::Task(err.to_string()))?
            .map_err(ServeError::Flush)?;
        tracing::info!("botflow stopped");
        Ok(())
    }
}
