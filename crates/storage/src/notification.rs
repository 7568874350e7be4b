//! Topic notifications as resources: the record of one notification (state, totals, times),
//! kept by the store in the same transactions that queue, finish or cancel its messages.

use crate::ids::{PageId, Psid};
use botflow_flow::{FlowId, TopicId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Id of a topic notification; ids increase across the whole store.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NotificationId(pub u64);

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a notification sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotificationContent {
    /// One text message per subscriber, paid for by one token of the topic.
    Text,
    /// A flow run per subscriber; its `otn_send` blocks' messages are the notification's.
    Flow {
        /// The flow.
        flow: FlowId,
    },
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationState {
    /// Created; none of its messages has started sending yet.
    Queued,
    /// At least one of its messages started sending; some are still pending.
    Sending,
    /// Every message it queued is finished (sent, failed, refused or delivered-unconfirmed).
    Done,
    /// Cancelled: its messages not yet sent were removed and their tokens are usable again.
    Cancelled,
}

impl NotificationState {
    /// Whether the notification can still change (not done nor cancelled).
    pub fn is_running(self) -> bool {
        matches!(self, Self::Queued | Self::Sending)
    }

    /// The state's word in the API (`queued`, `sending`, `done`, `cancelled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The counts of a notification, each moved in the transaction that changes what it counts.
///
/// Every message counted in `queued` is pending or in exactly one of `sent`, `failed`,
/// `refused`, `unconfirmed` and `cancelled` ([`NotificationTotals::pending`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationTotals {
    /// Messages queued, each paying with one token (an OTN token is spent in the same commit; a
    /// recurring token records the send).
    pub queued: u64,
    /// Of `queued`, the messages paid for by recurring tokens (a text notification's recurring
    /// pass, or a flow's `otn_send`); their outcomes count in the same totals as the others.
    #[serde(default)]
    pub recurring: u64,
    /// Messages the Send API accepted.
    pub sent: u64,
    /// Messages that failed for good (their tokens are invalid).
    pub failed: u64,
    /// Messages refused by policy before sending.
    pub refused: u64,
    /// Token sends that may have been delivered, unconfirmed (never retried).
    pub unconfirmed: u64,
    /// Subscribers listed as holders whose tokens were all gone when their turn came.
    pub no_token: u64,
    /// Tokens found expired (and marked so) while queuing.
    pub expired: u64,
    /// Messages removed by a cancel before they were sent (their tokens usable again; a
    /// recurring token's last send given back).
    pub cancelled: u64,
}

impl NotificationTotals {
    /// Counts one finished message by its final status (a pending one counts nothing).
    pub(crate) fn count_final(&mut self, status: &crate::outbox::OutboundStatus) {
        use crate::outbox::OutboundStatus;
        match status {
            OutboundStatus::Pending => {}
            OutboundStatus::Sent { .. } => self.sent += 1,
            OutboundStatus::Failed { .. } => self.failed += 1,
            OutboundStatus::RefusedByPolicy { .. } => self.refused += 1,
            OutboundStatus::DeliveredUnconfirmed { .. } => self.unconfirmed += 1,
        }
    }

    /// Messages queued and not finished nor cancelled yet.
    pub fn pending(&self) -> u64 {
        self.queued.saturating_sub(
            self.sent + self.failed + self.refused + self.unconfirmed + self.cancelled,
        )
    }
}

/// A topic notification as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// The Page that sends it.
    pub page: PageId,
    /// The topic whose tokens pay for it.
    pub topic: TopicId,
    /// What it sends.
    pub content: NotificationContent,
    /// Where it stands.
    pub state: NotificationState,
    /// Its counts.
    pub totals: NotificationTotals,
    /// Whether all its messages are queued (it can be `done` only then).
    pub all_queued: bool,
    /// When it was created.
    pub created_ms: u64,
    /// When its first message started sending.
    pub started_ms: Option<u64>,
    /// When it became done or cancelled.
    pub finished_ms: Option<u64>,
    /// A flow notification's runs (one journaled event per subscriber); empty for a text one.
    #[serde(default)]
    pub runs: NotificationRuns,
}

/// The runs of a flow notification: one journaled event per subscriber, run by the node that
/// owns the subscriber, each counted in the step commit that ends it. The commit that ends the
/// last expected run closes the notification's queuing, so it needs no caller waiting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRuns {
    /// Runs journaled (set before they are); `None` until then.
    pub expected: Option<u64>,
    /// Runs committed.
    pub done: u64,
    /// Of `done`, runs that failed (recorded as processed, without their effects).
    pub failed: u64,
    /// The first subscriber whose run failed.
    pub first_failed: Option<Psid>,
}

impl NotificationRuns {
    /// Whether every expected run has committed.
    pub fn finished(&self) -> bool {
        self.expected.is_some_and(|expected| self.done >= expected)
    }
}

impl Notification {
    /// Moves a running notification to `done` when all its messages are queued and none is
    /// pending. Returns whether it just became done.
    pub(crate) fn settle(&mut self, now_ms: u64) -> bool {
        let done = self.state.is_running() && self.all_queued && self.totals.pending() == 0;
        if done {
            self.state = NotificationState::Done;
            self.finished_ms = Some(now_ms);
        }
        done
    }

    /// Marks the first send of a notification: `queued` becomes `sending`.
    pub(crate) fn start(&mut self, at_ms: u64) {
        if self.state == NotificationState::Queued {
            self.state = NotificationState::Sending;
        }
        self.started_ms.get_or_insert(at_ms);
    }

    /// Records how many runs were journaled and the tokens the sweep before them expired.
    /// Returns whether its queuing closes now (every run has already committed).
    pub(crate) fn expect_runs(&mut self, runs: u64, expired: u64) -> bool {
        self.runs.expected = Some(runs);
        self.totals.expired += expired;
        self.close_when_runs_finished()
    }

    /// Counts one committed run of `psid`. Returns whether its queuing closes now (the last
    /// expected run).
    pub(crate) fn end_run(&mut self, psid: &Psid, failed: bool) -> bool {
        self.runs.done += 1;
        if failed {
            self.runs.failed += 1;
            self.runs.first_failed.get_or_insert_with(|| psid.clone());
        }
        self.close_when_runs_finished()
    }

    fn close_when_runs_finished(&mut self) -> bool {
        let closes = !self.all_queued && self.runs.finished();
        if closes {
            self.all_queued = true;
        }
        closes
    }
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCancel {
    /// The notification after the cancel.
    pub notification: Notification,
    /// Messages removed from the outbox by this cancel.
    pub removed: u64,
    /// Tokens of removed messages that are usable again (the others had expired meanwhile),
    /// recurring tokens whose last send was given back included.
    pub tokens_restored: u64,
}
