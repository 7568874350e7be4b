//! Recurring notification tokens on sled: opt-in, stop/resume, retire, and the recurring pass of
//! a topic notification, each in one transaction with the topic's ledger counters.
//!
//! `Recurring` holds one [`RecurringToken`] per (page, token value); `RecurringHolders` maps
//! (page, topic, psid) to the token value that subscriber holds now (one per topic: a newer
//! opt-in retires the older token). A send never spends a token: it records `last_sent_ms`
//! (and keeps the one before, given back by [`undo_send`] when the message is cancelled unsent).

use super::SledStore;
use super::ledger;
use super::notifications;
use super::outbox::{enqueue, reserve_id};
use super::tokens::{holder_key, token_key};
use super::topics::live_topic;
use super::trees::{T, Tx, TxResult};
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::outbox::{NewOutbound, OutboundKind, OutboundMessage};
use crate::recurring::{
    RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringPass, RecurringSkip,
    RecurringStatus, RecurringToken,
};
use crate::store::{BodyFor, StoreResult};
use botflow_flow::TopicId;

/// Writes a token whose status changed from `from`, moving it between the ledger's counters.
fn put_changed(tx: &Tx<'_>, token: &RecurringToken, from: &RecurringStatus) -> TxResult<()> {
    ledger::note_recurring_change(tx, &token.page, &token.topic, from, &token.status)?;
    tx.put(T::Recurring, &token_key(&token.page, &token.token), token)
}

/// Retires the token (never usable again) and drops it from the holders; a no-op for a token
/// that is unknown or retired already.
pub(super) fn retire(
    tx: &Tx<'_>,
    page: &PageId,
    token: &str,
    reason: &str,
    at_ms: u64,
) -> TxResult<bool> {
    let Some(mut stored): Option<RecurringToken> = tx.get(T::Recurring, &token_key(page, token))?
    else {
        return Ok(false);
    };
    if matches!(stored.status, RecurringStatus::Retired { .. }) {
        return Ok(false);
    }
    let from = std::mem::replace(
        &mut stored.status,
        RecurringStatus::Retired {
            reason: reason.to_owned(),
            at_ms,
        },
    );
    let hkey = holder_key(page, &stored.topic, &stored.psid);
    if tx.get::<String>(T::RecurringHolders, &hkey)?.as_deref() == Some(token) {
        tx.del(T::RecurringHolders, &hkey)?;
    }
    put_changed(tx, &stored, &from)?;
    Ok(true)
}

/// Applies an opt-in, stop or resume (see [`crate::Store::recurring_change`]).
fn apply_change(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    change: &RecurringChange,
    now_ms: u64,
) -> TxResult<RecurringChanged> {
    let (token, stop) = match change {
        RecurringChange::Optin(optin) => {
            let key = token_key(page, &optin.token);
            if tx.contains(T::Recurring, &key)? {
                return Ok(RecurringChanged::Unchanged);
            }
            if live_topic(tx, page, &optin.topic)?.is_none() {
                return Ok(RecurringChanged::TopicMissing);
            }
            let hkey = holder_key(page, &optin.topic, psid);
            if let Some(older) = tx.get::<String>(T::RecurringHolders, &hkey)? {
                retire(tx, page, &older, "replaced by a newer opt-in", now_ms)?;
            }
            let stored = RecurringToken {
                page: page.clone(),
                psid: psid.clone(),
                topic: optin.topic.clone(),
                token: optin.token.clone(),
                frequency: optin.frequency,
                timezone: optin.timezone.clone(),
                created_ms: optin.created_ms,
                expires_ms: optin.expires_ms,
                last_sent_ms: None,
                previous_sent_ms: None,
                status: RecurringStatus::Active,
            };
            ledger::note_recurring_optin(tx, page, &optin.topic, optin.created_ms)?;
            tx.put(T::Recurring, &key, &stored)?;
            tx.put(T::RecurringHolders, &hkey, &optin.token)?;
            return Ok(RecurringChanged::Stored);
        }
        RecurringChange::Stop { token } => (token, true),
        RecurringChange::Resume { token } => (token, false),
    };
    let Some(mut stored): Option<RecurringToken> = tx.get(T::Recurring, &token_key(page, token))?
    else {
        return Ok(RecurringChanged::UnknownToken);
    };
    let next = match (&stored.status, stop) {
        (RecurringStatus::Retired { .. }, _) => return Ok(RecurringChanged::UnknownToken),
        (RecurringStatus::Active, true) => RecurringStatus::Stopped { at_ms: now_ms },
        (RecurringStatus::Stopped { .. }, false) => RecurringStatus::Active,
        _ => return Ok(RecurringChanged::Unchanged),
    };
    let from = std::mem::replace(&mut stored.status, next);
    put_changed(tx, &stored, &from)?;
    Ok(if stop {
        RecurringChanged::Stopped
    } else {
        RecurringChanged::Resumed
    })
}

