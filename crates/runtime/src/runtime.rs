//! The [`Runtime`] facade the server uses: start (with resume), submit journaled events,
//! topic notifications, metrics, graceful shutdown.

use crate::clock::{Clock, SystemClock};
use crate::dispatcher::{DispatchSettings, Dispatcher, PageClients};
use crate::event::NotifyContent;
use crate::flow_cache::FlowCache;
use crate::metrics::{LatencyHook, RuntimeMetrics};
use crate::notify_run::NotificationRunEvent;
use crate::outbound::{Purpose, request_body};
use crate::process::{InteractionCache, Processed, Processor};
use crate::profile::{ProfileQueue, ProfileSettings, run_profile_fetches};
use crate::scheduler::{AfterWork, Shards, follow_journal, run_timers};
use botflow_flow::TopicId;
use botflow_messenger::SendClient;
use botflow_storage::{
    Appended, JournalEntry, NewJournalEvent, Notification, NotificationCancel, NotificationContent,
    NotificationId, PageId, RECURRING_CAP_MS, RecurringNotifyOutcome, RecurringPass, RecurringSkip,
    Store, StoreError,
};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Settings of a [`Runtime`]; `Default` suits production.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Shards (subscribers are spread over them; each processes one batch at a time). Default
    /// 0, automatic: on a local store (sled) one per two cores, on a store over the network
    /// twice the cores, 4 to 64 (see `scheduler::automatic_shards` for the measurements).
    pub workers: usize,
    /// Queue capacity per shard; a full queue makes `submit` wait (backpressure). Default 1,024.
    pub queue_capacity: usize,
    /// Blocks one event may run before the run stops with an error. Default 200.
    pub step_budget: u32,
    /// Send API calls per second per Page. Default 250 (Messenger allows about 300).
    pub page_rate_per_sec: u32,
    /// Send API requests in flight at once, across Pages. Default 64.
    pub max_sends_in_flight: usize,
    /// Dispatcher attempts per message (each may include the client's own quick retries). Default 8.
    pub max_send_attempts: u32,
    /// First dispatcher retry delay, doubled per attempt with jitter. Default 1 s.
    pub retry_base: Duration,
    /// Longest dispatcher retry delay. Default 5 minutes.
    pub retry_max: Duration,
    /// How often the due-timer index is polled. Default 250 ms.
    pub timer_poll: Duration,
    /// How often the journal is read for events not handed to the runtime (an event is picked up
    /// after two reads, so within two polls). Default 500 ms.
    pub journal_poll: Duration,
    /// How often the outbox is polled when nothing wakes the dispatcher (retries). Default 250 ms.
    pub outbox_poll: Duration,
    /// How long the active flow versions of a Page are cached. Default 1 s.
    pub flow_cache_ttl: Duration,
    /// The clock (tests use [`crate::ManualClock`]).
    pub clock: Arc<dyn Clock>,
    /// Observes webhook-arrival-to-sent latency of each message an event caused.
    pub latency_hook: Option<LatencyHook>,
    /// When subscriber profiles are fetched (see [`crate::profile`]).
    pub profiles: ProfileSettings,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            queue_capacity: 1_024,
            step_budget: crate::DEFAULT_STEP_BUDGET,
            page_rate_per_sec: 250,
            max_sends_in_flight: 64,
            max_send_attempts: 8,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            timer_poll: Duration::from_millis(250),
            journal_poll: Duration::from_millis(500),
            outbox_poll: Duration::from_millis(250),
            flow_cache_ttl: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
            latency_hook: None,
            profiles: ProfileSettings::default(),
        }
    }
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("workers", &self.workers)
            .field("queue_capacity", &self.queue_capacity)
            .field("step_budget", &self.step_budget)
            .field("page_rate_per_sec", &self.page_rate_per_sec)
            .field("max_sends_in_flight", &self.max_sends_in_flight)
            .field("max_send_attempts", &self.max_send_attempts)
            .field("journal_poll", &self.journal_poll)
            .field("profiles", &self.profiles)
            .finish_non_exhaustive()
    }
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The runtime is shutting down and accepts no more work.
    #[error("the runtime is shutting down")]
    ShuttingDown,
    /// A background task failed (panicked or was cancelled).
    #[error("runtime task failed: {0}")]
    Task(String),
    /// A topic notification's run for one subscriber failed; the other subscribers' runs
    /// went on (their counts are in `counts`).
    #[error("the notification failed for subscriber {psid}: {reason} (for the others: {counts:?})")]
    NotifyFailed {
        /// The subscriber whose run failed.
        psid: String,
        /// What went wrong.
        reason: String,
        /// What the other runs queued.
        counts: NotifyCounts,
    },
}

