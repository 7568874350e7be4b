//! Recurring notification tokens on PostgreSQL: opt-in (retiring the subscriber's earlier token
//! of the topic), stop, resume, retire, the send a token pays for in a step or a recurring pass
//! (its period checked by [`RecurringToken::check_send`]), and giving a send back on cancel.

use super::PgStore;
use super::db::{Cached, Tx, TxResult, decode, encode, shard_of};
use super::ledger;
use super::notifications;
use super::outbox::{enqueue, reserve_id};
use super::topics::live_topic;
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::outbox::{NewOutbound, OutboundKind, OutboundMessage};
use crate::recurring::{
    RecurringChange, RecurringChanged, RecurringNotifyOutcome, RecurringPass, RecurringSkip,
    RecurringStatus, RecurringToken,
};
use crate::store::{BodyFor, StoreResult};
use botflow_flow::TopicId;
use postgres::GenericClient;

/// Recurring holders queued per transaction by a recurring pass.
const CHUNK: usize = 64;

fn get(
    c: &mut Cached<'_, impl GenericClient>,
    page: &PageId,
    token: &str,
) -> TxResult<Option<RecurringToken>> {
    let row = c.query_opt(
        "SELECT rec FROM recurring_tokens WHERE page_id = $1 AND token = $2",
        &[&page.as_str(), &token],
    )?;
    Ok(row.map(|r| decode("recurring", r.get(0))).transpose()?)
}

fn held_value(
    c: &mut Cached<'_, impl GenericClient>,
    page: &PageId,
    topic: &TopicId,
    psid: &Psid,
) -> TxResult<Option<String>> {
    let row = c.query_opt(
        "SELECT token FROM recurring_holders WHERE page_id = $1 AND topic_id = $2 AND psid = $3",
        &[&page.as_str(), &topic.as_str(), &psid.as_str()],
    )?;
    Ok(row.map(|r| r.get(0)))
}

fn put(tx: &mut Tx<'_, '_>, token: &RecurringToken) -> TxResult<()> {
    tx.execute(
        "INSERT INTO recurring_tokens (page_id, token, psid, topic_id, shard, rec)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (page_id, token) DO UPDATE SET rec = EXCLUDED.rec",
        &[
            &token.page.as_str(),
            &token.token,
            &token.psid.as_str(),
            &token.topic.as_str(),
            &shard_of(token.page.as_str()),
            &encode("recurring", token)?,
        ],
    )?;
    Ok(())
}

fn put_changed(
    tx: &mut Tx<'_, '_>,
    token: &RecurringToken,
    from: &RecurringStatus,
) -> TxResult<()> {
    ledger::note_recurring_change(tx, &token.page, &token.topic, from, &token.status)?;
    put(tx, token)
}