/// Whether the subscriber's recurring token of the topic may pay at `now_ms`, read inside the
/// transaction (`Some(Err(RecurringSkip::Retired))` stands for "holds none").
pub(super) fn may_send(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    cap_ms: u64,
    now_ms: u64,
) -> TxResult<Result<(), RecurringSkip>> {
    let Some(value) = tx.get::<String>(T::RecurringHolders, &holder_key(page, topic, psid))? else {
        return Ok(Err(RecurringSkip::Retired));
    };
    let Some(token): Option<RecurringToken> = tx.get(T::Recurring, &token_key(page, &value))?
    else {
        return Ok(Err(RecurringSkip::Retired));
    };
    Ok(token.check_send(now_ms, cap_ms))
}

/// Queues one recurring send to `psid` when its token of the topic may pay now (recording the
/// send time on the token), or says why not. `Ok(None)`: the subscriber holds no token.
pub(super) fn queue_recurring_send(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    message: &NewOutbound,
    cap_ms: u64,
    now_ms: u64,
) -> TxResult<Option<Result<(OutboxId, String), RecurringSkip>>> {
    let Some(value) = tx.get::<String>(T::RecurringHolders, &holder_key(page, topic, psid))? else {
        return Ok(None);
    };
    let Some(mut token): Option<RecurringToken> = tx.get(T::Recurring, &token_key(page, &value))?
    else {
        return Ok(None);
    };
    match token.check_send(now_ms, cap_ms) {
        Ok(()) => {}
        Err(RecurringSkip::Expired) => {
            retire(tx, page, &value, "expired", now_ms)?;
            return Ok(Some(Err(RecurringSkip::Expired)));
        }
        Err(skip) => return Ok(Some(Err(skip))),
    }
    token.previous_sent_ms = token.last_sent_ms.replace(now_ms);
    tx.put(T::Recurring, &token_key(page, &value), &token)?;
    ledger::note_recurring_send(tx, page, topic, now_ms)?;
    let id = reserve_id(tx)?;
    enqueue(tx, id, page, psid, message, Some(value.clone()), now_ms)?;
    Ok(Some(Ok((id, value))))
}

/// Takes back the send that `message` (a recurring token's, removed unsent by a cancel) recorded:
/// the token's last send goes back to the one before, so the message that never left does not
/// count against the period, and the ledger's send counts drop. Returns whether it did (not when
/// a later send replaced that record, or the token is gone).
pub(super) fn undo_send(tx: &Tx<'_>, message: &OutboundMessage) -> TxResult<bool> {
    let (OutboundKind::RecurringToken { topic }, Some(value)) = (&message.kind, &message.token)
    else {
        return Ok(false);
    };
    let key = token_key(&message.page, value);
    let Some(mut token): Option<RecurringToken> = tx.get(T::Recurring, &key)? else {
        return Ok(false);
    };
    if token.last_sent_ms != Some(message.created_ms) {
        return Ok(false);
    }
    token.last_sent_ms = token.previous_sent_ms.take();
    tx.put(T::Recurring, &key, &token)?;
    ledger::note_recurring_send_undone(tx, &message.page, topic, message.created_ms)?;
    Ok(true)
}

