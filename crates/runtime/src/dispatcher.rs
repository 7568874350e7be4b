//! The dispatcher: sends queued messages through the Send API in per-subscriber order.
//!
//! It polls the store for due messages (only the head of each subscriber's queue is due, so
//! order is kept), enforces the 24-hour window for normal messages, paces each Page, sends with
//! the messenger client (which retries transient errors itself), reschedules what is still
//! retryable with capped exponential backoff, and records every outcome in the store — in
//! batches: a send frees its Send API slot as soon as the answer is in, and the outcomes of
//! concurrent sends are committed together (the `dispatch_outcomes` module).

use crate::clock::Clock;
use crate::dispatch_outcomes::OutcomeRecorder;
use crate::metrics::{LatencyHook, RuntimeMetrics};
use crate::outbound::{decode, with_recurring_token, with_token};
use crate::process::InteractionCache;
use crate::runtime::RuntimeError;
use crate::window::within_window;
use botflow_messenger::{LimitError, SendClient, SendError, SendRequest};
use botflow_storage::{
    NotificationId, OutboundKind, OutboundMessage, OutboxId, Outcome, PageId, Store, StoreError,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The reason recorded for a normal message refused by the 24-hour window.
pub const OUTSIDE_WINDOW_REASON: &str =
    "outside the 24-hour standard messaging window (no user interaction for more than 24 h)";

/// Send API clients per Page (each holds that Page's access token).
#[derive(Debug, Clone, Default)]
pub struct PageClients {
    default: Option<SendClient>,
    by_page: HashMap<PageId, SendClient>,
}

impl PageClients {
    /// One client for every Page.
    pub fn single(client: SendClient) -> Self {
        Self {
            default: Some(client),
            by_page: HashMap::new(),
        }
    }

    /// Adds (or replaces) the client of one Page.
    pub fn with_page(mut self, page: PageId, client: SendClient) -> Self {
        self.by_page.insert(page, client);
        self
    }

    /// The client for a Page: its own, else the default.
    pub fn for_page(&self, page: &PageId) -> Option<&SendClient> {
        self.by_page.get(page).or(self.default.as_ref())
    }
}

/// How the dispatcher sends.
#[derive(Debug, Clone)]
pub(crate) struct DispatchSettings {
    pub(crate) page_rate_per_sec: u32,
    pub(crate) max_in_flight: usize,
    pub(crate) max_attempts: u32,
    pub(crate) retry_base: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) poll: Duration,
}

