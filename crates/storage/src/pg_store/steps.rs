//! The step commit on PostgreSQL (event processed, session and timers, new tokens, queued
//! messages with their tokens, all in one transaction), sessions and due timers.

use super::PgStore;
use super::db::{Tx, TxResult, big, decode, encode, shard_of};
use super::journal::{lock_subscriber, lock_subscriber_for, mark_processed};
use super::outbox::{enqueue, reserve_id};
use super::{notifications, recurring, tokens};
use crate::commit::{DueTimer, StepCommit, StepCommitted, TokenSendOutcome};
use crate::error::StoreError;
use crate::ids::{PageId, Psid};
use crate::outbox::{NewOutbound, OutboundKind};
use crate::recurring::RECURRING_CAP_MS;
use crate::session::Session;
use crate::store::StoreResult;
use botflow_flow::TopicId;

/// Replaces the subscriber's session and its timers.
fn write_session(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    session: &Session,
) -> TxResult<()> {
    tx.execute(
        "INSERT INTO subscribers (page_id, psid, shard, session) VALUES ($1, $2, $3, $4)
         ON CONFLICT (page_id, psid) DO UPDATE SET session = EXCLUDED.session",
        &[
            &page.as_str(),
            &psid.as_str(),
            &shard_of(page.as_str()),
            &encode("sessions", session)?,
        ],
    )?;
    tx.execute(
        "DELETE FROM timers WHERE page_id = $1 AND psid = $2",
        &[&page.as_str(), &psid.as_str()],
    )?;
    for timer in &session.timers {
        let due = DueTimer {
            page: page.clone(),
            psid: psid.clone(),
            timer: timer.clone(),
        };
        tx.execute(
            "INSERT INTO timers (page_id, psid, timer_id, due_ms, shard, rec)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &page.as_str(),
                &psid.as_str(),
                &big(timer.id),
                &big(timer.due_ms),
                &shard_of(page.as_str()),
                &encode("timers", &due)?,
            ],
        )?;
    }
    Ok(())
}

/// Queues a token send: spends the oldest usable token of the topic on a new message.
pub(super) fn queue_token_send(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    topic: &TopicId,
    outbound: &NewOutbound,
    now_ms: u64,
) -> TxResult<(TokenSendOutcome, u64)> {
    let id = reserve_id(tx)?;
    let taken = tokens::take_oldest(tx, page, psid, topic, id, now_ms)?;
    match taken.token {
        Some(token) => {
            enqueue(tx, id, page, psid, outbound, Some(token.clone()), now_ms)?;
            Ok((
                TokenSendOutcome::Queued { outbox: id, token },
                taken.expired,
            ))
        }
        None => Ok((
            TokenSendOutcome::NoToken {
                topic: topic.clone(),
            },
            taken.expired,
        )),
    }
}

/// The topic of a token send that would find no usable token (counting the step's own new
/// tokens), if any.
fn missing_token(tx: &mut Tx<'_, '_>, commit: &StepCommit) -> TxResult<Option<TopicId>> {
    let mut needed: Vec<(&TopicId, usize)> = Vec::new();
    for message in &commit.outbound {
        if let OutboundKind::OtnToken { topic } = &message.kind {
            match needed.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, n)) => *n += 1,
                None => needed.push((topic, 1)),
            }
        }
    }
    for (topic, count) in needed {
        let stored_now = commit
            .tokens_added
            .iter()
            .filter(|token| &token.topic == topic)
            .count();
        let usable = tokens::usable_count(tx, &commit.page, &commit.psid, topic, commit.now_ms)?;
        if usable + stored_now < count {
            return Ok(Some(topic.clone()));
        }
    }
    Ok(None)
}

/// The topic of a recurring token send whose token may not pay now (or a second send of one
/// topic in the step), if any.
fn recurring_gone(tx: &mut Tx<'_, '_>, commit: &StepCommit) -> TxResult<Option<TopicId>> {
    let mut seen: Vec<&TopicId> = Vec::new();
    for message in &commit.outbound {
        if let OutboundKind::RecurringToken { topic } = &message.kind {
            let (page, psid, now) = (&commit.page, &commit.psid, commit.now_ms);
            if seen.contains(&topic)
                || recurring::may_send(tx, page, psid, topic, RECURRING_CAP_MS, now)?.is_err()
            {
                return Ok(Some(topic.clone()));
            }
            seen.push(topic);
        }
    }
    Ok(None)
}

