//! Send API request types, their wire JSON, and the platform's limits checked before sending.

use crate::webhook::RecurringFrequency;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use crate::limits::{
    MAX_BUTTON_TEXT_CHARS, MAX_BUTTON_TITLE_CHARS, MAX_BUTTONS, MAX_NOTIFICATION_TITLE_CHARS,
    MAX_PAYLOAD_CHARS, MAX_QUICK_REPLIES, MAX_TEXT_CHARS,
};

/// Message tags the platform answers with code 100 since 27 April 2026.
pub const RETIRED_MESSAGE_TAGS: &[&str] = &[
    "CONFIRMED_EVENT_UPDATE",
    "ACCOUNT_UPDATE",
    "POST_PURCHASE_UPDATE",
];

/// Whom a message goes to: a person by PSID, or a notification token that pays for the message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// A person by page-scoped id (`recipient.id`); subject to the 24-hour window.
    Psid(String),
    /// A one-time notification token (`recipient.one_time_notif_token`); usable exactly once.
    OtnToken(String),
    /// A recurring notification token (`recipient.notification_messages_token`).
    NotificationToken(String),
}

impl Recipient {
    /// Whether the recipient is a notification token rather than a PSID.
    pub fn is_token(&self) -> bool {
        !matches!(self, Self::Psid(_))
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Psid(psid) => json!({ "id": psid }),
            Self::OtnToken(token) => json!({ "one_time_notif_token": token }),
            Self::NotificationToken(token) => json!({ "notification_messages_token": token }),
        }
    }
}

/// The `messaging_type` of a send: why the Page may send this message now.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessagingType {
    /// A reply inside the 24-hour window.
    Response,
    /// A proactive message inside the 24-hour window.
    Update,
    /// A tagged message outside the window; the tag (e.g. `HUMAN_AGENT`) is sent as `tag`.
    MessageTag(String),
}

/// A button of a button template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Button {
    /// Sends a postback event with `payload` when tapped.
    Postback {
        /// Shown on the button (at most 20 characters).
        title: String,
        /// Returned in the postback event (at most 1,000 characters).
        payload: String,
    },
    /// Opens `url` when tapped.
    WebUrl {
        /// Shown on the button (at most 20 characters).
        title: String,
        /// The http(s) URL to open.
        url: String,
    },
}

/// A text quick reply: a chip under the message that sends `payload` back when tapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    /// Shown on the chip (at most 20 characters).
    pub title: String,
    /// Returned as `quick_reply.payload` (at most 1,000 characters).
    pub payload: String,
}

/// The content of one outgoing message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutgoingMessage {
    /// Plain text.
    Text {
        /// The text (1..=2,000 characters).
        text: String,
    },
    /// Text with 1–3 buttons, sent as a button template, optionally with quick replies.
    TextWithButtons {
        /// The text (1..=640 characters).
        text: String,
        /// The buttons (1..=3).
        buttons: Vec<Button>,
        /// Quick replies under the template (0..=13).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        quick_replies: Vec<QuickReply>,
    },
    /// Text with 1–13 quick replies.
    TextWithQuickReplies {
        /// The text (1..=2,000 characters).
        text: String,
        /// The quick replies (1..=13).
        quick_replies: Vec<QuickReply>,
    },
    /// An image attachment by URL.
    Image {
        /// The http(s) URL of the image.
        url: String,
    },
    /// A file attachment by URL.
    File {
        /// The http(s) URL of the file.
        url: String,
    },
    /// The one-time-notification request template: a title and a "Notify Me" button.
    OtnRequest {
        /// Shown to the subscriber (1..=65 characters).
        title: String,
        /// The app's string, echoed back in the opt-in event.
        payload: String,
    },
    /// The recurring notification request template (`notification_messages`).
    RecurringRequest {
        /// Shown to the subscriber (1..=65 characters).
        title: String,
        /// The app's string, echoed back in the opt-in event.
        payload: String,
        /// How often the Page may send.
        frequency: RecurringFrequency,
        /// An optional image shown with the request.
        image_url: Option<String>,
        /// An optional IANA timezone for the frequency (e.g. `"Europe/Paris"`).
        timezone: Option<String>,
    },
}

