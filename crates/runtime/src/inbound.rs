//! From Messenger's webhook events (and the journal records holding them) to [`InboundEvent`]s,
//! so the step function stays independent of the wire types.

use crate::event::{GET_STARTED_PAYLOAD, InboundEvent};
use botflow_flow::Frequency;
use botflow_messenger::webhook::{NotificationStatus, RecurringFrequency};
use botflow_messenger::{EventKind, MessagingEvent};
use botflow_storage::JournalEntry;
use serde::Deserialize;

/// Why a journal record could not be read back as a webhook event.
#[derive(Debug, thiserror::Error)]
#[error("journal entry {seq} ({event}) does not hold a webhook event: {source}")]
pub struct JournalPayloadError {
    /// The entry's sequence number.
    pub seq: u64,
    /// The entry's dedup key.
    pub event: String,
    /// The parse error.
    pub source: serde_json::Error,
}

/// The flow event a webhook event stands for; `None` for events flows do not react to
/// (echoes, delivery and read receipts, recurring-notification opt-ins, unknown kinds).
pub fn from_messaging(event: &MessagingEvent) -> Option<InboundEvent> {
    match &event.kind {
        EventKind::Message {
            text,
            quick_reply_payload,
            attachments,
            ..
        } => match (quick_reply_payload, text) {
            (Some(payload), text) => Some(InboundEvent::QuickReply {
                payload: payload.clone(),
                text: text.clone().unwrap_or_default(),
            }),
            (None, Some(text)) => Some(InboundEvent::Text { text: text.clone() }),
            (None, None) => attachments.first().map(|a| InboundEvent::Attachment {
                url: a.url.clone().unwrap_or_default(),
            }),
        },
        EventKind::Postback {
            payload,
            title,
            referral,
            ..
        } => {
            if payload == GET_STARTED_PAYLOAD {
                Some(InboundEvent::GetStarted {
                    ref_param: referral.as_ref().and_then(|r| r.reference.clone()),
                })
            } else {
                Some(InboundEvent::Postback {
                    payload: payload.clone(),
                    title: title.clone().unwrap_or_default(),
                })
            }
        }
        EventKind::Referral(referral) => {
            referral.reference.as_ref().map(|r| InboundEvent::Referral {
                ref_param: r.clone(),
            })
        }
        EventKind::OtnOptin { payload, token } => Some(InboundEvent::Optin {
            payload: payload.clone(),
            token: token.clone(),
        }),
        EventKind::RecurringOptin {
            token,
            payload,
            frequency,
            timezone,
            token_expiry_ms,
            status,
            ..
        } => match status {
            Some(NotificationStatus::Stop) => Some(InboundEvent::RecurringStatus {
                token: token.clone(),
                stopped: true,
            }),
            Some(NotificationStatus::Resume) => Some(InboundEvent::RecurringStatus {
                token: token.clone(),
                stopped: false,
            }),
            Some(NotificationStatus::Other(_)) => None,
            None => payload
                .as_ref()
                .map(|payload| InboundEvent::RecurringOptin {
                    payload: payload.clone(),
                    token: token.clone(),
                    frequency: frequency.as_ref().and_then(|f| match f {
                        RecurringFrequency::Daily => Some(Frequency::Daily),
                        RecurringFrequency::Weekly => Some(Frequency::Weekly),
                        RecurringFrequency::Monthly => Some(Frequency::Monthly),
                        RecurringFrequency::Other(_) => None,
                    }),
                    timezone: timezone.clone(),
                    expires_ms: *token_expiry_ms,
                }),
        },
        EventKind::Echo { .. }
        | EventKind::Delivery { .. }
        | EventKind::Read { .. }
        | EventKind::Unknown(_) => None,
    }
}

