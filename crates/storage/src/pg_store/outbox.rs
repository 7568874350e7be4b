//! The outbox on PostgreSQL: queueing behind a subscriber's pending messages, the head table
//! the dispatcher polls, outcomes (one or many per transaction), stats.

use super::PgStore;
use super::db::{Cached, Fail, Tx, TxResult, big, decode, encode, shard_of, unbig};
use super::{ledger, notifications, recurring, tokens};
use crate::commit::OutboxStats;
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::outbox::{NewOutbound, OutboundKind, OutboundMessage, OutboundStatus};
use crate::outcome::Outcome;
use crate::store::StoreResult;
use crate::token::TokenMark;

/// The `status` column of a status.
fn status_code(status: &OutboundStatus) -> i16 {
    match status {
        OutboundStatus::Pending => 0,
        OutboundStatus::Sent { .. } => 1,
        OutboundStatus::Failed { .. } => 2,
        OutboundStatus::RefusedByPolicy { .. } => 3,
        OutboundStatus::DeliveredUnconfirmed { .. } => 4,
    }
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

/// A new outbox id (increasing).
pub(super) fn reserve_id(tx: &mut Tx<'_, '_>) -> TxResult<OutboxId> {
    let row = tx.query_one("SELECT nextval('outbox_ids')", &[])?;
    Ok(OutboxId(unbig(row.get(0))))
}

/// Queues a message behind the subscriber's pending ones (it becomes the head of an empty
/// queue, due at once).
pub(super) fn enqueue(
    tx: &mut Tx<'_, '_>,
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
    let shard = shard_of(page.as_str());
    tx.execute(
        "INSERT INTO outbox (id, page_id, psid, shard, status, token, rec)
         VALUES ($1, $2, $3, $4, 0, $5, $6)",
        &[
            &big(id.0),
            &page.as_str(),
            &psid.as_str(),
            &shard,
            // only a one-time token pays for one message; a recurring one pays once a period
            &matches!(message.kind, OutboundKind::OtnToken { .. })
                .then_some(message.token.as_deref())
                .flatten(),
            &encode("outbox", &message)?,
        ],
    )?;
    tx.execute(
        "INSERT INTO outbox_heads (page_id, psid, shard, head_id, due_ms)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (page_id, psid) DO NOTHING",
        &[
            &page.as_str(),
            &psid.as_str(),
            &shard,
            &big(id.0),
            &big(now_ms),
        ],
    )?;
    Ok(id)
}

fn load(tx: &mut Tx<'_, '_>, id: OutboxId) -> TxResult<Option<OutboundMessage>> {
    let row = tx.query_opt(
        "SELECT rec FROM outbox WHERE id = $1 FOR UPDATE",
        &[&big(id.0)],
    )?;
    Ok(row.map(|r| decode("outbox", r.get(0))).transpose()?)
}

fn load_pending(tx: &mut Tx<'_, '_>, id: OutboxId) -> TxResult<OutboundMessage> {
    let message = load(tx, id)?.ok_or(StoreError::OutboundNotFound(id))?;
    if !message.status.is_pending() {
        return Err(StoreError::OutboundNotPending {
            id,
            status: status_word(&message.status),
        }
        .into());
    }
    Ok(message)
}

/// When a message finished (any status but pending), for the retention sweep.
pub(super) fn finished_ms(status: &OutboundStatus) -> Option<u64> {
    match status {
        OutboundStatus::Pending => None,
        OutboundStatus::Sent { at_ms, .. }
        | OutboundStatus::Failed { at_ms, .. }
        | OutboundStatus::RefusedByPolicy { at_ms, .. }
        | OutboundStatus::DeliveredUnconfirmed { at_ms } => Some(*at_ms),
    }
}

/// Writes a message back (record and the columns queries use).
pub(super) fn save(tx: &mut Tx<'_, '_>, message: &OutboundMessage) -> TxResult<()> {
    tx.execute(
        "UPDATE outbox SET status = $2, rec = $3, finished_ms = $4, notification_id = $5
         WHERE id = $1",
        &[
            &big(message.id.0),
            &status_code(&message.status),
            &encode("outbox", message)?,
            &finished_ms(&message.status).map(big),
            &message.notification.map(|n| big(n.0)),
        ],
    )?;
    Ok(())
}

/// Removes a pending message whose send never started (a cancelled notification's).
pub(super) fn remove_pending(tx: &mut Tx<'_, '_>, message: &OutboundMessage) -> TxResult<()> {
    advance_head(tx, message)?;
    tx.execute("DELETE FROM outbox WHERE id = $1", &[&big(message.id.0)])?;
    Ok(())
}

/// One message (locked), if it exists.
pub(super) fn load_for_update(
    tx: &mut Tx<'_, '_>,
    id: OutboxId,
) -> TxResult<Option<OutboundMessage>> {
    load(tx, id)
}

/// After a message left the pending state: when it was the head, the next pending message of
/// the subscriber becomes the head (or the queue has none).
fn advance_head(tx: &mut Tx<'_, '_>, message: &OutboundMessage) -> TxResult<()> {
    let (page, psid) = (message.page.as_str(), message.psid.as_str());
    // the subscriber's row first, as every transaction about a subscriber: a step commit
    // queueing a message behind this one cannot interleave (its `ON CONFLICT DO NOTHING` on the
    // head takes no predicate lock, so without this the head could be deleted while a new
    // message went in behind it, and the next message jump the queue)
    super::journal::lock_subscriber(tx, &message.page, &message.psid)?;
    let head = tx.query_opt(
        "SELECT head_id FROM outbox_heads WHERE page_id = $1 AND psid = $2 FOR UPDATE",
        &[&page, &psid],
    )?;
    if head.is_none_or(|h| unbig(h.get(0)) != message.id.0) {
        return Ok(());
    }
    let next = tx.query_opt(
        "SELECT rec FROM outbox WHERE page_id = $1 AND psid = $2 AND status = 0 AND id <> $3
         ORDER BY id LIMIT 1",
        &[&page, &psid, &big(message.id.0)],
    )?;
    match next {
        Some(row) => {
            let next: OutboundMessage = decode("outbox", row.get(0))?;
            tx.execute(
                "UPDATE outbox_heads SET head_id = $3, due_ms = $4 WHERE page_id = $1 AND psid = $2",
                &[&page, &psid, &big(next.id.0), &big(next.due_ms)],
            )?;
        }
        None => {
            tx.execute(
                "DELETE FROM outbox_heads WHERE page_id = $1 AND psid = $2",
                &[&page, &psid],
            )?;
        }
    }
    Ok(())
}

/// Gives a pending message its final status; whether it was a token send.
pub(super) fn finish(tx: &mut Tx<'_, '_>, id: OutboxId, status: &OutboundStatus) -> TxResult<bool> {
    let mut message = load_pending(tx, id)?;
    let token_send = matches!(message.kind, OutboundKind::OtnToken { .. });
    if let (OutboundStatus::Failed { error, at_ms }, OutboundKind::OtnToken { .. }, Some(token)) =
        (status, &message.kind, &message.token)
    {
        let mark = TokenMark::Invalid {
            reason: error.clone(),
        };
        match tokens::mark(tx, &message.page, token, &mark, *at_ms) {
            Ok(_) | Err(Fail::Store(StoreError::TokenNotFound { .. })) => {}
            Err(err) => return Err(err),
        }
    }
    if let (
        OutboundStatus::Failed { error, at_ms },
        OutboundKind::RecurringToken { .. },
        Some(token),
    ) = (status, &message.kind, &message.token)
    {
        recurring::retire(tx, &message.page, token, error, *at_ms)?;
    }
    if let (OutboundStatus::DeliveredUnconfirmed { .. }, OutboundKind::OtnToken { topic }) =
        (status, &message.kind)
    {
        ledger::note_delivered_unconfirmed(tx, &message.page, topic)?;
    }
    if let Some(at_ms) = finished_ms(status) {
        notifications::note_outcome(tx, &message, status, at_ms)?;
    }
    message.status = status.clone();
    save(tx, &message)?;
    advance_head(tx, &message)?;
    Ok(token_send)
}

/// Records a failed attempt; the message stays at its queue's head, due at `due_ms`.
pub(super) fn retry(tx: &mut Tx<'_, '_>, id: OutboxId, due_ms: u64, error: &str) -> TxResult<bool> {
    let mut message = load_pending(tx, id)?;
    let token_send = matches!(message.kind, OutboundKind::OtnToken { .. });
    if message.attempts == 0 {
        notifications::note_attempt(tx, &message, due_ms)?;
    }
    message.attempts += 1;
    message.due_ms = due_ms;
    message.last_error = Some(error.to_owned());
    save(tx, &message)?;
    tx.execute(
        "UPDATE outbox_heads SET due_ms = $4 WHERE page_id = $1 AND psid = $2 AND head_id = $3",
        &[
            &message.page.as_str(),
            &message.psid.as_str(),
            &big(id.0),
            &big(due_ms),
        ],
    )?;
    Ok(token_send)
}

/// The final status an outcome gives its message (`None` for a retry).
fn final_status(outcome: &Outcome) -> Option<OutboundStatus> {
    match outcome {
        Outcome::Sent {
            message_id, at_ms, ..
        } => Some(OutboundStatus::Sent {
            message_id: message_id.clone(),
            at_ms: *at_ms,
        }),
        Outcome::Retry { .. } => None,
        Outcome::Failed { error, at_ms, .. } => Some(OutboundStatus::Failed {
            error: error.clone(),
            at_ms: *at_ms,
        }),
        Outcome::Refused { reason, at_ms, .. } => Some(OutboundStatus::RefusedByPolicy {
            reason: reason.clone(),
            at_ms: *at_ms,
        }),
        Outcome::DeliveredUnconfirmed { at_ms, .. } => {
            Some(OutboundStatus::DeliveredUnconfirmed { at_ms: *at_ms })
        }
    }
}

/// One outcome with the effect of its single `mark_*` call; whether it was a token send.
fn apply_outcome(tx: &mut Tx<'_, '_>, outcome: &Outcome) -> TxResult<bool> {
    match outcome {
        Outcome::Sent {
            id,
            message_id,
            at_ms,
        } => finish(
            tx,
            *id,
            &OutboundStatus::Sent {
                message_id: message_id.clone(),
                at_ms: *at_ms,
            },
        ),
        Outcome::Retry { id, due_ms, error } => retry(tx, *id, *due_ms, error),
        Outcome::Failed { id, error, at_ms } => finish(
            tx,
            *id,
            &OutboundStatus::Failed {
                error: error.clone(),
                at_ms: *at_ms,
            },
        ),
        Outcome::Refused { id, reason, at_ms } => finish(
            tx,
            *id,
            &OutboundStatus::RefusedByPolicy {
                reason: reason.clone(),
                at_ms: *at_ms,
            },
        ),
        Outcome::DeliveredUnconfirmed { id, at_ms } => finish(
            tx,
            *id,
            &OutboundStatus::DeliveredUnconfirmed { at_ms: *at_ms },
        ),
    }
}

impl PgStore {
    pub(super) fn outcomes_mark(&self, outcomes: &[Outcome]) -> StoreResult<Vec<StoreResult<()>>> {
        // Token sends are known before the transaction (their kind never changes), so the
        // commit is synchronous exactly when one of them is in the batch.
        let durable = self.any_token_send(outcomes)?;
        let ids: Vec<i64> = outcomes.iter().map(|o| big(o.id().0)).collect();
        let ownership = self.leases.ownership();
        let results = self.pool.write("mark_outcomes", durable, |tx| {
            // an outcome of a shard this node no longer holds fails alone; the others are
            // fenced together
            let rows = tx.query("SELECT id, shard FROM outbox WHERE id = ANY($1)", &[&ids])?;
            let shards: std::collections::HashMap<i64, i32> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let lost = |id: OutboxId| {
                shards
                    .get(&big(id.0))
                    .and_then(|&shard| ownership.not_held(u32::try_from(shard).unwrap_or(u32::MAX)))
            };
            let held: Vec<i32> = shards
                .values()
                .copied()
                .filter(|s| {
                    ownership
                        .lease(u32::try_from(*s).unwrap_or(u32::MAX))
                        .is_some()
                })
                .collect();
            super::leases::fence(tx, ownership, &held)?;
            let mut results = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                if let Some(error) = lost(outcome.id()) {
                    results.push(Err(error));
                    continue;
                }
                // each outcome in a savepoint, so a refused one changes nothing and fails alone
                let mut sub = tx.inner.transaction()?;
                let applied = apply_outcome(
                    &mut Cached {
                        inner: &mut sub,
                        statements: &mut *tx.statements,
                    },
                    outcome,
                );
                match applied {
                    Ok(_) => {
                        sub.commit()?;
                        results.push(Ok(()));
                    }
                    Err(Fail::Store(err)) => {
                        sub.rollback()?;
                        results.push(Err(err));
                    }
                    Err(Fail::Db(err)) => return Err(Fail::Db(err)),
                }
            }
            Ok(results)
        })?;
        let finals: Vec<OutboundStatus> = outcomes
            .iter()
            .zip(&results)
            .filter(|(_, result)| result.is_ok())
            .filter_map(|(outcome, _)| final_status(outcome))
            .collect();
        self.count_outcomes(finals.iter());
        Ok(results)
    }

    fn any_token_send(&self, outcomes: &[Outcome]) -> StoreResult<bool> {
        let ids: Vec<i64> = outcomes.iter().map(|o| big(o.id().0)).collect();
        self.pool.read("mark_outcomes", |c| {
            let row = c.query_one(
                "SELECT count(*) FROM outbox WHERE id = ANY($1) AND token IS NOT NULL",
                &[&ids],
            )?;
            Ok(row.get::<_, i64>(0) > 0)
        })
    }

    /// The due heads, earliest first, passing over those `skip` names (the caller's sends in
    /// flight) without reading their messages; `limit` counts only the messages returned.
    pub(super) fn outbox_due_skipping(
        &self,
        now_ms: u64,
        limit: usize,
        skip: &dyn Fn(OutboxId) -> bool,
    ) -> StoreResult<Vec<OutboundMessage>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // heads in pages (keyset by due time and id), so a skipped one costs an index row;
        // of the shards this node may send for
        let shards = self.dispatchable_shards();
        if shards.is_empty() {
            return Ok(Vec::new());
        }
        let page = big(limit.saturating_add(64) as u64);
        let mut after: (i64, i64) = (i64::MIN, i64::MIN);
        let mut wanted: Vec<i64> = Vec::new();
        loop {
            let heads: Vec<(i64, i64)> = self.pool.read("due_outbound", |c| {
                let rows = c.query(
                    "SELECT due_ms, head_id FROM outbox_heads
                     WHERE due_ms <= $1 AND (due_ms, head_id) > ($2, $3) AND shard = ANY($5)
                     ORDER BY due_ms, head_id LIMIT $4",
                    &[&big(now_ms), &after.0, &after.1, &page, &shards],
                )?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            for &(due, id) in &heads {
                after = (due, id);
                if wanted.len() < limit && !skip(OutboxId(unbig(id))) {
                    wanted.push(id);
                }
            }
            if wanted.len() >= limit || i64::try_from(heads.len()).unwrap_or(0) < page {
                break;
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut messages: Vec<OutboundMessage> = self.pool.read("due_outbound", |c| {
            let rows = c.query("SELECT rec FROM outbox WHERE id = ANY($1)", &[&wanted])?;
            Ok(rows
                .iter()
                .map(|r| decode("outbox", r.get(0)))
                .collect::<Result<_, _>>()?)
        })?;
        let order: std::collections::HashMap<u64, usize> = wanted
            .iter()
            .enumerate()
            .map(|(at, id)| (unbig(*id), at))
            .collect();
        messages.sort_by_key(|m| order.get(&m.id.0).copied().unwrap_or(usize::MAX));
        Ok(messages)
    }

    pub(super) fn outbox_get(&self, id: OutboxId) -> StoreResult<Option<OutboundMessage>> {
        self.pool.read("outbound", |c| {
            let row = c.query_opt("SELECT rec FROM outbox WHERE id = $1", &[&big(id.0)])?;
            Ok(row.map(|r| decode("outbox", r.get(0))).transpose()?)
        })
    }

    pub(super) fn outbox_messages_for(
        &self,
        page: &PageId,
        psid: &Psid,
    ) -> StoreResult<Vec<OutboundMessage>> {
        self.pool.read("messages_for", |c| {
            let rows = c.query(
                "SELECT rec FROM outbox WHERE page_id = $1 AND psid = $2 ORDER BY id",
                &[&page.as_str(), &psid.as_str()],
            )?;
            Ok(rows
                .iter()
                .map(|r| decode("outbox", r.get(0)))
                .collect::<Result<_, _>>()?)
        })
    }

    /// Queue figures: pending counted in the database, outcomes counted since the store was
    /// opened (as the sled store does; the retention sweep changes neither).
    pub(super) fn stats(&self) -> StoreResult<OutboxStats> {
        let pending = self.pool.read("outbox_stats", |c| {
            Ok(unbig(
                c.query_one("SELECT count(*) FROM outbox WHERE status = 0", &[])?
                    .get(0),
            ))
        })?;
        let mut stats = *self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stats.pending = pending;
        Ok(stats)
    }

    /// Counts outcomes that committed.
    pub(super) fn count_outcomes<'a>(&self, statuses: impl Iterator<Item = &'a OutboundStatus>) {
        let mut stats = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for status in statuses {
            match status {
                OutboundStatus::Pending => {}
                OutboundStatus::Sent { .. } => stats.sent += 1,
                OutboundStatus::Failed { .. } => stats.failed += 1,
                OutboundStatus::RefusedByPolicy { .. } => stats.refused += 1,
                OutboundStatus::DeliveredUnconfirmed { .. } => stats.delivered_unconfirmed += 1,
            }
        }
    }
}
