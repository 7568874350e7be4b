//! The `Store` trait: the storage boundary the runtime and the server program against.
//!
//! sled ([`crate::SledStore`]) is the embedded default; a PostgreSQL backend can implement the
//! same trait later. Every call is scoped by Page, takes the current time explicitly where time
//! matters (for determinism), and never exposes trees or bytes.

use crate::commit::{DueTimer, NotifyOutcome, OutboxStats, StepCommit, StepCommitted};
use crate::error::StoreError;
use crate::flows::{ActiveFlows, Draft, DraftSource, FlowSummary, FlowVersion, Published};
use crate::ids::{EventId, OutboxId, PageId, Psid};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::ledger::TopicLedger;
use crate::notification::{Notification, NotificationCancel, NotificationContent, NotificationId};
use crate::outbox::OutboundMessage;
use crate::outcome::Outcome;
use crate::ownership::Ownership;
use crate::recurring::{
    RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringPass, RecurringToken,
};
use crate::retention::{RetentionPolicy, SweepReport};
use crate::session::Session;
use crate::token::{NewToken, OtnToken, TokenAdded, TokenMark};
use crate::topic::{DeletedTopic, Topic, TopicSummary};
use botflow_flow::{FlowDocument, FlowId, TopicId, ValidFlow};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Shorthand for results of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Builds the Send API body of a topic notification for one subscriber.
pub type BodyFor<'a> = &'a (dyn Fn(&Psid) -> serde_json::Value + Sync);

/// A wait for earlier commits to become durable that holds no thread: await [`DurableWait::wait`].
/// Returned by the `*_deferred` calls of [`Store`].
pub struct DurableWait(Option<std::pin::Pin<Box<dyn Future<Output = StoreResult<()>> + Send>>>);

impl DurableWait {
    /// Nothing to wait for (the call was durable when it returned).
    pub fn ready() -> Self {
        Self(None)
    }

    /// Waits on `future`.
    pub fn on(future: impl Future<Output = StoreResult<()>> + Send + 'static) -> Self {
        Self(Some(Box::pin(future)))
    }

    /// Resolves once the commits it covers are durable; an error means they may not be.
    pub async fn wait(self) -> StoreResult<()> {
        match self.0 {
            None => Ok(()),
            Some(future) => future.await,
        }
    }
}

impl std::fmt::Debug for DurableWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "DurableWait(pending)"
        } else {
            "DurableWait(ready)"
        })
    }
}

/// Durable state of botflow: topics, flows, sessions, OTN tokens, the event journal and the outbox.
///
/// Durability: calls documented as durable have their effect on disk (as far as the backend's
/// flush guarantees, see the crate docs) when they return `Ok`.
pub trait Store: Send + Sync {
    // ---- ownership (several nodes on one database) ----

    /// The shards this node may work on (see [`crate::ownership`]): a store shared by several
    /// nodes processes, fires timers and sends only for the Pages whose shard lease it holds,
    /// and refuses other writes about them with [`StoreError::OwnershipLost`]. The default is
    /// a single node owning every shard forever (the sled store).
    fn ownership(&self) -> Arc<Ownership> {
        Ownership::everything()
    }

    // ---- pages ----

    /// Registers a Page (idempotent); returns whether it was new. Durable.
    fn ensure_page(&self, page: &PageId, now_ms: u64) -> StoreResult<bool>;
    /// Whether the Page was registered.
    fn page_exists(&self, page: &PageId) -> StoreResult<bool>;
    /// All registered Pages.
    fn list_pages(&self) -> StoreResult<Vec<PageId>>;

    // ---- topics ----