/// The counts of a topic notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotifyCounts {
    /// The notification's id (its record shows progress; see [`Runtime::notification`]).
    pub notification: NotificationId,
    /// Messages queued, each paying with one token (spent in the same commit).
    pub queued: u64,
    /// Subscribers listed as holders who had no usable token left when their turn came.
    pub no_token: u64,
    /// Tokens found expired (and marked so) while notifying; for a flow notification, the tokens
    /// the expiry sweep before it marked (of every topic).
    pub expired: u64,
    /// Messages paid for by recurring tokens, counted apart from `queued`, and the recurring
    /// holders skipped (a flow notification runs for those whose token may pay now; their
    /// `otn_send` blocks pay with it).
    pub recurring: RecurringNotifyOutcome,
}

/// The recurring pass of text notification `notification`: one message of it per holder of a
/// recurring token of the topic that may pay now (Messenger's 48-hour cap and the token's
/// frequency), skipping those in `reached` (the one-time pass paid for them: one message per
/// subscriber per notification).
fn notify_recurring(
    store: &dyn Store,
    page: &PageId,
    topic: &TopicId,
    notification: NotificationId,
    reached: &HashSet<botflow_storage::Psid>,
    body_for: botflow_storage::BodyFor<'_>,
    now_ms: u64,
) -> Result<RecurringNotifyOutcome, StoreError> {
    let pass = RecurringPass {
        notification,
        reached,
        cap_ms: RECURRING_CAP_MS,
    };
    store.notify_topic_recurring(page, topic, &pass, body_for, now_ms)
}

/// A notification as the API shows it: the stored record and the time left at the Page's pace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationProgress {
    /// The stored record (state, totals, times).
    pub notification: Notification,
    /// Estimated time until its pending messages are sent, at the Page's pace; `None` once it
    /// is done or cancelled.
    pub eta_ms: Option<u64>,
    /// The Page's pace the estimate uses (Send API calls per second).
    pub rate_per_sec: u64,
}

struct Inner {
    store: Arc<dyn Store>,
    processor: Arc<Processor>,
    shards: Arc<Shards>,
    dispatcher: Arc<Dispatcher>,
    metrics: Arc<RuntimeMetrics>,
    clock: Arc<dyn Clock>,
    stop_timers: Arc<Notify>,
    wake_timers: Arc<Notify>,
    stop_follower: Arc<Notify>,
    /// Wakes the journal poll (a store shared by several nodes: webhooks only wake it).
    wake_follower: Arc<Notify>,
    /// Whether other nodes share the store (see [`crate::ownership`]).
    shared: bool,
    stop_dispatcher: Arc<Notify>,
    stop_profiles: Arc<Notify>,
}

