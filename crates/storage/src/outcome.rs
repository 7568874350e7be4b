//! What the dispatcher records about an outbound message, for batched recording
//! ([`crate::Store::mark_outcomes`]).

use crate::ids::OutboxId;

/// What became of one outbound message (or of one attempt at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The Send API accepted it (see [`crate::Store::mark_sent`]).
    Sent {
        /// The message.
        id: OutboxId,
        /// The `message_id` the Send API returned.
        message_id: String,
        /// When it was accepted.
        at_ms: u64,
    },
    /// An attempt failed; try again at `due_ms` (see [`crate::Store::mark_retry`]).
    Retry {
        /// The message.
        id: OutboxId,
        /// When to try again.
        due_ms: u64,
        /// The error of the attempt.
        error: String,
    },
    /// It failed permanently; a token send's token becomes invalid (see [`crate::Store::mark_failed`]).
    Failed {
        /// The message.
        id: OutboxId,
        /// The error.
        error: String,
        /// When it was given up.
        at_ms: u64,
    },
    /// Policy forbade sending it (see [`crate::Store::mark_refused`]).
    Refused {
        /// The message.
        id: OutboxId,
        /// Why it was refused.
        reason: String,
        /// When it was refused.
        at_ms: u64,
    },
    /// It may have been delivered, unconfirmed; never retried
    /// (see [`crate::Store::mark_delivered_unconfirmed`]).
    DeliveredUnconfirmed {
        /// The message.
        id: OutboxId,
        /// When it was given up.
        at_ms: u64,
    },
}

impl Outcome {
    /// The message this outcome is about.
    pub fn id(&self) -> OutboxId {
        match self {
            Self::Sent { id, .. }
            | Self::Retry { id, .. }
            | Self::Failed { id, .. }
            | Self::Refused { id, .. }
            | Self::DeliveredUnconfirmed { id, .. } => *id,
        }
    }
}
