//! Retention: how long finished records are kept, and what one bounded sweep removed.
//!
//! Nothing the store keeps may grow forever. Three kinds of record outlive their use:
//! - the dedup record of each processed inbound event (kept for [`RetentionPolicy::dedup_ms`],
//!   so a redelivery inside that window is still recognised as a duplicate);
//! - finished outbound messages (sent, failed, refused, delivered-unconfirmed) with their bodies;
//! - used-up OTN tokens (spent, invalid, expired);
//! - finished topic notifications (done or cancelled) with their totals.
//!
//! The last three are kept for [`RetentionPolicy::history_ms`] after they finished.
//! [`crate::Store::sweep_retention`] removes at most a given number of them per call, oldest
//! first, and never a record still needed: unprocessed journal events, pending messages (what a
//! subscriber's queue points to), usable tokens and spent tokens paying for a pending message.
//! Counters shown by the API and metrics (usable tokens per topic, outbox figures) do not change.

use serde::{Deserialize, Serialize};

/// One day in milliseconds.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// How long finished records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// How long the dedup record of a processed event is kept after it was processed.
    /// Default 3 days.
    pub dedup_ms: u64,
    /// How long finished messages and used-up tokens are kept after they finished.
    /// Default 30 days.
    pub history_ms: u64,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            dedup_ms: 3 * DAY_MS,
            history_ms: 30 * DAY_MS,
        }
    }
}

/// What one [`crate::Store::sweep_retention`] call removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Dedup records of processed events removed.
    pub dedup_records: u64,
    /// Finished outbound messages removed.
    pub messages: u64,
    /// Used-up tokens removed.
    pub tokens: u64,
    /// Finished topic notifications removed.
    #[serde(default)]
    pub notifications: u64,
    /// Whether the call stopped at its record limit with more records due: call again soon.
    pub more: bool,
}

impl SweepReport {
    /// Records removed, all kinds together.
    pub fn removed(&self) -> u64 {
        self.dedup_records + self.messages + self.tokens + self.notifications
    }
}
