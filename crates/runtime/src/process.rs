//! One unit of scheduler work for one subscriber, done synchronously against the store:
//! load the session, run the step function, commit the outcome atomically and durably.

use crate::clock::Clock;
use crate::context::StepContext;
use crate::effect::{Effect, StepError};
use crate::event::InboundEvent;
use crate::flow_cache::FlowCache;
use crate::inbound::from_journal;
use crate::metrics::RuntimeMetrics;
use crate::notify_run::NotificationRunEvent;
use crate::profile::{ProfileSettings, apply_profile};
use crate::step::{step, versions_needed};
use botflow_flow::TopicId;
use botflow_storage::{
    EventId, JournalEntry, NewToken, NotificationRun, OutboxId, PageId, Psid, RECURRING_CAP_MS,
    StepCommit, Store, StoreError,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the scheduler runs for a subscriber; all work of one subscriber runs in order.
#[derive(Debug)]
pub(crate) enum Work {
    /// A journaled webhook event.
    Event(JournalEntry),
    /// A due timer of the subscriber's session.
    Timer {
        page: PageId,
        psid: Psid,
        timer_id: u64,
    },
    /// A User Profile fetch that ended: its names are stored as fields (or its failure recorded).
    Profile {
        page: PageId,
        psid: Psid,
        fetched: Result<botflow_messenger::Profile, String>,
        at_ms: u64,
    },
}

/// What identifies a unit of work for in-flight tracking (events by journal sequence number,
/// timers by subscriber and timer id).
#[derive(Debug, Clone)]
pub(crate) enum WorkId {
    Event(u64),
    Timer(PageId, Psid, u64),
    Profile,
}

impl Work {
    /// The identity used to track it while it is queued or running.
    pub(crate) fn id(&self) -> WorkId {
        match self {
            Self::Event(entry) => WorkId::Event(entry.seq),
            Self::Timer {
                page,
                psid,
                timer_id,
            } => WorkId::Timer(page.clone(), psid.clone(), *timer_id),
            Self::Profile { .. } => WorkId::Profile,
        }
    }

    /// The subscriber this work belongs to.
    pub(crate) fn subscriber(&self) -> (&PageId, &Psid) {
        match self {
            Self::Event(entry) => (&entry.page, &entry.psid),
            Self::Timer { page, psid, .. } | Self::Profile { page, psid, .. } => (page, psid),
        }
    }
}

/// What processing one unit of work did.
#[derive(Debug, Default)]
pub(crate) struct Processed {
    /// Messages queued, for the dispatcher.
    pub(crate) outbox_ids: Vec<OutboxId>,
    /// When the webhook that caused them arrived (for the latency hook).
    pub(crate) received_ms: Option<u64>,
    /// The event had been processed before (a redelivery after a crash): nothing changed.
    pub(crate) duplicate: bool,
    /// The subscriber's profile should be fetched (the committed session has none fresh).
    pub(crate) profile_due: Option<(PageId, Psid)>,
    /// The subscriber's fetched profile was stored: a new fetch may be asked for.
    pub(crate) profile_stored: Option<(PageId, Psid)>,
}

/// Runs work items against the store; shared by the scheduler's shards.
pub(crate) struct Processor {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) flows: FlowCache,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<RuntimeMetrics>,
    pub(crate) step_budget: u32,
    pub(crate) interactions: Arc<InteractionCache>,
    pub(crate) profiles: ProfileSettings,
}

/// The last interaction time of subscribers as of their latest commit, so the dispatcher can
/// pass the 24-hour check without reading the session. Values only grow, so "inside the window"
/// from the cache is always right; "outside" is confirmed against the store.
#[derive(Debug, Default)]
pub(crate) struct InteractionCache {
    last: std::sync::Mutex<std::collections::HashMap<(PageId, Psid), u64>>,
}

/// Subscribers remembered before the cache starts over (it is only a shortcut).
const MAX_CACHED_INTERACTIONS: usize = 500_000;

impl InteractionCache {
    pub(crate) fn record(&self, page: &PageId, psid: &Psid, at_ms: u64) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.len() >= MAX_CACHED_INTERACTIONS {
            last.clear();
        }
        let entry = last.entry((page.clone(), psid.clone())).or_insert(at_ms);
        *entry = (*entry).max(at_ms);
    }

    pub(crate) fn get(&self, page: &PageId, psid: &Psid) -> Option<u64> {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(page.clone(), psid.clone()))
            .copied()
    }
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("step_budget", &self.step_budget)
            .finish_non_exhaustive()
    }
}