/// Reads a journal record (the serde form of a [`MessagingEvent`], as the server journals it).
pub fn from_journal(entry: &JournalEntry) -> Result<Option<InboundEvent>, JournalPayloadError> {
    // Read from the stored value in place (no copy of the payload per step).
    let event =
        MessagingEvent::deserialize(&entry.payload).map_err(|source| JournalPayloadError {
            seq: entry.seq,
            event: entry.event.to_string(),
            source,
        })?;
    Ok(from_messaging(&event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use botflow_messenger::parse_webhook;

    fn events(messaging: serde_json::Value) -> Vec<Option<InboundEvent>> {
        let body = serde_json::json!({"object": "page", "entry": [
            {"id": "P", "time": 1, "messaging": messaging}]});
        let parsed = parse_webhook(body.to_string().as_bytes()).unwrap();
        parsed.events().map(from_messaging).collect()
    }

    #[test]
    fn converts_every_kind_flows_react_to() {
        let who =
            serde_json::json!({"sender": {"id": "U"}, "recipient": {"id": "P"}, "timestamp": 5});
        let with = |extra: serde_json::Value| {
            let mut event = who.clone();
            event
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            event
        };
        let got = events(serde_json::json!([
            with(serde_json::json!({"message": {"mid": "m1", "text": "hi"}})),
            with(
                serde_json::json!({"message": {"mid": "m2", "text": "Blue", "quick_reply": {"payload": "bf1:t:f:1:b:q0.0"}}})
            ),
            with(
                serde_json::json!({"message": {"mid": "m3", "attachments": [{"type": "image", "payload": {"url": "https://x/y.png"}}]}})
            ),
            with(
                serde_json::json!({"postback": {"mid": "m4", "title": "Go", "payload": "bf1:t:f:1:b:b0.0"}})
            ),
            with(
                serde_json::json!({"postback": {"title": "Get Started", "payload": "GET_STARTED", "referral": {"ref": "ad7", "source": "SHORTLINK", "type": "OPEN_THREAD"}}})
            ),
            with(
                serde_json::json!({"referral": {"ref": "summer", "source": "SHORTLINK", "type": "OPEN_THREAD"}})
            ),
            with(
                serde_json::json!({"optin": {"type": "one_time_notif_req", "payload": "bf1:o:P:f:1:b:0:t", "one_time_notif_token": "tok"}})
            ),
            with(
                serde_json::json!({"message": {"mid": "m5", "text": "sent by the page", "is_echo": true}})
            ),
            with(serde_json::json!({"read": {"watermark": 3}})),
        ]));
        assert_eq!(
            got,
            vec![
                Some(InboundEvent::Text { text: "hi".into() }),
                Some(InboundEvent::QuickReply {
                    payload: "bf1:t:f:1:b:q0.0".into(),
                    text: "Blue".into()
                }),
                Some(InboundEvent::Attachment {
                    url: "https://x/y.png".into()
                }),
                Some(InboundEvent::Postback {
                    payload: "bf1:t:f:1:b:b0.0".into(),
                    title: "Go".into()
                }),
                Some(InboundEvent::GetStarted {
                    ref_param: Some("ad7".into())
                }),
                Some(InboundEvent::Referral {
                    ref_param: "summer".into()
                }),
                Some(InboundEvent::Optin {
                    payload: "bf1:o:P:f:1:b:0:t".into(),
                    token: "tok".into()
                }),
                None,
                None,
            ]
        );
    }

    #[test]
    fn recurring_optins_stops_and_resumes_become_their_events() {
        let who =
            serde_json::json!({"sender": {"id": "U"}, "recipient": {"id": "P"}, "timestamp": 5});
        let optin = |fields: serde_json::Value| {
            let mut event = who.clone();
            let mut optin = serde_json::json!({"type": "notification_messages",
                "notification_messages_token": "rt"});
            optin
                .as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            event.as_object_mut().unwrap().insert("optin".into(), optin);
            event
        };
        let got = events(serde_json::json!([
            optin(serde_json::json!({"payload": "bf1:o:P:f:1:b:0:t",
                "notification_messages_frequency": "WEEKLY", "notification_messages_timezone": "UTC",
                "token_expiry_timestamp": 1_900_000_000_000u64})),
            optin(serde_json::json!({"payload": "bf1:o:P:f:1:b:0:t",
                "notification_messages_frequency": "HOURLY"})),
            optin(serde_json::json!({"notification_messages_status": "STOP_NOTIFICATIONS"})),
            optin(serde_json::json!({"notification_messages_status": "RESUME_NOTIFICATIONS"})),
            optin(serde_json::json!({"notification_messages_status": "SOMETHING_NEW"})),
            // an opt-in without a payload cannot be routed to a topic
            optin(serde_json::json!({"notification_messages_frequency": "DAILY"})),
        ]));
        assert_eq!(
            got,
            vec![
                Some(InboundEvent::RecurringOptin {
                    payload: "bf1:o:P:f:1:b:0:t".into(),
                    token: "rt".into(),
                    frequency: Some(Frequency::Weekly),
                    timezone: Some("UTC".into()),
                    expires_ms: Some(1_900_000_000_000),
                }),
                Some(InboundEvent::RecurringOptin {
                    payload: "bf1:o:P:f:1:b:0:t".into(),
                    token: "rt".into(),
                    frequency: None,
                    timezone: None,
                    expires_ms: None,
                }),
                Some(InboundEvent::RecurringStatus {
                    token: "rt".into(),
                    stopped: true
                }),
                Some(InboundEvent::RecurringStatus {
                    token: "rt".into(),
                    stopped: false
                }),
                None,
                None,
            ]
        );
    }
}