/// The running runtime: a scheduler (shards and timers) and a dispatcher on tokio.
pub struct Runtime {
    inner: Arc<Inner>,
    shard_tasks: Mutex<Vec<JoinHandle<()>>>,
    timer_task: Mutex<Option<JoinHandle<()>>>,
    follower_task: Mutex<Option<JoinHandle<()>>>,
    /// Wakes the loops when the owned shards change (several nodes); aborted at shutdown.
    ownership_task: Mutex<Option<JoinHandle<()>>>,
    dispatcher_task: Mutex<Option<JoinHandle<()>>>,
    profile_task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Runtime {
    /// Starts the runtime with one Send API client for every Page; see [`Runtime::start_with_clients`].
    pub async fn start(
        store: Arc<dyn Store>,
        client: SendClient,
        config: RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        Self::start_with_clients(store, PageClients::single(client), config).await
    }

    /// Starts the scheduler and the dispatcher, then resumes: journaled events not yet processed
    /// are queued in arrival order before this returns (so events submitted afterwards come
    /// after them); pending outbound messages and due timers are picked up by their loops.
    pub async fn start_with_clients(
        store: Arc<dyn Store>,
        clients: PageClients,
        config: RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        let metrics = Arc::new(RuntimeMetrics::default());
        let interactions = Arc::new(InteractionCache::default());
        let processor = Arc::new(Processor {
            store: Arc::clone(&store),
            flows: FlowCache::new(
                u64::try_from(config.flow_cache_ttl.as_millis()).unwrap_or(u64::MAX),
            ),
            clock: Arc::clone(&config.clock),
            metrics: Arc::clone(&metrics),
            step_budget: config.step_budget,
            interactions: Arc::clone(&interactions),
            profiles: config.profiles.clone(),
        });
        let profile_clients = clients.clone();
        let dispatcher = Arc::new(Dispatcher::new(
            Arc::clone(&store),
            clients,
            Arc::clone(&config.clock),
            Arc::clone(&metrics),
            DispatchSettings {
                page_rate_per_sec: config.page_rate_per_sec,
                max_in_flight: config.max_sends_in_flight,
                max_attempts: config.max_send_attempts,
                retry_base: config.retry_base,
                retry_max: config.retry_max,
                poll: config.outbox_poll,
            },
            config.latency_hook.clone(),
            interactions,
        ));
        let (profile_queue, profile_requests) = ProfileQueue::new(&config.profiles);
        let after: AfterWork = {
            let dispatcher = Arc::clone(&dispatcher);
            let clock = Arc::clone(&config.clock);
            Arc::new(move |processed: &Processed| {
                dispatcher.queued(&processed.outbox_ids, processed.received_ms);
                if let Some((page, psid)) = &processed.profile_stored {
                    profile_queue.release(page, psid);
                }
                if let Some((page, psid)) = &processed.profile_due {
                    profile_queue.request(page, psid, clock.now_ms());
                }
            })
        };
        let (shards, shard_tasks) = Shards::start(
            config.workers,
            config.queue_capacity,
            Arc::clone(&processor),
            after,
        );
        let inner = Arc::new(Inner {
            store: Arc::clone(&store),
            processor: Arc::clone(&processor),
            shards: Arc::clone(&shards),
            dispatcher: Arc::clone(&dispatcher),
            metrics,
            clock: Arc::clone(&config.clock),
            stop_timers: Arc::new(Notify::new()),
            wake_timers: Arc::new(Notify::new()),
            stop_follower: Arc::new(Notify::new()),
            wake_follower: Arc::new(Notify::new()),
            shared: store.ownership().is_shared(),
            stop_dispatcher: Arc::new(Notify::new()),
            stop_profiles: Arc::new(Notify::new()),
        });
        let profile_task = tokio::spawn(run_profile_fetches(
            profile_requests,
            profile_clients,
            Arc::clone(&shards),
            Arc::clone(&inner.metrics),
            Arc::clone(&config.clock),
            config.profiles.concurrency,
            Arc::clone(&inner.stop_profiles),
        ));
        let mut ownership_task = None;
        let follower_task = if inner.shared {
            let wake = {
                let inner = Arc::downgrade(&inner);
                move || {
                    if let Some(inner) = inner.upgrade() {
                        inner.wake_follower.notify_one();
                        inner.wake_timers.notify_one();
                        inner.dispatcher.wake.notify_one();
                    }
                }
            };
            ownership_task = Some(tokio::spawn(crate::ownership::watch_ownership(
                store.ownership(),
                wake,
                Arc::clone(&inner.metrics),
            )));
            tokio::spawn(crate::ownership::follow_shared_journal(
                Arc::clone(&processor),
                Arc::clone(&shards),
                config
                    .journal_poll
                    .min(crate::ownership::SHARED_JOURNAL_POLL),
                Arc::clone(&inner.stop_follower),
                Arc::clone(&inner.wake_follower),
            ))
        } else {
            tokio::spawn(follow_journal(
                Arc::clone(&processor),
                Arc::clone(&shards),
                config.journal_poll,
                Arc::clone(&inner.stop_follower),
            ))
        };
        let timer_task = tokio::spawn(run_timers(
            processor,
            shards,
            config.timer_poll,
            Arc::clone(&inner.stop_timers),
            Arc::clone(&inner.wake_timers),
        ));
        let dispatcher_task = tokio::spawn(dispatcher.run(Arc::clone(&inner.stop_dispatcher)));
        let runtime = Self {
            inner,
            shard_tasks: Mutex::new(shard_tasks),
            timer_task: Mutex::new(Some(timer_task)),
            follower_task: Mutex::new(Some(follower_task)),
            ownership_task: Mutex::new(ownership_task),
            dispatcher_task: Mutex::new(Some(dispatcher_task)),
            profile_task: Mutex::new(Some(profile_task)),
        };
        let backlog = {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || store.unprocessed_events())
                .await
                .map_err(|e| RuntimeError::Task(e.to_string()))??
        };
        if !backlog.is_empty() {
            tracing::info!(
                events = backlog.len(),
                "resuming unprocessed journal events"
            );
        }
        runtime.submit(backlog).await?;
        runtime.wake();
        Ok(runtime)
    }

