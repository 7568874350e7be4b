//! The inbound event journal: events stored under their dedup key before the webhook answers 200.

use crate::ids::{EventId, PageId, Psid};
use serde::{Deserialize, Serialize};

/// One webhook event to journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJournalEvent {
    /// The Page the event is for.
    pub page: PageId,
    /// The dedup key (message `mid`, opt-in token, or a hash of the event).
    pub event: EventId,
    /// The subscriber.
    pub psid: Psid,
    /// The event as received (the webhook's messaging object).
    pub payload: serde_json::Value,
    /// When the webhook request arrived.
    pub received_ms: u64,
}

impl NewJournalEvent {
    /// The entry it became when journaled under `seq`.
    pub fn journaled(self, seq: u64) -> JournalEntry {
        JournalEntry {
            seq,
            page: self.page,
            event: self.event,
            psid: self.psid,
            payload: self.payload,
            received_ms: self.received_ms,
        }
    }
}

/// A journaled event not yet processed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Arrival sequence number, increasing across the whole store.
    pub seq: u64,
    /// The Page.
    pub page: PageId,
    /// The dedup key.
    pub event: EventId,
    /// The subscriber.
    pub psid: Psid,
    /// The event as received.
    pub payload: serde_json::Value,
    /// When it arrived.
    pub received_ms: u64,
}

/// Whether an append journaled a new event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "appended", rename_all = "snake_case")]
pub enum Appended {
    /// New event, journaled under this sequence number.
    New {
        /// Its arrival sequence number.
        seq: u64,
    },
    /// An event with this dedup key was journaled before (a redelivery): ignore it.
    Duplicate,
}
