//! The identifiers the store keys its records by: Page ids, PSIDs and event dedup keys are
//! messenger's (one definition); outbox ids are the store's own.

pub use botflow_messenger::ids::{EventId, PageId, Psid};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Id of a queued outbound message; ids increase monotonically across the whole store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OutboxId(pub u64);

impl fmt::Display for OutboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
