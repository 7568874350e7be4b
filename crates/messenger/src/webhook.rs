//! Webhook payloads: the `page` envelope with batched entries and the messaging events in them.
//!
//! [`parse_webhook`] is total: it never panics, keeps events of unknown kinds as
//! [`EventKind::Unknown`], ignores unknown fields, and fails only when the envelope itself
//! (a JSON object with an `object` string and an `entry` array) is unusable.

use crate::ids::{PageId, Psid};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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
/// Well-formed deliveries take a fast path that deserializes typed events straight from the
/// bytes in one pass; a body with anything unusual (an unknown kind, an odd type) is re-read
/// through a `serde_json::Value`, and a property test checks both paths agree.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookBody, WebhookError> {
    match fast::parse(body) {
        Some(parsed) => Ok(parsed),
        None => parse_webhook_value(body),
    }
}

/// The reference parser: the whole body through `serde_json::Value`.
fn parse_webhook_value(body: &[u8]) -> Result<WebhookBody, WebhookError> {
    let value: Value = serde_json::from_slice(body).map_err(WebhookError::NotJson)?;
    let Value::Object(mut envelope) = value else {
        return Err(WebhookError::NotAnObject);
    };
    let object = match envelope.get("object") {
        Some(Value::String(object)) => object.clone(),
        _ => return Err(WebhookError::MissingObject),
    };
    let Some(Value::Array(raw_entries)) = envelope.remove("entry") else {
        return Err(WebhookError::MissingEntries);
    };
    let entries = raw_entries
        .into_iter()
        .filter_map(|raw| match raw {
            Value::Object(map) => Some(parse_entry(map)),
            _ => None,
        })
        .collect();
    Ok(WebhookBody { object, entries })
}

fn parse_entry(mut map: Map<String, Value>) -> Entry {
    let page_id = PageId(id_string(map.get("id")).unwrap_or_default());
    let time_ms = map.get("time").and_then(Value::as_u64).unwrap_or(0);
    Entry {
        page_id,
        time_ms,
        messaging: parse_events(map.remove("messaging")),
        standby: parse_events(map.remove("standby")),
    }
}

fn parse_events(raw: Option<Value>) -> Vec<MessagingEvent> {
    match raw {
        Some(Value::Array(events)) => events.into_iter().map(parse_event).collect(),
        _ => Vec::new(),
    }
}

/// Parses one event; anything that does not fit a known kind becomes `Unknown` with the raw JSON.
pub fn parse_event(raw: Value) -> MessagingEvent {
    let sender = id_string(raw.get("sender").and_then(|s| s.get("id")));
    let recipient = id_string(raw.get("recipient").and_then(|r| r.get("id")));
    let timestamp_ms = raw.get("timestamp").and_then(Value::as_u64).unwrap_or(0);
    let known = match (&sender, &recipient) {
        (Some(_), Some(_)) => known_kind(&raw),
        _ => None,
    };
    MessagingEvent {
        sender: Psid(sender.unwrap_or_default()),
        recipient: PageId(recipient.unwrap_or_default()),
        timestamp_ms,
        kind: known.unwrap_or(EventKind::Unknown(raw)),
    }
}

