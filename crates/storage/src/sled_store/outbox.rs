//! The outbound queue on sled: per-subscriber FIFO, a due index of queue heads, final states.

use super::SledStore;
use super::codec::{Key, KeyReader};
use super::tokens;
use super::trees::{T, Tx, TxResult};
use crate::commit::OutboxStats;
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::outbox::{NewOutbound, OutboundKind, OutboundMessage, OutboundStatus};
use crate::store::StoreResult;
use crate::token::TokenMark;

pub(super) fn outbox_key(id: OutboxId) -> Vec<u8> {
    Key::new().u64(id.0).finish()
}

fn queue_key(page: &PageId, psid: &Psid) -> Vec<u8> {
    Key::new().str(page.as_str()).str(psid.as_str()).finish()
}

fn due_key(due_ms: u64, id: OutboxId) -> Vec<u8> {
    Key::new().u64(due_ms).u64(id.0).finish()
}

fn message_index_key(page: &PageId, psid: &Psid, id: OutboxId) -> Vec<u8> {
    Key::new()
        .str(page.as_str())
        .str(psid.as_str())
        .u64(id.0)
        .finish()
}

/// A new outbox id: increasing across the store, with gaps (ids are shared by record kinds).
pub(super) fn reserve_id(tx: &Tx<'_>) -> TxResult<OutboxId> {
    Ok(OutboxId(tx.generate_id()? + 1))
}

/// Queues a message with id `id` (from [`reserve_id`]) behind the subscriber's pending ones.
pub(super) fn enqueue(
    tx: &Tx<'_>,
    id: OutboxId,
    page: &PageId,
    psid: &Psid,
    new: &NewOutbound,
    token: Option<String>,
    now_ms: u64,
) -> TxResult<OutboxId> {
    let message = OutboundMessage {
        id,
        page: page.clone(),
        psid: psid.clone(),
        body: new.body.clone(),
        kind: new.kind.clone(),
        token,
        attempts: 0,
        due_ms: now_ms,
        created_ms: now_ms,
        status: OutboundStatus::Pending,
        last_error: None,
        notification: None,
    };
    tx.put(T::Outbox, &outbox_key(id), &message)?;
    tx.mark(T::SubMessages, &message_index_key(page, psid, id))?;
    let qkey = queue_key(page, psid);
    let mut queue: Vec<OutboxId> = tx.get(T::SubQueue, &qkey)?.unwrap_or_default();
    if queue.is_empty() {
        tx.mark(T::OutboxDue, &due_key(now_ms, id))?;
    }
    queue.push(id);
    tx.put(T::SubQueue, &qkey, &queue)?;
    Ok(id)
}

fn load_pending(tx: &Tx<'_>, id: OutboxId) -> TxResult<OutboundMessage> {
    let message: OutboundMessage = tx
        .get(T::Outbox, &outbox_key(id))?
        .ok_or(StoreError::OutboundNotFound(id))?;
    if !message.status.is_pending() {
        return Err(StoreError::OutboundNotPending {
            id,
            status: status_word(&message.status),
        }
        .into());
    }
    Ok(message)
}

fn status_word(status: &OutboundStatus) -> &'static str {
    match status {
        OutboundStatus::Pending => "pending",
        OutboundStatus::Sent { .. } => "sent",
        OutboundStatus::Failed { .. } => "failed",
        OutboundStatus::RefusedByPolicy { .. } => "refused_by_policy",
        OutboundStatus::DeliveredUnconfirmed { .. } => "delivered_unconfirmed",
    }
}

/// Takes a pending message out of its subscriber's queue (and the due index when it was the
/// head, making the next one due).
fn unqueue(tx: &Tx<'_>, message: &OutboundMessage) -> TxResult<()> {
    let id = message.id;
    let qkey = queue_key(&message.page, &message.psid);
    let mut queue: Vec<OutboxId> = tx.get(T::SubQueue, &qkey)?.unwrap_or_default();
    let was_head = queue.first() == Some(&id);
    queue.retain(|queued| *queued != id);
    if was_head {
        tx.del(T::OutboxDue, &due_key(message.due_ms, id))?;
        if let Some(&next) = queue.first() {
            let next_message: OutboundMessage = tx
                .get(T::Outbox, &outbox_key(next))?
                .ok_or(StoreError::OutboundNotFound(next))?;
            tx.mark(T::OutboxDue, &due_key(next_message.due_ms, next))?;
        }
    }
    if queue.is_empty() {
        tx.del(T::SubQueue, &qkey)
    } else {
        tx.put(T::SubQueue, &qkey, &queue)
    }
}

/// Removes a pending message from the outbox altogether, as if it had never been queued (a
/// cancelled notification's message; the caller gives its token back).
pub(super) fn remove_pending(tx: &Tx<'_>, message: &OutboundMessage) -> TxResult<()> {
    unqueue(tx, message)?;
    tx.del(
        T::SubMessages,
        &message_index_key(&message.page, &message.psid, message.id),
    )?;
    tx.del(T::Outbox, &outbox_key(message.id))
}

