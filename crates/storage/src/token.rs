//! OTN tokens: what an opt-in stores, token states, and how a token is marked after a send.

use crate::ids::{OutboxId, PageId, Psid};
use botflow_flow::TopicId;
use serde::{Deserialize, Serialize};

/// A token received in an opt-in, to store for the commit's (Page, PSID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    /// The topic the subscriber opted in to.
    pub topic: TopicId,
    /// The `one_time_notif_token` value.
    pub token: String,
    /// When the opt-in happened.
    pub created_ms: u64,
    /// When the token stops being usable (Messenger: within one year of creation).
    pub expires_ms: u64,
}

/// A stored OTN token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtnToken {
    /// The Page.
    pub page: PageId,
    /// The subscriber who opted in.
    pub psid: Psid,
    /// The topic.
    pub topic: TopicId,
    /// The token value.
    pub token: String,
    /// When the opt-in happened.
    pub created_ms: u64,
    /// When it stops being usable.
    pub expires_ms: u64,
    /// Where it stands.
    pub state: TokenState,
}

impl OtnToken {
    /// Whether the token may pay for a message at `now_ms`: unused, valid and not expired.
    pub fn is_usable(&self, now_ms: u64) -> bool {
        matches!(self.state, TokenState::Usable) && now_ms < self.expires_ms
    }
}

/// The life of a token: usable until it pays for one message, is invalidated or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TokenState {
    /// Unused (still check `expires_ms`: expiry is swept lazily).
    Usable,
    /// Taken to pay for a message.
    Spent {
        /// The message it pays for (none when marked spent by hand).
        outbox: Option<OutboxId>,
        /// When it was taken.
        at_ms: u64,
    },
    /// Messenger refused it, or its topic was deleted.
    Invalid {
        /// Why.
        reason: String,
        /// When.
        at_ms: u64,
    },
    /// Its expiry time passed before it was used.
    Expired {
        /// When the sweep noticed.
        at_ms: u64,
    },
}

/// How [`crate::Store::mark_token`] changes a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mark", rename_all = "snake_case")]
pub enum TokenMark {
    /// Used outside the store's own take (e.g. sent by another tool).
    Spent,
    /// Messenger said it is not usable.
    Invalid {
        /// Why.
        reason: String,
    },
}

/// The outcome of storing one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAdded {
    /// Stored and usable.
    New,
    /// The same token was stored before (a redelivered opt-in): nothing changed.
    Duplicate,
    /// Stored but already expired.
    Expired,
    /// The topic does not exist (deleted meanwhile): stored as invalid.
    TopicMissing,
}