    /// Queues journaled events (the caller journaled them durably first) for processing, each
    /// behind its subscriber's earlier events; an event already queued or just processed is
    /// skipped. Waits while a queue is full (backpressure). Events never handed over (the caller
    /// failed in between) are found in the journal and queued within two `journal_poll`s.
    pub async fn submit(&self, events: Vec<JournalEntry>) -> Result<(), RuntimeError> {
        if self.inner.shared {
            // several nodes: the shard's owner queues it from the journal, in journal order
            self.inner.wake_follower.notify_one();
            return Ok(());
        }
        for event in events {
            self.inner
                .shards
                .submit_event(event)
                .await
                .map_err(|_| RuntimeError::ShuttingDown)?;
        }
        Ok(())
    }

    /// Sends a topic notification to every subscriber holding a usable token of `topic`, as a
    /// notification record (created first, so its id is known at once): a text is queued with
    /// one token per subscriber (an OTN token, spent in the same commit, else a recurring token
    /// that may pay now); a flow runs for each such subscriber, in their order with their other
    /// events, its `otn_send` blocks paying with an OTN token, else the recurring token (those
    /// messages become the notification's in the commit of each run, journaled and run on the
    /// node that owns the subscriber). Returns when everything is queued (the dispatcher then
    /// drains at the Page's pace).
    pub async fn notify_topic(
        &self,
        page: &PageId,
        topic: &TopicId,
        content: NotifyContent,
        now_ms: u64,
    ) -> Result<NotifyCounts, RuntimeError> {
        let kind = match &content {
            NotifyContent::Text(_) => NotificationContent::Text,
            NotifyContent::Flow(flow) => NotificationContent::Flow { flow: flow.clone() },
        };
        let (p, t) = (page.clone(), topic.clone());
        let record = self
            .blocking(move |store| store.create_notification(&p, &t, &kind, now_ms))
            .await?;
        let id = record.id;
        let result = self
            .queue_notification(page, topic, id, content, now_ms)
            .await;
        if result.is_err() {
            // What was queued still drains: the record must be able to reach `done`.
            let p = page.clone();
            let closed = self
                .blocking(move |store| store.close_notification_queuing(&p, id, now_ms))
                .await;
            if let Err(error) = closed {
                tracing::error!(%error, notification = %id, "cannot close a failed notification's queuing");
            }
        }
        result
    }

    /// Queues the messages of notification `id` (see [`Runtime::notify_topic`]).
    async fn queue_notification(
        &self,
        page: &PageId,
        topic: &TopicId,
        id: NotificationId,
        content: NotifyContent,
        now_ms: u64,
    ) -> Result<NotifyCounts, RuntimeError> {
        match content {
            NotifyContent::Text(text) => {
                let (page, topic) = (page.clone(), topic.clone());
                let outcome = self
                    .blocking(move |store| {
                        let body_for = move |psid: &botflow_storage::Psid| {
                            let text =
                                botflow_messenger::OutgoingMessage::Text { text: text.clone() };
                            request_body(psid, Purpose::OtnToken, text)
                        };
                        // Who the one-time pass pays for; the recurring pass skips them.
                        let reached: HashSet<_> = store
                            .topic_holders(&page, &topic, now_ms)?
                            .into_iter()
                            .collect();
                        let outcome = store.notify_topic(&page, &topic, id, &body_for, now_ms)?;
                        let recurring = notify_recurring(
                            store, &page, &topic, id, &reached, &body_for, now_ms,
                        )?;
                        // Both passes queued: the notification is done once their messages are.
                        store.close_notification_queuing(&page, id, now_ms)?;
                        Ok((outcome, recurring))
                    })
                    .await?;
                let (outcome, recurring) = outcome;
                self.inner.dispatcher.wake.notify_one();
                Ok(NotifyCounts {
                    notification: id,
                    queued: outcome.queued,
                    no_token: outcome.no_token,
                    expired: outcome.expired,
                    recurring,
                })
            }
            NotifyContent::Flow(flow) => self.notify_with_flow(page, topic, id, flow, now_ms).await,
        }
    }

