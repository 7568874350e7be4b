//! The token ledger on PostgreSQL: per-topic counters and daily rows moved by SQL increments in
//! the transactions that change tokens (so they survive the retention sweep), and its reading.

use super::PgStore;
use super::db::{Tx, TxResult, big, shard_of, unbig};
use super::topics::live_topic;
use crate::ids::PageId;
use crate::ledger::{DAY_MS, LEDGER_DAYS, LedgerDay, RecurringLedger, TopicLedger};
use crate::recurring::RecurringStatus;
use crate::store::StoreResult;
use crate::token::TokenState;
use botflow_flow::TopicId;

/// The ledger column counting tokens in a state.
fn state_column(state: &TokenState) -> &'static str {
    match state {
        TokenState::Usable => "usable",
        TokenState::Spent { .. } => "spent",
        TokenState::Expired { .. } => "expired",
        TokenState::Invalid { .. } => "invalidated",
    }
}

/// The ledger column counting recurring tokens in a status.
fn recurring_column(status: &RecurringStatus) -> &'static str {
    match status {
        RecurringStatus::Active => "recurring_active",
        RecurringStatus::Stopped { .. } => "recurring_stopped",
        RecurringStatus::Retired { .. } => "recurring_retired",
    }
}

/// Adds `deltas` (column, amount; columns are constants of this module) to the topic's totals.
fn add(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    deltas: &[(&'static str, i64)],
) -> TxResult<()> {
    let sets: Vec<String> = deltas
        .iter()
        .map(|(column, delta)| format!("{column} = GREATEST(ledger.{column} + ({delta}), 0)"))
        .collect();
    let sql = format!(
        "UPDATE ledger SET {} WHERE page_id = $1 AND topic_id = $2",
        sets.join(", ")
    );
    // the first row of a topic starts at zero: insert, then apply the deltas
    tx.execute(
        "INSERT INTO ledger (page_id, topic_id, shard) VALUES ($1, $2, $3)
         ON CONFLICT (page_id, topic_id) DO NOTHING",
        &[&page.as_str(), &topic.as_str(), &shard_of(page.as_str())],
    )?;
    tx.execute(&sql, &[&page.as_str(), &topic.as_str()])?;
    Ok(())
}

/// Adds `delta` to one column of the topic's day row of `at_ms`.
fn add_to_day(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    at_ms: u64,
    column: &'static str,
    delta: i64,
) -> TxResult<()> {
    let sql = format!(
        "INSERT INTO ledger_days (page_id, topic_id, day, {column}) VALUES ($1, $2, $3, GREATEST($4::bigint, 0))
         ON CONFLICT (page_id, topic_id, day)
         DO UPDATE SET {column} = GREATEST(ledger_days.{column} + $4::bigint, 0)"
    );
    tx.execute(
        &sql,
        &[
            &page.as_str(),
            &topic.as_str(),
            &big(at_ms / DAY_MS),
            &delta,
        ],
    )?;
    Ok(())
}

/// A token stored from an opt-in (usable or already expired).
pub(super) fn note_opt_in(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    state: &TokenState,
    created_ms: u64,
) -> TxResult<()> {
    add(tx, page, topic, &[("issued", 1), (state_column(state), 1)])?;
    add_to_day(tx, page, topic, created_ms, "opt_ins", 1)
}

/// A token moved from one state to another (a first spend counts as that day's send).
pub(super) fn note_token_change(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    from: &TokenState,
    to: &TokenState,
) -> TxResult<()> {
    add(
        tx,
        page,
        topic,
        &[(state_column(from), -1), (state_column(to), 1)],
    )?;
    if let (TokenState::Spent { at_ms, .. }, false) = (to, matches!(from, TokenState::Spent { .. }))
    {
        add_to_day(tx, page, topic, *at_ms, "sends", 1)?;
    }
    Ok(())
}

/// A spend given back (a cancelled notification's message never left).
pub(super) fn note_send_undone(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    spent_ms: u64,
) -> TxResult<()> {
    add_to_day(tx, page, topic, spent_ms, "sends", -1)
}

/// A token send ended delivered-unconfirmed.
pub(super) fn note_delivered_unconfirmed(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
) -> TxResult<()> {
    add(tx, page, topic, &[("delivered_unconfirmed", 1)])
}

/// A recurring opt-in stored.
pub(super) fn note_recurring_optin(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    created_ms: u64,
) -> TxResult<()> {
    add(
        tx,
        page,
        topic,
        &[("recurring_issued", 1), ("recurring_active", 1)],
    )?;
    add_to_day(tx, page, topic, created_ms, "recurring_opt_ins", 1)
}

/// A recurring token changed status.
pub(super) fn note_recurring_change(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    from: &RecurringStatus,
    to: &RecurringStatus,
) -> TxResult<()> {
    add(
        tx,
        page,
        topic,
        &[(recurring_column(from), -1), (recurring_column(to), 1)],
    )
}

/// A recurring token paid for a message (`delta` 1), or that payment was given back (-1).
pub(super) fn note_recurring_send(
    tx: &mut Tx<'_, '_>,
    page: &PageId,
    topic: &TopicId,
    at_ms: u64,
    delta: i64,
) -> TxResult<()> {
    add(tx, page, topic, &[("recurring_sends", delta)])?;
    add_to_day(tx, page, topic, at_ms, "recurring_sends", delta)
}

impl PgStore {
    pub(super) fn ledger_read(
        &self,
        page: &PageId,
        topic: &TopicId,
        now_ms: u64,
    ) -> StoreResult<Option<TopicLedger>> {
        self.pool.read("topic_ledger", |c| {
            let row = c.query_opt(
                "SELECT issued, usable, spent, expired, invalidated, delivered_unconfirmed,
                   recurring_issued, recurring_active, recurring_stopped, recurring_retired,
                   recurring_sends
                 FROM ledger WHERE page_id = $1 AND topic_id = $2",
                &[&page.as_str(), &topic.as_str()],
            )?;
            let n = |i: usize| row.as_ref().map_or(0, |r| unbig(r.get(i)));
            if row.is_none() && live_topic(c, page, topic)?.is_none() {
                return Ok(None);
            }
            // usable tokens past their expiry that nothing marked expired yet
            let unswept = unbig(
                c.query_one(
                    "SELECT count(*) FROM tokens WHERE page_id = $1 AND topic_id = $2
                     AND state = 0 AND expires_ms <= $3",
                    &[&page.as_str(), &topic.as_str(), &big(now_ms)],
                )?
                .get(0),
            )
            .min(n(1));
            let today = now_ms / DAY_MS;
            let first = (today + 1).saturating_sub(LEDGER_DAYS as u64);
            let stored = c.query(
                "SELECT day, opt_ins, sends, recurring_opt_ins, recurring_sends FROM ledger_days
                 WHERE page_id = $1 AND topic_id = $2 AND day BETWEEN $3 AND $4",
                &[&page.as_str(), &topic.as_str(), &big(first), &big(today)],
            )?;
            let days = (first..=today)
                .map(|day| {
                    let found = stored.iter().find(|r| unbig(r.get(0)) == day);
                    let v = |i: usize| found.map_or(0, |r| unbig(r.get(i)));
                    LedgerDay {
                        day,
                        opt_ins: v(1),
                        sends: v(2),
                        recurring_opt_ins: v(3),
                        recurring_sends: v(4),
                    }
                })
                .collect();
            Ok(Some(TopicLedger {
                issued: n(0),
                usable: n(1) - unswept,
                spent: n(2),
                expired: n(3) + unswept,
                invalidated: n(4),
                delivered_unconfirmed: n(5),
                recurring: RecurringLedger {
                    issued: n(6),
                    active: n(7),
                    stopped: n(8),
                    retired: n(9),
                    sends: n(10),
                },
                days,
            }))
        })
    }
}