impl OutgoingMessage {
    /// The wire JSON of the `message` field of a Send API request.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Text { text } => json!({ "text": text }),
            Self::TextWithButtons {
                text,
                buttons,
                quick_replies,
            } => {
                let buttons: Vec<Value> = buttons
                    .iter()
                    .map(|button| match button {
                        Button::Postback { title, payload } => {
                            json!({ "type": "postback", "title": title, "payload": payload })
                        }
                        Button::WebUrl { title, url } => {
                            json!({ "type": "web_url", "title": title, "url": url })
                        }
                    })
                    .collect();
                let mut message = template(
                    json!({ "template_type": "button", "text": text, "buttons": buttons }),
                );
                if !quick_replies.is_empty() {
                    if let Value::Object(fields) = &mut message {
                        fields.insert("quick_replies".into(), quick_replies_json(quick_replies));
                    }
                }
                message
            }
            Self::TextWithQuickReplies {
                text,
                quick_replies,
            } => {
                json!({ "text": text, "quick_replies": quick_replies_json(quick_replies) })
            }
            Self::Image { url } => {
                json!({ "attachment": { "type": "image", "payload": { "url": url } } })
            }
            Self::File { url } => {
                json!({ "attachment": { "type": "file", "payload": { "url": url } } })
            }
            Self::OtnRequest { title, payload } => template(json!({
                "template_type": "one_time_notif_req",
                "title": title,
                "payload": payload,
            })),
            Self::RecurringRequest {
                title,
                payload,
                frequency,
                image_url,
                timezone,
            } => {
                let mut fields = Map::new();
                fields.insert("template_type".into(), json!("notification_messages"));
                fields.insert("title".into(), json!(title));
                fields.insert("payload".into(), json!(payload));
                fields.insert(
                    "notification_messages_frequency".into(),
                    json!(frequency.as_platform()),
                );
                if let Some(image_url) = image_url {
                    fields.insert("image_url".into(), json!(image_url));
                }
                if let Some(timezone) = timezone {
                    fields.insert("notification_messages_timezone".into(), json!(timezone));
                }
                template(Value::Object(fields))
            }
        }
    }

    /// Reads the wire JSON of a `message` field back (see [`SendRequest::from_json`]).
    fn from_json(message: &Value) -> Result<Self, WireError> {
        let quick_replies = match message.get("quick_replies") {
            None => Vec::new(),
            Some(replies) => replies
                .as_array()
                .ok_or_else(|| WireError::new("message.quick_replies", "not a list"))?
                .iter()
                .map(|reply| QuickReply {
                    title: wire_str(reply, "title").unwrap_or_default(),
                    payload: wire_str(reply, "payload").unwrap_or_default(),
                })
                .collect(),
        };
        if let Some(text) = wire_str(message, "text") {
            return Ok(if quick_replies.is_empty() {
                Self::Text { text }
            } else {
                Self::TextWithQuickReplies {
                    text,
                    quick_replies,
                }
            });
        }
        let attachment = message
            .get("attachment")
            .ok_or_else(|| WireError::new("message", "neither text nor attachment"))?;
        let payload = attachment.get("payload").unwrap_or(&Value::Null);
        let url = || {
            wire_str(payload, "url")
                .ok_or_else(|| WireError::new("message.attachment.payload.url", "missing"))
        };
        match attachment.get("type").and_then(Value::as_str) {
            Some("image") => return Ok(Self::Image { url: url()? }),
            Some("file") => return Ok(Self::File { url: url()? }),
            Some("template") => {}
            other => {
                return Err(WireError::new(
                    "message.attachment.type",
                    format!("unsupported {other:?}"),
                ));
            }
        }
        let title = || wire_str(payload, "title").unwrap_or_default();
        let app_payload = || wire_str(payload, "payload").unwrap_or_default();
        match payload.get("template_type").and_then(Value::as_str) {
            Some("button") => {
                let buttons = payload
                    .get("buttons")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|button| {
                        let title = wire_str(button, "title").unwrap_or_default();
                        match button.get("type").and_then(Value::as_str) {
                            Some("web_url") => Ok(Button::WebUrl {
                                title,
                                url: wire_str(button, "url").unwrap_or_default(),
                            }),
                            Some("postback") => Ok(Button::Postback {
                                title,
                                payload: wire_str(button, "payload").unwrap_or_default(),
                            }),
                            other => Err(WireError::new(
                                "message.attachment.payload.buttons",
                                format!("unsupported button type {other:?}"),
                            )),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Self::TextWithButtons {
                    text: wire_str(payload, "text").unwrap_or_default(),
                    buttons,
                    quick_replies,
                })
            }
            Some("one_time_notif_req") => Ok(Self::OtnRequest {
                title: title(),
                payload: app_payload(),
            }),
            Some("notification_messages") => {
                let frequency = wire_str(payload, "notification_messages_frequency")
                    .map(|value| RecurringFrequency::from_platform(&value))
                    .ok_or_else(|| {
                        WireError::new(
                            "message.attachment.payload.notification_messages_frequency",
                            "missing",
                        )
                    })?;
                Ok(Self::RecurringRequest {
                    title: title(),
                    payload: app_payload(),
                    frequency,
                    image_url: wire_str(payload, "image_url"),
                    timezone: wire_str(payload, "notification_messages_timezone"),
                })
            }
            other => Err(WireError::new(
                "message.attachment.payload.template_type",
                format!("unsupported {other:?}"),
            )),
        }
    }

    /// Whether this message is a notification request template (must go to a PSID in the window).
    pub fn is_notification_request(&self) -> bool {
        matches!(
            self,
            Self::OtnRequest { .. } | Self::RecurringRequest { .. }
        )
    }

    /// Checks the platform's limits for this message; `field` paths are those of the wire JSON.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        match self {
            Self::Text { text } => check_text(|| "message.text".to_owned(), text, MAX_TEXT_CHARS),
            Self::TextWithButtons {
                text,
                buttons,
                quick_replies,
            } => {
                let base = "message.attachment.payload";
                check_text(|| format!("{base}.text"), text, MAX_BUTTON_TEXT_CHARS)?;
                check_count(|| format!("{base}.buttons"), buttons.len(), 1, MAX_BUTTONS)?;
                for (index, button) in buttons.iter().enumerate() {
                    let field = format_args!("{base}.buttons[{index}]");
                    match button {
                        Button::Postback { title, payload } => {
                            check_text(|| format!("{field}.title"), title, MAX_BUTTON_TITLE_CHARS)?;
                            check_text(|| format!("{field}.payload"), payload, MAX_PAYLOAD_CHARS)?;
                        }
                        Button::WebUrl { title, url } => {
                            check_text(|| format!("{field}.title"), title, MAX_BUTTON_TITLE_CHARS)?;
                            check_url(|| format!("{field}.url"), url)?;
                        }
                    }
                }
                check_quick_replies(quick_replies, 0)
            }
            Self::TextWithQuickReplies {
                text,
                quick_replies,
            } => {
                check_text(|| "message.text".to_owned(), text, MAX_TEXT_CHARS)?;
                check_quick_replies(quick_replies, 1)
            }
            Self::Image { url } | Self::File { url } => {
                check_url(|| "message.attachment.payload.url".to_owned(), url)
            }
            Self::OtnRequest { title, .. } => check_text(
                || "message.attachment.payload.title".to_owned(),
                title,
                MAX_NOTIFICATION_TITLE_CHARS,
            ),
            Self::RecurringRequest {
                title, image_url, ..
            } => {
                check_text(
                    || "message.attachment.payload.title".to_owned(),
                    title,
                    MAX_NOTIFICATION_TITLE_CHARS,
                )?;
                match image_url {
                    Some(url) => {
                        check_url(|| "message.attachment.payload.image_url".to_owned(), url)
                    }
                    None => Ok(()),
                }
            }
        }
    }
}

