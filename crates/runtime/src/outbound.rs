//! Builds the Send API request JSON the runtime queues (recipient, message, messaging_type).
//!
//! Every outbound body is built here, so the wire shape lives in one place. The JSON is built
//! directly (the step benchmark's hot path); a test pins it to what the messenger crate's
//! `SendRequest::to_json` produces for the same message, so there is one wire format.

use botflow_storage::Psid;
use serde_json::{Map, Value};

/// Why a message is sent, which sets its `messaging_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A reply to something the subscriber did (`RESPONSE`).
    Response,
    /// Proactive, inside the 24-hour window: timers and notification flows (`UPDATE`).
    Update,
    /// Paid for by an OTN token: no `messaging_type`; the dispatcher puts the token in the recipient.
    OtnToken,
}

/// A button under a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonSpec {
    /// A postback button with botflow's payload.
    Postback {
        /// Label.
        title: String,
        /// Payload sent back on tap.
        payload: String,
    },
    /// A button that opens a web page.
    WebUrl {
        /// Label.
        title: String,
        /// The address.
        url: String,
    },
}

/// One message to send, before it is wrapped in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSpec {
    /// Text with optional buttons (a button template) and quick replies (title, payload).
    Text {
        /// The text.
        text: String,
        /// Buttons; non-empty makes it a button template.
        buttons: Vec<ButtonSpec>,
        /// Quick replies as (title, payload).
        quick_replies: Vec<(String, String)>,
    },
    /// An image by URL.
    Image {
        /// The URL.
        url: String,
    },
    /// A file by URL.
    File {
        /// The URL.
        url: String,
    },
    /// The one-time-notification request template.
    OtnRequest {
        /// Title shown with the "Notify me" button.
        title: String,
        /// botflow's opt-in payload.
        payload: String,
    },
}

/// A JSON object from key/value pairs, built directly (no serializer round trip).
fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (key, value) in entries {
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

fn attachment(kind: &str, payload: Value) -> Value {
    object([(
        "attachment",
        object([("type", Value::from(kind)), ("payload", payload)]),
    )])
}

fn message_json(message: MessageSpec) -> Value {
    match message {
        MessageSpec::Text {
            text,
            buttons,
            quick_replies,
        } => {
            let mut out = if buttons.is_empty() {
                object([("text", Value::String(text))])
            } else {
                let buttons: Vec<Value> = buttons
                    .into_iter()
                    .map(|b| match b {
                        ButtonSpec::Postback { title, payload } => object([
                            ("type", Value::from("postback")),
                            ("title", Value::String(title)),
                            ("payload", Value::String(payload)),
                        ]),
                        ButtonSpec::WebUrl { title, url } => object([
                            ("type", Value::from("web_url")),
                            ("title", Value::String(title)),
                            ("url", Value::String(url)),
                        ]),
                    })
                    .collect();
                attachment(
                    "template",
                    object([
                        ("template_type", Value::from("button")),
                        ("text", Value::String(text)),
                        ("buttons", Value::Array(buttons)),
                    ]),
                )
            };
            if !quick_replies.is_empty() {
                let replies: Vec<Value> = quick_replies
                    .into_iter()
                    .map(|(title, payload)| {
                        object([
                            ("content_type", Value::from("text")),
                            ("title", Value::String(title)),
                            ("payload", Value::String(payload)),
                        ])
                    })
                    .collect();
                if let Value::Object(map) = &mut out {
                    map.insert("quick_replies".into(), Value::Array(replies));
                }
            }
            out
        }
        MessageSpec::Image { url } => attachment("image", object([("url", Value::String(url))])),
        MessageSpec::File { url } => attachment("file", object([("url", Value::String(url))])),
        MessageSpec::OtnRequest { title, payload } => attachment(
            "template",
            object([
                ("template_type", Value::from("one_time_notif_req")),
                ("title", Value::String(title)),
                ("payload", Value::String(payload)),
            ]),
        ),
    }
}

/// The Send API request body for `message` to `psid`, without access token.
pub fn request_body(psid: &Psid, purpose: Purpose, message: MessageSpec) -> Value {
    let recipient = object([("id", Value::from(psid.as_str()))]);
    let message = message_json(message);
    match purpose {
        Purpose::Response => object([
            ("recipient", recipient),
            ("messaging_type", Value::from("RESPONSE")),
            ("message", message),
        ]),
        Purpose::Update => object([
            ("recipient", recipient),
            ("messaging_type", Value::from("UPDATE")),
            ("message", message),
        ]),
        Purpose::OtnToken => object([("recipient", recipient), ("message", message)]),
    }
}

/// Replaces the recipient of a token send with the one-time token that pays for it.
pub fn with_token_recipient(body: &Value, token: &str) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        map.insert(
            "recipient".into(),
            object([("one_time_notif_token", Value::from(token))]),
        );
        map.remove("messaging_type");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use botflow_messenger::{Button, OutgoingMessage, QuickReply, SendRequest};

    fn psid() -> Psid {
        Psid::from("user-7")
    }

    #[test]
    fn bodies_match_the_messenger_crate_wire_json() {
        let cases = [
            (
                MessageSpec::Text {
                    text: "Hi".into(),
                    buttons: vec![],
                    quick_replies: vec![],
                },
                OutgoingMessage::Text { text: "Hi".into() },
            ),
            (
                MessageSpec::Text {
                    text: "Pick".into(),
                    buttons: vec![
                        ButtonSpec::Postback {
                            title: "A".into(),
                            payload: "p".into(),
                        },
                        ButtonSpec::WebUrl {
                            title: "B".into(),
                            url: "https://x.test".into(),
                        },
                    ],
                    quick_replies: vec![],
                },
                OutgoingMessage::TextWithButtons {
                    text: "Pick".into(),
                    buttons: vec![
                        Button::Postback {
                            title: "A".into(),
                            payload: "p".into(),
                        },
                        Button::WebUrl {
                            title: "B".into(),
                            url: "https://x.test".into(),
                        },
                    ],
                },
            ),
            (
                MessageSpec::Text {
                    text: "Size?".into(),
                    buttons: vec![],
                    quick_replies: vec![("S".into(), "q".into())],
                },
                OutgoingMessage::TextWithQuickReplies {
                    text: "Size?".into(),
                    quick_replies: vec![QuickReply {
                        title: "S".into(),
                        payload: "q".into(),
                    }],
                },
            ),
            (
                MessageSpec::Image {
                    url: "https://x.test/a.png".into(),
                },
                OutgoingMessage::Image {
                    url: "https://x.test/a.png".into(),
                },
            ),
            (
                MessageSpec::File {
                    url: "https://x.test/a.pdf".into(),
                },
                OutgoingMessage::File {
                    url: "https://x.test/a.pdf".into(),
                },
            ),
            (
                MessageSpec::OtnRequest {
                    title: "Tell me".into(),
                    payload: "bf1:o".into(),
                },
                OutgoingMessage::OtnRequest {
                    title: "Tell me".into(),
                    payload: "bf1:o".into(),
                },
            ),
        ];
        for (spec, message) in cases {
            let ours = request_body(&psid(), Purpose::Response, spec.clone());
            assert_eq!(
                ours,
                SendRequest::response("user-7", message.clone()).to_json(),
                "{spec:?}"
            );
            let update = request_body(&psid(), Purpose::Update, spec.clone());
            assert_eq!(
                update,
                SendRequest::update("user-7", message.clone()).to_json()
            );
            let paid = with_token_recipient(&request_body(&psid(), Purpose::OtnToken, spec), "tok");
            assert_eq!(paid, SendRequest::to_otn_token("tok", message).to_json());
        }
    }
}
