//! The atomic step commit: session, processed event, new tokens and queued messages at once.

use crate::ids::{EventId, OutboxId, PageId, Psid};
use crate::notification::NotificationId;
use crate::outbox::NewOutbound;
use crate::session::{Session, Timer};
use crate::token::{NewToken, TokenAdded};
use botflow_flow::TopicId;
use serde::{Deserialize, Serialize};

/// Everything one processed event (or fired timer) changes for one subscriber.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCommit {
    /// The Page.
    pub page: PageId,
    /// The subscriber.
    pub psid: Psid,
    /// The journaled event this step processed (marked processed); `None` for timers and notifications.
    pub event: Option<EventId>,
    /// The subscriber's new session (replaces the stored one; its timers feed the due-timer index).
    pub session: Session,
    /// Messages to queue, in order, behind the subscriber's pending ones.
    pub outbound: Vec<NewOutbound>,
    /// Tokens received in this step (opt-ins).
    pub tokens_added: Vec<NewToken>,
    /// The time of the step (token expiry is judged against it).
    pub now_ms: u64,
    /// Flush to disk before returning (see the crate's durability contract).
    pub durable: bool,
    /// The flow notification this step runs for one subscriber: the token sends it queued
    /// become the notification's, and the run is counted, in the same commit.
    pub notification_run: Option<NotificationRun>,
}

/// One subscriber's run of a flow notification, ended by the step commit that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRun {
    /// The notification.
    pub notification: NotificationId,
    /// Token sends the step skipped as it found no usable token (its `NoToken` effects); the
    /// commit adds those it refuses itself.
    pub no_token: u64,
    /// The run failed: the commit records it done without its effects.
    pub failed: bool,
}

impl NotificationRun {
    /// From the commit's token send outcomes: the messages that become the notification's
    /// (paid by a one-time or recurring token), and the run's sends that found no token.
    pub(crate) fn token_messages(&self, sends: &[TokenSendOutcome]) -> (Vec<OutboxId>, u64) {
        let mut messages = Vec::new();
        let mut no_token = self.no_token;
        for send in sends {
            match send {
                TokenSendOutcome::Queued { outbox, .. }
                | TokenSendOutcome::RecurringQueued { outbox, .. } => messages.push(*outbox),
                TokenSendOutcome::NoToken { .. } => no_token += 1,
            }
        }
        (messages, no_token)
    }
}

/// What a step commit did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCommitted {
    /// Ids of the queued messages, in queue order (token sends without a token are not queued).
    pub outbox_ids: Vec<OutboxId>,
    /// One outcome per token send (`OtnToken` and `RecurringToken` outbound), in order.
    pub token_sends: Vec<TokenSendOutcome>,
    /// One outcome per added token, in order.
    pub token_adds: Vec<TokenAdded>,
}

/// The outcome of one token send in a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TokenSendOutcome {
    /// Queued, paid for by this token (now spent).
    Queued {
        /// The queued message.
        outbox: OutboxId,
        /// The token that pays.
        token: String,
    },
    /// Queued, paid for by the subscriber's recurring token of the topic (not spent: its send
    /// time is recorded).
    RecurringQueued {
        /// The queued message.
        outbox: OutboxId,
        /// The recurring token that pays.
        token: String,
    },
    /// The subscriber held no usable token of the topic: nothing queued.
    NoToken {
        /// The topic.
        topic: TopicId,
    },
}

/// Counts of a topic notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyOutcome {
    /// Messages queued (one per subscriber holding a usable token; that token is spent).
    pub queued: u64,
    /// Subscribers listed as holders whose tokens were all gone at the time of the take.
    pub no_token: u64,
    /// Tokens found expired (and marked so) while notifying.
    pub expired: u64,
}

/// A timer that is due, with the subscriber it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueTimer {
    /// The Page.
    pub page: PageId,
    /// The subscriber.
    pub psid: Psid,
    /// The timer as stored in the session.
    pub timer: Timer,
}

/// Outbound queue figures for metrics: pending now, final states since the store was opened
/// (export them as counters; they restart at zero with the process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxStats {
    /// Messages waiting to be sent (including retries).
    pub pending: u64,
    /// Messages accepted by the Send API.
    pub sent: u64,
    /// Messages failed permanently.
    pub failed: u64,
    /// Messages refused by policy before sending.
    pub refused: u64,
    /// Messages possibly delivered without confirmation.
    pub delivered_unconfirmed: u64,
}