    /// Creates a topic with a new UUID v4 id; the trimmed name must be unique on the Page
    /// ignoring case ([`StoreError::TopicNameTaken`]) and 1..=65 characters long. Durable.
    fn create_topic(&self, page: &PageId, name: &str, now_ms: u64) -> StoreResult<Topic>;
    /// The topic with this id, if any.
    fn get_topic(&self, page: &PageId, topic: &TopicId) -> StoreResult<Option<Topic>>;
    /// The topic whose name matches (trimmed, case-insensitive), if any.
    fn find_topic_by_name(&self, page: &PageId, name: &str) -> StoreResult<Option<Topic>>;
    /// All topics of the Page by name, each with its count of usable tokens at `now_ms`.
    fn list_topics(&self, page: &PageId, now_ms: u64) -> StoreResult<Vec<TopicSummary>>;
    /// The topic's token ledger at `now_ms`, with the last [`crate::LEDGER_DAYS`] UTC days
    /// ending with today's; `None` for a topic that never had one. Counters kept in the
    /// transactions that change tokens, so they survive the retention sweep; a deleted topic
    /// keeps its final ledger.
    fn topic_ledger(
        &self,
        page: &PageId,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Option<TopicLedger>>;
    /// Renames a topic (same rules as creation; its id and tokens stay). Durable.
    fn rename_topic(&self, page: &PageId, topic: &TopicId, name: &str) -> StoreResult<Topic>;
    /// Deletes a topic. Refused with [`StoreError::TopicInUse`] when the active version of a flow
    /// refers to it, unless `force`; its unused tokens are invalidated. Durable.
    fn delete_topic(
        &self,
        page: &PageId,
        topic: &TopicId,
        force: bool,
        now_ms: u64,
    ) -> StoreResult<DeletedTopic>;

    // ---- flows ----

    /// Saves a draft if it parses ([`StoreError::FlowParse`] otherwise), with its validation
    /// diagnostics (topic ids checked against the Page); returns the stored draft. Durable.
    fn save_draft(&self, page: &PageId, source: DraftSource, now_ms: u64) -> StoreResult<Draft>;
    /// The draft of a flow, if one is stored.
    fn draft(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<Draft>>;
    /// Publishes the draft as immutable version n+1 if it validates without errors (topic ids
    /// are checked against the Page: `unknown-topic`; triggers against the Page's other live
    /// flows inside the same transaction: `conflicting-trigger`); topics named inline are created (or an
    /// existing one of that name reused) in the same atomic commit and the stored version refers
    /// to them by id. Durable.
    fn publish(&self, page: &PageId, flow: &FlowId, now_ms: u64) -> StoreResult<Published>;
    /// Saves `document` as the draft and publishes it; when it equals the latest version's source
    /// no new version is made (`unchanged: true`). Durable.
    fn publish_document(
        &self,
        page: &PageId,
        document: FlowDocument,
        now_ms: u64,
    ) -> StoreResult<Published>;
    /// Republishes the content of an older version as a new version n+1 (versions stay
    /// immutable and the active version is always the latest). Durable.
    fn rollback(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
        now_ms: u64,
    ) -> StoreResult<Published>;
    /// All flows of the Page (drafts and published), by id.
    fn list_flows(&self, page: &PageId) -> StoreResult<Vec<FlowSummary>>;
    /// All published versions of a flow, oldest first.
    fn flow_versions(&self, page: &PageId, flow: &FlowId) -> StoreResult<Vec<FlowVersion>>;
    /// One published version.
    fn flow_version(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<FlowVersion>>;
    /// One published version, ready to run as published (cached: versions are immutable).
    fn valid_flow(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<Arc<ValidFlow>>>;
    /// The version new runs of the flow start on.
    fn active_version(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<u32>>;
    /// The active version of every published flow of the Page (for trigger routing), as
    /// published (not validated again); flows whose live version cannot be read are listed as
    /// broken and the others still run.
    fn active_flows(&self, page: &PageId) -> StoreResult<ActiveFlows>;
    /// The `conflicting-trigger` errors of `document` against the Page's other live flows (for
    /// reports: publish and rollback check the same inside their transaction and refuse).
    fn live_trigger_conflicts(
        &self,
        page: &PageId,
        document: &FlowDocument,
    ) -> StoreResult<Vec<botflow_flow::Diagnostic>>;

    // ---- subscribers ----

    /// The subscriber's session, if it has one.
    fn load_session(&self, page: &PageId, psid: &Psid) -> StoreResult<Option<Session>>;
    /// The subscribers of the Page that have a session.
    fn list_subscribers(&self, page: &PageId) -> StoreResult<Vec<Psid>>;

    // ---- OTN tokens ----

    /// Stores a token from an opt-in; a token stored before is a no-op
    /// ([`TokenAdded::Duplicate`]). Durable.
    fn add_token(
        &self,
        page: &PageId,
        psid: &Psid,
        token: NewToken,
        now_ms: u64,
    ) -> StoreResult<TokenAdded>;
    /// The token with this value, in whatever state.
    fn get_token(&self, page: &PageId, token: &str) -> StoreResult<Option<OtnToken>>;
    /// The subscriber's usable tokens of a topic at `now_ms`, oldest first.
    fn usable_tokens(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Vec<OtnToken>>;
    /// The subscriber's usable token count per topic at `now_ms` (topics without one omitted).
    fn usable_token_counts(
        &self,
        page: &PageId,
        psid: &Psid,
        now_ms: u64,
    ) -> StoreResult<BTreeMap<TopicId, u64>>;
    /// The subscribers holding at least one usable token of the topic at `now_ms`.
    fn topic_holders(&self, page: &PageId, topic: &TopicId, now_ms: u64) -> StoreResult<Vec<Psid>>;
    /// Marks a token spent or invalid; returns whether it was usable before. Durable.
    fn mark_token(
        &self,
        page: &PageId,
        token: &str,
        mark: TokenMark,
        now_ms: u64,
    ) -> StoreResult<bool>;
    /// Marks every usable token with `expires_ms <= now_ms` expired; returns how many. Durable.
    fn expire_tokens(&self, now_ms: u64) -> StoreResult<u64>;

    // ---- inbound journal ----

    /// Journals an event under its dedup key; durable when it returns (the sled store: an
    /// `fdatasync`ed event log record; group commit: concurrent appends share one sync).
    fn journal_append(
        &self,
        page: &PageId,
        event: &EventId,
        psid: &Psid,
        payload: &serde_json::Value,
        received_ms: u64,
    ) -> StoreResult<Appended>;
    /// Journals a webhook batch, durable on return (one shared sync); one outcome per event, in
    /// order.
    fn journal_append_batch(&self, events: &[NewJournalEvent]) -> StoreResult<Vec<Appended>>;

    /// [`Store::journal_append_batch`] whose durability is awaited apart: the answers are final
    /// when it returns, but they hold (and may be acknowledged) only once the returned wait
    /// resolves. Lets the webhook free its thread during the `fdatasync`. Default: the durable
    /// call, with nothing left to wait for.
    fn journal_append_batch_deferred(
        &self,
        events: &[NewJournalEvent],
    ) -> StoreResult<(Vec<Appended>, DurableWait)> {
        Ok((self.journal_append_batch(events)?, DurableWait::ready()))
    }
    /// Every durably journaled event not yet processed, in arrival order.
    fn unprocessed_events(&self) -> StoreResult<Vec<JournalEntry>>;
    /// The oldest `limit` events of [`Store::unprocessed_events`] (a bounded poll: the journal
    /// follower of a node sharing the database reads this often).
    fn poll_unprocessed(&self, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        let mut events = self.unprocessed_events()?;
        events.truncate(limit);
        Ok(events)
    }

    // ---- the step commit and notifications ----

    /// Atomically marks the event processed, writes the session (and its timers), stores new
    /// tokens and queues the outbound messages; an `OtnToken` message takes the oldest usable
    /// token of its topic in the same commit, a `RecurringToken` message records its send on the
    /// subscriber's recurring token of the topic (which must be able to pay now by
    /// [`RecurringToken::check_send`] with [`crate::RECURRING_CAP_MS`]). When a token send finds
    /// no usable token (one was spent, expired or invalidated, or the recurring token stopped or
    /// paid, outside the subscriber's order after the step read them), the step is refused with [`StoreError::TokenGone`] and nothing is written, so the
    /// branch a step took and what the store commits always agree: step again and commit. Refused with
    /// [`StoreError::EventAlreadyProcessed`] for an event processed before. Durable unless
    /// `commit.durable` is false.
    fn commit_step(&self, commit: StepCommit) -> StoreResult<StepCommitted>;
    /// Commits several steps (normally of different subscribers) as one atomic commit with one
    /// flush, which is much cheaper per step than separate commits; one result per step, in
    /// order. A step whose event was already processed gets
    /// [`StoreError::EventAlreadyProcessed`] and the others still commit. Durable if any step
    /// asks for it. Returns once these steps are committed; the sled store commits the batches
    /// of concurrent callers in one transaction. The default implementation commits the steps
    /// one by one.
    fn commit_steps(
        &self,
        commits: Vec<StepCommit>,
    ) -> StoreResult<Vec<StoreResult<StepCommitted>>> {
        Ok(commits.into_iter().map(|c| self.commit_step(c)).collect())
    }
    /// Queues one message per subscriber holding a usable token of the topic, each taking that
    /// subscriber's oldest usable token in the same commit as the message; the messages belong
    /// to `notification` (from [`Store::create_notification`]), whose totals move in the same
    /// commits. The caller closes its queuing ([`Store::close_notification_queuing`]) after its
    /// last pass (the recurring one). Durable.
    fn notify_topic(
        &self,
        page: &PageId,
        topic: &TopicId,
        notification: NotificationId,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<NotifyOutcome>;

    // ---- recurring notification tokens ----

    /// Applies a recurring opt-in (stored against (Page, subscriber, topic), retiring the
    /// subscriber's earlier token of the topic), stop or resume. A change already applied
    /// (a redelivered event) changes nothing, so a replayed event may apply it again. Durable.
    fn recurring_change(
        &self,
        page: &PageId,
        psid: &Psid,
        change: &RecurringChange,
        now_ms: u64,
    ) -> StoreResult<RecurringChanged>;
    /// The recurring token with this value, in whatever status.
    fn recurring_token(&self, page: &PageId, token: &str) -> StoreResult<Option<RecurringToken>>;
    /// The recurring token the subscriber holds now for the topic (active or stopped; a retired
    /// one is no longer held), if any.
    fn recurring_held(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
    ) -> StoreResult<Option<RecurringToken>>;
    /// The recurring tokens held now for the topic (active or stopped), in subscriber order.
    fn recurring_topic_holders(
        &self,
        page: &PageId,
        topic: &TopicId,
    ) -> StoreResult<Vec<RecurringToken>>;
    /// The recurring pass of topic notification `pass.notification`: queues one message of it
    /// per subscriber whose recurring token of the topic may pay at `now_ms` (its frequency's
    /// period, and at least `pass.cap_ms`, since its last send; active; not expired), recording
    /// the send time on the token in the same commit as the message and the notification's
    /// totals (the token is not spent; a cancel before the send gives the last send back).
    /// Subscribers in `pass.reached` (paid for by another token in this notification) are
    /// skipped. Does not close the notification's queuing. Durable.
    fn notify_topic_recurring(
        &self,
        page: &PageId,
        topic: &TopicId,
        pass: &RecurringPass<'_>,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<RecurringNotifyOutcome>;
    // ---- notifications ----

    /// Creates a topic notification in state `queued` with zero totals
    /// ([`StoreError::TopicNotFound`] for an unknown topic). Durable.
    fn create_notification(
        &self,
        page: &PageId,
        topic: &TopicId,
        content: &NotificationContent,
        now_ms: u64,
    ) -> StoreResult<Notification>;
    /// Sets how many flow runs a flow notification has (the caller journals them next, one per
    /// subscriber; each step commit carrying a [`crate::NotificationRun`] counts one) and adds
    /// `expired` (the expiry sweep before it) to its totals. Its queuing closes in the commit
    /// that ends the last run, or here when they all have already (or `runs` is 0). Durable.
    fn expect_notification_runs(
        &self,
        page: &PageId,
        id: NotificationId,
        runs: u64,
        expired: u64,
        now_ms: u64,
    ) -> StoreResult<Notification>;
    /// Marks a notification fully queued: it becomes `done` once nothing of it is pending
    /// (at once when nothing is). Durable.
    fn close_notification_queuing(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<Notification>;
    /// One notification of the Page.
    fn notification(&self, page: &PageId, id: NotificationId) -> StoreResult<Option<Notification>>;
    /// The Page's notifications (of one topic when given), newest first.
    fn notifications(
        &self,
        page: &PageId,
        topic: Option<&TopicId>,
    ) -> StoreResult<Vec<Notification>>;
    /// Cancels a running notification: it becomes `cancelled`, its pending messages whose send
    /// has not started are removed from the outbox and their tokens are usable again (ledger
    /// corrected in the same commits); a message already attempted finishes normally and still
    /// counts. [`StoreError::NotificationNotFound`], or [`StoreError::NotificationFinished`] when
    /// it is done or cancelled already. Durable.
    fn cancel_notification(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<NotificationCancel>;

    // ---- outbox ----

    /// Pending messages due at `now_ms`, at most `limit`, only the head of each subscriber's
    /// queue (so sending them keeps per-subscriber order), earliest due first. Not a lease: the
    /// caller tracks what it has in flight.
    fn due_outbound(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<OutboundMessage>> {
        self.due_outbound_skipping(now_ms, limit, &|_| false)
    }
    /// [`Store::due_outbound`] passing over the heads `skip` names (the caller's sends in flight)
    /// without reading them: `limit` counts only the messages returned.
    fn due_outbound_skipping(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &dyn Fn(OutboxId) -> bool,
    ) -> StoreResult<Vec<OutboundMessage>>;
    /// One outbound message.
    fn outbound(&self, id: OutboxId) -> StoreResult<Option<OutboundMessage>>;
    /// Records that the Send API accepted the message. Durable.
    fn mark_sent(&self, id: OutboxId, message_id: &str, at_ms: u64) -> StoreResult<()>;
    /// Records a failed attempt and when to try again (the message stays at its queue's head). Durable.
    fn mark_retry(&self, id: OutboxId, due_ms: u64, error: &str) -> StoreResult<()>;
    /// Records a permanent failure; for a token send the token is marked invalid. Durable.
    fn mark_failed(&self, id: OutboxId, error: &str, at_ms: u64) -> StoreResult<()>;
    /// Records that policy (e.g. the 24-hour window) forbade sending it. Durable.
    fn mark_refused(&self, id: OutboxId, reason: &str, at_ms: u64) -> StoreResult<()>;
    /// Records that it may have been delivered but no answer confirmed it; never retried. Durable.
    fn mark_delivered_unconfirmed(&self, id: OutboxId, at_ms: u64) -> StoreResult<()>;
    /// Records several outcomes (normally of different subscribers) in one atomic commit, in
    /// order, each with the effect of its single `mark_*` call; one result per outcome. An outcome
    /// whose message is unknown or no longer pending gets that error and the others still
    /// commit. Durability: when any outcome is about a token send (its token's fate rides on
    /// it), everything is durable on return; outcomes of normal messages only are atomic and
    /// visible at once but reach the disk with the next flush (losing one in a crash means the
    /// message is sent again: at-least-once). The default implementation records them one by
    /// one with the durable single calls.
    fn mark_outcomes(&self, outcomes: &[Outcome]) -> StoreResult<Vec<StoreResult<()>>> {
        Ok(outcomes
            .iter()
            .map(|outcome| match outcome {
                Outcome::Sent {
                    id,
                    message_id,
                    at_ms,
                } => self.mark_sent(*id, message_id, *at_ms),
                Outcome::Retry { id, due_ms, error } => self.mark_retry(*id, *due_ms, error),
                Outcome::Failed { id, error, at_ms } => self.mark_failed(*id, error, *at_ms),
                Outcome::Refused { id, reason, at_ms } => self.mark_refused(*id, reason, *at_ms),
                Outcome::DeliveredUnconfirmed { id, at_ms } => {
                    self.mark_delivered_unconfirmed(*id, *at_ms)
                }
            })
            .collect())
    }

    /// [`Store::mark_outcomes`] whose durability is awaited apart: the results are final when it
    /// returns, and the returned wait resolves once the batch is as durable as `mark_outcomes`
    /// would have made it. Default: `mark_outcomes`, with nothing left to wait for.
    fn mark_outcomes_deferred(
        &self,
        outcomes: &[Outcome],
    ) -> StoreResult<(Vec<StoreResult<()>>, DurableWait)> {
        Ok((self.mark_outcomes(outcomes)?, DurableWait::ready()))
    }

    /// Queue figures for metrics.
    fn outbox_stats(&self) -> StoreResult<OutboxStats>;
    /// Every message queued for the subscriber (any status; finished ones until retention
    /// removes them), oldest first.
    fn messages_for(&self, page: &PageId, psid: &Psid) -> StoreResult<Vec<OutboundMessage>>;

    // ---- timers ----

    /// Timers due at `now_ms` across all subscribers, earliest first, at most `limit`.
    fn due_timers(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<DueTimer>>;

    // ---- retention ----

    /// Removes at most `max_records` records that `policy` no longer keeps at `now_ms`, oldest
    /// first: dedup records of events processed more than `policy.dedup_ms` ago, messages
    /// finished and tokens used up more than `policy.history_ms` ago. Never removes an
    /// unprocessed event, a pending message, a usable token or a token paying for a pending
    /// message, and changes no counter. Not flushed: a removal lost in a crash is redone by the
    /// next sweep.
    fn sweep_retention(
        &self,
        now_ms: u64,
        policy: &RetentionPolicy,
        max_records: usize,
    ) -> StoreResult<SweepReport>;

    // ---- durability ----

    /// Makes everything committed so far durable (group-committed with concurrent callers: on
    /// the sled store, a wait for the log's `fdatasync`).
    fn flush(&self) -> StoreResult<()>;

    /// Like [`Store::flush`] without blocking: returns at once with the wait for everything
    /// committed so far to become durable, or `None` when the backend has no such wait (then
    /// call `flush` on a blocking thread). The sled store returns a wait on its log's
    /// `fdatasync` watermark.
    fn flush_deferred(&self) -> Option<DurableWait> {
        None
    }

    /// Whether reads, non-durable commits and the `*_deferred` calls finish without waiting on
    /// the network or a disk sync, so an async caller may make them in place instead of on a
    /// blocking thread (a thread hand-off per call). True for the embedded sled store, whose
    /// durability waits are deferred and whose data is in memory or the page cache; false for a
    /// database over the network.
    fn calls_are_local(&self) -> bool {
        false
    }

    /// The hot log's counters since the store opened (appends, `fdatasync`s, bytes); `None` for
    /// a store without one (PostgreSQL keeps its own WAL).
    fn log_stats(&self) -> Option<crate::log::LogStats> {
        None
    }
}
