//! Topic notifications on sled: the record of each notification and the index of its pending
//! messages, changed inside the transactions that queue, finish or cancel those messages, so the
//! totals are never recomputed by scanning and survive a restart as they are.
//!
//! `Notifications` holds one [`Notification`] per (page, id); `NotificationMessages` marks
//! (notification id, outbox id) while the message is pending (the cancel reads it).

use super::SledStore;
use super::codec::{Key, KeyReader};
use super::outbox::{outbox_key, remove_pending};
use super::recurring;
use super::tokens;
use super::trees::{T, Tx, TxResult};
use crate::commit::{NotificationRun, TokenSendOutcome};
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::notification::{
    Notification, NotificationCancel, NotificationContent, NotificationId, NotificationState,
    NotificationTotals,
};
use crate::outbox::{OutboundKind, OutboundMessage, OutboundStatus};
use crate::store::StoreResult;
use botflow_flow::TopicId;

/// Pending messages of a cancelled notification removed per transaction.
const CANCEL_CHUNK: usize = 64;

fn record_key(page: &PageId, id: NotificationId) -> Vec<u8> {
    Key::new().str(page.as_str()).u64(id.0).finish()
}

fn message_key(id: NotificationId, outbox: OutboxId) -> Vec<u8> {
    Key::new().u64(id.0).u64(outbox.0).finish()
}

fn load(tx: &Tx<'_>, page: &PageId, id: NotificationId) -> TxResult<Notification> {
    Ok(tx
        .get(T::Notifications, &record_key(page, id))?
        .ok_or_else(|| StoreError::NotificationNotFound {
            page: page.clone(),
            id,
        })?)
}

fn save(tx: &Tx<'_>, record: &Notification) -> TxResult<()> {
    tx.put(
        T::Notifications,
        &record_key(&record.page, record.id),
        record,
    )
}

/// Indexes a notification that just became done or cancelled for the retention sweep.
fn note_finished(tx: &Tx<'_>, record: &Notification) -> TxResult<()> {
    match record.finished_ms {
        Some(at_ms) => {
            super::retention::note_notification(tx, &record_key(&record.page, record.id), at_ms)
        }
        None => Ok(()),
    }
}

/// Creates a notification record in state `queued` (ids from sled's id generator).
pub(super) fn create(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    content: &NotificationContent,
    now_ms: u64,
) -> TxResult<Notification> {
    let record = Notification {
        id: NotificationId(tx.generate_id()? + 1),
        page: page.clone(),
        topic: topic.clone(),
        content: content.clone(),
        state: NotificationState::Queued,
        totals: NotificationTotals::default(),
        all_queued: false,
        created_ms: now_ms,
        started_ms: None,
        finished_ms: None,
        runs: Default::default(),
    };
    save(tx, &record)?;
    Ok(record)
}

/// Makes queued messages the notification's, inside the transaction that queued them: each
/// carries the id and counts in `queued`; a message already finished counts its outcome too.
/// Adds `no_token` and `expired`. Returns those it removed at once because the notification was
/// cancelled.
pub(super) fn attach(
    tx: &Tx<'_>,
    page: &PageId,
    id: NotificationId,
    outbox: &[OutboxId],
    no_token: u64,
    expired: u64,
) -> TxResult<Vec<OutboxId>> {
    let mut record = load(tx, page, id)?;
    for &message_id in outbox {
        let key = outbox_key(message_id);
        let Some(mut message) = tx.get::<OutboundMessage>(T::Outbox, &key)? else {
            continue;
        };
        message.notification = Some(id);
        record.totals.queued += 1;
        if matches!(message.kind, OutboundKind::RecurringToken { .. }) {
            record.totals.recurring += 1;
        }
        if message.status.is_pending() {
            tx.mark(T::NotificationMessages, &message_key(id, message_id))?;
        } else {
            record.totals.count_final(&message.status);
        }
        if message.attempts > 0 || !message.status.is_pending() {
            record.start(message.created_ms);
        }
        tx.put(T::Outbox, &key, &message)?;
    }
    record.totals.no_token += no_token;
    record.totals.expired += expired;
    save(tx, &record)?;
    if let (NotificationState::Cancelled, Some(cancelled_ms)) = (record.state, record.finished_ms) {
        // Queued after the cancel (a long queuing, a flow run that reported late): removed at
        // once, as the cancel would have.
        let (removed, _restored) = cancel_messages(tx, page, id, outbox, cancelled_ms)?;
        return Ok(removed);
    }
    Ok(Vec::new())
}

