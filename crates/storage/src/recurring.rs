//! Recurring notification tokens: what an opt-in stores against (Page, subscriber, topic), the
//! stop/resume and retire states, and the period rule that decides when one may pay again.
//!
//! A recurring token is not spent by a send: it pays for at most one message per period of its
//! frequency, counted from its last send, and never more often than the caller's cap (Messenger's
//! current one is `botflow_messenger::limits::RECURRING_SEND_INTERVAL`, 48 hours).

use crate::ids::{PageId, Psid};
use crate::notification::NotificationId;
use botflow_flow::{Frequency, TopicId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Messenger's current cap between two sends of one recurring token
/// (`botflow_messenger::limits::RECURRING_SEND_INTERVAL`), in milliseconds: the cap a step
/// commit's recurring send is checked against, and the one the runtime's recurring pass uses.
pub const RECURRING_CAP_MS: u64 =
    botflow_messenger::limits::RECURRING_SEND_INTERVAL.as_millis() as u64;

/// A recurring opt-in, to store for (Page, subscriber, topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringOptin {
    /// The topic the subscriber opted in to.
    pub topic: TopicId,
    /// The `notification_messages_token` value.
    pub token: String,
    /// How often the Page may send with it.
    pub frequency: Frequency,
    /// `notification_messages_timezone`, as sent.
    pub timezone: Option<String>,
    /// From `token_expiry_timestamp`; `None`: the token does not expire.
    pub expires_ms: Option<u64>,
    /// When the opt-in happened.
    pub created_ms: u64,
}

/// What a recurring opt-in, stop or resume event asks the store to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RecurringChange {
    /// Store the token; it replaces the subscriber's earlier token of the topic.
    Optin(RecurringOptin),
    /// The subscriber stopped the notifications of this token.
    Stop {
        /// The token value.
        token: String,
    },
    /// The subscriber resumed them.
    Resume {
        /// The token value.
        token: String,
    },
}

/// What [`crate::Store::recurring_change`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurringChanged {
    /// A new token was stored (any earlier token of the same (Page, subscriber, topic) retired).
    Stored,
    /// The token was stored before (a redelivered opt-in) or already had that status.
    Unchanged,
    /// The topic does not exist (deleted meanwhile): nothing stored.
    TopicMissing,
    /// The token was stopped.
    Stopped,
    /// The token was resumed.
    Resumed,
    /// No such token is stored (or it is retired): nothing changed.
    UnknownToken,
}

/// A stored recurring notification token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringToken {
    /// The Page.
    pub page: PageId,
    /// The subscriber who opted in.
    pub psid: Psid,
    /// The topic.
    pub topic: TopicId,
    /// The token value.
    pub token: String,
    /// How often it may pay for a message.
    pub frequency: Frequency,
    /// The subscriber's timezone for the frequency, as Messenger sent it.
    pub timezone: Option<String>,
    /// When the opt-in happened.
    pub created_ms: u64,
    /// When it stops being usable; `None`: never.
    pub expires_ms: Option<u64>,
    /// When it last paid for a message (set when the message is queued).
    pub last_sent_ms: Option<u64>,
    /// `last_sent_ms` before the latest send, given back when that send's message is cancelled
    /// before it left (it never counted against the period).
    #[serde(default)]
    pub previous_sent_ms: Option<u64>,
    /// Where it stands.
    pub status: RecurringStatus,
}

/// The life of a recurring token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecurringStatus {
    /// May pay for messages (subject to the period rule and expiry).
    Active,
    /// The subscriber stopped the notifications; usable again after a resume.
    Stopped {
        /// When.
        at_ms: u64,
    },
    /// Never usable again: Messenger refused it (expired, revoked), it expired, a newer opt-in
    /// replaced it, or its topic was deleted.
    Retired {
        /// Why.
        reason: String,
        /// When.
        at_ms: u64,
    },
}

/// Why a recurring token may not pay for a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurringSkip {
    /// Stopped by the subscriber.
    Stopped,
    /// Retired for good.
    Retired,
    /// Past its expiry.
    Expired,
    /// It paid for a message less than a period (or the cap) ago.
    NotDue,
}

impl RecurringToken {
    /// The earliest time it may pay again: the last send plus the longer of its frequency's
    /// period and `cap_ms`; its creation time when it never paid.
    pub fn next_send_ms(&self, cap_ms: u64) -> u64 {
        match self.last_sent_ms {
            Some(last) => last.saturating_add(self.frequency.period_ms().max(cap_ms)),
            None => self.created_ms,
        }
    }

