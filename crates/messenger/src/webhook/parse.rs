//! The one webhook parser: lenient typed structs read straight from the bytes in one pass. A body
//! that pass cannot type (bad JSON, a duplicate key, an event of an unknown kind) is read with
//! the same structs over a `serde_json::Value`, which keeps each event's JSON, so an unknown or
//! malformed event becomes [`EventKind::Unknown`] with its JSON.
//!
//! Every field is read the way JSON's object model reads it: a value of the wrong type counts as
//! absent (never an error), an array where an object is expected is not read as a struct, ids
//! may be numbers, and a duplicate key's last value wins.

use super::{
    Attachment, Entry, EventKind, MessagingEvent, NotificationStatus, PageId, Psid,
    RecurringFrequency, Referral, WebhookBody, WebhookError,
};
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de};
use serde_json::{Number, Value};
use std::fmt;
use std::marker::PhantomData;

/// Parses a whole body: syntax errors first, then the envelope's shape.
pub(super) fn parse_body(body: &[u8]) -> Result<WebhookBody, WebhookError> {
    // One typed pass straight from the bytes. It stops at bad JSON, a duplicate key or an event
    // it cannot type; then the body is read as JSON's object model has it (bad JSON is reported
    // from there; a duplicate key's last value wins) and the same structs are read over it,
    // keeping each event's JSON so that an unknown one keeps it.
    match serde_json::from_slice::<Object<RawEnvelope<Typed>>>(body) {
        Ok(envelope) => body_of(envelope, |Typed(event)| event),
        Err(_) => {
            let value: Value = serde_json::from_slice(body).map_err(WebhookError::NotJson)?;
            let envelope = Object::<RawEnvelope<Kept>>::deserialize(&value);
            body_of(envelope.map_err(WebhookError::NotJson)?, |Kept(event)| {
                event
            })
        }
    }
}

/// The body of an envelope whose events were read as `E`.
fn body_of<E>(
    envelope: Object<RawEnvelope<E>>,
    into_event: impl Fn(E) -> MessagingEvent + Copy,
) -> Result<WebhookBody, WebhookError> {
    let Object::Map(envelope) = envelope else {
        return Err(WebhookError::NotAnObject);
    };
    let events = |list: Option<Items<E>>| -> Vec<MessagingEvent> {
        let list = list.and_then(|Items(list)| list).unwrap_or_default();
        list.into_iter().map(into_event).collect()
    };
    let object = envelope.object.and_then(Scalar::string);
    let entries = envelope.entry.and_then(|Items(entries)| entries);
    Ok(WebhookBody {
        object: object.ok_or(WebhookError::MissingObject)?,
        entries: entries
            .ok_or(WebhookError::MissingEntries)?
            .into_iter()
            .filter_map(Object::map)
            .map(|entry| Entry {
                page_id: PageId(entry.id.and_then(Scalar::id).unwrap_or_default()),
                time_ms: entry.time.and_then(Scalar::u64).unwrap_or(0),
                messaging: events(entry.messaging),
                standby: events(entry.standby),
            })
            .collect(),
    })
}

/// Parses one event given as JSON; see [`super::parse_event`].
pub(super) fn parse_event_value(raw: Value) -> MessagingEvent {
    let typed = Object::<RawEvent>::deserialize(&raw).unwrap_or(Object::Other);
    keep_json(event(typed), raw)
}

/// An event of a known kind read straight from the text; any other event stops the typed pass.
struct Typed(MessagingEvent);

impl<'de> Deserialize<'de> for Typed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match event(Object::deserialize(deserializer)?) {
            MessagingEvent {
                kind: EventKind::Unknown(_),
                ..
            } => Err(de::Error::custom("an event of an unknown kind")),
            known => Ok(Typed(known)),
        }
    }
}

/// An event read from JSON, which it keeps when it is of an unknown kind.
struct Kept(MessagingEvent);

