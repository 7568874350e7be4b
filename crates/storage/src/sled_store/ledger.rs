//! The per-topic token ledger on sled: counters updated in the same transaction that changes a
//! token's state, so they outlive the token records the retention sweep deletes.
//!
//! `Ledger` holds one [`LedgerRecord`] per (page, topic) and `LedgerDays` one [`DayRecord`] per
//! (page, topic, UTC day). The record's `usable` includes expired tokens no sweep has marked
//! yet; [`SledStore::ledger_read`] moves those to `expired` using the expiry index.

use super::SledStore;
use super::codec::{Key, KeyReader, decode};
use super::topics::topic_key;
use super::trees::{T, Tx, TxResult};
use crate::ids::PageId;
use crate::ledger::{DAY_MS, LEDGER_DAYS, LedgerDay, RecurringLedger, TopicLedger};
use crate::outbox::{OutboundKind, OutboundMessage, OutboundStatus};
use crate::recurring::RecurringStatus;
use crate::store::StoreResult;
use crate::token::{OtnToken, TokenState};
use botflow_flow::TopicId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Meta key present once the ledger of a database written before it existed has been built.
const LEDGER_BUILT_KEY: &[u8] = b"ledger_built";

/// The stored totals of one topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LedgerRecord {
    issued: u64,
    /// Including expired tokens not swept yet.
    usable: u64,
    spent: u64,
    expired: u64,
    invalidated: u64,
    delivered_unconfirmed: u64,
    #[serde(default)]
    recurring: RecurringLedger,
}

impl LedgerRecord {
    /// The counter of tokens in `state`.
    fn count_of(&mut self, state: &TokenState) -> &mut u64 {
        match state {
            TokenState::Usable => &mut self.usable,
            TokenState::Spent { .. } => &mut self.spent,
            TokenState::Expired { .. } => &mut self.expired,
            TokenState::Invalid { .. } => &mut self.invalidated,
        }
    }
}

/// Opt-ins and sends of a topic on one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DayRecord {
    opt_ins: u64,
    sends: u64,
    #[serde(default)]
    recurring_opt_ins: u64,
    #[serde(default)]
    recurring_sends: u64,
}

fn ledger_key(page: &PageId, topic: &TopicId) -> Vec<u8> {
    topic_key(page, topic)
}

fn day_key(page: &PageId, topic: &TopicId, day: u64) -> Vec<u8> {
    Key::new()
        .str(page.as_str())
        .str(topic.as_str())
        .u64(day)
        .finish()
}

fn add_to_day(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    at_ms: u64,
    f: fn(&mut DayRecord),
) -> TxResult<()> {
    let key = day_key(page, topic, at_ms / DAY_MS);
    let mut day: DayRecord = tx.get(T::LedgerDays, &key)?.unwrap_or_default();
    f(&mut day);
    tx.put(T::LedgerDays, &key, &day)
}

/// Records a new opt-in made at `created_ms`, stored in `state`, in its topic's ledger, inside
/// the transaction that stores the token.
pub(super) fn note_opt_in(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    state: &TokenState,
    created_ms: u64,
) -> TxResult<()> {
    let key = ledger_key(page, topic);
    let mut record: LedgerRecord = tx.get(T::Ledger, &key)?.unwrap_or_default();
    record.issued += 1;
    *record.count_of(state) += 1;
    add_to_day(tx, page, topic, created_ms, |d| d.opt_ins += 1)?;
    tx.put(T::Ledger, &key, &record)
}

/// Records a token moving from state `from` to `to` in its topic's ledger (a first spend also
/// in that day's sends), inside the transaction that changes the token.
pub(super) fn note_token_change(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    from: &TokenState,
    to: &TokenState,
) -> TxResult<()> {
    let key = ledger_key(page, topic);
    let mut record: LedgerRecord = tx.get(T::Ledger, &key)?.unwrap_or_default();
    let count = record.count_of(from);
    *count = count.saturating_sub(1);
    *record.count_of(to) += 1;
    if let (TokenState::Spent { at_ms, .. }, false) = (to, matches!(from, TokenState::Spent { .. }))
    {
        add_to_day(tx, page, topic, *at_ms, |d| d.sends += 1)?;
    }
    tx.put(T::Ledger, &key, &record)
}

