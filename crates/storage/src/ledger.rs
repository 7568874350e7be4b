//! The token ledger of a topic: how many opt-ins it received and where they stand, with a daily
//! series, kept as counters so it outlives the token records the retention sweep deletes.

use serde::{Deserialize, Serialize};

/// Milliseconds in one UTC day: ledger days are `at_ms / DAY_MS` (days since the Unix epoch).
pub const DAY_MS: u64 = 86_400_000;

/// How many days [`crate::Store::topic_ledger`] returns in [`TopicLedger::days`].
pub const LEDGER_DAYS: usize = 30;

/// The token ledger of one topic at some instant.
///
/// Every token counted in `issued` is in exactly one of `usable`, `spent`, `expired` and
/// `invalidated`; `delivered_unconfirmed` counts token sends whose delivery Messenger never
/// confirmed (their tokens are among `spent`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicLedger {
    /// Opt-ins stored for the topic (redelivered ones counted once).
    pub issued: u64,
    /// Tokens still usable (not spent, invalidated or past their expiry).
    pub usable: u64,
    /// Tokens that paid for a message.
    pub spent: u64,
    /// Tokens whose expiry passed before they were used.
    pub expired: u64,
    /// Tokens Messenger refused or whose topic was deleted (including spent tokens whose send
    /// then failed for good).
    pub invalidated: u64,
    /// Token sends that ended delivered-unconfirmed.
    pub delivered_unconfirmed: u64,
    /// The recurring notification tokens of the topic, counted apart from the one-time tokens above.
    #[serde(default)]
    pub recurring: RecurringLedger,
    /// The last [`LEDGER_DAYS`] UTC days, oldest first, ending with today.
    pub days: Vec<LedgerDay>,
}

/// Opt-ins and sends of a topic on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDay {
    /// Days since the Unix epoch (UTC).
    pub day: u64,
    /// Opt-ins received that day (by the opt-in's own time).
    pub opt_ins: u64,
    /// Tokens spent that day.
    pub sends: u64,
    /// Recurring opt-ins received that day (not in `opt_ins`).
    #[serde(default)]
    pub recurring_opt_ins: u64,
    /// Messages paid for by recurring tokens that day.
    #[serde(default)]
    pub recurring_sends: u64,
}

/// The recurring tokens of a topic: every token counted in `issued` is in exactly one of
/// `active`, `stopped` and `retired` (a send does not spend one; `sends` counts the messages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringLedger {
    /// Recurring opt-ins stored (redelivered ones counted once).
    pub issued: u64,
    /// Tokens that may pay for messages (expiry is noticed when a send finds it).
    pub active: u64,
    /// Tokens the subscriber stopped.
    pub stopped: u64,
    /// Tokens retired for good: refused by Messenger, expired, replaced by a newer opt-in.
    pub retired: u64,
    /// Messages queued paid for by a recurring token.
    pub sends: u64,
}