impl SledStore {
    pub(super) fn recurring_apply(
        &self,
        page: &PageId,
        psid: &Psid,
        change: &RecurringChange,
        now_ms: u64,
    ) -> StoreResult<RecurringChanged> {
        let changed = self.transact(|tx| apply_change(tx, page, psid, change, now_ms))?;
        if changed != RecurringChanged::Unchanged {
            self.durable()?;
        }
        Ok(changed)
    }

    pub(super) fn recurring_get(
        &self,
        page: &PageId,
        token: &str,
    ) -> StoreResult<Option<RecurringToken>> {
        self.read(T::Recurring, &token_key(page, token))
    }

    /// The token the subscriber holds now for the topic, if any.
    pub(super) fn recurring_of(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
    ) -> StoreResult<Option<RecurringToken>> {
        let held: Option<String> =
            self.read(T::RecurringHolders, &holder_key(page, topic, psid))?;
        match held {
            Some(value) => self.recurring_get(page, &value),
            None => Ok(None),
        }
    }

    /// The tokens held now (stopped ones included) of the topic, in subscriber order.
    pub(super) fn recurring_holders(
        &self,
        page: &PageId,
        topic: &TopicId,
    ) -> StoreResult<Vec<Psid>> {
        self.holders_in(T::RecurringHolders, page, topic)
    }

    pub(super) fn recurring_notify(
        &self,
        page: &PageId,
        topic: &TopicId,
        pass: &RecurringPass<'_>,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<RecurringNotifyOutcome> {
        if self.topic_get(page, topic)?.is_none() {
            return Err(StoreError::TopicNotFound {
                page: page.clone(),
                topic: topic.clone(),
            });
        }
        let mut outcome = RecurringNotifyOutcome::default();
        let kind = OutboundKind::RecurringToken {
            topic: topic.clone(),
        };
        let holders: Vec<Psid> = self
            .recurring_holders(page, topic)?
            .into_iter()
            .filter(|psid| {
                let other = pass.reached.contains(psid);
                outcome.skipped += u64::from(other);
                !other
            })
            .collect();
        for chunk in holders.chunks(64) {
            // One transaction per chunk: each token's send time, its message and the
            // notification's totals commit together.
            let bodies: Vec<NewOutbound> = chunk
                .iter()
                .map(|psid| NewOutbound {
                    body: body_for(psid),
                    kind: kind.clone(),
                })
                .collect();
            let (counts, cancelled) = self.transact(|tx| {
                let mut counts = RecurringNotifyOutcome::default();
                let mut queued = Vec::with_capacity(chunk.len());
                for (psid, message) in chunk.iter().zip(&bodies) {
                    let cap_ms = pass.cap_ms;
                    match queue_recurring_send(tx, page, psid, topic, message, cap_ms, now_ms)? {
                        Some(Ok((id, _token))) => queued.push(id),
                        Some(Err(RecurringSkip::NotDue)) => counts.not_due += 1,
                        Some(Err(RecurringSkip::Stopped)) => counts.stopped += 1,
                        Some(Err(RecurringSkip::Expired)) => counts.expired += 1,
                        Some(Err(RecurringSkip::Retired)) | None => {}
                    }
                }
                counts.queued = queued.len() as u64;
                let cancelled = notifications::attach(tx, page, pass.notification, &queued, 0, 0)?;
                Ok((counts, cancelled.len() as u64))
            })?;
            self.count_outbox(|s| s.pending += counts.queued.saturating_sub(cancelled));
            outcome.queued += counts.queued;
            outcome.not_due += counts.not_due;
            outcome.stopped += counts.stopped;
            outcome.expired += counts.expired;
        }
        self.durable()?;
        Ok(outcome)
    }
}