fn quick_replies_json(quick_replies: &[QuickReply]) -> Value {
    quick_replies
        .iter()
        .map(|reply| json!({ "content_type": "text", "title": reply.title, "payload": reply.payload }))
        .collect()
}

fn check_quick_replies(quick_replies: &[QuickReply], min: usize) -> Result<(), LimitError> {
    check_count(
        || "message.quick_replies".to_owned(),
        quick_replies.len(),
        min,
        MAX_QUICK_REPLIES,
    )?;
    for (index, reply) in quick_replies.iter().enumerate() {
        let field = format_args!("message.quick_replies[{index}]");
        check_text(
            || format!("{field}.title"),
            &reply.title,
            MAX_BUTTON_TITLE_CHARS,
        )?;
        check_text(
            || format!("{field}.payload"),
            &reply.payload,
            MAX_PAYLOAD_CHARS,
        )?;
    }
    Ok(())
}

fn template(payload: Value) -> Value {
    json!({ "attachment": { "type": "template", "payload": payload } })
}

/// One Send API call: recipient, message and messaging type. Its serde form is botflow's own
/// (for the outbox); [`SendRequest::to_json`] gives the Graph API wire JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// Whom the message goes to.
    pub recipient: Recipient,
    /// What is sent.
    pub message: OutgoingMessage,
    /// Why the Page may send it; `None` for token recipients, which need none.
    pub messaging_type: Option<MessagingType>,
}