/// Gives a pending message its final status and moves its subscriber's queue on, inside a
/// transaction; a permanent failure of a token send marks its token invalid. Returns whether it
/// is a token send.
pub(super) fn finish(tx: &Tx<'_>, id: OutboxId, status: &OutboundStatus) -> TxResult<bool> {
    let mut message = load_pending(tx, id)?;
    let token_send = matches!(message.kind, OutboundKind::OtnToken { .. });
    unqueue(tx, &message)?;
    if let (OutboundStatus::Failed { error, at_ms }, OutboundKind::OtnToken { .. }, Some(token)) =
        (status, &message.kind, &message.token)
    {
        // Any permanent error on a token send means the token is not usable any more.
        let mark = TokenMark::Invalid {
            reason: error.clone(),
        };
        match tokens::mark(tx, &message.page, token, &mark, *at_ms) {
            Ok(_)
            | Err(sled::transaction::ConflictableTransactionError::Abort(
                StoreError::TokenNotFound { .. },
            )) => {}
            Err(err) => return Err(err),
        }
    }
    if let (
        OutboundStatus::Failed { error, at_ms },
        OutboundKind::RecurringToken { .. },
        Some(token),
    ) = (status, &message.kind, &message.token)
    {
        // The same rule for recurring tokens: a permanent error (expired, revoked) retires it.
        super::recurring::retire(tx, &message.page, token, error, *at_ms)?;
    }
    if let (OutboundStatus::DeliveredUnconfirmed { .. }, OutboundKind::OtnToken { topic }) =
        (status, &message.kind)
    {
        super::ledger::note_delivered_unconfirmed(tx, &message.page, topic)?;
    }
    if let Some(at_ms) = super::retention::finished_ms(status) {
        super::notifications::note_outcome(tx, &message, status, at_ms)?;
    }
    message.status = status.clone();
    let key = outbox_key(id);
    tx.put(T::Outbox, &key, &message)?;
    if let Some(at_ms) = super::retention::finished_ms(status) {
        super::retention::note_message(tx, &key, at_ms)?;
    }
    Ok(token_send)
}

/// Records a failed attempt inside a transaction: the message stays at its queue's head and is
/// due again at `due_ms`. Returns whether it is a token send.
pub(super) fn retry(tx: &Tx<'_>, id: OutboxId, due_ms: u64, error: &str) -> TxResult<bool> {
    let mut message = load_pending(tx, id)?;
    let token_send = matches!(message.kind, OutboundKind::OtnToken { .. });
    let old_due = due_key(message.due_ms, id);
    if tx.contains(T::OutboxDue, &old_due)? {
        tx.del(T::OutboxDue, &old_due)?;
        tx.mark(T::OutboxDue, &due_key(due_ms, id))?;
    }
    if message.attempts == 0 {
        super::notifications::note_attempt(tx, &message, due_ms)?;
    }
    message.attempts += 1;
    message.due_ms = due_ms;
    message.last_error = Some(error.to_owned());
    tx.put(T::Outbox, &outbox_key(id), &message)?;
    Ok(token_send)
}

impl SledStore {
    /// Gives a pending message its final status (durable).
    pub(super) fn outbox_finish(&self, id: OutboxId, status: OutboundStatus) -> StoreResult<()> {
        self.transact(|tx| finish(tx, id, &status))?;
        self.count_final(&status);
        self.durable()
    }

    /// Counts a message that left the pending state with `status`.
    pub(super) fn count_final(&self, status: &OutboundStatus) {
        self.count_outbox(|s| {
            s.pending = s.pending.saturating_sub(1);
            match status {
                OutboundStatus::Pending => s.pending += 1,
                OutboundStatus::Sent { .. } => s.sent += 1,
                OutboundStatus::Failed { .. } => s.failed += 1,
                OutboundStatus::RefusedByPolicy { .. } => s.refused += 1,
                OutboundStatus::DeliveredUnconfirmed { .. } => s.delivered_unconfirmed += 1,
            }
        });
    }

    /// Updates the in-memory outbox figures after a commit.
    pub(super) fn count_outbox(&self, f: impl FnOnce(&mut OutboxStats)) {
        f(&mut self
            .outbox_stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// The pending count from the queues, for the figures at open.
    pub(super) fn count_pending(&self) -> StoreResult<u64> {
        let mut pending = 0;
        for item in self.tree(T::SubQueue).iter() {
            let (_, value) = item?;
            let queue: Vec<OutboxId> = super::codec::decode("sub_queue", &value)?;
            pending += queue.len() as u64;
        }
        Ok(pending)
    }

    pub(super) fn outbox_retry(&self, id: OutboxId, due_ms: u64, error: &str) -> StoreResult<()> {
        self.transact(|tx| retry(tx, id, due_ms, error))?;
        self.durable()
    }

    pub(super) fn outbox_due(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &dyn Fn(OutboxId) -> bool,
    ) -> StoreResult<Vec<OutboundMessage>> {
        let end = Key::new().u64(now_ms.saturating_add(1)).finish();
        let mut due = Vec::new();
        for item in self.tree(T::OutboxDue).range(..end) {
            if due.len() >= limit {
                break;
            }
            let (key, _) = item?;
            let mut reader = KeyReader::new(&key);
            let _due = reader.u64()?;
            let id = OutboxId(reader.u64()?);
            if skip(id) {
                continue;
            }
            if let Some(message) = self.read::<OutboundMessage>(T::Outbox, &outbox_key(id))? {
                due.push(message);
            }
        }
        Ok(due)
    }

    pub(super) fn outbox_messages_for(
        &self,
        page: &PageId,
        psid: &Psid,
    ) -> StoreResult<Vec<OutboundMessage>> {
        let mut messages = Vec::new();
        for key in self.scan_keys(T::SubMessages, &queue_key(page, psid))? {
            let mut reader = KeyReader::new(&key);
            let (_page, _psid) = (reader.str()?, reader.str()?);
            let id = OutboxId(reader.u64()?);
            if let Some(message) = self.read(T::Outbox, &outbox_key(id))? {
                messages.push(message);
            }
        }
        Ok(messages)
    }
}