    /// The flow half of [`Runtime::notify_topic`] for notification `id`: one journaled run
    /// per subscriber (so the node that owns the subscriber runs it, in order with their other
    /// events, and a crash only delays it), then waits until the runs' commits have counted
    /// them all in the notification's record.
    async fn notify_with_flow(
        &self,
        page: &PageId,
        topic: &TopicId,
        id: NotificationId,
        flow: botflow_flow::FlowId,
        now_ms: u64,
    ) -> Result<NotifyCounts, RuntimeError> {
        let (p, t) = (page.clone(), topic.clone());
        let (expired, mut holders, recurring) = self
            .blocking(move |store| {
                let expired = store.expire_tokens(now_ms)?;
                let holders = store.topic_holders(&p, &t, now_ms)?;
                let recurring = store.recurring_topic_holders(&p, &t)?;
                Ok((expired, holders, recurring))
            })
            .await?;
        // OTN holders first; then every other holder whose recurring token may pay now (one
        // run per subscriber per notification).
        let mut skipped = RecurringNotifyOutcome::default();
        let reached: HashSet<_> = holders.iter().cloned().collect();
        for token in recurring {
            if reached.contains(&token.psid) {
                skipped.skipped += 1;
                continue;
            }
            match token.check_send(now_ms, RECURRING_CAP_MS) {
                Ok(()) => holders.push(token.psid),
                Err(RecurringSkip::NotDue) => skipped.not_due += 1,
                Err(RecurringSkip::Stopped) => skipped.stopped += 1,
                Err(RecurringSkip::Expired) => skipped.expired += 1,
                Err(RecurringSkip::Retired) => {}
            }
        }
        let run = NotificationRunEvent {
            notification: id,
            topic: topic.clone(),
            flow,
        };
        let records: Vec<_> = holders
            .iter()
            .map(|psid| run.journal_record(page, psid, now_ms))
            .collect();
        let runs = records.len() as u64;
        let p = page.clone();
        let fresh = self
            .blocking(move |store| {
                // Expected first: the commit that ends the last run closes the queuing.
                store.expect_notification_runs(&p, id, runs, expired, now_ms)?;
                let appended = store.journal_append_batch(&records)?;
                Ok(journaled(records, appended))
            })
            .await?;
        self.submit(fresh).await?;
        let record = self.runs_counted(page, id).await?;
        let totals = record.totals;
        let counts = NotifyCounts {
            notification: id,
            queued: totals.queued - totals.recurring,
            no_token: totals.no_token,
            expired: totals.expired,
            recurring: RecurringNotifyOutcome {
                queued: totals.recurring,
                ..skipped
            },
        };
        if let Some(psid) = record.runs.first_failed {
            return Err(RuntimeError::NotifyFailed {
                psid: psid.to_string(),
                reason: format!(
                    "{} of {} runs failed (the node that ran them logged why)",
                    record.runs.failed, record.runs.done
                ),
                counts,
            });
        }
        Ok(counts)
    }

    /// Waits until every run of flow notification `id` has committed (or it was cancelled),
    /// reading its record every [`RUNS_POLL`]; the runs may be on another node.
    async fn runs_counted(
        &self,
        page: &PageId,
        id: NotificationId,
    ) -> Result<Notification, RuntimeError> {
        loop {
            let p = page.clone();
            let record = self
                .blocking(move |store| store.notification(&p, id))
                .await?
                .ok_or_else(|| {
                    RuntimeError::Store(StoreError::NotificationNotFound {
                        page: page.clone(),
                        id,
                    })
                })?;
            if record.runs.finished() || !record.state.is_running() {
                return Ok(record);
            }
            if self.inner.shards.is_closed() {
                // The runs go on after the restart; the record shows them.
                return Err(RuntimeError::ShuttingDown);
            }
            tokio::time::sleep(RUNS_POLL).await;
        }
    }

    /// One notification of the Page with its time left at the Page's pace.
    pub async fn notification(
        &self,
        page: &PageId,
        id: NotificationId,
    ) -> Result<Option<NotificationProgress>, RuntimeError> {
        let page = page.clone();
        let found = self
            .blocking(move |store| store.notification(&page, id))
            .await?;
        Ok(found.map(|n| self.progress(n)))
    }

