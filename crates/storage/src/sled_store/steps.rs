//! The step commit and topic notifications on sled, plus sessions and the due-timer index.

use super::SledStore;
use super::codec::{Key, KeyReader};
use super::combine::Combined;
use super::journal::{is_processed, mark_processed};
use super::notifications;
use super::outbox::{enqueue, reserve_id};
use super::recurring;
use super::tokens;
use super::trees::{T, Tx, TxResult};
use crate::commit::{DueTimer, NotifyOutcome, StepCommit, StepCommitted, TokenSendOutcome};
use crate::error::StoreError;
use crate::ids::{EventId, PageId, Psid};
use crate::notification::NotificationId;
use crate::outbox::{NewOutbound, OutboundKind};
use crate::recurring::RECURRING_CAP_MS;
use crate::session::{Session, Timer};
use crate::store::{BodyFor, StoreResult};
use botflow_flow::TopicId;
use serde::Deserialize;

pub(super) fn session_key(page: &PageId, psid: &Psid) -> Vec<u8> {
    Key::new().str(page.as_str()).str(psid.as_str()).finish()
}

fn timer_key(page: &PageId, psid: &Psid, timer: &Timer) -> Vec<u8> {
    Key::new()
        .u64(timer.due_ms)
        .str(page.as_str())
        .str(psid.as_str())
        .u64(timer.id)
        .finish()
}

/// The timers of a stored session, decoded without the rest of it (the step commit only needs
/// them, and runs under sled's store lock).
#[derive(Debug, Default, Deserialize)]
struct SessionTimers {
    #[serde(default)]
    timers: Vec<Timer>,
}

/// Replaces the due-timer index entries of the old session by those of the new one.
fn reindex_timers(
    tx: &Tx<'_>,
    page: &PageId,
    psid: &Psid,
    old: Option<&SessionTimers>,
    new: &Session,
) -> TxResult<()> {
    for timer in old.map(|s| s.timers.as_slice()).unwrap_or_default() {
        if !new.timers.contains(timer) {
            tx.del(T::TimersDue, &timer_key(page, psid, timer))?;
        }
    }
    for timer in &new.timers {
        if !old.is_some_and(|s| s.timers.contains(timer)) {
            let due = DueTimer {
                page: page.clone(),
                psid: psid.clone(),
                timer: timer.clone(),
            };
            tx.put(T::TimersDue, &timer_key(page, psid, timer), &due)?;
        }
    }
    Ok(())
}