impl<'de> Deserialize<'de> for Kept {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(deserializer)?;
        Ok(Kept(parse_event_value(raw)))
    }
}

/// `event` with `raw` as the JSON of its kind when that is `Unknown`.
fn keep_json(mut event: MessagingEvent, raw: Value) -> MessagingEvent {
    if let EventKind::Unknown(json) = &mut event.kind {
        *json = raw;
    }
    event
}

/// The event of a typed read; anything that does not fit a known kind is `Unknown` (with `null`
/// for its JSON, which the caller fills in).
fn event(typed: Object<RawEvent>) -> MessagingEvent {
    let Object::Map(mut event) = typed else {
        return unknown(None, None, 0);
    };
    let sender = id_of(event.sender.take());
    let recipient = id_of(event.recipient.take());
    let timestamp_ms = event.timestamp.take().and_then(Scalar::u64).unwrap_or(0);
    let known = match (&sender, &recipient) {
        (Some(_), Some(_)) => known_kind(event),
        _ => None,
    };
    match known {
        Some(kind) => MessagingEvent {
            sender: Psid(sender.unwrap_or_default()),
            recipient: PageId(recipient.unwrap_or_default()),
            timestamp_ms,
            kind,
        },
        None => unknown(sender, recipient, timestamp_ms),
    }
}

fn unknown(sender: Option<String>, recipient: Option<String>, timestamp_ms: u64) -> MessagingEvent {
    MessagingEvent {
        sender: Psid(sender.unwrap_or_default()),
        recipient: PageId(recipient.unwrap_or_default()),
        timestamp_ms,
        kind: EventKind::Unknown(Value::Null),
    }
}

/// `sender.id` or `recipient.id`: a string, or a number written as a string.
fn id_of(holder: Option<Object<RawId>>) -> Option<String> {
    match holder? {
        Object::Map(holder) => holder.id?.id(),
        Object::Other => None,
    }
}

/// The kind of an event: the first kind key that is present and not `null` decides.
fn known_kind(kinds: RawEvent) -> Option<EventKind> {
    if let Some(message) = kinds.message {
        return message_kind(message.map()?);
    }
    if let Some(postback) = kinds.postback {
        let postback = postback.map()?;
        return Some(EventKind::Postback {
            mid: postback.mid.and_then(Scalar::string),
            title: postback.title.and_then(Scalar::string),
            payload: postback.payload?.string()?,
            referral: postback.referral.map(referral),
        });
    }
    if let Some(optin) = kinds.optin {
        return optin_kind(optin.map()?);
    }
    if let Some(raw) = kinds.referral {
        return Some(EventKind::Referral(referral(raw)));
    }
    if let Some(delivery) = kinds.delivery {
        let delivery = delivery.map()?;
        return Some(EventKind::Delivery {
            mids: delivery
                .mids
                .and_then(|Items(mids)| mids)
                .map(|mids| mids.into_iter().filter_map(Scalar::string).collect())
                .unwrap_or_default(),
            watermark: delivery.watermark?.u64()?,
        });
    }
    if let Some(read) = kinds.read {
        return Some(EventKind::Read {
            watermark: read.map()?.watermark?.u64()?,
        });
    }
    None
}

fn message_kind(message: RawMessage) -> Option<EventKind> {
    let mid = message.mid?.string()?;
    let text = message.text.and_then(Scalar::string);
    if matches!(message.is_echo, Some(Scalar::Bool(true))) {
        return Some(EventKind::Echo {
            mid,
            text,
            app_id: message.app_id.and_then(Scalar::u64),
            metadata: message.metadata.and_then(Scalar::string),
        });
    }
    let attachments = message
        .attachments
        .and_then(|Items(items)| items)
        .unwrap_or_default();
    Some(EventKind::Message {
        mid,
        text,
        quick_reply_payload: message
            .quick_reply
            .and_then(Object::map)
            .and_then(|reply| reply.payload?.string()),
        attachments: attachments
            .into_iter()
            .filter_map(|attachment| {
                let attachment = attachment.map()?;
                Some(Attachment {
                    kind: attachment.kind?.string()?,
                    url: attachment
                        .payload
                        .and_then(Object::map)
                        .and_then(|payload| payload.url?.string()),
                })
            })
            .collect(),
    })
}