fn known_kind(raw: &Value) -> Option<EventKind> {
    // A kind key holding `null` counts as absent.
    let field = |name: &str| raw.get(name).filter(|value| !value.is_null());
    if let Some(message) = field("message") {
        return parse_message(message);
    }
    if let Some(postback) = field("postback") {
        return Some(EventKind::Postback {
            mid: str_field(postback, "mid"),
            title: str_field(postback, "title"),
            payload: str_field(postback, "payload")?,
            referral: postback.get("referral").map(parse_referral),
        });
    }
    if let Some(optin) = field("optin") {
        return parse_optin(optin);
    }
    if let Some(referral) = field("referral") {
        return Some(EventKind::Referral(parse_referral(referral)));
    }
    if let Some(delivery) = field("delivery") {
        let mids = match delivery.get("mids") {
            Some(Value::Array(mids)) => mids
                .iter()
                .filter_map(|mid| mid.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        return Some(EventKind::Delivery {
            mids,
            watermark: delivery.get("watermark")?.as_u64()?,
        });
    }
    if let Some(read) = field("read") {
        return Some(EventKind::Read {
            watermark: read.get("watermark")?.as_u64()?,
        });
    }
    None
}

fn parse_message(message: &Value) -> Option<EventKind> {
    let mid = str_field(message, "mid")?;
    let text = str_field(message, "text");
    if message.get("is_echo").and_then(Value::as_bool) == Some(true) {
        return Some(EventKind::Echo {
            mid,
            text,
            app_id: message.get("app_id").and_then(Value::as_u64),
            metadata: str_field(message, "metadata"),
        });
    }
    let quick_reply_payload = message
        .get("quick_reply")
        .and_then(|quick_reply| str_field(quick_reply, "payload"));
    let attachments = match message.get("attachments") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                Some(Attachment {
                    kind: str_field(item, "type")?,
                    url: item
                        .get("payload")
                        .and_then(|payload| str_field(payload, "url")),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(EventKind::Message {
        mid,
        text,
        quick_reply_payload,
        attachments,
    })
}

fn parse_optin(optin: &Value) -> Option<EventKind> {
    match optin.get("type").and_then(Value::as_str)? {
        "one_time_notif_req" => Some(EventKind::OtnOptin {
            payload: str_field(optin, "payload").unwrap_or_default(),
            token: str_field(optin, "one_time_notif_token")?,
        }),
        "notification_messages" => Some(EventKind::RecurringOptin {
            token: str_field(optin, "notification_messages_token")?,
            payload: str_field(optin, "payload"),
            title: str_field(optin, "title"),
            frequency: optin
                .get("notification_messages_frequency")
                .and_then(Value::as_str)
                .map(RecurringFrequency::from_platform),
            timezone: str_field(optin, "notification_messages_timezone"),
            token_expiry_ms: optin.get("token_expiry_timestamp").and_then(Value::as_u64),
            user_token_status: str_field(optin, "user_token_status"),
            status: optin
                .get("notification_messages_status")
                .and_then(Value::as_str)
                .map(NotificationStatus::from_platform),
        }),
        _ => None,
    }
}

fn parse_referral(referral: &Value) -> Referral {
    Referral {
        reference: str_field(referral, "ref"),
        source: str_field(referral, "source"),
        referral_type: str_field(referral, "type"),
        ad_id: str_field(referral, "ad_id"),
    }
}

fn str_field(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Ids are strings on the wire, but numbers are accepted too.
fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

/// The fast path: typed structs read straight from the bytes. Any failure or unknown kind
/// returns `None`, and the caller re-reads the body through `Value`.
mod fast {
    use super::*;
    use serde::de::value::MapAccessDeserializer;
    use serde::de::{Deserializer, MapAccess, Visitor};
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
}

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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const KEYS: &[&str] = &[
        "id",
        "mid",
        "text",
        "is_echo",
        "app_id",
        "metadata",
        "quick_reply",
        "attachments",
        "payload",
        "title",
        "referral",
        "ref",
        "source",
        "type",
        "ad_id",
        "one_time_notif_token",
        "notification_messages_token",
        "notification_messages_frequency",
        "notification_messages_status",
        "token_expiry_timestamp",
        "user_token_status",
        "mids",
        "watermark",
        "url",
    ];
    const EVENT_KEYS: &[&str] = &[
        "sender",
        "recipient",
        "timestamp",
        "message",
        "postback",
        "optin",
        "referral",
        "delivery",
        "read",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("s")),
            Just(json!("one_time_notif_req")),
            Just(json!("notification_messages")),
            Just(json!("WEEKLY")),
            Just(json!(7)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!(true)),
            Just(json!(null)),
            Just(json!([])),
            Just(json!(["m1", 2])),
            Just(json!({})),
            Just(json!({"id": "u", "payload": "p", "url": "http://x", "type": "image"})),
            Just(json!([{"type": "image", "payload": {"url": "http://x"}}, {"payload": null}])),
        ]
    }

    fn shaped_value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(prop::sample::select(KEYS), inner, 0..7).prop_map(
                    |map| Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                ),
            ]
        })
    }

    /// One fully populated event of every kind.
    fn templates() -> Vec<Value> {
        let ids = |extra: Value| {
            let mut event =
                json!({"sender": {"id": "u"}, "recipient": {"id": "p"}, "timestamp": 9});
            if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
                event.extend(extra);
            }
            event
        };
        vec![
            ids(
                json!({"message": {"mid": "m1", "text": "hi", "quick_reply": {"payload": "q"},
                "attachments": [{"type": "image", "payload": {"url": "http://x"}}, {"type": "location", "payload": {"coordinates": {}}}]}}),
            ),
            ids(
                json!({"message": {"mid": "m2", "is_echo": true, "app_id": 5, "metadata": "md", "text": "echo"}}),
            ),
            ids(
                json!({"postback": {"mid": "m3", "title": "T", "payload": "P",
                "referral": {"ref": "r", "source": "SHORTLINK", "type": "OPEN_THREAD", "ad_id": "a"}}}),
            ),
            ids(json!({"referral": {"ref": "r", "source": "ADS", "type": "OPEN_THREAD"}})),
            ids(
                json!({"optin": {"type": "one_time_notif_req", "payload": "p", "one_time_notif_token": "t"}}),
            ),
            ids(
                json!({"optin": {"type": "notification_messages", "payload": "p", "title": "T",
                "notification_messages_token": "t", "notification_messages_frequency": "WEEKLY",
                "notification_messages_timezone": "UTC", "token_expiry_timestamp": 5,
                "user_token_status": "REFRESHED", "notification_messages_status": "STOP_NOTIFICATIONS"}}),
            ),
            ids(json!({"delivery": {"mids": ["m1", "m2"], "watermark": 4}})),
            ids(json!({"read": {"watermark": 4}})),
        ]
    }

    /// Every JSON Pointer to an object inside `value`, `value` itself first.
    fn object_pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                out.push(at.clone());
                for (key, inner) in map {
                    object_pointers(inner, format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (index, inner) in items.iter().enumerate() {
                    object_pointers(inner, format!("{at}/{index}"), out);
                }
            }
            _ => {}
        }
    }

    /// A valid event of a random kind with up to three random edits (set a key to an odd value,
    /// or remove it) anywhere inside it.
    fn event() -> impl Strategy<Value = Value> {
        let edit = (
            any::<prop::sample::Index>(),
            prop::sample::select([KEYS, EVENT_KEYS].concat()),
            prop::option::of(leaf()),
        );
        (0..templates().len(), prop::collection::vec(edit, 0..4)).prop_map(|(index, edits)| {
            let mut event = templates()[index].clone();
            for (place, key, new_value) in edits {
                let mut pointers = Vec::new();
                object_pointers(&event, String::new(), &mut pointers);
                let pointer = place.get(&pointers).clone();
                if let Some(Value::Object(map)) = event.pointer_mut(&pointer) {
                    match new_value {
                        Some(value) => {
                            map.insert(key.to_owned(), value);
                        }
                        None => {
                            map.remove(key);
                        }
                    }
                }
            }
            event
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fast typed path and the reference `Value` path agree on every body.
        #[test]
        fn fast_path_agrees_with_value_path(
            events in prop::collection::vec(event(), 0..6),
            entry_extra in shaped_value(),
            as_array in any::<bool>(),
        ) {
            let entry = json!({"id": "p", "time": 1, "messaging": events, "extra": entry_extra});
            let body = if as_array {
                json!(["page", [entry]])
            } else {
                json!({"object": "page", "entry": [entry, entry_extra]})
            };
            let bytes = serde_json::to_vec(&body).unwrap();
            let fast = parse_webhook(&bytes);
            let reference = parse_webhook_value(&bytes);
            match (fast, reference) {
                (Ok(fast), Ok(reference)) => prop_assert_eq!(fast, reference),
                (Err(fast), Err(reference)) => prop_assert_eq!(fast.to_string(), reference.to_string()),
                (fast, reference) => prop_assert!(false, "fast {:?} vs reference {:?}", fast, reference),
            }
        }
    }

    #[test]
    fn arrays_are_not_read_as_structs() {
        let body = br#"{"object":"page","entry":[{"messaging":[{"sender":["u"],"recipient":{"id":"p"},"read":{"watermark":1}}]}]}"#;
        let parsed = parse_webhook(body).unwrap();
        assert!(matches!(
            parsed.entries[0].messaging[0].kind,
            EventKind::Unknown(_)
        ));
        assert!(matches!(
            parse_webhook(br#"["page", []]"#),
            Err(WebhookError::NotAnObject)
        ));
    }
}