/// Queues a token send: takes the oldest usable token of the topic, or reports there is none.
fn queue_token_send(
    tx: &Tx<'_>,
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

/// The first topic whose token sends in `commit` outnumber the subscriber's usable tokens of it
/// (those the step itself stores included): a token changed outside the subscriber's order
/// (a text notification, an expiry, a topic delete) since the step read the counts, so the step
/// took a branch that assumed a token. Checked before anything of the step is written.
fn missing_token(tx: &Tx<'_>, commit: &StepCommit) -> TxResult<Option<TopicId>> {
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

/// The first topic whose recurring send in `commit` its recurring token may not pay now: the
/// token stopped, expired, was retired or paid for another message (a text notification's
/// recurring pass) since the step read it. A step pays with one recurring token at most once,
/// so a second send of one topic is refused too. Checked before anything of the step is written.
fn recurring_gone(tx: &Tx<'_>, commit: &StepCommit) -> TxResult<Option<TopicId>> {
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

/// Applies one step inside a transaction (see [`crate::Store::commit_step`]), or refuses it with
/// [`StoreError::TokenGone`] writing nothing.
fn apply_step(tx: &Tx<'_>, commit: &StepCommit) -> TxResult<StoreResult<StepCommitted>> {
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
    apply_checked_step(tx, commit).map(Ok)
}

/// Writes one step whose token sends are known to find their tokens (one-time or recurring).
fn apply_checked_step(tx: &Tx<'_>, commit: &StepCommit) -> TxResult<StepCommitted> {
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
        mark_processed(tx, page, event, *now_ms)?;
    }
    let skey = session_key(page, psid);
    let old: Option<SessionTimers> = tx.get(T::Sessions, &skey)?;
    reindex_timers(tx, page, psid, old.as_ref(), session)?;
    tx.put(T::Sessions, &skey, session)?;
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
            // Checked by `recurring_gone`: the token pays (its send time is recorded).
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
            OutboundKind::OtnToken { topic } => {
                let (outcome, _expired) =
                    queue_token_send(tx, page, psid, topic, message, *now_ms)?;
                if let TokenSendOutcome::Queued { outbox, .. } = &outcome {
                    outbox_ids.push(*outbox);
                }
                token_sends.push(outcome);
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

/// Applies steps in order inside one transaction; a step whose event was processed before fails
/// alone instead of aborting the others.
fn apply_steps(tx: &Tx<'_>, commits: &[StepCommit]) -> TxResult<Vec<StoreResult<StepCommitted>>> {
    let mut results = Vec::with_capacity(commits.len());
    for commit in commits {
        if let Some(event) = &commit.event {
            if is_processed(tx, &commit.page, event)? {
                results.push(Err(StoreError::EventAlreadyProcessed {
                    page: commit.page.clone(),
                    event: event.clone(),
                }));
                continue;
            }
        }
        results.push(apply_step(tx, commit)?);
    }
    Ok(results)
}

impl SledStore {
    pub(super) fn step_commit(&self, commit: StepCommit) -> StoreResult<StepCommitted> {
        let committed = self.transact(|tx| apply_step(tx, &commit))??;
        if let Some(event) = &commit.event {
            self.journal_forget([(&commit.page, event)]);
        }
        self.count_outbox(|s| s.pending += committed.outbox_ids.len() as u64);
        if commit.durable {
            self.durable()?;
        }
        Ok(committed)
    }

    /// Commits a batch of steps, in one transaction with the batches of concurrent callers.
    pub(super) fn step_commit_all(
        &self,
        commits: Vec<StepCommit>,
    ) -> StoreResult<Vec<StoreResult<StepCommitted>>> {
        let durable = commits.iter().any(|c| c.durable);
        let count = commits.len();
        let events: Vec<(PageId, Option<EventId>)> = commits
            .iter()
            .map(|c| (c.page.clone(), c.event.clone()))
            .collect();
        let results = match self
            .step_batches
            .run(commits, |all| self.transact(|tx| apply_steps(tx, all)).ok())
        {
            Combined::Done(results) => results,
            // Any other failure aborted the whole transaction: commit one by one to isolate it.
            Combined::Alone(commits) => {
                return Ok(commits.into_iter().map(|c| self.step_commit(c)).collect());
            }
            Combined::Lost => {
                return Err(StoreError::Database(format!(
                    "a combined commit of {count} steps was cut short by a panic"
                )));
            }
        };
        self.journal_forget(
            events
                .iter()
                .zip(&results)
                .filter(|(_, result)| result.is_ok())
                .filter_map(|((page, event), _)| event.as_ref().map(|event| (page, event))),
        );
        let queued: usize = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|c| c.outbox_ids.len())
            .sum();
        self.count_outbox(|s| s.pending += queued as u64);
        if durable {
            self.durable()?;
        }
        Ok(results)
    }

    pub(super) fn topic_notify(
        &self,
        page: &PageId,
        topic: &TopicId,
        notification: NotificationId,
        body_for: BodyFor<'_>,
        now_ms: u64,
    ) -> StoreResult<NotifyOutcome> {
        if self.topic_get(page, topic)?.is_none() {
            return Err(StoreError::TopicNotFound {
                page: page.clone(),
                topic: topic.clone(),
            });
        }
        let mut outcome = NotifyOutcome::default();
        let kind = OutboundKind::OtnToken {
            topic: topic.clone(),
        };
        for chunk in self.holder_psids(page, topic)?.chunks(64) {
            // One transaction per chunk: each subscriber's token and message commit together,
            // and a chunk shares one flush.
            let bodies: Vec<NewOutbound> = chunk
                .iter()
                .map(|psid| NewOutbound {
                    body: body_for(psid),
                    kind: kind.clone(),
                })
                .collect();
            let counts = self.transact(|tx| {
                let mut counts = NotifyOutcome::default();
                let mut queued = Vec::with_capacity(chunk.len());
                for (psid, message) in chunk.iter().zip(&bodies) {
                    let (sent, expired) = queue_token_send(tx, page, psid, topic, message, now_ms)?;
                    counts.expired += expired;
                    match sent {
                        TokenSendOutcome::Queued { outbox, .. } => queued.push(outbox),
                        // `queue_token_send` pays with one-time tokens only.
                        TokenSendOutcome::NoToken { .. }
                        | TokenSendOutcome::RecurringQueued { .. } => counts.no_token += 1,
                    }
                }
                counts.queued = queued.len() as u64;
                let (no_token, expired) = (counts.no_token, counts.expired);
                let cancelled =
                    notifications::attach(tx, page, notification, &queued, no_token, expired)?;
                Ok((counts, cancelled.len() as u64))
            })?;
            let (counts, cancelled) = counts;
            self.count_outbox(|s| s.pending += counts.queued.saturating_sub(cancelled));
            outcome.queued += counts.queued;
            outcome.no_token += counts.no_token;
            outcome.expired += counts.expired;
        }
        self.durable()?;
        Ok(outcome)
    }

    pub(super) fn subscribers_list(&self, page: &PageId) -> StoreResult<Vec<Psid>> {
        self.scan_keys(T::Sessions, &Self::page_key(page))?
            .iter()
            .map(|key| {
                let mut reader = KeyReader::new(key);
                let _page = reader.str()?;
                Ok(Psid(reader.str()?))
            })
            .collect()
    }

    pub(super) fn timers_due(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<DueTimer>> {
        let end = Key::new().u64(now_ms.saturating_add(1)).finish();
        self.tree(T::TimersDue)
            .range(..end)
            .take(limit)
            .map(|item| {
                let (_, value) = item?;
                super::codec::decode("timers_due", &value)
            })
            .collect()
    }
}