fn optin_kind(optin: RawOptin) -> Option<EventKind> {
    let string = |field: Option<Scalar>| field.and_then(Scalar::string);
    match optin.kind?.string()?.as_str() {
        "one_time_notif_req" => Some(EventKind::OtnOptin {
            payload: string(optin.payload).unwrap_or_default(),
            token: string(optin.one_time_notif_token)?,
        }),
        "notification_messages" => Some(EventKind::RecurringOptin {
            token: string(optin.notification_messages_token)?,
            payload: string(optin.payload),
            title: string(optin.title),
            frequency: string(optin.notification_messages_frequency)
                .map(|frequency| RecurringFrequency::from_platform(&frequency)),
            timezone: string(optin.notification_messages_timezone),
            token_expiry_ms: optin.token_expiry_timestamp.and_then(Scalar::u64),
            user_token_status: string(optin.user_token_status),
            status: string(optin.notification_messages_status)
                .map(|status| NotificationStatus::from_platform(&status)),
        }),
        _ => None,
    }
}

/// A referral; one that is not an object has no fields.
fn referral(raw: Object<RawReferral>) -> Referral {
    let Object::Map(raw) = raw else {
        return Referral::default();
    };
    Referral {
        reference: raw.reference.and_then(Scalar::string),
        source: raw.source.and_then(Scalar::string),
        referral_type: raw.referral_type.and_then(Scalar::string),
        ad_id: raw.ad_id.and_then(Scalar::string),
    }
}

/// One JSON value where a scalar is expected: arrays and objects are skipped.
enum Scalar {
    String(String),
    Number(Number),
    Bool(bool),
    Other,
}

impl Scalar {
    fn string(self) -> Option<String> {
        match self {
            Self::String(text) => Some(text),
            _ => None,
        }
    }

    /// A non-negative integer, as `Value::as_u64` reads it.
    fn u64(self) -> Option<u64> {
        if let Self::Number(number) = self {
            return number.as_u64();
        }
        None
    }

    /// An id: a string, or a number as JSON writes it.
    fn id(self) -> Option<String> {
        match self {
            Self::Number(number) => Some(number.to_string()),
            other => other.string(),
        }
    }
}

impl Shape<'_> for Scalar {
    fn other() -> Self {
        Scalar::Other
    }

    fn from_scalar(scalar: Scalar) -> Self {
        scalar
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor(PhantomData))
    }
}

/// A lenient type read from any JSON value: what it makes of an object, of an array, of a
/// string, number or boolean, and of anything else.
trait Shape<'de>: Sized {
    /// What any value but the ones the type reads gives.
    fn other() -> Self;

    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Self::other())
    }

    fn from_seq<A: SeqAccess<'de>>(seq: A) -> Result<Self, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Self::other())
    }

    fn from_scalar(scalar: Scalar) -> Self {
        drop(scalar);
        Self::other()
    }
}

/// Reads any JSON value into a [`Shape`].
struct ShapeVisitor<S>(PhantomData<S>);

