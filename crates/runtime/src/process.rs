//! One unit of scheduler work for one subscriber, done synchronously against the store:
//! load the session, run the step function, commit the outcome atomically and durably.

use crate::clock::Clock;
use crate::context::StepContext;
use crate::effect::Effect;
use crate::event::{InboundEvent, NotifyContent};
use crate::flow_cache::FlowCache;
use crate::inbound::from_journal;
use crate::metrics::RuntimeMetrics;
use crate::step::{step, versions_needed};
use botflow_flow::TopicId;
use botflow_storage::{
    EventId, JournalEntry, NewToken, OutboxId, PageId, Psid, StepCommit, Store, StoreError,
    TokenSendOutcome,
};
use std::collections::BTreeMap;
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
    /// A topic notification that runs a flow for this subscriber.
    Notify {
        page: PageId,
        psid: Psid,
        topic: TopicId,
        content: NotifyContent,
        reply: Option<tokio::sync::oneshot::Sender<NotifyReport>>,
    },
}

impl Work {
    /// The subscriber this work belongs to.
    pub(crate) fn subscriber(&self) -> (&PageId, &Psid) {
        match self {
            Self::Event(entry) => (&entry.page, &entry.psid),
            Self::Timer { page, psid, .. } | Self::Notify { page, psid, .. } => (page, psid),
        }
    }
}

/// What one notification did for one subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NotifyReport {
    pub(crate) queued: u64,
    pub(crate) no_token: u64,
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
    pub(crate) notify: NotifyReport,
}

/// Runs work items against the store; shared by the scheduler's shards.
pub(crate) struct Processor {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) flows: FlowCache,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<RuntimeMetrics>,
    pub(crate) step_budget: u32,
    pub(crate) interactions: Arc<InteractionCache>,
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

impl Processor {
    /// Processes one unit of work; blocking (durable commits wait for a disk flush).
    pub(crate) fn process(&self, work: &Work) -> Result<Processed, StoreError> {
        let now = self.clock.now_ms();
        let (page, psid) = work.subscriber();
        let (event_id, inbound, step_ms, received_ms) = match work {
            Work::Event(entry) => {
                let inbound = match from_journal(entry) {
                    Ok(inbound) => inbound,
                    Err(error) => {
                        tracing::error!(%error, "unreadable journal entry; marked processed");
                        self.metrics.events_failed.inc();
                        None
                    }
                };
                // A step runs at the time the webhook arrived, so a replay after a restart gives the
                // same outcome and the 24-hour window counts from the real interaction.
                let step_ms = entry.received_ms.min(now);
                (
                    Some(entry.event.clone()),
                    inbound,
                    step_ms,
                    Some(entry.received_ms),
                )
            }
            Work::Timer { timer_id, .. } => (
                None,
                Some(InboundEvent::TimerFired {
                    timer_id: *timer_id,
                }),
                now,
                None,
            ),
            Work::Notify { topic, content, .. } => (
                None,
                Some(InboundEvent::Notify {
                    topic: topic.clone(),
                    content: content.clone(),
                }),
                now,
                None,
            ),
        };
        let session = self.store.load_session(page, psid)?.unwrap_or_default();
        if let Work::Timer { timer_id, .. } = work {
            if !session.timers.iter().any(|t| t.id == *timer_id) {
                return Ok(Processed::default());
            }
            self.metrics.timers_fired.inc();
        }
        let Some(inbound) = inbound else {
            // Nothing for flows (echo, receipt): only mark the event processed.
            return self.commit(
                page,
                psid,
                event_id,
                session,
                Vec::new(),
                Vec::new(),
                step_ms,
                received_ms,
            );
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
        let ctx = StepContext {
            page: page.clone(),
            psid: psid.clone(),
            flows,
            usable_tokens,
            step_budget: self.step_budget,
        };
        let outcome = step(&ctx, &session, &inbound, step_ms);
        let mut tokens = Vec::new();
        let mut no_token = 0;
        for effect in &outcome.effects {
            match effect {
                Effect::NoToken { .. } => no_token += 1,
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
        let mut processed = if unchanged {
            Processed::default()
        } else {
            self.commit(
                page,
                psid,
                event_id,
                outcome.session,
                outcome.outbound,
                tokens,
                step_ms,
                received_ms,
            )?
        };
        processed.notify.no_token += no_token;
        Ok(processed)
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        page: &PageId,
        psid: &Psid,
        event: Option<EventId>,
        session: botflow_storage::Session,
        outbound: Vec<botflow_storage::NewOutbound>,
        tokens_added: Vec<NewToken>,
        now_ms: u64,
        received_ms: Option<u64>,
    ) -> Result<Processed, StoreError> {
        let is_event = event.is_some();
        let stored = tokens_added.len() as u64;
        let interaction = session.last_interaction_ms;
        let committed = self.store.commit_step(StepCommit {
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
        });
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
        if is_event {
            self.metrics.events_processed.inc();
        }
        if let Some(at) = interaction {
            self.interactions.record(page, psid, at);
        }
        self.metrics.tokens_stored.add(stored);
        let mut notify = NotifyReport::default();
        for send in &committed.token_sends {
            match send {
                TokenSendOutcome::Queued { .. } => notify.queued += 1,
                TokenSendOutcome::NoToken { .. } => notify.no_token += 1,
            }
        }
        Ok(Processed {
            outbox_ids: committed.outbox_ids,
            received_ms,
            duplicate: false,
            notify,
        })
    }
}