/// Why a unit of work could not be processed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProcessError {
    /// The store failed (the work may be retried).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// An earlier item of the same subscriber in the batch failed: this one waits for it, so
    /// the subscriber's work never runs out of order.
    #[error("held back behind the subscriber's failed earlier work")]
    Deferred,
    /// Processing panicked; the work was contained and not retried.
    #[error("processing panicked: {0}")]
    Panicked(String),
}

/// The text of a panic's payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// A step ready to commit, with what to report once it is committed.
pub(crate) struct Pending {
    commit: StepCommit,
    received_ms: Option<u64>,
    /// The commit stores a profile fetch's outcome (so it asks for no fetch itself).
    profile: bool,
}

/// What preparing a unit of work produced.
pub(crate) enum Prepared {
    /// Nothing to commit (a stale timer, a notification that changed nothing).
    Done(Processed),
    /// A step to commit.
    Commit(Box<Pending>),
}

impl Processor {
    /// Processes one unit of work on its own (prepare, then commit).
    pub(crate) fn process(&self, work: &Work) -> Result<Processed, ProcessError> {
        match self.prepare_contained(work)? {
            Prepared::Done(processed) => Ok(processed),
            Prepared::Commit(pending) => {
                let result = self.store.commit_step(pending.commit.clone());
                Ok(self.finish(*pending, result)?)
            }
        }
    }