impl<'de, S: Shape<'de>> Visitor<'de> for ShapeVisitor<S> {
    type Value = S;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
        S::from_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S, A::Error> {
        S::from_seq(seq)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<S, E> {
        Ok(S::from_scalar(Scalar::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<S, E> {
        Ok(S::from_scalar(Scalar::Number(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<S, E> {
        Ok(S::from_scalar(Scalar::Number(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<S, E> {
        Ok(Number::from_f64(v).map_or_else(S::other, |n| S::from_scalar(Scalar::Number(n))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<S, E> {
        Ok(S::from_scalar(Scalar::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<S, E> {
        Ok(S::from_scalar(Scalar::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<S, E> {
        Ok(S::other())
    }
}

/// The items of a JSON array; `None` for any other value.
struct Items<T>(Option<Vec<T>>);

impl<'de, T: Deserialize<'de>> Shape<'de> for Items<T> {
    fn other() -> Self {
        Items(None)
    }

    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Items(Some(items)))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor(PhantomData))
    }
}

/// A JSON value where an object is expected: the object read as `T`, or any other value.
/// (serde's derive alone would also read an array as a struct, fields by position.)
enum Object<T> {
    Map(T),
    Other,
}

impl<T> Object<T> {
    fn map(self) -> Option<T> {
        match self {
            Self::Map(inner) => Some(inner),
            Self::Other => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Shape<'de> for Object<T> {
    fn other() -> Self {
        Object::Other
    }

    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object::Map)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor(PhantomData))
    }
}

// The shapes of a body as the platform sends them. Every field is optional and lenient
// (`Option` reads `null` as absent); which fields a kind requires is decided above.

/// The envelope, with events read as `E`.
#[derive(Deserialize)]
struct RawEnvelope<E> {
    object: Option<Scalar>,
    entry: Option<Items<Object<RawEntry<E>>>>,
}

#[derive(Deserialize)]
struct RawEntry<E> {
    id: Option<Scalar>,
    time: Option<Scalar>,
    messaging: Option<Items<E>>,
    standby: Option<Items<E>>,
}

#[derive(Deserialize)]
struct RawEvent {
    sender: Option<Object<RawId>>,
    recipient: Option<Object<RawId>>,
    timestamp: Option<Scalar>,
    message: Option<Object<RawMessage>>,
    postback: Option<Object<RawPostback>>,
    optin: Option<Object<RawOptin>>,
    referral: Option<Object<RawReferral>>,
    delivery: Option<Object<RawDelivery>>,
    read: Option<Object<RawRead>>,
}

#[derive(Deserialize)]
struct RawId {
    id: Option<Scalar>,
}

#[derive(Deserialize)]
struct RawMessage {
    mid: Option<Scalar>,
    text: Option<Scalar>,
    is_echo: Option<Scalar>,
    app_id: Option<Scalar>,
    metadata: Option<Scalar>,
    quick_reply: Option<Object<RawQuickReply>>,
    attachments: Option<Items<Object<RawAttachment>>>,
}

#[derive(Deserialize)]
struct RawQuickReply {
    payload: Option<Scalar>,
}

#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "type")]
    kind: Option<Scalar>,
    payload: Option<Object<RawAttachmentPayload>>,
}

#[derive(Deserialize)]
struct RawAttachmentPayload {
    url: Option<Scalar>,
}

#[derive(Deserialize)]
struct RawPostback {
    mid: Option<Scalar>,
    title: Option<Scalar>,
    payload: Option<Scalar>,
    referral: Option<Object<RawReferral>>,
}

#[derive(Deserialize)]
struct RawReferral {
    #[serde(rename = "ref")]
    reference: Option<Scalar>,
    source: Option<Scalar>,
    #[serde(rename = "type")]
    referral_type: Option<Scalar>,
    ad_id: Option<Scalar>,
}

#[derive(Deserialize)]
struct RawOptin {
    #[serde(rename = "type")]
    kind: Option<Scalar>,
    payload: Option<Scalar>,
    one_time_notif_token: Option<Scalar>,
    notification_messages_token: Option<Scalar>,
    title: Option<Scalar>,
    notification_messages_frequency: Option<Scalar>,
    notification_messages_timezone: Option<Scalar>,
    token_expiry_timestamp: Option<Scalar>,
    user_token_status: Option<Scalar>,
    notification_messages_status: Option<Scalar>,
}

#[derive(Deserialize)]
struct RawDelivery {
    mids: Option<Items<Scalar>>,
    watermark: Option<Scalar>,
}

#[derive(Deserialize)]
struct RawRead {
    watermark: Option<Scalar>,
}
