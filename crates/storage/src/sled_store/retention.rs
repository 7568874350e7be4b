//! Retention on sled: an index of finished records by the time they finished, and the bounded
//! sweep that removes what the policy no longer keeps.
//!
//! When an event is processed, a message reaches a final state or a token stops being usable,
//! the same transaction writes `(kind, finished_ms, record key) → ()` into the retention tree.
//! A sweep reads that index from its oldest entry up to the cutoff (outside any transaction:
//! sled cannot scan inside one), then removes records in transactions of at most
//! [`CHUNK`] entries, checking each record again inside: a record that was written again since
//! (a redelivered event journaled anew) or is still needed stays. Every index entry read is
//! removed, so the next sweep starts where this one stopped.

use super::SledStore;
use super::codec::{Key, decode};
use super::trees::{T, Tx, TxResult};
use crate::ids::OutboxId;
use crate::notification::Notification;
use crate::outbox::{OutboundMessage, OutboundStatus};
use crate::retention::{RetentionPolicy, SweepReport};
use crate::store::StoreResult;
use crate::token::{OtnToken, TokenState};
use serde::Deserialize;

/// Index kind of processed events' dedup records.
const EVENT: u8 = b'e';
/// Index kind of finished outbound messages.
const MESSAGE: u8 = b'm';
/// Index kind of used-up tokens.
const TOKEN: u8 = b't';
/// Index kind of finished (done or cancelled) topic notifications.
const NOTIFICATION: u8 = b'n';
/// Index kind of dedup records of events processed before the index existed (no time known):
/// the first sweep that meets one indexes it as [`EVENT`] at its own time, so the record is
/// kept a whole window after the upgrade.
const LEGACY_EVENT: u8 = b'E';

/// Meta key present once every finished record has its retention index entry.
const INDEXED_KEY: &[u8] = b"retention_indexed";

/// Index entries handled per transaction, so the store-wide lock is held briefly.
const CHUNK: usize = 256;

fn index_key(kind: u8, at_ms: u64, record_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + record_key.len());
    key.push(kind);
    key.extend_from_slice(&at_ms.to_be_bytes());
    key.extend_from_slice(record_key);
    key
}

/// Indexes the dedup record (key in the event-keys tree) of an event processed at `at_ms`.
pub(super) fn note_event(tx: &Tx<'_>, event_key: &[u8], at_ms: u64) -> TxResult<()> {
    tx.mark(T::Retention, &index_key(EVENT, at_ms, event_key))
}

/// Indexes a message (key in the outbox tree) that reached a final state at `at_ms`.
pub(super) fn note_message(tx: &Tx<'_>, outbox_key: &[u8], at_ms: u64) -> TxResult<()> {
    tx.mark(T::Retention, &index_key(MESSAGE, at_ms, outbox_key))
}

/// Indexes a notification (key in the notifications tree) that became done or cancelled at
/// `at_ms`.
pub(super) fn note_notification(tx: &Tx<'_>, record_key: &[u8], at_ms: u64) -> TxResult<()> {
    tx.mark(T::Retention, &index_key(NOTIFICATION, at_ms, record_key))
}

/// Indexes a token (key in the tokens tree) that stopped being usable at `at_ms`.
pub(super) fn note_token(tx: &Tx<'_>, token_key: &[u8], at_ms: u64) -> TxResult<()> {
    tx.mark(T::Retention, &index_key(TOKEN, at_ms, token_key))
}

/// When a message reached its final state; `None` while pending.
pub(super) fn finished_ms(status: &OutboundStatus) -> Option<u64> {
    match status {
        OutboundStatus::Pending => None,
        OutboundStatus::Sent { at_ms, .. }
        | OutboundStatus::Failed { at_ms, .. }
        | OutboundStatus::RefusedByPolicy { at_ms, .. }
        | OutboundStatus::DeliveredUnconfirmed { at_ms } => Some(*at_ms),
    }
}

/// When a token stopped being usable; `None` while usable.
pub(super) fn used_up_ms(state: &TokenState) -> Option<u64> {
    match state {
        TokenState::Usable => None,
        TokenState::Spent { at_ms, .. }
        | TokenState::Invalid { at_ms, .. }
        | TokenState::Expired { at_ms } => Some(*at_ms),
    }
}

