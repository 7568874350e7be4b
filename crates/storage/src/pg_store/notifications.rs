//! Topic notifications on PostgreSQL: the record with its totals moved in the transactions that
//! queue, finish or cancel its messages; the OTN pass (one message per holder, each spending the
//! holder's oldest token); cancel, which removes what has not been attempted and gives tokens back.

use super::PgStore;
use super::db::{Tx, TxResult, big, decode, encode, shard_of, unbig};
use super::outbox::{load_for_update, remove_pending, save as save_message};
use super::steps::queue_token_send;
use super::{recurring, tokens};
use crate::commit::{NotificationRun, NotifyOutcome, TokenSendOutcome};
use crate::error::StoreError;
use crate::ids::{OutboxId, PageId, Psid};
use crate::notification::{
    Notification, NotificationCancel, NotificationContent, NotificationId, NotificationState,
    NotificationTotals,
};
use crate::outbox::{NewOutbound, OutboundKind, OutboundMessage, OutboundStatus};
use crate::store::{BodyFor, StoreResult};
use botflow_flow::TopicId;

/// Holders queued per transaction by the OTN pass.
const CHUNK: usize = 64;

fn load_opt(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    id: NotificationId,
) -> TxResult<Option<Notification>> {
    let row = tx.query_opt(
        "SELECT rec FROM notifications WHERE page_id = $1 AND id = $2 FOR UPDATE",
        &[&page.as_str(), &big(id.0)],
    )?;
    Ok(row.map(|r| decode("notifications", r.get(0))).transpose()?)
}

fn load(tx: &mut Tx<'_, '_>, page: &PageId, id: NotificationId) -> TxResult<Notification> {
    Ok(
        load_opt(tx, page, id)?.ok_or_else(|| StoreError::NotificationNotFound {
            page: page.clone(),
            id,
        })?,
    )
}

fn save(tx: &mut Tx<'_, '_>, record: &Notification) -> TxResult<()> {
    tx.execute(
        "UPDATE notifications SET rec = $3, finished_ms = $4 WHERE page_id = $1 AND id = $2",
        &[
            &record.page.as_str(),
            &big(record.id.0),
            &encode("notifications", record)?,
            &record.finished_ms.map(big),
        ],
    )?;
    Ok(())
}