impl SendRequest {
    /// A reply to `psid` inside the 24-hour window (`RESPONSE`).
    pub fn response(psid: impl Into<String>, message: OutgoingMessage) -> Self {
        Self {
            recipient: Recipient::Psid(psid.into()),
            message,
            messaging_type: Some(MessagingType::Response),
        }
    }

    /// A proactive message to `psid` inside the 24-hour window (`UPDATE`).
    pub fn update(psid: impl Into<String>, message: OutgoingMessage) -> Self {
        Self {
            recipient: Recipient::Psid(psid.into()),
            message,
            messaging_type: Some(MessagingType::Update),
        }
    }

    /// A message to `psid` with a message tag (`MESSAGE_TAG`).
    pub fn tagged(
        psid: impl Into<String>,
        tag: impl Into<String>,
        message: OutgoingMessage,
    ) -> Self {
        Self {
            recipient: Recipient::Psid(psid.into()),
            message,
            messaging_type: Some(MessagingType::MessageTag(tag.into())),
        }
    }

    /// The single message a one-time notification token pays for.
    pub fn to_otn_token(token: impl Into<String>, message: OutgoingMessage) -> Self {
        Self {
            recipient: Recipient::OtnToken(token.into()),
            message,
            messaging_type: None,
        }
    }

    /// A message to a recurring notification token.
    pub fn to_notification_token(token: impl Into<String>, message: OutgoingMessage) -> Self {
        Self {
            recipient: Recipient::NotificationToken(token.into()),
            message,
            messaging_type: None,
        }
    }

    /// The Graph API wire JSON body of this request.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("recipient".into(), self.recipient.to_json());
        match &self.messaging_type {
            Some(MessagingType::Response) => {
                body.insert("messaging_type".into(), json!("RESPONSE"));
            }
            Some(MessagingType::Update) => {
                body.insert("messaging_type".into(), json!("UPDATE"));
            }
            Some(MessagingType::MessageTag(tag)) => {
                body.insert("messaging_type".into(), json!("MESSAGE_TAG"));
                body.insert("tag".into(), json!(tag));
            }
            None => {}
        }
        body.insert("message".into(), self.message.to_json());
        Value::Object(body)
    }

    /// Reads a Graph API wire JSON body (what [`SendRequest::to_json`] writes) back into a
    /// request. For bodies stored before botflow kept the typed request (outbox records of
    /// earlier versions); nothing else should need it.
    pub fn from_json(body: &Value) -> Result<Self, WireError> {
        let recipient = body.get("recipient").unwrap_or(&Value::Null);
        let recipient = if let Some(psid) = wire_str(recipient, "id") {
            Recipient::Psid(psid)
        } else if let Some(token) = wire_str(recipient, "one_time_notif_token") {
            Recipient::OtnToken(token)
        } else if let Some(token) = wire_str(recipient, "notification_messages_token") {
            Recipient::NotificationToken(token)
        } else {
            return Err(WireError::new("recipient", "no id or notification token"));
        };
        let messaging_type = match body.get("messaging_type").and_then(Value::as_str) {
            None => None,
            Some("RESPONSE") => Some(MessagingType::Response),
            Some("UPDATE") => Some(MessagingType::Update),
            Some("MESSAGE_TAG") => Some(MessagingType::MessageTag(
                wire_str(body, "tag").ok_or_else(|| WireError::new("tag", "missing"))?,
            )),
            Some(other) => {
                return Err(WireError::new(
                    "messaging_type",
                    format!("unknown value {other:?}"),
                ));
            }
        };
        let message = body
            .get("message")
            .ok_or_else(|| WireError::new("message", "missing"))?;
        Ok(Self {
            recipient,
            message: OutgoingMessage::from_json(message)?,
            messaging_type,
        })
    }

    /// Checks the platform's limits and the combination of recipient and messaging type.
    pub fn check_limits(&self) -> Result<(), LimitError> {
        match (&self.recipient, &self.messaging_type) {
            (Recipient::Psid(psid), _) if psid.is_empty() => {
                return Err(LimitError::Empty {
                    field: "recipient.id".into(),
                });
            }
            (Recipient::OtnToken(token) | Recipient::NotificationToken(token), _)
                if token.is_empty() =>
            {
                return Err(LimitError::Empty {
                    field: "recipient token".into(),
                });
            }
            (Recipient::Psid(_), None) => return Err(LimitError::MissingMessagingType),
            (_, Some(MessagingType::MessageTag(tag))) => {
                if tag.is_empty() {
                    return Err(LimitError::Empty {
                        field: "tag".into(),
                    });
                }
                if RETIRED_MESSAGE_TAGS.contains(&tag.as_str()) {
                    return Err(LimitError::RetiredTag(tag.clone()));
                }
            }
            _ => {}
        }
        if self.recipient.is_token() && self.message.is_notification_request() {
            return Err(LimitError::RequestToToken);
        }
        self.message.check_limits()
    }
}