/// Retires a token (it no longer pays, and its holder no longer holds it); whether it changed.
pub(super) fn retire(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    token: &str,
    reason: &str,
    at_ms: u64,
) -> TxResult<bool> {
    let Some(mut stored) = get(tx, page, token)? else {
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
    tx.execute(
        "DELETE FROM recurring_holders WHERE page_id = $1 AND topic_id = $2 AND psid = $3
         AND token = $4",
        &[
            &page.as_str(),
            &stored.topic.as_str(),
            &stored.psid.as_str(),
            &token,
        ],
    )?;
    put_changed(tx, &stored, &from)?;
    Ok(true)
}

fn apply_change(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    change: &RecurringChange,
    now_ms: u64,
) -> TxResult<RecurringChanged> {
    let (value, stop) = match change {
        RecurringChange::Optin(optin) => {
            if get(tx, page, &optin.token)?.is_some() {
                return Ok(RecurringChanged::Unchanged);
            }
            if live_topic(tx, page, &optin.topic)?.is_none() {
                return Ok(RecurringChanged::TopicMissing);
            }
            if let Some(older) = held_value(tx, page, &optin.topic, psid)? {
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
            put(tx, &stored)?;
            tx.execute(
                "INSERT INTO recurring_holders (page_id, topic_id, psid, token, shard)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (page_id, topic_id, psid) DO UPDATE SET token = EXCLUDED.token",
                &[
                    &page.as_str(),
                    &optin.topic.as_str(),
                    &psid.as_str(),
                    &optin.token,
                    &shard_of(page.as_str()),
                ],
            )?;
            return Ok(RecurringChanged::Stored);
        }
        RecurringChange::Stop { token } => (token, true),
        RecurringChange::Resume { token } => (token, false),
    };
    let Some(mut stored) = get(tx, page, value)? else {
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

/// Whether the subscriber's recurring token of the topic may pay now.
pub(super) fn may_send(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    cap_ms: u64,
    now_ms: u64,
) -> TxResult<Result<(), RecurringSkip>> {
    let Some(value) = held_value(tx, page, topic, psid)? else {
        return Ok(Err(RecurringSkip::Retired));
    };
    let Some(token) = get(tx, page, &value)? else {
        return Ok(Err(RecurringSkip::Retired));
    };
    Ok(token.check_send(now_ms, cap_ms))
}

/// Queues a message the subscriber's recurring token pays for, recording the send on it;
/// `None` when no token is held, the skip reason when it may not pay now.
pub(super) fn queue_recurring_send(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    message: &NewOutbound,
    cap_ms: u64,
    now_ms: u64,
) -> TxResult<Option<Result<(OutboxId, String), RecurringSkip>>> {
    let Some(value) = held_value(tx, page, topic, psid)? else {
        return Ok(None);
    };
    let Some(mut token) = get(tx, page, &value)? else {
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
    put(tx, &token)?;
    ledger::note_recurring_send(tx, page, topic, now_ms, 1)?;
    let id = reserve_id(tx)?;
    enqueue(tx, id, page, psid, message, Some(value.clone()), now_ms)?;
    Ok(Some(Ok((id, value))))
}

/// Gives back the send a removed message recorded on its token; whether it did.
pub(super) fn undo_send(tx: &mut Tx<'_, '_>, message: &OutboundMessage) -> TxResult<bool> {
    let (OutboundKind::RecurringToken { topic }, Some(value)) = (&message.kind, &message.token)
    else {
        return Ok(false);
    };
    let Some(mut token) = get(tx, &message.page, value)? else {
        return Ok(false);
    };
    if token.last_sent_ms != Some(message.created_ms) {
        return Ok(false);
    }
    token.last_sent_ms = token.previous_sent_ms.take();
    put(tx, &token)?;
    ledger::note_recurring_send(tx, &message.page, topic, message.created_ms, -1)?;
    Ok(true)
}

impl PgStore {
    pub(super) fn recurring_apply(
        &self,
        page: &PageId,
        psid: &Psid,
        change: &RecurringChange,
        now_ms: u64,
    ) -> StoreResult<RecurringChanged> {
        self.pool.write("recurring_change", true, |tx| {
            super::leases::fence(tx, self.leases.ownership(), &[shard_of(page.as_str())])?;
            apply_change(tx, page, psid, change, now_ms)
        })
    }

    pub(super) fn recurring_get(
        &self,
        page: &PageId,
        token: &str,
    ) -> StoreResult<Option<RecurringToken>> {
        self.pool.read("recurring_token", |c| get(c, page, token))
    }

    pub(super) fn recurring_of(
        &self,
        page: &PageId,
        psid: &Psid,
        topic: &TopicId,
    ) -> StoreResult<Option<RecurringToken>> {
        self.pool.read("recurring_held", |c| {
            match held_value(c, page, topic, psid)? {
                Some(value) => get(c, page, &value),
                None => Ok(None),
            }
        })
    }

    pub(super) fn recurring_holders(
        &self,
        page: &PageId,
        topic: &TopicId,
    ) -> StoreResult<Vec<RecurringToken>> {
        self.pool.read("recurring_topic_holders", |c| {
            let rows = c.query(
                "SELECT r.rec FROM recurring_holders h
                 JOIN recurring_tokens r ON r.page_id = h.page_id AND r.token = h.token
                 WHERE h.page_id = $1 AND h.topic_id = $2
                 ORDER BY octet_length(h.psid), h.psid",
                &[&page.as_str(), &topic.as_str()],
            )?;
            Ok(rows
                .iter()
                .map(|r| decode("recurring", r.get(0)))
                .collect::<Result<_, _>>()?)
        })
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
            .map(|token| token.psid)
            .filter(|psid| {
                let other = pass.reached.contains(psid);
                outcome.skipped += u64::from(other);
                !other
            })
            .collect();
        for chunk in holders.chunks(CHUNK) {
            let bodies: Vec<NewOutbound> = chunk
                .iter()
                .map(|psid| NewOutbound {
                    body: body_for(psid),
                    kind: kind.clone(),
                })
                .collect();
            let counts = self.pool.write("notify_topic_recurring", true, |tx| {
                let mut counts = RecurringNotifyOutcome::default();
                let mut queued = Vec::with_capacity(chunk.len());
                for (psid, message) in chunk.iter().zip(&bodies) {
                    super::journal::lock_subscriber(tx, page, psid)?;
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
                notifications::attach(tx, page, pass.notification, &queued, 0, 0)?;
                Ok(counts)
            })?;
            outcome.queued += counts.queued;
            outcome.not_due += counts.not_due;
            outcome.stopped += counts.stopped;
            outcome.expired += counts.expired;
        }
        Ok(outcome)
    }
}
