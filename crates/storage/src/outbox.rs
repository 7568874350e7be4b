//! Outbound message types: what the runtime queues and what the dispatcher reads back.

use crate::ids::{OutboxId, PageId, Psid};
use crate::notification::NotificationId;
use botflow_flow::TopicId;
use serde::{Deserialize, Serialize};

/// A message the runtime asks the store to queue for one subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewOutbound {
    /// The request to send, as JSON the store does not read: the runtime stores messenger's
    /// typed `SendRequest` (its serde form); records of earlier versions hold Graph API wire JSON.
    pub body: serde_json::Value,
    /// Whether the 24-hour window or an OTN token pays for it.
    pub kind: OutboundKind,
}

/// What allows a message to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboundKind {
    /// A normal message, subject to the 24-hour window.
    Normal,
    /// A message paid for by one OTN token of this topic; the store takes the oldest usable token
    /// of (page, psid, topic) in the same commit and records it in [`OutboundMessage::token`].
    OtnToken {
        /// The topic whose token pays.
        topic: TopicId,
    },
    /// A message paid for by the subscriber's recurring token of this topic, recorded in
    /// [`OutboundMessage::token`]; the token is not spent (the store records the send time).
    RecurringToken {
        /// The topic whose recurring token pays.
        topic: TopicId,
    },
}

/// A queued outbound message as the dispatcher reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Id, increasing in queue order.
    pub id: OutboxId,
    /// The Page that sends it.
    pub page: PageId,
    /// The recipient.
    pub psid: Psid,
    /// The request to send, as queued ([`NewOutbound::body`]); never an access token.
    pub body: serde_json::Value,
    /// Whether the 24-hour window or an OTN token pays for it.
    pub kind: OutboundKind,
    /// The token that pays for it (for [`OutboundKind::OtnToken`] and
    /// [`OutboundKind::RecurringToken`]); the dispatcher puts it in the recipient as
    /// `one_time_notif_token` or `notification_messages_token`.
    #[serde(default)]
    pub token: Option<String>,
    /// Send attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not sent before this time (retries with backoff move it later).
    pub due_ms: u64,
    /// When it was queued.
    pub created_ms: u64,
    /// Where it stands.
    pub status: OutboundStatus,
    /// The error of the last failed attempt, kept while the message waits for a retry.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The topic notification that queued it, if any (its outcome moves that notification's
    /// totals in the same transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationId>,
}

/// The state of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OutboundStatus {
    /// Waiting to be sent (possibly for a retry).
    Pending,
    /// Accepted by the Send API.
    Sent {
        /// The `message_id` the Send API returned.
        message_id: String,
        /// When it was accepted.
        at_ms: u64,
    },
    /// Failed permanently.
    Failed {
        /// The error, as reported by the Send API or the dispatcher.
        error: String,
        /// When it was given up.
        at_ms: u64,
    },
    /// Not sent because a Messenger policy forbids it (e.g. outside the 24-hour window).
    RefusedByPolicy {
        /// Why it was refused.
        reason: String,
        /// When it was refused.
        at_ms: u64,
    },
    /// The request may have reached Messenger but no answer came; not retried (no duplicates).
    DeliveredUnconfirmed {
        /// When it was given up.
        at_ms: u64,
    },
}

impl OutboundStatus {
    /// Whether the message still waits to be sent.
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending)
    }
}