    /// Whether it may pay for a message at `now_ms`, and if not, why (the period rule).
    pub fn check_send(&self, now_ms: u64, cap_ms: u64) -> Result<(), RecurringSkip> {
        match self.status {
            RecurringStatus::Retired { .. } => return Err(RecurringSkip::Retired),
            RecurringStatus::Stopped { .. } => return Err(RecurringSkip::Stopped),
            RecurringStatus::Active => {}
        }
        if self.expires_ms.is_some_and(|expiry| expiry <= now_ms) {
            return Err(RecurringSkip::Expired);
        }
        if now_ms < self.next_send_ms(cap_ms) {
            return Err(RecurringSkip::NotDue);
        }
        Ok(())
    }
}

/// What the recurring pass of a topic notification needs besides the topic and the text.
#[derive(Debug, Clone, Copy)]
pub struct RecurringPass<'a> {
    /// The notification its messages belong to (counted in its totals, cancelled with it).
    pub notification: NotificationId,
    /// Subscribers another token already paid for in this notification: skipped.
    pub reached: &'a HashSet<Psid>,
    /// The shortest time between two sends of one token (Messenger's current cap).
    pub cap_ms: u64,
}

/// Counts of the recurring pass of a topic notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringNotifyOutcome {
    /// Messages queued, one per subscriber whose token may pay now (tokens are not spent).
    pub queued: u64,
    /// Holders skipped because their token paid for a message less than a period ago.
    pub not_due: u64,
    /// Holders skipped because they stopped the notifications.
    pub stopped: u64,
    /// Tokens found past their expiry (and retired) while notifying.
    pub expired: u64,
    /// Holders skipped because the caller reached them with another token in this notification.
    pub skipped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn token(frequency: Frequency) -> RecurringToken {
        RecurringToken {
            page: PageId::from("P"),
            psid: Psid::from("U"),
            topic: TopicId::from("t"),
            token: "r".into(),
            frequency,
            timezone: None,
            created_ms: 1_000,
            expires_ms: None,
            last_sent_ms: None,
            previous_sent_ms: None,
            status: RecurringStatus::Active,
        }
    }

    #[test]
    fn the_period_counts_from_the_last_send_and_never_beats_the_cap() {
        let cap = 48 * HOUR;
        let mut daily = token(Frequency::Daily);
        assert_eq!(daily.check_send(1_000, cap), Ok(()));
        daily.last_sent_ms = Some(10 * HOUR);
        // daily, but the 48 h cap is longer
        assert_eq!(daily.check_send(34 * HOUR, cap), Err(RecurringSkip::NotDue));
        assert_eq!(
            daily.check_send(58 * HOUR - 1, cap),
            Err(RecurringSkip::NotDue)
        );
        assert_eq!(daily.check_send(58 * HOUR, cap), Ok(()));
        // without a cap, daily is 24 h
        assert_eq!(daily.check_send(34 * HOUR, 0), Ok(()));
        let mut weekly = token(Frequency::Weekly);
        weekly.last_sent_ms = Some(0);
        assert_eq!(
            weekly.check_send(7 * 24 * HOUR - 1, cap),
            Err(RecurringSkip::NotDue)
        );
        assert_eq!(weekly.check_send(7 * 24 * HOUR, cap), Ok(()));
        let mut monthly = token(Frequency::Monthly);
        monthly.last_sent_ms = Some(0);
        assert_eq!(monthly.next_send_ms(cap), 30 * 24 * HOUR);
    }

    #[test]
    fn stopped_retired_and_expired_tokens_never_pay() {
        let mut t = token(Frequency::Weekly);
        t.status = RecurringStatus::Stopped { at_ms: 5 };
        assert_eq!(t.check_send(u64::MAX / 2, 0), Err(RecurringSkip::Stopped));
        t.status = RecurringStatus::Retired {
            reason: "revoked".into(),
            at_ms: 5,
        };
        assert_eq!(t.check_send(u64::MAX / 2, 0), Err(RecurringSkip::Retired));
        t.status = RecurringStatus::Active;
        t.expires_ms = Some(2_000);
        assert_eq!(t.check_send(1_999, 0), Ok(()));
        assert_eq!(t.check_send(2_000, 0), Err(RecurringSkip::Expired));
    }
}
