//! Webhook payloads: the `page` envelope with batched entries and the messaging events in them.
//!
//! [`parse_webhook`] is total: it never panics, keeps events of unknown kinds as
//! [`EventKind::Unknown`], ignores unknown fields, and fails only when the envelope itself
//! (a JSON object with an `object` string and an `entry` array) is unusable.

use crate::ids::{PageId, Psid};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A parsed webhook delivery: the subscribed object type and its batched entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookBody {
    /// The `object` field; `"page"` for Messenger (see [`WebhookBody::is_page`]).
    pub object: String,
    /// The `entry` array, one per Page and batch; entries that are not JSON objects are skipped.
    pub entries: Vec<Entry>,
}

impl WebhookBody {
    /// Whether this delivery is for a Facebook Page (`"object": "page"`), the only kind botflow acts on.
    pub fn is_page(&self) -> bool {
        self.object == "page"
    }

    /// Every event of the `messaging` arrays of all entries, in delivery order.
    pub fn events(&self) -> impl Iterator<Item = &MessagingEvent> {
        self.entries.iter().flat_map(|entry| entry.messaging.iter())
    }

    /// Consumes the body and returns every `messaging` event in delivery order.
    pub fn into_events(self) -> Vec<MessagingEvent> {
        self.entries
            .into_iter()
            .flat_map(|entry| entry.messaging)
            .collect()
    }
}

/// One entry of the envelope: the events of one Page in one batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The Page id (`entry[].id`); empty when the platform left it out.
    pub page_id: PageId,
    /// The batch time in milliseconds since the Unix epoch (`entry[].time`); 0 when absent.
    pub time_ms: u64,
    /// Events for threads this app controls (`entry[].messaging`).
    pub messaging: Vec<MessagingEvent>,
    /// Events for threads another app controls (`entry[].standby`, handover protocol); not for routing.
    pub standby: Vec<MessagingEvent>,
}

/// One messaging event: who sent it to whom, when, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagingEvent {
    /// `sender.id`: the subscriber's PSID (for echoes, the Page id); empty only for `Unknown` kinds.
    pub sender: Psid,
    /// `recipient.id`: the Page id (for echoes, the subscriber's PSID); empty only for `Unknown` kinds.
    pub recipient: PageId,
    /// `timestamp` in milliseconds since the Unix epoch; 0 when absent.
    pub timestamp_ms: u64,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of messaging events botflow understands; anything else is kept as `Unknown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum EventKind {
    /// A message from the subscriber: text, a quick-reply tap and/or attachments.
    Message {
        /// The message id, unique across Messenger.
        mid: String,
        /// The text, if any.
        text: Option<String>,
        /// The payload of the tapped quick reply, if the message is a quick-reply tap.
        quick_reply_payload: Option<String>,
        /// Attachments (images, files, locations, …), possibly empty.
        attachments: Vec<Attachment>,
    },
    /// A copy of a message the Page itself sent (`is_echo: true`); ignore for flow routing.
    Echo {
        /// The message id of the sent message.
        mid: String,
        /// The text of the sent message, if any.
        text: Option<String>,
        /// The app that sent it, if the platform says so.
        app_id: Option<u64>,
        /// The `metadata` string the sender attached, if any.
        metadata: Option<String>,
    },
    /// A tap on a postback button (including "Get Started").
    Postback {
        /// The postback's message id, when present.
        mid: Option<String>,
        /// The button title shown to the subscriber, when present.
        title: Option<String>,
        /// The app's payload of the tapped button.
        payload: String,
        /// The referral that came with a "Get Started" tap (m.me link with `ref`, ad), if any.
        referral: Option<Referral>,
    },
    /// A referral to an existing thread (m.me link, ad, QR code).
    Referral(Referral),
    /// An opt-in to a one-time notification (`optin.type == "one_time_notif_req"`).
    OtnOptin {
        /// The app's payload of the request that was tapped (botflow encodes the topic here).
        payload: String,
        /// The one-time token that pays for exactly one later message.
        token: String,
    },
    /// An opt-in, stop or resume of recurring notifications (`optin.type == "notification_messages"`).
    RecurringOptin {
        /// `notification_messages_token`: the recipient of later recurring messages.
        token: String,
        /// The app's payload of the request, if present.
        payload: Option<String>,
        /// The request title, if present.
        title: Option<String>,
        /// `notification_messages_frequency`, if present.
        frequency: Option<RecurringFrequency>,
        /// `notification_messages_timezone`, if present (e.g. `"UTC"`).
        timezone: Option<String>,
        /// `token_expiry_timestamp` in milliseconds, if present (tokens no longer expire since 2023).
        token_expiry_ms: Option<u64>,
        /// `user_token_status` as sent (e.g. `"NOT_REFRESHED"`, `"REFRESHED"`), if present.
        user_token_status: Option<String>,
        /// `notification_messages_status`: stop or resume, absent on the first opt-in.
        status: Option<NotificationStatus>,
    },
    /// Delivery receipt: messages up to `watermark` (and those in `mids`) were delivered.
    Delivery {
        /// Ids of delivered messages (may be empty).
        mids: Vec<String>,
        /// Every message sent before this time (ms) was delivered.
        watermark: u64,
    },
    /// Read receipt: every message sent before `watermark` (ms) was read.
    Read {
        /// Every message sent before this time (ms) was read.
        watermark: u64,
    },
    /// An event of a kind botflow does not understand (or a known kind missing required fields), kept verbatim.
    Unknown(Value),
}

/// An attachment of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `type`: `image`, `video`, `audio`, `file`, `location`, `fallback`, `template`, …
    pub kind: String,
    /// `payload.url`, when the attachment has one.
    pub url: Option<String>,
}

/// A referral: how the subscriber came to the thread (m.me link `ref`, ad, QR code).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// `ref`: the app's reference string from the link, if any.
    pub reference: Option<String>,
    /// `source`: e.g. `SHORTLINK`, `ADS`, `MESSENGER_CODE`.
    pub source: Option<String>,
    /// `type`: e.g. `OPEN_THREAD`.
    pub referral_type: Option<String>,
    /// `ad_id`, for referrals from ads.
    pub ad_id: Option<String>,
}

/// How often recurring notifications may be sent (`notification_messages_frequency`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecurringFrequency {
    /// `DAILY`.
    Daily,
    /// `WEEKLY`.
    Weekly,
    /// `MONTHLY`.
    Monthly,
    /// Any other value, kept as sent.
    Other(String),
}

impl RecurringFrequency {
    /// Parses the platform's spelling (`DAILY`, `WEEKLY`, `MONTHLY`); other values become `Other`.
    pub fn from_platform(value: &str) -> Self {
        match value {
            "DAILY" => Self::Daily,
            "WEEKLY" => Self::Weekly,
            "MONTHLY" => Self::Monthly,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The platform's spelling of this frequency.
    pub fn as_platform(&self) -> &str {
        match self {
            Self::Daily => "DAILY",
            Self::Weekly => "WEEKLY",
            Self::Monthly => "MONTHLY",
            Self::Other(other) => other,
        }
    }
}

/// Stop or resume of recurring notifications (`notification_messages_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationStatus {
    /// `STOP_NOTIFICATIONS`: the subscriber stopped the notifications.
    Stop,
    /// `RESUME_NOTIFICATIONS`: the subscriber resumed them.
    Resume,
    /// Any other value, kept as sent.
    Other(String),
}