/// The part of a dedup record the sweep checks.
#[derive(Deserialize)]
struct EventAge {
    processed: bool,
    #[serde(default)]
    processed_ms: Option<u64>,
}

/// What one index entry's check did.
enum Checked {
    /// The record was removed.
    Removed,
    /// The record is gone, younger, or not finished: only the stale index entry is removed.
    Stale,
    /// The record is still needed: indexed again at `now_ms` to be checked after another window.
    Needed,
}

/// Whether a pending message of the token's subscriber is paid by it (its queue is short).
fn pays_pending_message(tx: &Tx<'_>, token: &OtnToken) -> TxResult<bool> {
    let queue_key = Key::new()
        .str(token.page.as_str())
        .str(token.psid.as_str())
        .finish();
    let queue: Vec<OutboxId> = tx.get(T::SubQueue, &queue_key)?.unwrap_or_default();
    for id in queue {
        let message: Option<OutboundMessage> = tx.get(T::Outbox, &super::outbox::outbox_key(id))?;
        if message.is_some_and(|m| m.token.as_deref() == Some(token.token.as_str())) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Checks one record against the cutoff inside the transaction and removes it if it is due.
fn check(tx: &Tx<'_>, kind: u8, record_key: &[u8], cutoff: u64) -> TxResult<Checked> {
    match kind {
        EVENT => {
            let Some(event) = tx.get::<EventAge>(T::EventKeys, record_key)? else {
                return Ok(Checked::Stale);
            };
            // A record without `processed_ms` predates the index entry that led here.
            if event.processed && event.processed_ms.is_none_or(|at| at < cutoff) {
                tx.del(T::EventKeys, record_key)?;
                return Ok(Checked::Removed);
            }
            Ok(Checked::Stale)
        }
        MESSAGE => {
            let Some(message) = tx.get::<OutboundMessage>(T::Outbox, record_key)? else {
                return Ok(Checked::Stale);
            };
            match finished_ms(&message.status) {
                Some(at) if at < cutoff => {
                    tx.del(T::Outbox, record_key)?;
                    let listed = Key::new()
                        .str(message.page.as_str())
                        .str(message.psid.as_str())
                        .u64(message.id.0)
                        .finish();
                    tx.del(T::SubMessages, &listed)?;
                    Ok(Checked::Removed)
                }
                _ => Ok(Checked::Stale),
            }
        }
        NOTIFICATION => {
            let Some(record) = tx.get::<Notification>(T::Notifications, record_key)? else {
                return Ok(Checked::Stale);
            };
            match record.finished_ms {
                Some(at) if !record.state.is_running() && at < cutoff => {
                    if record.totals.pending() > 0 {
                        // A message of it is still pending (a retry): its outcome counts here.
                        return Ok(Checked::Needed);
                    }
                    tx.del(T::Notifications, record_key)?;
                    Ok(Checked::Removed)
                }
                _ => Ok(Checked::Stale),
            }
        }
        TOKEN => {
            let Some(token) = tx.get::<OtnToken>(T::Tokens, record_key)? else {
                return Ok(Checked::Stale);
            };
            match used_up_ms(&token.state) {
                Some(at) if at < cutoff => {
                    if pays_pending_message(tx, &token)? {
                        return Ok(Checked::Needed);
                    }
                    tx.del(T::Tokens, record_key)?;
                    Ok(Checked::Removed)
                }
                _ => Ok(Checked::Stale),
            }
        }
        _ => Ok(Checked::Stale),
    }
}

/// The part of a dedup record the backfill reads.
#[derive(Deserialize)]
struct EventProcessed {
    processed: bool,
    #[serde(default)]
    processed_ms: Option<u64>,
}

impl SledStore {
    /// Indexes the finished records of a database written before the retention index existed
    /// (run at open, when nothing else writes; a crash midway repeats it at the next open).
    pub(super) fn retention_backfill(&self) -> StoreResult<()> {
        if self.tree(T::Meta).contains_key(INDEXED_KEY)? {
            return Ok(());
        }
        let mut index: Vec<Vec<u8>> = Vec::new();
        for item in self.tree(T::EventKeys).iter() {
            let (key, value) = item?;
            let event: EventProcessed = decode("event_keys", &value)?;
            if event.processed {
                let entry = match event.processed_ms {
                    Some(at) => index_key(EVENT, at, &key),
                    None => index_key(LEGACY_EVENT, 0, &key),
                };
                index.push(entry);
            }
        }
        for item in self.tree(T::Outbox).iter() {
            let (key, value) = item?;
            let message: OutboundMessage = decode("outbox", &value)?;
            if let Some(at) = finished_ms(&message.status) {
                index.push(index_key(MESSAGE, at, &key));
            }
        }
        for item in self.tree(T::Tokens).iter() {
            let (key, value) = item?;
            let token: OtnToken = decode("tokens", &value)?;
            if let Some(at) = used_up_ms(&token.state) {
                index.push(index_key(TOKEN, at, &key));
            }
        }
        self.transact(|tx| {
            for entry in &index {
                tx.mark(T::Retention, entry)?;
            }
            tx.mark(T::Meta, INDEXED_KEY)
        })?;
        let indexed = index.len();
        if indexed > 0 {
            tracing::info!(indexed, "indexed finished records for retention");
        }
        self.durable()
    }

    /// Gives legacy dedup entries (see [`LEGACY_EVENT`]) the time `now_ms`; returns how many
    /// it handled, at most `max`.
    fn retention_date_legacy(&self, now_ms: u64, max: usize) -> StoreResult<usize> {
        let legacy: Vec<sled::IVec> = self
            .tree(T::Retention)
            .scan_prefix([LEGACY_EVENT])
            .keys()
            .take(max)
            .collect::<Result<_, _>>()?;
        for chunk in legacy.chunks(CHUNK) {
            self.transact(|tx| {
                for key in chunk {
                    let record_key = key.get(9..).unwrap_or_default();
                    tx.del(T::Retention, key)?;
                    note_event(tx, record_key, now_ms)?;
                }
                Ok(())
            })?;
        }
        Ok(legacy.len())
    }

    /// Removes at most `max_records` records the policy no longer keeps (see
    /// [`crate::Store::sweep_retention`]).
    pub(super) fn retention_sweep(
        &self,
        now_ms: u64,
        policy: &RetentionPolicy,
        max_records: usize,
    ) -> StoreResult<SweepReport> {
        let mut report = SweepReport::default();
        let dated = self.retention_date_legacy(now_ms, max_records)?;
        if dated == max_records && dated > 0 {
            report.more = true;
            return Ok(report);
        }
        let mut budget = max_records - dated;
        let kinds = [
            (EVENT, policy.dedup_ms),
            (MESSAGE, policy.history_ms),
            (TOKEN, policy.history_ms),
            (NOTIFICATION, policy.history_ms),
        ];
        for (kind, window) in kinds {
            let cutoff = now_ms.saturating_sub(window);
            let end = index_key(kind, cutoff, &[]);
            let mut entries: Vec<sled::IVec> = self
                .tree(T::Retention)
                .range(vec![kind]..end)
                .keys()
                .take(budget.saturating_add(1))
                .collect::<Result<_, _>>()?;
            if entries.len() > budget {
                entries.truncate(budget);
                report.more = true;
            }
            budget -= entries.len();
            for chunk in entries.chunks(CHUNK) {
                let removed = self.transact(|tx| {
                    let mut removed = 0u64;
                    for key in chunk {
                        let record_key = key.get(9..).unwrap_or_default();
                        let checked = check(tx, kind, record_key, cutoff)?;
                        tx.del(T::Retention, key)?;
                        match checked {
                            Checked::Removed => removed += 1,
                            Checked::Stale => {}
                            Checked::Needed => {
                                tx.mark(T::Retention, &index_key(kind, now_ms, record_key))?;
                            }
                        }
                    }
                    Ok(removed)
                })?;
                match kind {
                    EVENT => report.dedup_records += removed,
                    MESSAGE => report.messages += removed,
                    NOTIFICATION => report.notifications += removed,
                    _ => report.tokens += removed,
                }
            }
            if report.more {
                break;
            }
        }
        Ok(report)
    }

    /// The number of entries in the retention index (for tests and the soak bench).
    pub fn retention_backlog(&self) -> usize {
        self.tree(T::Retention).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_kind_then_time() {
        let a = index_key(EVENT, 5, b"zz");
        let b = index_key(EVENT, 6, b"aa");
        let c = index_key(MESSAGE, 0, b"");
        assert!(a < b && b < c);
        assert_eq!(&b[9..], b"aa");
    }
}