/// Takes back a send counted on the day of `spent_ms` (its message was cancelled unsent), inside
/// the transaction that gives the token back.
pub(super) fn note_send_undone(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    spent_ms: u64,
) -> TxResult<()> {
    add_to_day(tx, page, topic, spent_ms, |d| {
        d.sends = d.sends.saturating_sub(1)
    })
}

/// Records in the topic's ledger a token send that ended delivered-unconfirmed.
pub(super) fn note_delivered_unconfirmed(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
) -> TxResult<()> {
    let key = ledger_key(page, topic);
    let mut record: LedgerRecord = tx.get(T::Ledger, &key)?.unwrap_or_default();
    record.delivered_unconfirmed += 1;
    tx.put(T::Ledger, &key, &record)
}

/// Changes the recurring counters of a topic inside the transaction that changes its tokens.
fn change_recurring(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    f: impl FnOnce(&mut RecurringLedger),
) -> TxResult<()> {
    let key = ledger_key(page, topic);
    let mut record: LedgerRecord = tx.get(T::Ledger, &key)?.unwrap_or_default();
    f(&mut record.recurring);
    tx.put(T::Ledger, &key, &record)
}

/// The recurring counter of tokens in `status`.
fn recurring_count<'l>(ledger: &'l mut RecurringLedger, status: &RecurringStatus) -> &'l mut u64 {
    match status {
        RecurringStatus::Active => &mut ledger.active,
        RecurringStatus::Stopped { .. } => &mut ledger.stopped,
        RecurringStatus::Retired { .. } => &mut ledger.retired,
    }
}

/// Records a new recurring opt-in (stored active) made at `created_ms`.
pub(super) fn note_recurring_optin(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    created_ms: u64,
) -> TxResult<()> {
    change_recurring(tx, page, topic, |r| {
        r.issued += 1;
        r.active += 1;
    })?;
    add_to_day(tx, page, topic, created_ms, |d| d.recurring_opt_ins += 1)
}

/// Records a recurring token moving from status `from` to `to`.
pub(super) fn note_recurring_change(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    from: &RecurringStatus,
    to: &RecurringStatus,
) -> TxResult<()> {
    change_recurring(tx, page, topic, |r| {
        let count = recurring_count(r, from);
        *count = count.saturating_sub(1);
        *recurring_count(r, to) += 1;
    })
}

/// Records a message queued at `at_ms` paid for by a recurring token.
pub(super) fn note_recurring_send(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    at_ms: u64,
) -> TxResult<()> {
    change_recurring(tx, page, topic, |r| r.sends += 1)?;
    add_to_day(tx, page, topic, at_ms, |d| d.recurring_sends += 1)
}

/// Takes back a recurring send counted at `at_ms` (its message was cancelled unsent).
pub(super) fn note_recurring_send_undone(
    tx: &Tx<'_>,
    page: &PageId,
    topic: &TopicId,
    at_ms: u64,
) -> TxResult<()> {
    change_recurring(tx, page, topic, |r| r.sends = r.sends.saturating_sub(1))?;
    add_to_day(tx, page, topic, at_ms, |d| {
        d.recurring_sends = d.recurring_sends.saturating_sub(1)
    })
}