/// Ends one subscriber's run of a flow notification inside the step commit that carries it:
/// its token sends become the notification's, the sends that found no token count, and the
/// last expected run closes the queuing. Returns the messages removed at once (cancelled).
/// A record already swept away counts nothing.
pub(super) fn end_run(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    run: &NotificationRun,
    sends: &[TokenSendOutcome],
    now_ms: u64,
) -> TxResult<Vec<OutboxId>> {
    let key = record_key(page, run.notification);
    if tx.get::<Notification>(T::Notifications, &key)?.is_none() {
        return Ok(Vec::new());
    }
    let (messages, no_token) = run.token_messages(sends);
    let removed = attach(tx, page, run.notification, &messages, no_token, 0)?;
    let mut record = load(tx, page, run.notification)?;
    if record.end_run(psid, run.failed) && record.settle(now_ms) {
        note_finished(tx, &record)?;
    }
    save(tx, &record)?;
    Ok(removed)
}

/// Sets a flow notification's expected runs (see [`crate::Store::expect_notification_runs`]).
fn expect_runs(
    tx: &Tx<'_>,
    page: &PageId,
    id: NotificationId,
    runs: u64,
    expired: u64,
    now_ms: u64,
) -> TxResult<Notification> {
    let mut record = load(tx, page, id)?;
    if record.expect_runs(runs, expired) && record.settle(now_ms) {
        note_finished(tx, &record)?;
    }
    save(tx, &record)?;
    Ok(record)
}

/// Marks the notification fully queued (it becomes `done` at once when nothing is pending).
pub(super) fn close_queuing(
    tx: &Tx<'_>,
    page: &PageId,
    id: NotificationId,
    now_ms: u64,
) -> TxResult<Notification> {
    let mut record = load(tx, page, id)?;
    record.all_queued = true;
    if record.settle(now_ms) {
        note_finished(tx, &record)?;
    }
    save(tx, &record)?;
    Ok(record)
}

/// Records that a send of `message` started (its first attempt), inside the transaction that
/// records it.
pub(super) fn note_attempt(tx: &Tx<'_>, message: &OutboundMessage, at_ms: u64) -> TxResult<()> {
    let Some(id) = message.notification else {
        return Ok(());
    };
    let Some(mut record) =
        tx.get::<Notification>(T::Notifications, &record_key(&message.page, id))?
    else {
        return Ok(());
    };
    if record.state == NotificationState::Queued || record.started_ms.is_none() {
        record.start(at_ms);
        save(tx, &record)?;
    }
    Ok(())
}

/// Counts the final `status` of `message` in its notification, inside the transaction that
/// records it.
pub(super) fn note_outcome(
    tx: &Tx<'_>,
    message: &OutboundMessage,
    status: &OutboundStatus,
    at_ms: u64,
) -> TxResult<()> {
    let Some(id) = message.notification else {
        return Ok(());
    };
    let Some(mut record) =
        tx.get::<Notification>(T::Notifications, &record_key(&message.page, id))?
    else {
        return Ok(());
    };
    tx.del(T::NotificationMessages, &message_key(id, message.id))?;
    record.totals.count_final(status);
    record.start(at_ms);
    if record.settle(at_ms) {
        note_finished(tx, &record)?;
    }
    save(tx, &record)
}

/// Removes the pending messages among `candidates` whose send has not started (never
/// attempted) and makes their tokens usable again; messages already attempted stay and finish
/// normally. Returns (removed, tokens restored).
fn cancel_messages(
    tx: &Tx<'_>,
    page: &PageId,
    id: NotificationId,
    candidates: &[OutboxId],
    now_ms: u64,
) -> TxResult<(Vec<OutboxId>, u64)> {
    let mut record = load(tx, page, id)?;
    let mut removed = Vec::new();
    let mut restored = 0;
    for &message_id in candidates {
        let Some(message) = tx.get::<OutboundMessage>(T::Outbox, &outbox_key(message_id))? else {
            tx.del(T::NotificationMessages, &message_key(id, message_id))?;
            continue;
        };
        if !message.status.is_pending() {
            tx.del(T::NotificationMessages, &message_key(id, message_id))?;
            continue;
        }
        if message.attempts > 0 {
            // Its send started (it may have reached Messenger): it finishes normally.
            continue;
        }
        remove_pending(tx, &message)?;
        tx.del(T::NotificationMessages, &message_key(id, message_id))?;
        let given_back = match (&message.kind, &message.token) {
            (OutboundKind::OtnToken { topic }, Some(token)) => {
                tokens::restore(tx, page, topic, token, message_id, now_ms)?
            }
            // A recurring token is not spent: its last send is given back instead.
            (OutboundKind::RecurringToken { .. }, Some(_)) => recurring::undo_send(tx, &message)?,
            _ => false,
        };
        restored += u64::from(given_back);
        record.totals.cancelled += 1;
        removed.push(message_id);
    }
    save(tx, &record)?;
    Ok((removed, restored))
}

