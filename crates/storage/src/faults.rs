//! A [`Store`] wrapper that injects faults for tests (feature `test-support`): it delegates
//! every call to a real store, panics where a test asked it to (a panic while processing one
//! subscriber must stay with that subscriber's work) or fails session loads with a store error,
//! and can run a change just before the next step commit (to interleave token changes between a step's read and its commit).

use crate::commit::{DueTimer, NotifyOutcome, OutboxStats, StepCommit, StepCommitted};
use crate::flows::{ActiveFlows, Draft, DraftSource, FlowSummary, FlowVersion, Published};
use crate::ids::{EventId, OutboxId, PageId, Psid};
use crate::journal::{Appended, JournalEntry, NewJournalEvent};
use crate::ledger::TopicLedger;
use crate::notification::{Notification, NotificationCancel, NotificationContent, NotificationId};
use crate::outbox::OutboundMessage;
use crate::outcome::Outcome;
use crate::recurring::{
    RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringPass, RecurringToken,
};
use crate::retention::{RetentionPolicy, SweepReport};
use crate::session::Session;
use crate::store::{BodyFor, Store, StoreResult};
use crate::token::{NewToken, OtnToken, TokenAdded, TokenMark};
use crate::topic::{DeletedTopic, Topic, TopicSummary};
use botflow_flow::{FlowDocument, FlowId, TopicId, ValidFlow};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// A change a test runs against the real store just before the next step commit.
type BeforeCommit = Box<dyn FnOnce(&dyn Store) + Send>;

/// A store that panics on, or fails, the next `load_session` calls of chosen subscribers, and
/// runs a test's change before the next step commit.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    panics_left: Mutex<HashMap<Psid, u32>>,
    failures_left: Mutex<HashMap<Psid, u32>>,
    before_commit: Mutex<Option<BeforeCommit>>,
}

impl FaultyStore {
    /// Wraps `inner`; no fault is armed.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            panics_left: Mutex::new(HashMap::new()),
            failures_left: Mutex::new(HashMap::new()),
            before_commit: Mutex::new(None),
        }
    }

    /// Runs `change` against the real store right before the next `commit_step(s)` call.
    pub fn before_next_commit(&self, change: impl FnOnce(&dyn Store) + Send + 'static) {
        *self
            .before_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(change));
    }

    fn run_before_commit(&self) {
        let change = self
            .before_commit
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(change) = change {
            change(self.inner.as_ref());
        }
    }

    /// Makes the next `times` loads of `psid`'s session panic.
    pub fn panic_on_load(&self, psid: &Psid, times: u32) {
        self.panics_left
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(psid.clone(), times);
    }

    /// Makes the next `times` loads of `psid`'s session fail with a store error.
    pub fn fail_on_load(&self, psid: &Psid, times: u32) {
        self.failures_left
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(psid.clone(), times);
    }

    /// Takes one armed fault of `psid` from `faults`; whether one was armed.
    fn take_armed(faults: &Mutex<HashMap<Psid, u32>>, psid: &Psid) -> bool {
        let mut left = faults.lock().unwrap_or_else(PoisonError::into_inner);
        match left.get_mut(psid) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    fn maybe_panic(&self, psid: &Psid) {
        let armed = Self::take_armed(&self.panics_left, psid);
        assert!(!armed, "injected fault: loading the session of {psid}");
    }
}

impl Store for FaultyStore {
    fn ensure_page(&self, page: &PageId, now_ms: u64) -> StoreResult<bool> {
        self.inner.ensure_page(page, now_ms)
    }

    fn page_exists(&self, page: &PageId) -> StoreResult<bool> {
        self.inner.page_exists(page)
    }

    fn list_pages(&self) -> StoreResult<Vec<PageId>> {
        self.inner.list_pages()
    }

    fn create_topic(&self, page: &PageId, name: &str, now_ms: u64) -> StoreResult<Topic> {
        self.inner.create_topic(page, name, now_ms)
    }

    fn get_topic(&self, page: &PageId, topic: &TopicId) -> StoreResult<Option<Topic>> {
        self.inner.get_topic(page, topic)
    }

    fn find_topic_by_name(&self, page: &PageId, name: &str) -> StoreResult<Option<Topic>> {
        self.inner.find_topic_by_name(page, name)
    }

    fn list_topics(&self, page: &PageId, now_ms: u64) -> StoreResult<Vec<TopicSummary>> {
        self.inner.list_topics(page, now_ms)
    }