/// One step, refused whole with `EventAlreadyProcessed` for a replayed event (checked in the
/// round trip that locks the subscriber) or `TokenGone` when a token send would find no token;
/// its event records `epoch`, the lease epoch the node committed under.
pub(super) fn apply_step(
    tx: &mut Tx<'_, '_>,
    commit: &StepCommit,
    epoch: i64,
) -> TxResult<StoreResult<StepCommitted>> {
    match &commit.event {
        Some(event) => {
            if lock_subscriber_for(tx, &commit.page, &commit.psid, event)? {
                return Ok(Err(StoreError::EventAlreadyProcessed {
                    page: commit.page.clone(),
                    event: event.clone(),
                }));
            }
        }
        None => lock_subscriber(tx, &commit.page, &commit.psid)?,
    }
    let gone = match missing_token(tx, commit)? {
        Some(topic) => Some(topic),
        None => recurring_gone(tx, commit)?,
    };
    if let Some(topic) = gone {
        return Ok(Err(StoreError::TokenGone {
            page: commit.page.clone(),
            psid: commit.psid.clone(),
            topic,
        }));
    }
    apply_checked_step(tx, commit, epoch).map(Ok)
}

fn apply_checked_step(
    tx: &mut Tx<'_, '_>,
    commit: &StepCommit,
    epoch: i64,
) -> TxResult<StepCommitted> {
    let StepCommit {
        page,
        psid,
        event,
        session,
        outbound,
        tokens_added,
        now_ms,
        durable: _,
        notification_run,
    } = commit;
    if let Some(event) = event {
        mark_processed(tx, page, psid, event, *now_ms, epoch)?;
    }
    write_session(tx, page, psid, session)?;
    let mut token_adds = Vec::with_capacity(tokens_added.len());
    for token in tokens_added {
        token_adds.push(tokens::add(tx, page, psid, token, *now_ms)?);
    }
    let mut outbox_ids = Vec::with_capacity(outbound.len());
    let mut token_sends = Vec::new();
    for message in outbound {
        match &message.kind {
            OutboundKind::Normal => {
                let id = reserve_id(tx)?;
                outbox_ids.push(enqueue(tx, id, page, psid, message, None, *now_ms)?);
            }
            OutboundKind::OtnToken { topic } => {
                let (outcome, _expired) =
                    queue_token_send(tx, page, psid, topic, message, *now_ms)?;
                if let TokenSendOutcome::Queued { outbox, .. } = &outcome {
                    outbox_ids.push(*outbox);
                }
                token_sends.push(outcome);
            }
            OutboundKind::RecurringToken { topic } => {
                let queued = recurring::queue_recurring_send(
                    tx,
                    page,
                    psid,
                    topic,
                    message,
                    RECURRING_CAP_MS,
                    *now_ms,
                )?;
                match queued {
                    Some(Ok((outbox, token))) => {
                        outbox_ids.push(outbox);
                        token_sends.push(TokenSendOutcome::RecurringQueued { outbox, token });
                    }
                    Some(Err(_)) | None => token_sends.push(TokenSendOutcome::NoToken {
                        topic: topic.clone(),
                    }),
                }
            }
        }
    }
    if let Some(run) = notification_run {
        let removed = notifications::end_run(tx, page, psid, run, &token_sends, *now_ms)?;
        outbox_ids.retain(|id| !removed.contains(id));
    }
    Ok(StepCommitted {
        outbox_ids,
        token_sends,
        token_adds,
    })
}

/// Several steps in one transaction (each with the epoch its node committed it under); a
/// replayed event fails alone.
pub(super) fn apply_steps(
    tx: &mut Tx<'_, '_>,
    commits: &[StepCommit],
    epochs: &[i64],
) -> TxResult<Vec<StoreResult<StepCommitted>>> {
    let mut results = Vec::with_capacity(commits.len());
    for (commit, &epoch) in commits.iter().zip(epochs) {
        results.push(apply_step(tx, commit, epoch)?);
    }
    Ok(results)
}

impl PgStore {
    pub(super) fn session_load(&self, page: &PageId, psid: &Psid) -> StoreResult<Option<Session>> {
        self.pool.read("load_session", |c| {
            let row = c.query_opt(
                "SELECT session FROM subscribers WHERE page_id = $1 AND psid = $2
                 AND session IS NOT NULL",
                &[&page.as_str(), &psid.as_str()],
            )?;
            Ok(row.map(|r| decode("sessions", r.get(0))).transpose()?)
        })
    }

    pub(super) fn subscribers_list(&self, page: &PageId) -> StoreResult<Vec<Psid>> {
        self.pool.read("list_subscribers", |c| {
            let rows = c.query(
                "SELECT psid FROM subscribers WHERE page_id = $1 AND session IS NOT NULL
                 ORDER BY octet_length(psid), psid",
                &[&page.as_str()],
            )?;
            Ok(rows.iter().map(|r| Psid(r.get(0))).collect())
        })
    }

    pub(super) fn timers_due(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<DueTimer>> {
        let shards = self.owned_shards();
        self.pool.read("due_timers", |c| {
            let rows = c.query(
                "SELECT rec FROM timers WHERE due_ms <= $1 AND shard = ANY($3)
                 ORDER BY due_ms, page_id, psid, timer_id LIMIT $2",
                &[&big(now_ms), &big(limit as u64), &shards],
            )?;
            Ok(rows
                .iter()
                .map(|r| decode("timers", r.get(0)))
                .collect::<Result<_, _>>()?)
        })
    }
}