impl SledStore {
    pub(super) fn notification_create(
        &self,
        page: &PageId,
        topic: &TopicId,
        content: &NotificationContent,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        if self.topic_get(page, topic)?.is_none() {
            return Err(StoreError::TopicNotFound {
                page: page.clone(),
                topic: topic.clone(),
            });
        }
        let record = self.transact(|tx| create(tx, page, topic, content, now_ms))?;
        self.durable()?;
        Ok(record)
    }

    pub(super) fn notification_expect_runs(
        &self,
        page: &PageId,
        id: NotificationId,
        runs: u64,
        expired: u64,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        let record = self.transact(|tx| expect_runs(tx, page, id, runs, expired, now_ms))?;
        self.durable()?;
        Ok(record)
    }

    pub(super) fn notification_close_queuing(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        let record = self.transact(|tx| close_queuing(tx, page, id, now_ms))?;
        self.durable()?;
        Ok(record)
    }

    pub(super) fn notification_get(
        &self,
        page: &PageId,
        id: NotificationId,
    ) -> StoreResult<Option<Notification>> {
        self.read(T::Notifications, &record_key(page, id))
    }

    pub(super) fn notification_list(
        &self,
        page: &PageId,
        topic: Option<&TopicId>,
    ) -> StoreResult<Vec<Notification>> {
        let mut all: Vec<Notification> = self.scan(T::Notifications, &Self::page_key(page))?;
        all.retain(|n| topic.is_none_or(|t| &n.topic == t));
        all.reverse();
        Ok(all)
    }

    pub(super) fn notification_cancel(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<NotificationCancel> {
        self.transact(|tx| {
            let mut record = load(tx, page, id)?;
            if !record.state.is_running() {
                return Err(StoreError::NotificationFinished {
                    id,
                    state: record.state.as_str(),
                }
                .into());
            }
            record.state = NotificationState::Cancelled;
            record.finished_ms = Some(now_ms);
            note_finished(tx, &record)?;
            save(tx, &record)
        })?;
        let (removed, tokens_restored) = self.remove_cancelled(page, id, now_ms)?;
        self.durable()?;
        let notification =
            self.notification_get(page, id)?
                .ok_or_else(|| StoreError::NotificationNotFound {
                    page: page.clone(),
                    id,
                })?;
        Ok(NotificationCancel {
            notification,
            removed,
            tokens_restored,
        })
    }

    /// Removes the not-yet-attempted pending messages of a cancelled notification, in bounded
    /// transactions walking its message index once.
    fn remove_cancelled(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<(u64, u64)> {
        let prefix = Key::new().u64(id.0).finish();
        let mut after: Option<Vec<u8>> = None;
        let (mut removed, mut restored) = (0, 0);
        loop {
            let tree = self.tree(T::NotificationMessages);
            let start = match &after {
                None => std::ops::Bound::Included(prefix.clone()),
                Some(last) => std::ops::Bound::Excluded(last.clone()),
            };
            let keys: Vec<sled::IVec> = tree
                .range((start, std::ops::Bound::Unbounded))
                .keys()
                .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(&prefix)))
                .take(CANCEL_CHUNK)
                .collect::<Result<_, _>>()?;
            let Some(last) = keys.last() else { break };
            after = Some(last.to_vec());
            let mut candidates = Vec::with_capacity(keys.len());
            for key in &keys {
                let mut reader = KeyReader::new(key);
                let _id = reader.u64()?;
                candidates.push(OutboxId(reader.u64()?));
            }
            let (gone, back) =
                self.transact(|tx| cancel_messages(tx, page, id, &candidates, now_ms))?;
            self.count_outbox(|s| s.pending = s.pending.saturating_sub(gone.len() as u64));
            removed += gone.len() as u64;
            restored += back;
        }
        Ok((removed, restored))
    }

    /// At open (nothing else writes; the store reads no clock, so the records' own times are
    /// used): closes the queuing of notifications a crash cut short (what was queued drains)
    /// and finishes cancels a crash interrupted, judging token expiry at the cancel's time.
    pub(super) fn notifications_resume(&self) -> StoreResult<()> {
        let all: Vec<Notification> = self.scan(T::Notifications, &[])?;
        for record in all {
            // A flow notification with its runs journaled closes with its last run.
            if !record.all_queued && record.state.is_running() && record.runs.expected.is_none() {
                let at = record.started_ms.unwrap_or(record.created_ms);
                self.transact(|tx| close_queuing(tx, &record.page, record.id, at))?;
            }
            if let (NotificationState::Cancelled, Some(now_ms)) = (record.state, record.finished_ms)
            {
                let prefix = Key::new().u64(record.id.0).finish();
                if self
                    .tree(T::NotificationMessages)
                    .scan_prefix(&prefix)
                    .next()
                    .is_some()
                {
                    self.remove_cancelled(&record.page, record.id, now_ms)?;
                }
            }
        }
        self.durable()
    }
}