    /// The Page's notifications (of one topic when given), newest first, with their time left.
    pub async fn notifications(
        &self,
        page: &PageId,
        topic: Option<TopicId>,
    ) -> Result<Vec<NotificationProgress>, RuntimeError> {
        let page = page.clone();
        let all = self
            .blocking(move |store| store.notifications(&page, topic.as_ref()))
            .await?;
        Ok(all.into_iter().map(|n| self.progress(n)).collect())
    }

    /// Cancels a running notification (see [`Store::cancel_notification`]): its messages not
    /// yet started are removed and their tokens are usable again; the dispatcher drops those it
    /// already holds without sending them.
    pub async fn cancel_notification(
        &self,
        page: &PageId,
        id: NotificationId,
    ) -> Result<NotificationCancel, RuntimeError> {
        self.inner.dispatcher.cancelled(id);
        let page = page.clone();
        let now_ms = self.inner.clock.now_ms();
        let cancel = self
            .blocking(move |store| store.cancel_notification(&page, id, now_ms))
            .await?;
        self.inner.dispatcher.wake.notify_one();
        Ok(cancel)
    }

    /// A notification with its time left: pending messages at the Page's configured pace.
    fn progress(&self, notification: Notification) -> NotificationProgress {
        let rate = u64::from(self.inner.dispatcher.settings.page_rate_per_sec.max(1));
        let eta_ms = match notification.state.is_running() {
            true => Some(notification.totals.pending().saturating_mul(1_000) / rate),
            false => None,
        };
        NotificationProgress {
            notification,
            eta_ms,
            rate_per_sec: rate,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(|e| RuntimeError::Task(e.to_string()))?
            .map_err(RuntimeError::Store)
    }

    /// Forgets cached active flow versions (call after publishing or rolling back a flow).
    pub fn flows_changed(&self) {
        self.inner.processor.flows.invalidate();
    }

    /// Looks for due timers and due messages now instead of at the next poll.
    pub fn wake(&self) {
        self.inner.wake_timers.notify_one();
        self.inner.dispatcher.wake.notify_one();
    }

    /// The runtime's counters and gauges.
    pub fn metrics(&self) -> &Arc<RuntimeMetrics> {
        &self.inner.metrics
    }

    /// The runtime's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Graceful shutdown: stops accepting work, processes what is queued, stops the timer loop,
    /// lets sends in flight finish and record their outcome, and flushes the store. Work not
    /// done stays in the journal/outbox and resumes at the next start.
    pub async fn shutdown(&self) -> Result<(), RuntimeError> {
        self.inner.stop_timers.notify_one();
        if let Some(task) = take(&self.timer_task) {
            task.await.map_err(|e| RuntimeError::Task(e.to_string()))?;
        }
        if let Some(task) = take(&self.ownership_task) {
            task.abort();
        }
        self.inner.stop_follower.notify_one();
        if let Some(task) = take(&self.follower_task) {
            task.await.map_err(|e| RuntimeError::Task(e.to_string()))?;
        }
        // Profile fetches are best effort: one in flight is dropped and asked for again later.
        self.inner.stop_profiles.notify_one();
        if let Some(task) = take(&self.profile_task) {
            task.await.map_err(|e| RuntimeError::Task(e.to_string()))?;
        }
        self.inner.shards.close();
        let shard_tasks = std::mem::take(
            &mut *self
                .shard_tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in shard_tasks {
            task.await.map_err(|e| RuntimeError::Task(e.to_string()))?;
        }
        self.inner.stop_dispatcher.notify_one();
        if let Some(task) = take(&self.dispatcher_task) {
            task.await.map_err(|e| RuntimeError::Task(e.to_string()))?;
        }
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(|e| RuntimeError::Task(e.to_string()))??;
        Ok(())
    }
}

/// How often a flow notification's record is read while its runs are under way.
const RUNS_POLL: Duration = Duration::from_millis(20);

/// The journal entries of the records that were new (a duplicate was journaled before and runs
/// from there).
fn journaled(records: Vec<NewJournalEvent>, appended: Vec<Appended>) -> Vec<JournalEntry> {
    records
        .into_iter()
        .zip(appended)
        .filter_map(|(record, appended)| match appended {
            Appended::New { seq } => Some(record.journaled(seq)),
            Appended::Duplicate => None,
        })
        .collect()
}

fn take(slot: &Mutex<Option<JoinHandle<()>>>) -> Option<JoinHandle<()>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}
