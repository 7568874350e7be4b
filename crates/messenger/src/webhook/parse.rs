//! The fast path of webhook parsing: typed structs read straight from the bytes in one pass.
//! Any failure or unknown kind returns `None`, and the caller re-reads the body through `Value`.

use super::{
    Attachment, Entry, EventKind, MessagingEvent, NotificationStatus, PageId, Psid,
    RecurringFrequency, Referral, WebhookBody,
};
use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::marker::PhantomData;

/// A struct that must be a JSON object: serde's derive also accepts arrays (fields by position),
/// which the `Value` path would not read, so arrays are refused here.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        deserializer.deserialize_map(ObjectOnly(PhantomData))
    }
}

#[derive(Deserialize)]
struct Envelope {
    object: String,
    entry: Vec<Obj<RawEntry>>,
}

#[derive(Deserialize)]
struct RawEntry {
    id: Option<String>,
    time: Option<u64>,
    messaging: Option<Vec<Obj<RawEvent>>>,
    standby: Option<Vec<Obj<RawEvent>>>,
}

/// The whole body in one typed pass, or `None` when any part needs the `Value` path.
pub(super) fn parse(body: &[u8]) -> Option<WebhookBody> {
    let Obj(envelope): Obj<Envelope> = serde_json::from_slice(body).ok()?;
    let entries = envelope
        .entry
        .into_iter()
        .map(|Obj(entry)| {
            Some(Entry {
                page_id: PageId(entry.id.unwrap_or_default()),
                time_ms: entry.time.unwrap_or(0),
                messaging: events(entry.messaging)?,
                standby: events(entry.standby)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(WebhookBody {
        object: envelope.object,
        entries,
    })
}

fn events(raw: Option<Vec<Obj<RawEvent>>>) -> Option<Vec<MessagingEvent>> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|Obj(event)| typed_event(event))
        .collect()
}

#[derive(Deserialize)]
struct RawId {
    id: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    sender: Option<Obj<RawId>>,
    recipient: Option<Obj<RawId>>,
    timestamp: Option<u64>,
    message: Option<Obj<RawMessage>>,
    postback: Option<Obj<RawPostback>>,
    optin: Option<Obj<RawOptin>>,
    referral: Option<Obj<RawReferral>>,
    delivery: Option<Obj<RawDelivery>>,
    read: Option<Obj<RawRead>>,
}

#[derive(Deserialize)]
struct RawMessage {
    mid: Option<String>,
    text: Option<String>,
    is_echo: Option<bool>,
    app_id: Option<u64>,
    metadata: Option<String>,
    quick_reply: Option<Obj<RawQuickReply>>,
    attachments: Option<Vec<Obj<RawAttachment>>>,
}

#[derive(Deserialize)]
struct RawQuickReply {
    payload: Option<String>,
}

#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<Obj<RawAttachmentPayload>>,
}

#[derive(Deserialize)]
struct RawAttachmentPayload {
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawPostback {
    mid: Option<String>,
    title: Option<String>,
    payload: Option<String>,
    referral: Option<Obj<RawReferral>>,
}

#[derive(Deserialize)]
struct RawReferral {
    #[serde(rename = "ref")]
    reference: Option<String>,
    source: Option<String>,
    #[serde(rename = "type")]
    referral_type: Option<String>,
    ad_id: Option<String>,
}

#[derive(Deserialize)]
struct RawOptin {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<String>,
    one_time_notif_token: Option<String>,
    notification_messages_token: Option<String>,
    title: Option<String>,
    notification_messages_frequency: Option<String>,
    notification_messages_timezone: Option<String>,
    token_expiry_timestamp: Option<u64>,
    user_token_status: Option<String>,
    notification_messages_status: Option<String>,
}

#[derive(Deserialize)]
struct RawDelivery {
    mids: Option<Vec<Value>>,
    watermark: Option<u64>,
}

#[derive(Deserialize)]
struct RawRead {
    watermark: Option<u64>,
}

impl From<RawReferral> for Referral {
    fn from(raw: RawReferral) -> Self {
        Referral {
            reference: raw.reference,
            source: raw.source,
            referral_type: raw.referral_type,
            ad_id: raw.ad_id,
        }
    }
}

/// The event when it is of a known kind and well typed; `None` sends it down the `Value` path.
fn typed_event(event: RawEvent) -> Option<MessagingEvent> {
    let kind = if let Some(Obj(message)) = event.message {
        message_kind(message)?
    } else if let Some(Obj(postback)) = event.postback {
        EventKind::Postback {
            mid: postback.mid,
            title: postback.title,
            payload: postback.payload?,
            referral: postback.referral.map(|Obj(referral)| referral.into()),
        }
    } else if let Some(Obj(optin)) = event.optin {
        optin_kind(optin)?
    } else if let Some(Obj(referral)) = event.referral {
        EventKind::Referral(referral.into())
    } else if let Some(Obj(delivery)) = event.delivery {
        EventKind::Delivery {
            mids: delivery
                .mids
                .unwrap_or_default()
                .into_iter()
                .filter_map(|mid| match mid {
                    Value::String(mid) => Some(mid),
                    _ => None,
                })
                .collect(),
            watermark: delivery.watermark?,
        }
    } else if let Some(Obj(read)) = event.read {
        EventKind::Read {
            watermark: read.watermark?,
        }
    } else {
        return None;
    };
    Some(MessagingEvent {
        sender: Psid(event.sender?.0.id?),
        recipient: PageId(event.recipient?.0.id?),
        timestamp_ms: event.timestamp.unwrap_or(0),
        kind,
    })
}

fn message_kind(message: RawMessage) -> Option<EventKind> {
    let mid = message.mid?;
    if message.is_echo == Some(true) {
        return Some(EventKind::Echo {
            mid,
            text: message.text,
            app_id: message.app_id,
            metadata: message.metadata,
        });
    }
    Some(EventKind::Message {
        mid,
        text: message.text,
        quick_reply_payload: message.quick_reply.and_then(|Obj(reply)| reply.payload),
        attachments: message
            .attachments
            .unwrap_or_default()
            .into_iter()
            .filter_map(|Obj(attachment)| {
                Some(Attachment {
                    kind: attachment.kind?,
                    url: attachment.payload.and_then(|Obj(payload)| payload.url),
                })
            })
            .collect(),
    })
}

fn optin_kind(optin: RawOptin) -> Option<EventKind> {
    match optin.kind.as_deref()? {
        "one_time_notif_req" => Some(EventKind::OtnOptin {
            payload: optin.payload.unwrap_or_default(),
            token: optin.one_time_notif_token?,
        }),
        "notification_messages" => Some(EventKind::RecurringOptin {
            token: optin.notification_messages_token?,
            payload: optin.payload,
            title: optin.title,
            frequency: optin
                .notification_messages_frequency
                .as_deref()
                .map(RecurringFrequency::from_platform),
            timezone: optin.notification_messages_timezone,
            token_expiry_ms: optin.token_expiry_timestamp,
            user_token_status: optin.user_token_status,
            status: optin
                .notification_messages_status
                .as_deref()
                .map(NotificationStatus::from_platform),
        }),
        _ => None,
    }
}