impl SledStore {
    /// Builds the ledger of a database written before it existed, from the token records still
    /// stored and the outbox (run at open, when nothing else writes; a crash midway repeats it).
    /// Tokens the retention sweep already deleted cannot be counted.
    pub(super) fn ledger_backfill(&self) -> StoreResult<()> {
        if self.tree(T::Meta).contains_key(LEDGER_BUILT_KEY)? {
            return Ok(());
        }
        let mut totals: BTreeMap<Vec<u8>, LedgerRecord> = BTreeMap::new();
        let mut days: BTreeMap<Vec<u8>, DayRecord> = BTreeMap::new();
        for item in self.tree(T::Tokens).iter() {
            let (_, value) = item?;
            let token: OtnToken = decode("tokens", &value)?;
            let key = ledger_key(&token.page, &token.topic);
            // Opt-ins for a topic that never existed are not in any ledger.
            if !self.tree(T::Topics).contains_key(&key)? {
                continue;
            }
            let record = totals.entry(key).or_default();
            record.issued += 1;
            *record.count_of(&token.state) += 1;
            let opt_in_day = day_key(&token.page, &token.topic, token.created_ms / DAY_MS);
            days.entry(opt_in_day).or_default().opt_ins += 1;
            if let TokenState::Spent { at_ms, .. } = token.state {
                let send_day = day_key(&token.page, &token.topic, at_ms / DAY_MS);
                days.entry(send_day).or_default().sends += 1;
            }
        }
        for item in self.tree(T::Outbox).iter() {
            let (_, value) = item?;
            let message: OutboundMessage = decode("outbox", &value)?;
            if let (OutboundStatus::DeliveredUnconfirmed { .. }, OutboundKind::OtnToken { topic }) =
                (&message.status, &message.kind)
            {
                let key = ledger_key(&message.page, topic);
                totals.entry(key).or_default().delivered_unconfirmed += 1;
            }
        }
        self.transact(|tx| {
            for (key, record) in &totals {
                tx.put(T::Ledger, key, record)?;
            }
            for (key, day) in &days {
                tx.put(T::LedgerDays, key, day)?;
            }
            tx.mark(T::Meta, LEDGER_BUILT_KEY)
        })?;
        if !totals.is_empty() {
            tracing::info!(
                topics = totals.len(),
                "built the token ledger from stored tokens"
            );
        }
        self.durable()
    }

    /// The ledger of a topic at `now_ms` (see [`crate::Store::topic_ledger`]).
    pub(super) fn ledger_read(
        &self,
        page: &PageId,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Option<TopicLedger>> {
        let key = ledger_key(page, topic);
        let record: Option<LedgerRecord> = self.read(T::Ledger, &key)?;
        let record = match record {
            Some(record) => record,
            None if self.topic_get(page, topic)?.is_some() => LedgerRecord::default(),
            None => return Ok(None),
        };
        // Usable tokens past their expiry that no sweep has marked yet are expired already.
        let mut unswept = 0;
        let end = Key::new().u64(now_ms.saturating_add(1)).finish();
        for item in self.tree(T::TokenExpiry).range(..end) {
            let (key, _) = item?;
            let mut reader = KeyReader::new(&key);
            let _expires = reader.u64()?;
            if reader.str()? == page.as_str() && reader.str()? == topic.as_str() {
                unswept += 1;
            }
        }
        let unswept = unswept.min(record.usable);
        let today = now_ms / DAY_MS;
        let first = (today + 1).saturating_sub(LEDGER_DAYS as u64);
        let mut days = Vec::with_capacity(LEDGER_DAYS);
        for day in first..=today {
            let stored: DayRecord = self
                .read(T::LedgerDays, &day_key(page, topic, day))?
                .unwrap_or_default();
            days.push(LedgerDay {
                day,
                opt_ins: stored.opt_ins,
                sends: stored.sends,
                recurring_opt_ins: stored.recurring_opt_ins,
                recurring_sends: stored.recurring_sends,
            });
        }
        Ok(Some(TopicLedger {
            issued: record.issued,
            usable: record.usable - unswept,
            spent: record.spent,
            expired: record.expired + unswept,
            invalidated: record.invalidated,
            delivered_unconfirmed: record.delivered_unconfirmed,
            recurring: record.recurring,
            days,
        }))
    }
}