/// Makes messages the notification's own and moves its totals; a cancelled notification
/// removes them at once. Returns those removed.
pub(super) fn attach(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    id: NotificationId,
    outbox: &[OutboxId],
    no_token: u64,
    expired: u64,
) -> TxResult<Vec<OutboxId>> {
    let mut record = load(tx, page, id)?;
    for &message_id in outbox {
        let Some(mut message) = load_for_update(tx, message_id)? else {
            continue;
        };
        message.notification = Some(id);
        record.totals.queued += 1;
        if matches!(message.kind, OutboundKind::RecurringToken { .. }) {
            record.totals.recurring += 1;
        }
        if !message.status.is_pending() {
            record.totals.count_final(&message.status);
        }
        if message.attempts > 0 || !message.status.is_pending() {
            record.start(message.created_ms);
        }
        save_message(tx, &message)?;
    }
    record.totals.no_token += no_token;
    record.totals.expired += expired;
    save(tx, &record)?;
    if let (NotificationState::Cancelled, Some(cancelled_ms)) = (record.state, record.finished_ms) {
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
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    psid: &Psid,
    run: &NotificationRun,
    sends: &[TokenSendOutcome],
    now_ms: u64,
) -> TxResult<Vec<OutboxId>> {
    if load_opt(tx, page, run.notification)?.is_none() {
        return Ok(Vec::new());
    }
    let (messages, no_token) = run.token_messages(sends);
    let removed = attach(tx, page, run.notification, &messages, no_token, 0)?;
    let mut record = load(tx, page, run.notification)?;
    if record.end_run(psid, run.failed) {
        record.settle(now_ms);
    }
    save(tx, &record)?;
    Ok(removed)
}

/// The first attempt of one of its messages: the notification is sending.
pub(super) fn note_attempt(
    tx: &mut Tx<'_, '_>,
    message: &OutboundMessage,
    at_ms: u64,
) -> TxResult<()> {
    let Some(id) = message.notification else {
        return Ok(());
    };
    let Some(mut record) = load_opt(tx, &message.page, id)? else {
        return Ok(());
    };
    if record.state == NotificationState::Queued || record.started_ms.is_none() {
        record.start(at_ms);
        save(tx, &record)?;
    }
    Ok(())
}

/// One of its messages finished.
pub(super) fn note_outcome(
    tx: &mut Tx<'_, '_>,
    message: &OutboundMessage,
    status: &OutboundStatus,
    at_ms: u64,
) -> TxResult<()> {
    let Some(id) = message.notification else {
        return Ok(());
    };
    let Some(mut record) = load_opt(tx, &message.page, id)? else {
        return Ok(());
    };
    record.totals.count_final(status);
    record.start(at_ms);
    record.settle(at_ms);
    save(tx, &record)
}

/// Removes the candidates still pending and never attempted, giving their tokens back; returns
/// (those removed, tokens given back).
fn cancel_messages(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    id: NotificationId,
    candidates: &[OutboxId],
    now_ms: u64,
) -> TxResult<(Vec<OutboxId>, u64)> {
    let mut record = load(tx, page, id)?;
    let (mut removed, mut restored) = (Vec::new(), 0);
    for &message_id in candidates {
        let Some(message) = load_for_update(tx, message_id)? else {
            continue;
        };
        if !message.status.is_pending() || message.attempts > 0 {
            continue;
        }
        remove_pending(tx, &message)?;
        let given_back = match (&message.kind, &message.token) {
            (OutboundKind::OtnToken { .. }, Some(token)) => {
                tokens::restore(tx, page, token, message_id, now_ms)?
            }
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

fn close_queuing(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    id: NotificationId,
    now_ms: u64,
) -> TxResult<Notification> {
    let mut record = load(tx, page, id)?;
    record.all_queued = true;
    record.settle(now_ms);
    save(tx, &record)?;
    Ok(record)
}

impl PgStore {
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
        let node = self.leases.ownership().node_id().to_owned();
        self.pool.write("create_notification", true, |tx| {
            let id = unbig(
                tx.query_one("SELECT nextval('notification_ids')", &[])?
                    .get(0),
            );
            let record = Notification {
                id: NotificationId(id),
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
            tx.execute(
                "INSERT INTO notifications (page_id, id, topic_id, shard, rec, queued_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &page.as_str(),
                    &big(id),
                    &topic.as_str(),
                    &shard_of(page.as_str()),
                    &encode("notifications", &record)?,
                    &node,
                ],
            )?;
            Ok(record)
        })
    }

    pub(super) fn notification_expect_runs(
        &self,
        page: &PageId,
        id: NotificationId,
        runs: u64,
        expired: u64,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.pool.write("expect_notification_runs", true, |tx| {
            let mut record = load(tx, page, id)?;
            if record.expect_runs(runs, expired) {
                record.settle(now_ms);
            }
            save(tx, &record)?;
            Ok(record)
        })
    }

    pub(super) fn notification_close_queuing(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<Notification> {
        self.pool.write("close_notification_queuing", true, |tx| {
            close_queuing(tx, page, id, now_ms)
        })
    }

    pub(super) fn notification_get(
        &self,
        page: &PageId,
        id: NotificationId,
    ) -> StoreResult<Option<Notification>> {
        self.pool.read("notification", |c| {
            let row = c.query_opt(
                "SELECT rec FROM notifications WHERE page_id = $1 AND id = $2",
                &[&page.as_str(), &big(id.0)],
            )?;
            Ok(row.map(|r| decode("notifications", r.get(0))).transpose()?)
        })
    }

    pub(super) fn notification_list(
        &self,
        page: &PageId,
        topic: Option<&TopicId>,
    ) -> StoreResult<Vec<Notification>> {
        self.pool.read("notifications", |c| {
            let rows = c.query(
                "SELECT rec FROM notifications WHERE page_id = $1
                 AND ($2::text IS NULL OR topic_id = $2) ORDER BY id DESC",
                &[&page.as_str(), &topic.map(TopicId::as_str)],
            )?;
            Ok(rows
                .iter()
                .map(|r| decode("notifications", r.get(0)))
                .collect::<Result<_, _>>()?)
        })
    }

    pub(super) fn notification_cancel(
        &self,
        page: &PageId,
        id: NotificationId,
        now_ms: u64,
    ) -> StoreResult<NotificationCancel> {
        self.pool.write("cancel_notification", true, |tx| {
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
            save(tx, &record)?;
            Ok(())
        })?;
        let (mut removed, mut tokens_restored) = (0, 0);
        loop {
            let (gone, back, more) = self.pool.write("cancel_notification", true, |tx| {
                let ids: Vec<OutboxId> = tx
                    .query(
                        "SELECT id FROM outbox WHERE notification_id = $1 AND status = 0
                         AND page_id = $2 AND (rec->>'attempts')::bigint = 0
                         ORDER BY id LIMIT $3",
                        &[&big(id.0), &page.as_str(), &big(CHUNK as u64)],
                    )?
                    .iter()
                    .map(|r| OutboxId(unbig(r.get(0))))
                    .collect();
                let (gone, back) = cancel_messages(tx, page, id, &ids, now_ms)?;
                Ok((gone.len() as u64, back, ids.len() == CHUNK))
            })?;
            removed += gone;
            tokens_restored += back;
            if !more {
                break;
            }
        }
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

    /// At start-up: notifications whose queuing was cut short by a stop are closed, as the sled
    /// store does when it opens; with several nodes, only those this node (its id) or a node
    /// that is gone (no heartbeat for a lease TTL) was queuing, not another live node's.
    pub(super) fn notifications_resume(&self) -> StoreResult<()> {
        let node = self.leases.ownership().node_id().to_owned();
        let ttl_ms = f64::from(u32::try_from(self.lease_ttl.as_millis()).unwrap_or(u32::MAX));
        let open: Vec<Notification> = self.pool.read("resuming notifications", |c| {
            let rows = c.query(
                "SELECT rec FROM notifications WHERE finished_ms IS NULL
                 AND NOT (rec->>'all_queued')::boolean
                 AND rec->'runs'->>'expected' IS NULL
                 AND (queued_by IS NULL OR queued_by = $1 OR queued_by NOT IN
                   (SELECT node_id FROM nodes
                    WHERE heartbeat_at > now() - $2::float8 * interval '1 millisecond'))",
                &[&node, &ttl_ms],
            )?;
            Ok(rows
                .iter()
                .map(|r| decode("notifications", r.get(0)))
                .collect::<Result<_, _>>()?)
        })?;
        for record in open {
            let at = record.started_ms.unwrap_or(record.created_ms);
            self.pool.write("resuming notifications", true, |tx| {
                close_queuing(tx, &record.page, record.id, at)
            })?;
        }
        Ok(())
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
        let holders = self.holders_with_tokens(page, topic)?;
        for chunk in holders.chunks(CHUNK) {
            let bodies: Vec<NewOutbound> = chunk
                .iter()
                .map(|psid| NewOutbound {
                    body: body_for(psid),
                    kind: kind.clone(),
                })
                .collect();
            let counts = self.pool.write("notify_topic", true, |tx| {
                let mut counts = NotifyOutcome::default();
                let mut queued = Vec::with_capacity(chunk.len());
                for (psid, message) in chunk.iter().zip(&bodies) {
                    super::journal::lock_subscriber(tx, page, psid)?;
                    let (sent, expired) = queue_token_send(tx, page, psid, topic, message, now_ms)?;
                    counts.expired += expired;
                    match sent {
                        TokenSendOutcome::Queued { outbox, .. } => queued.push(outbox),
                        TokenSendOutcome::NoToken { .. }
                        | TokenSendOutcome::RecurringQueued { .. } => counts.no_token += 1,
                    }
                }
                counts.queued = queued.len() as u64;
                attach(
                    tx,
                    page,
                    notification,
                    &queued,
                    counts.no_token,
                    counts.expired,
                )?;
                Ok(counts)
            })?;
            outcome.queued += counts.queued;
            outcome.no_token += counts.no_token;
            outcome.expired += counts.expired;
        }
        Ok(outcome)
    }

    /// Subscribers with any token of the topic still marked usable (expired ones included, as
    /// the sled store's holder index has them until a send or the expiry pass meets them).
    fn holders_with_tokens(&self, page: &PageId, topic: &TopicId) -> StoreResult<Vec<Psid>> {
        self.pool.read("notify_topic", |c| {
            let rows = c.query(
                "SELECT DISTINCT octet_length(psid), psid FROM tokens
                 WHERE page_id = $1 AND topic_id = $2 AND state = 0 ORDER BY 1, 2",
                &[&page.as_str(), &topic.as_str()],
            )?;
            Ok(rows.iter().map(|r| Psid(r.get(1))).collect())
        })
    }
}