/// The dispatcher's shared state.
pub(crate) struct Dispatcher {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clients: PageClients,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<RuntimeMetrics>,
    pub(crate) settings: DispatchSettings,
    pub(crate) latency_hook: Option<LatencyHook>,
    interactions: Arc<InteractionCache>,
    /// Messages being sent now, and those finished since the last due-list read.
    tracking: Mutex<Tracking>,
    /// Notifications cancelled in this process: their messages the dispatcher already holds skip
    /// pacing and are dropped when the store no longer has them.
    cancelled: Mutex<HashSet<NotificationId>>,
    /// Next free send slot per Page (pacing).
    next_slot: Mutex<HashMap<PageId, Instant>>,
    /// When the webhook behind a queued message arrived, for the latency hook.
    origins: Mutex<HashMap<OutboxId, u64>>,
    pub(crate) wake: Notify,
    /// Send API requests in flight (`max_in_flight`).
    permits: Arc<Semaphore>,
    /// Send tasks alive, from the send until its outcome is recorded (bounds what waits for
    /// the recorder; shutdown waits for all of them).
    alive: Arc<Semaphore>,
    recorder: OutcomeRecorder,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What the dispatcher has in hand. The store's due list shows a message until its outcome is
/// recorded, so a list read before a send finished may still hold it: `finished` (cleared just
/// before each read) catches exactly those.
#[derive(Debug, Default)]
struct Tracking {
    in_flight: HashSet<OutboxId>,
    finished: HashSet<OutboxId>,
}

/// How late after its send slot a task may still send (timer resolution and scheduling under
/// load); later, it takes a new slot.
const PACE_LATE: Duration = Duration::from_millis(50);

/// Most origins remembered for the latency hook (older ones are dropped, not leaked).
const MAX_ORIGINS: usize = 200_000;

/// Send tasks alive per Send API slot: sends whose outcome waits for the recorder.
const ALIVE_PER_SLOT: usize = 4;

impl Dispatcher {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clients: PageClients,
        clock: Arc<dyn Clock>,
        metrics: Arc<RuntimeMetrics>,
        settings: DispatchSettings,
        latency_hook: Option<LatencyHook>,
        interactions: Arc<InteractionCache>,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(settings.max_in_flight.max(1)));
        let alive = Arc::new(Semaphore::new(
            settings.max_in_flight.max(1).saturating_mul(ALIVE_PER_SLOT),
        ));
        let recorder = OutcomeRecorder::start(Arc::clone(&store));
        Self {
            store,
            clients,
            clock,
            metrics,
            settings,
            latency_hook,
            interactions,
            tracking: Mutex::new(Tracking::default()),
            cancelled: Mutex::new(HashSet::new()),
            next_slot: Mutex::new(HashMap::new()),
            origins: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            permits,
            alive,
            recorder,
        }
    }

    /// Remembers when the webhook behind these messages arrived, and wakes the loop.
    pub(crate) fn queued(&self, ids: &[OutboxId], received_ms: Option<u64>) {
        if let (Some(received), false) = (received_ms, ids.is_empty()) {
            if self.latency_hook.is_some() {
                let mut origins = self.origins.lock().unwrap_or_else(PoisonError::into_inner);
                if origins.len() > MAX_ORIGINS {
                    origins.clear();
                }
                for id in ids {
                    origins.insert(*id, received);
                }
            }
        }
        if !ids.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Notes a cancelled notification (before the store removes its messages).
    pub(crate) fn cancelled(&self, id: NotificationId) {
        self.cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id);
    }

    fn is_cancelled(&self, message: &OutboundMessage) -> bool {
        message.notification.is_some_and(|id| {
            self.cancelled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&id)
        })
    }

    /// Sends due messages until `stop` is notified; then waits for sends in flight.
    pub(crate) async fn run(self: Arc<Self>, stop: Arc<Notify>) {
        loop {
            tokio::select! {
                () = stop.notified() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.poll) => {}
            }
            let skip: HashSet<OutboxId> = {
                let mut tracking = self.tracking();
                tracking.finished.clear();
                tracking.in_flight.clone()
            };
            let now = self.clock.now_ms();
            // In-flight heads stay due until their outcome is recorded: the store passes over
            // them unread. Read as many fresh ones as send tasks may start (not only free Send
            // API slots): one read and one flush then cover more sends.
            let limit = self.alive.available_permits() + 16;
            let store = Arc::clone(&self.store);
            let read = move || store.due_outbound_skipping(now, limit, &|id| skip.contains(&id));
            let due = if self.store.calls_are_local() {
                read()
            } else {
                match tokio::task::spawn_blocking(read).await {
                    Ok(read) => read,
                    Err(_) => continue,
                }
            };
            let due = match due {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "cannot read the outbox");
                    continue;
                }
            };
            let fresh: Vec<OutboundMessage> = {
                let mut tracking = self.tracking();
                due.into_iter()
                    .filter(|m| {
                        !tracking.finished.contains(&m.id) && tracking.in_flight.insert(m.id)
                    })
                    .collect()
            };
            if fresh.is_empty() {
                continue;
            }
            // The scheduler commits without waiting for the disk. Everything just read was
            // committed before the read, so after this flush it is durable: no message is sent
            // before the commit that queued it (and spent its token) is on disk.
            let store = Arc::clone(&self.store);
            if let Err(error) = self.flush_or_log(store).await {
                tracing::error!(%error, "cannot flush before sending");
                let mut tracking = self.tracking();
                for m in &fresh {
                    tracking.in_flight.remove(&m.id);
                }
                continue;
            }
            for message in fresh {
                let Ok(alive) = Arc::clone(&self.alive).acquire_owned().await else {
                    return;
                };
                let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
                    return;
                };
                let this = Arc::clone(&self);
                tokio::spawn(async move {
                    this.metrics.sends_in_flight.add(1);
                    let id = message.id;
                    let recorded = match this.send_one(message, permit).await {
                        Ok(Some(outcome)) => this.recorder.record(outcome).await,
                        Ok(None) => Ok(()),
                        Err(error) => Err(error),
                    };
                    match recorded {
                        Err(RuntimeError::Store(error)) if crate::ownership::is_lost(&error) => {
                            tracing::info!(%error, outbox = %id, "send outcome not recorded: the Page's shard moved to another node");
                        }
                        Err(error) => {
                            tracing::error!(%error, outbox = %id, "cannot record a send outcome");
                        }
                        Ok(()) => {}
                    }
                    this.metrics.sends_in_flight.add(-1);
                    {
                        let mut tracking = this.tracking();
                        tracking.in_flight.remove(&id);
                        tracking.finished.insert(id);
                    }
                    drop(alive);
                    this.wake.notify_one();
                });
            }
        }
        // Graceful: let sends in flight finish and record their outcome.
        let all = self
            .settings
            .max_in_flight
            .max(1)
            .saturating_mul(ALIVE_PER_SLOT);
        let _ = self
            .alive
            .acquire_many(u32::try_from(all).unwrap_or(u32::MAX))
            .await;
    }

    async fn flush_or_log(&self, store: Arc<dyn Store>) -> Result<(), RuntimeError> {
        if let Some(durable) = store.flush_deferred() {
            return durable.wait().await.map_err(RuntimeError::Store);
        }
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|join| RuntimeError::Task(join.to_string()))?
            .map_err(RuntimeError::Store)
    }

    fn tracking(&self) -> std::sync::MutexGuard<'_, Tracking> {
        self.tracking.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the Page's next send slot (default 250 sends per second per Page). A task
    /// that wakes more than [`PACE_LATE`] (or one interval) after its slot (the process stalled)
    /// takes a new one: sends never bunch up after a stall, so a 1-second window holds at most
    /// the rate plus what fits in `PACE_LATE`.
    async fn pace(&self, page: &PageId) {
        let rate = self.settings.page_rate_per_sec.max(1);
        let interval = Duration::from_secs(1) / rate;
        loop {
            let (at, now) = {
                let mut slots = self
                    .next_slot
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let slot = slots.entry(page.clone()).or_insert(now);
                let at = (*slot).max(now);
                *slot = at + interval;
                (at, now)
            };
            if at <= now {
                // The slot is free now: no timer (a timer rounds up to the next millisecond
                // tick of Tokio's clock, and under load fires later still).
                return;
            }
            tokio::time::sleep_until(at).await;
            if Instant::now().saturating_duration_since(at) <= interval.max(PACE_LATE) {
                return;
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(|join| RuntimeError::Task(join.to_string()))?
            .map_err(RuntimeError::Store)
    }

    /// Sends one message (or decides not to) and returns the outcome to record; the Send API
    /// slot `permit` is released as soon as the answer is in.
    async fn send_one(
        &self,
        message: OutboundMessage,
        permit: OwnedSemaphorePermit,
    ) -> Result<Option<Outcome>, RuntimeError> {
        let id = message.id;
        let now = self.clock.now_ms();
        // Steps check what they render; this catches the rest (a notification text, a body
        // queued by an earlier version): what Messenger would refuse is never sent.
        let request = match ready_request(&message) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(outbox = %id, %error, "message failed before sending");
                self.metrics.messages_failed.inc();
                self.forget(id);
                return Ok(Some(Outcome::Failed {
                    id,
                    error,
                    at_ms: now,
                }));
            }
        };
        let request = match &message.kind {
            OutboundKind::Normal => {
                let cached = self.interactions.get(&message.page, &message.psid);
                let inside = within_window(cached, now) || {
                    let (page, psid) = (message.page.clone(), message.psid.clone());
                    let session = self.blocking(move |s| s.load_session(&page, &psid)).await?;
                    within_window(session.and_then(|s| s.last_interaction_ms), now)
                };
                if !inside {
                    self.metrics.messages_refused.inc();
                    self.forget(id);
                    return Ok(Some(Outcome::Refused {
                        id,
                        reason: OUTSIDE_WINDOW_REASON.to_owned(),
                        at_ms: now,
                    }));
                }
                request
            }
            // Nothing to mark before sending: a recurring send spends nothing, so a resend after
            // a crash costs at most a duplicate message.
            OutboundKind::RecurringToken { .. } => {
                if message.token.is_none() {
                    self.metrics.messages_failed.inc();
                    self.forget(id);
                    return Ok(Some(Outcome::Failed {
                        id,
                        error: "no recurring token recorded for a recurring send".to_owned(),
                        at_ms: now,
                    }));
                }
                request
            }
            OutboundKind::OtnToken { .. } => {
                if message.token.is_none() {
                    self.metrics.messages_failed.inc();
                    self.forget(id);
                    return Ok(Some(Outcome::Failed {
                        id,
                        error: "no OTN token recorded for a token send".to_owned(),
                        at_ms: now,
                    }));
                }
                request
            }
        };
        let Some(client) = self.clients.for_page(&message.page) else {
            // A configuration problem, not the message's: keep it (and its token) for later.
            let error = format!(
                "no Send API client (access token) for page {}",
                message.page
            );
            tracing::error!(outbox = %id, %error, "cannot send");
            let due_ms = now.saturating_add(duration_ms(self.settings.retry_max));
            return Ok(Some(Outcome::Retry { id, due_ms, error }));
        };
        // A cancelled notification's messages do not wait for a send slot.
        if !self.is_cancelled(&message) {
            self.pace(&message.page).await;
        }
        let token_kind = matches!(
            message.kind,
            OutboundKind::OtnToken { .. } | OutboundKind::RecurringToken { .. }
        );
        if token_kind && message.attempts == 0 {
            // Record that a send with this token started: after a crash mid-request, a "token
            // used" answer then means delivered-unconfirmed, not failed. The store makes a token
            // send's outcome durable before this returns. A message gone from the store (its
            // notification was cancelled) is not sent: the cancel gave its token back (a
            // recurring token its last send). Once recorded, a cancel leaves the message be: it
            // may reach Messenger, so it counts (and a recurring send keeps its period).
            let started = Outcome::Retry {
                id,
                due_ms: self.clock.now_ms(),
                error: "token send started".to_owned(),
            };
            match self.recorder.record(started).await {
                Ok(()) => {}
                Err(RuntimeError::Store(
                    StoreError::OutboundNotFound(_) | StoreError::OutboundNotPending { .. },
                )) => {
                    self.forget(id);
                    return Ok(None);
                }
                Err(error) => return Err(error),
            }
        }
        if !self
            .store
            .ownership()
            .may_send(message.page.as_str(), std::time::Instant::now())
        {
            // self-fence: this node's lease of the Page's shard may have ended (the new owner
            // sends it)
            tracing::info!(outbox = %id, page = %message.page, "not sending: the Page's shard is not ours (any more)");
            self.forget(id);
            return Ok(None);
        }
        let result = client.send(&request).await;
        drop(permit);
        let at = self.clock.now_ms();
        match result {
            Ok(ok) => {
                self.metrics.messages_sent.inc();
                if let Some(received) = self.forget(id) {
                    if let Some(hook) = &self.latency_hook {
                        hook(Duration::from_millis(at.saturating_sub(received)));
                    }
                }
                Ok(Some(Outcome::Sent {
                    id,
                    message_id: ok.message_id,
                    at_ms: at,
                }))
            }
            Err(error) => Ok(Some(self.failure_outcome(&message, error, at))),
        }
    }

    /// What a failed send means for the message: a retry, a permanent failure, or (for a token
    /// send that may have reached Messenger) delivered-unconfirmed.
    fn failure_outcome(&self, message: &OutboundMessage, error: SendError, at: u64) -> Outcome {
        let id = message.id;
        let token_send = matches!(message.kind, OutboundKind::OtnToken { .. });
        // Token sends (both kinds) record a start marker, which `attempts` counts.
        let marked = token_send || matches!(message.kind, OutboundKind::RecurringToken { .. });
        let text = format!("{} ({}): {error}", error.class(), error.attempts());
        // An earlier attempt of a token send may have reached Messenger (a timeout, or a crash
        // during the request): "token unusable" now most likely means it was delivered.
        let earlier_attempt = message.attempts > 0;
        let unconfirmed = token_send
            && (matches!(error, SendError::DeliveredUnconfirmed(_))
                || (matches!(error, SendError::TokenUnusable(_)) && earlier_attempt));
        if unconfirmed {
            tracing::warn!(outbox = %id, %text, "token send delivered, unconfirmed");
            self.metrics.messages_unconfirmed.inc();
            self.forget(id);
            return Outcome::DeliveredUnconfirmed { id, at_ms: at };
        }
        if matches!(error, SendError::Auth(_)) {
            // The Page's access token or permissions are broken: stop sending to it for a while
            // and alert, but do not fail the message (nor burn its token); it waits for a fix.
            tracing::error!(outbox = %id, page = %message.page, %text, "Send API refused the Page's credentials");
            self.metrics.messages_retried.inc();
            let due_ms = at.saturating_add(duration_ms(self.settings.retry_max));
            return Outcome::Retry {
                id,
                due_ms,
                error: text,
            };
        }
        let retryable = error.is_retryable();
        // `attempts` counts the token-send marker too; allow one extra for it.
        let used = message.attempts + 1;
        if retryable && used < self.settings.max_attempts + u32::from(marked) {
            let retry_after = match &error {
                SendError::Throttled { retry_after, .. } => *retry_after,
                _ => None,
            };
            let delay = self.backoff(used, retry_after);
            self.metrics.messages_retried.inc();
            let due_ms = at.saturating_add(duration_ms(delay));
            return Outcome::Retry {
                id,
                due_ms,
                error: text,
            };
        }
        if token_send && error.may_have_been_delivered() {
            self.metrics.messages_unconfirmed.inc();
            self.forget(id);
            return Outcome::DeliveredUnconfirmed { id, at_ms: at };
        }
        tracing::warn!(outbox = %id, %text, "message failed permanently");
        self.metrics.messages_failed.inc();
        self.forget(id);
        // For a token send the store also marks the token invalid (a recurring token retired).
        Outcome::Failed {
            id,
            error: text,
            at_ms: at,
        }
    }

    /// Capped exponential backoff with jitter, at least `retry_after`: the messenger client's
    /// policy, with the dispatcher's longer delays.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let policy = botflow_messenger::RetryPolicy {
            max_attempts: self.settings.max_attempts,
            base_delay: self.settings.retry_base,
            max_delay: self.settings.retry_max,
        };
        policy.delay_after(attempt, retry_after)
    }

    fn forget(&self, id: OutboxId) -> Option<u64> {
        self.origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }
}

/// The stored request read back and ready to send (a token send with its token as recipient),
/// or why it must not be sent: unreadable, or refused by Messenger's limits as it stands.
fn ready_request(message: &OutboundMessage) -> Result<SendRequest, String> {
    let request = decode(&message.body).map_err(|error| error.to_string())?;
    let refused = |limit: LimitError| format!("not sent, Messenger would refuse it: {limit}");
    match (&message.kind, &message.token) {
        (OutboundKind::OtnToken { .. }, Some(token)) => {
            let request = with_token(request, token);
            request.check_limits().map_err(refused)?;
            Ok(request)
        }
        (OutboundKind::RecurringToken { .. }, Some(token)) => {
            let request = with_recurring_token(request, token);
            request.check_limits().map_err(refused)?;
            Ok(request)
        }
        // A token send without its token fails on its own later; check the message alone.
        (OutboundKind::OtnToken { .. } | OutboundKind::RecurringToken { .. }, None) => {
            request.message.check_limits().map_err(refused)?;
            Ok(request)
        }
        (OutboundKind::Normal, _) => {
            request.check_limits().map_err(refused)?;
            Ok(request)
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