    /// Processes a shard's batch in order, committing steps of different subscribers together
    /// (one transaction, no wait for the disk). A subscriber's second item in a batch is only
    /// prepared after its first is committed, so it sees the new session and tokens; once a
    /// subscriber's item fails, its later items are [`ProcessError::Deferred`] (the caller
    /// retries them in order after the failed one).
    pub(crate) fn process_batch(&self, batch: &[Work]) -> Vec<Result<Processed, ProcessError>> {
        let mut results: Vec<Option<Result<Processed, ProcessError>>> =
            (0..batch.len()).map(|_| None).collect();
        let mut pending: Vec<(usize, Pending)> = Vec::new();
        for (i, work) in batch.iter().enumerate() {
            let (page, psid) = work.subscriber();
            if pending
                .iter()
                .any(|(_, p)| p.commit.page == *page && p.commit.psid == *psid)
            {
                self.commit_pending(&mut pending, &mut results);
            }
            let behind_a_failure = batch[..i].iter().zip(&results).any(|(earlier, result)| {
                earlier.subscriber() == (page, psid) && matches!(result, Some(Err(_)))
            });
            if behind_a_failure {
                results[i] = Some(Err(ProcessError::Deferred));
                continue;
            }
            match self.prepare_contained(work) {
                Ok(Prepared::Done(processed)) => results[i] = Some(Ok(processed)),
                Ok(Prepared::Commit(p)) => pending.push((i, *p)),
                Err(error) => results[i] = Some(Err(error)),
            }
        }
        self.commit_pending(&mut pending, &mut results);
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Ok(Processed::default())))
            .collect()
    }

    fn commit_pending(
        &self,
        pending: &mut Vec<(usize, Pending)>,
        results: &mut [Option<Result<Processed, ProcessError>>],
    ) {
        if pending.is_empty() {
            return;
        }
        let batch = std::mem::take(pending);
        let commits = batch.iter().map(|(_, p)| p.commit.clone()).collect();
        match self.store.commit_steps(commits) {
            Ok(outcomes) => {
                for ((i, p), outcome) in batch.into_iter().zip(outcomes) {
                    results[i] = Some(self.finish(p, outcome).map_err(ProcessError::Store));
                }
            }
            Err(error) => {
                // The batch transaction failed as a whole: commit the steps one by one, so each
                // gets its own outcome.
                tracing::warn!(%error, "batch commit failed; committing steps one by one");
                for (i, p) in batch {
                    let result = self.store.commit_step(p.commit.clone());
                    results[i] = Some(self.finish(p, result).map_err(ProcessError::Store));
                }
            }
        }
    }

    /// [`Processor::prepare`] with a panic contained to this unit of work: an event is recorded
    /// as failed (marked processed with the subscriber's state unchanged, so it is not replayed
    /// forever), a timer is dropped from the session (so it does not fire again), and a
    /// notification run reports the failure to its caller.
    fn prepare_contained(&self, work: &Work) -> Result<Prepared, ProcessError> {
        let panic =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.prepare(work))) {
                Ok(prepared) => return prepared.map_err(ProcessError::Store),
                Err(panic) => panic_message(panic.as_ref()),
            };
        let (page, psid) = work.subscriber();
        self.metrics.events_failed.inc();
        tracing::error!(%page, %psid, work = ?work.id(), panic = %panic, "processing panicked; the work is recorded as failed");
        let contained =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.failed_commit(work)));
        match contained {
            Ok(Ok(Some(pending))) => Ok(Prepared::Commit(Box::new(pending))),
            Ok(Ok(None)) | Err(_) => Err(ProcessError::Panicked(panic)),
            Ok(Err(error)) => Err(ProcessError::Store(error)),
        }
    }

    /// The commit that records a unit of work as failed, leaving the subscriber's state as it
    /// was (an event is marked processed, a notification run counted as failed; a timer is
    /// removed); `None` for a profile.
    fn failed_commit(&self, work: &Work) -> Result<Option<Pending>, StoreError> {
        let (page, psid) = work.subscriber();
        let mut session = self.store.load_session(page, psid)?.unwrap_or_default();
        let (event, at_ms, run) = match work {
            Work::Event(entry) => (
                Some(entry.event.clone()),
                entry.received_ms,
                NotificationRunEvent::of(entry),
            ),
            Work::Timer { timer_id, .. } => {
                session.timers.retain(|timer| timer.id != *timer_id);
                (None, self.clock.now_ms(), None)
            }
            Work::Profile { .. } => return Ok(None),
        };
        let mut commit = step_commit(page, psid, event, session, Vec::new(), Vec::new(), at_ms);
        commit.notification_run = run.map(|run| NotificationRun {
            notification: run.notification,
            no_token: 0,
            failed: true,
        });
        Ok(Some(Pending {
            commit,
            received_ms: None,
            profile: false,
        }))
    }

    /// Loads what the step needs, runs it and returns the commit to make.
    fn prepare(&self, work: &Work) -> Result<Prepared, StoreError> {
        let now = self.clock.now_ms();
        let (page, psid) = work.subscriber();
        if let Work::Profile { fetched, at_ms, .. } = work {
            // Through the subscriber's own queue: no step of theirs runs between this load and
            // this commit, so neither overwrites the other's session.
            let mut session = self.store.load_session(page, psid)?.unwrap_or_default();
            apply_profile(&mut session, fetched, *at_ms);
            return Ok(Prepared::Commit(Box::new(Pending {
                commit: step_commit(page, psid, None, session, Vec::new(), Vec::new(), now),
                received_ms: None,
                profile: true,
            })));
        }
        let mut notification = None;
        let (event_id, inbound, step_ms, received_ms) = match work {
            Work::Event(entry) => {
                // A step runs at the time the webhook arrived, so a replay after a restart gives the
                // same outcome and the 24-hour window counts from the real interaction.
                let step_ms = entry.received_ms.min(now);
                if let Some(run) = NotificationRunEvent::of(entry) {
                    notification = Some(run.notification);
                    // Not a webhook: its sends stay out of the webhook → send latency.
                    (
                        Some(entry.event.clone()),
                        Some(run.inbound()),
                        step_ms,
                        None,
                    )
                } else {
                    let inbound = match from_journal(entry) {
                        Ok(inbound) => inbound,
                        Err(error) => {
                            tracing::error!(%error, "unreadable journal entry; marked processed");
                            self.metrics.events_failed.inc();
                            None
                        }
                    };
                    (
                        Some(entry.event.clone()),
                        inbound,
                        step_ms,
                        Some(entry.received_ms),
                    )
                }
            }
            Work::Timer { timer_id, .. } => (
                None,
                Some(InboundEvent::TimerFired {
                    timer_id: *timer_id,
                }),
                now,
                None,
            ),
            Work::Profile { .. } => return Ok(Prepared::Done(Processed::default())),
        };
        let session = self.store.load_session(page, psid)?.unwrap_or_default();
        if let Work::Timer { timer_id, .. } = work {
            if !session.timers.iter().any(|t| t.id == *timer_id) {
                return Ok(Prepared::Done(Processed::default()));
            }
            self.metrics.timers_fired.inc();
        }
        let Some(inbound) = inbound else {
            // Nothing for flows (echo, receipt): only mark the event processed.
            return Ok(Prepared::Commit(Box::new(Pending {
                commit: step_commit(
                    page,
                    psid,
                    event_id,
                    session,
                    Vec::new(),
                    Vec::new(),
                    step_ms,
                ),
                received_ms,
                profile: false,
            })));
        };
        let needed = versions_needed(&session, &inbound);
        let flows = self
            .flows
            .for_step(self.store.as_ref(), page, &needed, now)?;
        // Token counts matter only to a step that may spend one.
        let needs_tokens = flows.spends_tokens() || matches!(inbound, InboundEvent::Notify { .. });
        let usable_tokens: BTreeMap<TopicId, u32> = if needs_tokens {
            self.store
                .usable_token_counts(page, psid, step_ms)?
                .into_iter()
                .map(|(topic, n)| (topic, u32::try_from(n).unwrap_or(u32::MAX)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let recurring_ready = if needs_tokens {
            let notified = match &inbound {
                InboundEvent::Notify { topic, .. } => Some(topic),
                _ => None,
            };
            let mut ready = BTreeSet::new();
            for topic in flows.token_topics().iter().chain(notified) {
                let held = self.store.recurring_held(page, psid, topic)?;
                if held.is_some_and(|t| t.check_send(step_ms, RECURRING_CAP_MS).is_ok()) {
                    ready.insert(topic.clone());
                }
            }
            ready
        } else {
            BTreeSet::new()
        };
        let ctx = StepContext {
            page: page.clone(),
            psid: psid.clone(),
            flows,
            usable_tokens,
            recurring_ready,
            step_budget: self.step_budget,
        };
        let outcome = step(&ctx, &session, &inbound, step_ms);
        let mut tokens = Vec::new();
        let mut no_token = 0;
        for effect in &outcome.effects {
            match effect {
                Effect::NoToken { .. } => no_token += 1,
                // Applied before the step commits: a change applied once is a no-op when the
                // event is replayed after a crash, so the two need not share a transaction.
                Effect::Recurring(change) => {
                    let changed = self.store.recurring_change(page, psid, change, step_ms)?;
                    tracing::debug!(%page, %psid, ?changed, "recurring token change");
                }
                Effect::TokenStored {
                    topic,
                    token,
                    expires_ms,
                } => tokens.push(NewToken {
                    topic: topic.clone(),
                    token: token.clone(),
                    created_ms: step_ms,
                    expires_ms: *expires_ms,
                }),
                // Not queued, as Messenger would refuse it: a failed message, the run goes on.
                Effect::Error(error @ StepError::MessageRefused { .. }) => {
                    self.metrics.messages_failed.inc();
                    tracing::warn!(%page, %psid, %error, "message failed before sending");
                }
                Effect::Error(error) => {
                    self.metrics.step_errors.inc();
                    tracing::warn!(%page, %psid, %error, "flow run error");
                }
                _ => {}
            }
        }
        let unchanged = event_id.is_none()
            && outcome.outbound.is_empty()
            && tokens.is_empty()
            && outcome.session == session;
        if unchanged {
            return Ok(Prepared::Done(Processed::default()));
        }
        let mut commit = step_commit(
            page,
            psid,
            event_id,
            outcome.session,
            outcome.outbound,
            tokens,
            step_ms,
        );
        commit.notification_run = notification.map(|notification| NotificationRun {
            notification,
            no_token,
            failed: false,
        });
        Ok(Prepared::Commit(Box::new(Pending {
            commit,
            received_ms,
            profile: false,
        })))
    }

    /// Turns a commit's result into what the scheduler reports.
    fn finish(
        &self,
        pending: Pending,
        committed: Result<botflow_storage::StepCommitted, StoreError>,
    ) -> Result<Processed, StoreError> {
        let committed = match committed {
            Ok(committed) => committed,
            Err(StoreError::EventAlreadyProcessed { .. }) => {
                return Ok(Processed {
                    duplicate: true,
                    ..Processed::default()
                });
            }
            Err(error) => return Err(error),
        };
        let commit = &pending.commit;
        if commit.event.is_some() {
            self.metrics.events_processed.inc();
        }
        if let Some(at) = commit.session.last_interaction_ms {
            self.interactions.record(&commit.page, &commit.psid, at);
        }
        self.metrics
            .tokens_stored
            .add(commit.tokens_added.len() as u64);
        let subscriber = || (commit.page.clone(), commit.psid.clone());
        let profile_due = !pending.profile
            && self
                .profiles
                .fetch_due(&commit.session, self.clock.now_ms());
        Ok(Processed {
            outbox_ids: committed.outbox_ids,
            received_ms: pending.received_ms,
            duplicate: false,
            profile_due: profile_due.then(subscriber),
            profile_stored: pending.profile.then(subscriber),
        })
    }
}

fn step_commit(
    page: &PageId,
    psid: &Psid,
    event: Option<EventId>,
    session: botflow_storage::Session,
    outbound: Vec<botflow_storage::NewOutbound>,
    tokens_added: Vec<NewToken>,
    now_ms: u64,
) -> StepCommit {
    StepCommit {
        page: page.clone(),
        psid: psid.clone(),
        event,
        session,
        outbound,
        tokens_added,
        now_ms,
        // The journal holds the event durably; a commit lost in a crash is replayed from it.
        // The dispatcher flushes before sending anything this commit queued.
        durable: false,
        notification_run: None,
    }
}
