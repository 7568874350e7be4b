//! The state every handler shares: configuration, metrics, the store and the runtime.

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::metrics::{MetricsText, ServerMetrics};
use crate::order::SubscriberLocks;
use botflow_runtime::Runtime;
use botflow_storage::{JournalEntry, PageId, Store, StoreResult};
use std::fmt;
use std::sync::Arc;

/// Shared state of the HTTP server, held in an `Arc` by the router.
pub struct AppState {
    /// The configuration the server was started with.
    pub config: ServerConfig,
    /// Counters owned by the HTTP layer (shared with the runtime's latency hook).
    pub metrics: Arc<ServerMetrics>,
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// The runtime that processes journaled events and sends messages.
    pub runtime: Arc<Runtime>,
    /// Keeps each subscriber's events in journal order on their way to the runtime.
    pub(crate) subscriber_locks: SubscriberLocks,
    /// The PostgreSQL store when one is used (for `/healthz` and the database metrics); `None`
    /// with the embedded sled store.
    pub database: Option<Arc<botflow_storage::PgStore>>,
    /// Set once the store reported a fatal error (a poisoned event log): the process must exit
    /// so that a restart recovers (see [`AppState::fatal_error`]).
    fatal: tokio::sync::watch::Sender<Option<String>>,
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
    /// State over a store and a runtime started on it; `metrics` should be the instance the
    /// runtime's latency hook feeds (see [`crate::app::latency_hook`]).
    pub fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
        runtime: Arc<Runtime>,
        metrics: Arc<ServerMetrics>,
    ) -> Self {
        Self {
            config,
            metrics,
            store,
            runtime,
            subscriber_locks: SubscriberLocks::default(),
            database: None,
            fatal: tokio::sync::watch::Sender::new(None),
        }
    }

    /// The state with the PostgreSQL store it runs on (see [`AppState::database`]).
    pub fn with_database(mut self, database: Option<Arc<botflow_storage::PgStore>>) -> Self {
        self.database = database;
        self
    }

    /// Records a fatal store error (the first one is kept) and logs it.
    pub(crate) fn report_fatal(&self, error: &botflow_storage::StoreError) {
        tracing::error!(%error, "the store refuses writes; botflow exits so that a restart recovers");
        self.fatal.send_if_modified(|fatal| {
            if fatal.is_none() {
                *fatal = Some(error.to_string());
                true
            } else {
                false
            }
        });
    }

    /// Waits until the store reports a fatal error (a poisoned event log), and returns it: the
    /// process must then exit, and a restart recovers from what is on disk.
    pub async fn fatal_error(&self) -> String {
        let mut fatal = self.fatal.subscribe();
        match fatal.wait_for(Option::is_some).await {
            Ok(error) => error.clone().unwrap_or_default(),
            // The sender lives in `self`, so it cannot be gone while this borrow lasts.
            Err(_) => String::new(),
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

    /// Tells the runtime that published flows changed (it caches active versions briefly).
    pub(crate) fn flows_changed(&self) {
        self.runtime.flows_changed();
    }

    /// Hands journaled events to the runtime, in journal order. When the runtime is shutting
    /// down the events stay in the journal and are resumed at the next start.
    pub(crate) async fn submit_to_runtime(&self, events: Vec<JournalEntry>) {
        if events.is_empty() {
            return;
        }
        let count = events.len();
        if let Err(err) = self.runtime.submit(events).await {
            tracing::warn!(%err, count, "events left in the journal for the next start");
        }
    }

    /// Appends the runtime's counters, gauges and the webhook-to-send histogram to the page.
    pub(crate) fn render_runtime_metrics(&self, text: &mut MetricsText) {
        let m = self.runtime.metrics();
        text.counter(
            "botflow_events_processed_total",
            "Journaled events processed (committed), including events no flow reacts to.",
            m.events_processed.get(),
        )
        .counter(
            "botflow_events_replayed_total",
            "Events found already processed when committing (replayed after a crash); no effect.",
            m.events_already_processed.get(),
        )
        .counter(
            "botflow_events_recovered_total",
            "Journaled events the journal follower found never handed to the runtime, and ran.",
            m.events_recovered.get(),
        )
        .counter(
            "botflow_events_failed_total",
            "Journaled events that could not be processed.",
            m.events_failed.get(),
        )
        .counter(
            "botflow_timers_fired_total",
            "Delay and reply-timeout timers fired.",
            m.timers_fired.get(),
        )
        .counter(
            "botflow_step_errors_total",
            "Flow runs stopped by an error (step budget exceeded, retired version, ...).",
            m.step_errors.get(),
        )
        .labelled_counter(
            "botflow_messages_total",
            "Outbound messages by outcome: sent, failed (permanently), refused by policy \
             (outside the 24-hour window), unconfirmed (token send possibly delivered), retried.",
            "outcome",
            &[
                ("sent", m.messages_sent.get()),
                ("failed", m.messages_failed.get()),
                ("refused", m.messages_refused.get()),
                ("unconfirmed", m.messages_unconfirmed.get()),
                ("retried", m.messages_retried.get()),
            ],
        )
        .counter(
            "botflow_tokens_stored_total",
            "OTN tokens stored from opt-ins.",
            m.tokens_stored.get(),
        )
        .labelled_counter(
            "botflow_profile_fetches_total",
            "Subscriber profile fetches from the User Profile API by outcome: ok, failed \
             (retried on a later event).",
            "outcome",
            &[
                ("ok", m.profiles_fetched.get()),
                ("failed", m.profile_fetches_failed.get()),
            ],
        )
        .gauge(
            "botflow_scheduler_queue_depth",
            "Events and timers waiting in the scheduler's per-subscriber queues.",
            m.queue_depth.get(),
        )
        .gauge(
            "botflow_sends_in_flight",
            "Send API requests in flight.",
            m.sends_in_flight.get(),
        )
        .histogram(
            "botflow_webhook_journal_seconds",
            "Time to journal a webhook delivery durably, the wait before its 200.",
            &self.metrics.journal_append.snapshot(),
        )
        .histogram(
            "botflow_webhook_to_send_seconds",
            "Time from a webhook's arrival to the Send API accepting a message it caused.",
            &self.metrics.webhook_to_send.snapshot(),
        );
    }
}