    fn topic_ledger(
        &self,
        page: &PageId,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Option<TopicLedger>> {
        self.inner.topic_ledger(page, topic, now_ms)
    }

    fn rename_topic(&self, page: &PageId, topic: &TopicId, name: &str) -> StoreResult<Topic> {
        self.inner.rename_topic(page, topic, name)
    }

    fn delete_topic(
        &self,
        page: &PageId,
        topic: &TopicId,
        force: bool,
        now_ms: u64,
    ) -> StoreResult<DeletedTopic> {
        self.inner.delete_topic(page, topic, force, now_ms)
    }

    fn save_draft(&self, page: &PageId, source: DraftSource, now_ms: u64) -> StoreResult<Draft> {
        self.inner.save_draft(page, source, now_ms)
    }

    fn draft(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<Draft>> {
        self.inner.draft(page, flow)
    }

    fn publish(&self, page: &PageId, flow: &FlowId, now_ms: u64) -> StoreResult<Published> {
        self.inner.publish(page, flow, now_ms)
    }

    fn publish_document(
        &self,
        page: &PageId,
        document: FlowDocument,
        now_ms: u64,
    ) -> StoreResult<Published> {
        self.inner.publish_document(page, document, now_ms)
    }

    fn rollback(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
        now_ms: u64,
    ) -> StoreResult<Published> {
        self.inner.rollback(page, flow, version, now_ms)
    }

    fn list_flows(&self, page: &PageId) -> StoreResult<Vec<FlowSummary>> {
        self.inner.list_flows(page)
    }

    fn flow_versions(&self, page: &PageId, flow: &FlowId) -> StoreResult<Vec<FlowVersion>> {
        self.inner.flow_versions(page, flow)
    }

    fn flow_version(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<FlowVersion>> {
        self.inner.flow_version(page, flow, version)
    }

    fn valid_flow(
        &self,
        page: &PageId,
        flow: &FlowId,
        version: u32,
    ) -> StoreResult<Option<Arc<ValidFlow>>> {
        self.inner.valid_flow(page, flow, version)
    }

    fn active_version(&self, page: &PageId, flow: &FlowId) -> StoreResult<Option<u32>> {
        self.inner.active_version(page, flow)
    }

    fn active_flows(&self, page: &PageId) -> StoreResult<ActiveFlows> {
        self.inner.active_flows(page)
    }

    fn live_trigger_conflicts(
        &self,
        page: &PageId,
        document: &FlowDocument,
    ) -> StoreResult<Vec<botflow_flow::Diagnostic>> {
        self.inner.live_trigger_conflicts(page, document)
    }

    fn load_session(&self, page: &PageId, psid: &Psid) -> StoreResult<Option<Session>> {
        self.maybe_panic(psid);
        if Self::take_armed(&self.failures_left, psid) {
            return Err(crate::StoreError::Database(format!(
                "injected fault: loading the session of {psid}"
            )));
        }
        self.inner.load_session(page, psid)
    }

    fn list_subscribers(&self, page: &PageId) -> StoreResult<Vec<Psid>> {
        self.inner.list_subscribers(page)
    }

    fn add_token(
        &self,
        page: &PageId,
        psid: &Psid,
        token: NewToken,
        now_ms: u64,
    ) -> StoreResult<TokenAdded> {
        self.inner.add_token(page, psid, token, now_ms)
    }

    fn get_token(&self, page: &PageId, token: &str) -> StoreResult<Option<OtnToken>> {
        self.inner.get_token(page, token)
    }

    fn usable_tokens(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Vec<OtnToken>> {
        self.inner.usable_tokens(page, psid, topic, now_ms)
    }

    fn usable_token_counts(
        &self,
        page: &PageId,
        psid: &Psid,
        now_ms: u64,
    ) -> StoreResult<BTreeMap<TopicId, u64>> {
        self.inner.usable_token_counts(page, psid, now_ms)
    }

    fn topic_holders(&self, page: &PageId, topic: &TopicId, now_ms: u64) -> StoreResult<Vec<Psid>> {
        self.inner.topic_holders(page, topic, now_ms)
    }

    fn mark_token(
        &self,
        page: &PageId,
        token: &str,
        mark: TokenMark,
        now_ms: u64,
    ) -> StoreResult<bool> {
        self.inner.mark_token(page, token, mark, now_ms)
    }

    fn expire_tokens(&self, now_ms: u64) -> StoreResult<u64> {
        self.inner.expire_tokens(now_ms)
    }

    fn journal_append(
        &self,
        page: &PageId,
        event: &EventId,
        psid: &Psid,
        payload: &serde_json::Value,
        received_ms: u64,
    ) -> StoreResult<Appended> {
        self.inner
            .journal_append(page, event, psid, payload, received_ms)
    }

    fn journal_append_batch(&self, events: &[NewJournalEvent]) -> StoreResult<Vec<Appended>> {
        self.inner.journal_append_batch(events)
    }

    fn unprocessed_events(&self) -> StoreResult<Vec<JournalEntry>> {
        self.inner.unprocessed_events()
    }

    fn commit_step(&self, commit: StepCommit) -> StoreResult<StepCommitted> {
        self.run_before_commit();
        self.inner.commit_step(commit)
    }

    fn commit_steps(
        &self,
        commits: Vec<StepCommit>,
    ) -> StoreResult<Vec<StoreResult<StepCommitted>>> {
        self.run_before_commit();
        self.inner.commit_steps(commits)
    }

    fn notify_topic(
        &self,
        page: &PageId,
        topic: &TopicId,
        notification: NotificationId,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<NotifyOutcome> {
        self.inner
            .notify_topic(page, topic, notification, body_for, now_ms)
    }

    fn create_notification(
        &self,
        page: &PageId,
        topic: &TopicId,
        content: &NotificationContent,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.inner.create_notification(page, topic, content, now_ms)
    }

    fn expect_notification_runs(
        &self,
        page: &PageId,
        id: NotificationId,
        runs: u64,
        expired: u64,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.inner
            .expect_notification_runs(page, id, runs, expired, now_ms)
    }

    fn close_notification_queuing(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.inner.close_notification_queuing(page, id, now_ms)
    }

    fn notification(&self, page: &PageId, id: NotificationId) -> StoreResult<Option<Notification>> {
        self.inner.notification(page, id)
    }

    fn notifications(
        &self,
        page: &PageId,
        topic: Option<&TopicId>,
    ) -> StoreResult<Vec<Notification>> {
        self.inner.notifications(page, topic)
    }

    fn cancel_notification(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<NotificationCancel> {
        self.inner.cancel_notification(page, id, now_ms)
    }

    fn recurring_change(
        &self,
        page: &PageId,
        psid: &Psid,
        change: &RecurringChange,
        now_ms: u64,
    ) -> StoreResult<RecurringChanged> {
        self.inner.recurring_change(page, psid, change, now_ms)
    }

    fn recurring_token(&self, page: &PageId, token: &str) -> StoreResult<Option<RecurringToken>> {
        self.inner.recurring_token(page, token)
    }

    fn recurring_held(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
    ) -> StoreResult<Option<RecurringToken>> {
        self.inner.recurring_held(page, psid, topic)
    }

    fn recurring_topic_holders(
        &self,
        page: &PageId,
        topic: &TopicId,
    ) -> StoreResult<Vec<RecurringToken>> {
        self.inner.recurring_topic_holders(page, topic)
    }

    fn notify_topic_recurring(
        &self,
        page: &PageId,
        topic: &TopicId,
        pass: &RecurringPass<'_>,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<RecurringNotifyOutcome> {
        self.inner
            .notify_topic_recurring(page, topic, pass, body_for, now_ms)
    }

    fn due_outbound_skipping(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &dyn Fn(OutboxId) -> bool,
    ) -> StoreResult<Vec<OutboundMessage>> {
        self.inner.due_outbound_skipping(now_ms, limit, skip)
    }

    fn outbound(&self, id: OutboxId) -> StoreResult<Option<OutboundMessage>> {
        self.inner.outbound(id)
    }

    fn mark_sent(&self, id: OutboxId, message_id: &str, at_ms: u64) -> StoreResult<()> {
        self.inner.mark_sent(id, message_id, at_ms)
    }

    fn mark_retry(&self, id: OutboxId, due_ms: u64, error: &str) -> StoreResult<()> {
        self.inner.mark_retry(id, due_ms, error)
    }

    fn mark_failed(&self, id: OutboxId, error: &str, at_ms: u64) -> StoreResult<()> {
        self.inner.mark_failed(id, error, at_ms)
    }

    fn mark_refused(&self, id: OutboxId, reason: &str, at_ms: u64) -> StoreResult<()> {
        self.inner.mark_refused(id, reason, at_ms)
    }

    fn mark_delivered_unconfirmed(&self, id: OutboxId, at_ms: u64) -> StoreResult<()> {
        self.inner.mark_delivered_unconfirmed(id, at_ms)
    }

    fn mark_outcomes(&self, outcomes: &[Outcome]) -> StoreResult<Vec<StoreResult<()>>> {
        self.inner.mark_outcomes(outcomes)
    }

    fn outbox_stats(&self) -> StoreResult<OutboxStats> {
        self.inner.outbox_stats()
    }

    fn messages_for(&self, page: &PageId, psid: &Psid) -> StoreResult<Vec<OutboundMessage>> {
        self.inner.messages_for(page, psid)
    }

    fn due_timers(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<DueTimer>> {
        self.inner.due_timers(now_ms, limit)
    }

    fn sweep_retention(
        &self,
        now_ms: u64,
        policy: &RetentionPolicy,
        max_records: usize,
    ) -> StoreResult<SweepReport> {
        self.inner.sweep_retention(now_ms, policy, max_records)
    }

    fn flush(&self) -> StoreResult<()> {
        self.inner.flush()
    }

    fn poll_unprocessed(&self, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        self.inner.poll_unprocessed(limit)
    }

    fn ownership(&self) -> Arc<crate::ownership::Ownership> {
        self.inner.ownership()
    }
}