/// A Send API request that breaks one of the platform's limits; `field` is a wire JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A required string is empty.
    #[error("{field} is empty")]
    Empty {
        /// Where, as a wire JSON path (e.g. `message.text`).
        field: String,
    },
    /// A string is longer than the platform allows.
    #[error("{field} has {chars} characters, at most {max} allowed")]
    TooLong {
        /// Where, as a wire JSON path.
        field: String,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A list has too few or too many items.
    #[error("{field} has {count} items, expected {min} to {max}")]
    Count {
        /// Where, as a wire JSON path.
        field: String,
        /// How many items it has.
        count: usize,
        /// The fewest allowed.
        min: usize,
        /// The most allowed.
        max: usize,
    },
    /// A URL is not an absolute http(s) URL.
    #[error("{field} is not an http(s) URL: {url:?}")]
    NotHttpUrl {
        /// Where, as a wire JSON path.
        field: String,
        /// The offending value.
        url: String,
    },
    /// A message to a PSID has no `messaging_type`.
    #[error("a message to a PSID needs a messaging_type (RESPONSE, UPDATE or MESSAGE_TAG)")]
    MissingMessagingType,
    /// A message tag the platform no longer accepts.
    #[error("message tag {0} is retired and answered with error 100")]
    RetiredTag(String),
    /// A notification request template addressed to a token instead of a PSID.
    #[error(
        "a notification request must be sent to a PSID inside the 24-hour window, not to a token"
    )]
    RequestToToken,
}

/// A wire JSON body [`SendRequest::from_json`] cannot read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable Send API body at {field}: {problem}")]
pub struct WireError {
    /// Where, as a wire JSON path.
    pub field: String,
    /// What is wrong there.
    pub problem: String,
}

impl WireError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }
}

fn wire_str(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn check_text(field: impl FnOnce() -> String, text: &str, max: usize) -> Result<(), LimitError> {
    if text.trim().is_empty() {
        return Err(LimitError::Empty { field: field() });
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(LimitError::TooLong {
            field: field(),
            chars,
            max,
        });
    }
    Ok(())
}

fn check_count(
    field: impl FnOnce() -> String,
    count: usize,
    min: usize,
    max: usize,
) -> Result<(), LimitError> {
    if count < min || count > max {
        return Err(LimitError::Count {
            field: field(),
            count,
            min,
            max,
        });
    }
    Ok(())
}

fn check_url(field: impl FnOnce() -> String, url: &str) -> Result<(), LimitError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !url.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(LimitError::NotHttpUrl {
            field: field(),
            url: url.to_owned(),
        }),
    }
}
