//! A flow notification's run for one subscriber as a journal event: journaled by the node that
//! takes the notification, run by the node that owns the subscriber, in order with the
//! subscriber's other events, and redone after a crash like any journaled event.

use crate::event::{InboundEvent, NotifyContent};
use botflow_flow::{FlowId, TopicId};
use botflow_storage::{EventId, JournalEntry, NewJournalEvent, NotificationId, PageId, Psid};
use serde::{Deserialize, Serialize};

/// The payload's only key; a webhook's messaging object never has it.
const KEY: &str = "botflow_notification_run";

/// What a journaled notification run holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NotificationRunEvent {
    /// The notification whose run this is.
    pub(crate) notification: NotificationId,
    /// The topic whose tokens pay.
    pub(crate) topic: TopicId,
    /// The flow to run.
    pub(crate) flow: FlowId,
}

impl NotificationRunEvent {
    /// The journal record of this run for `psid` (its dedup key names the notification and the
    /// subscriber, so journaling it twice runs it once).
    pub(crate) fn journal_record(
        &self,
        page: &PageId,
        psid: &Psid,
        received_ms: u64,
    ) -> NewJournalEvent {
        NewJournalEvent {
            page: page.clone(),
            event: EventId(format!("notify:{}:{psid}", self.notification)),
            psid: psid.clone(),
            payload: serde_json::json!({ KEY: self }),
            received_ms,
        }
    }

    /// The run a journal entry holds; `None` for a webhook event.
    pub(crate) fn of(entry: &JournalEntry) -> Option<Self> {
        let fields = entry.payload.get(KEY)?;
        match serde_json::from_value(fields.clone()) {
            Ok(run) => Some(run),
            Err(error) => {
                tracing::error!(seq = entry.seq, %error, "unreadable notification run in the journal");
                None
            }
        }
    }

    /// The flow event the run steps with.
    pub(crate) fn inbound(&self) -> InboundEvent {
        InboundEvent::Notify {
            topic: self.topic.clone(),
            content: NotifyContent::Flow(self.flow.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_reads_back_from_its_journal_record_and_a_webhook_event_is_none() {
        let run = NotificationRunEvent {
            notification: NotificationId(7),
            topic: TopicId::from("restock"),
            flow: FlowId::from("notify"),
        };
        let record = run.journal_record(&PageId::from("P"), &Psid::from("U"), 5);
        assert_eq!(record.event.as_str(), "notify:7:U");
        let entry = |payload| JournalEntry {
            seq: 1,
            page: record.page.clone(),
            event: record.event.clone(),
            psid: record.psid.clone(),
            payload,
            received_ms: 5,
        };
        assert_eq!(
            NotificationRunEvent::of(&entry(record.payload.clone())),
            Some(run)
        );
        let webhook = serde_json::json!({"sender": {"id": "U"}, "recipient": {"id": "P"},
            "timestamp": 5, "message": {"mid": "m", "text": "hi"}});
        assert_eq!(NotificationRunEvent::of(&entry(webhook)), None);
    }
}