impl NotificationStatus {
    fn from_platform(value: &str) -> Self {
        match value {
            "STOP_NOTIFICATIONS" => Self::Stop,
            "RESUME_NOTIFICATIONS" => Self::Resume,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Why a webhook body could not be used at all (individual odd events never cause this).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is not valid JSON.
    #[error("webhook body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("webhook body is not a JSON object")]
    NotAnObject,
    /// The envelope has no `object` string.
    #[error("webhook body has no \"object\" string")]
    MissingObject,
    /// The envelope has no `entry` array.
    #[error("webhook body has no \"entry\" array")]
    MissingEntries,
}

/// Parses a webhook POST body; see the module docs for what is tolerated.
///
/// Every field is read leniently (a value of the wrong type counts as absent) by one typed
/// parser, straight from the bytes; a body with an unknown or malformed event is read with the
/// same parser over a `serde_json::Value`, so the event is kept as [`EventKind::Unknown`].
pub fn parse_webhook(body: &[u8]) -> Result<WebhookBody, WebhookError> {
    parse::parse_body(body)
}

/// Parses one event; anything that does not fit a known kind becomes `Unknown` with the raw JSON.
pub fn parse_event(raw: Value) -> MessagingEvent {
    parse::parse_event_value(raw)
}

mod parse;

impl MessagingEvent {
    /// The key under which redeliveries of this event are recognised: `mid:<mid>` for messages,
    /// echoes and postbacks with a mid, `otn:<token>` for OTN opt-ins, else `sha256:<hex>` of the
    /// event's canonical JSON (sorted keys), which is the same for every redelivery.
    pub fn dedup_key(&self) -> String {
        match &self.kind {
            EventKind::Message { mid, .. } | EventKind::Echo { mid, .. } => format!("mid:{mid}"),
            EventKind::Postback { mid: Some(mid), .. } => format!("mid:{mid}"),
            EventKind::OtnOptin { token, .. } => format!("otn:{token}"),
            _ => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(self.canonical_json()))
            ),
        }
    }

    /// Whether this event is one the subscriber caused (message, postback, referral or opt-in),
    /// which opens the 24-hour standard messaging window; echoes and receipts do not.
    pub fn is_user_interaction(&self) -> bool {
        matches!(
            self.kind,
            EventKind::Message { .. }
                | EventKind::Postback { .. }
                | EventKind::Referral(_)
                | EventKind::OtnOptin { .. }
                | EventKind::RecurringOptin { .. }
        )
    }

    /// This event as JSON text with object keys sorted, so equal events give equal bytes.
    pub fn canonical_json(&self) -> String {
        let mut out = String::new();
        match serde_json::to_value(self) {
            Ok(value) => write_canonical(&value, &mut out),
            // Serializing these plain types cannot fail; keep the function total anyway.
            Err(_) => out.push_str(&format!("{self:?}")),
        }
        out
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(key) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests;
