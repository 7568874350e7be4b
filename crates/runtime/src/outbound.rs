//! Builds the Send API request JSON the runtime queues (recipient, message, messaging_type).
//!
//! Every outbound body is built here, so the wire shape lives in one place.

use botflow_storage::Psid;
use serde_json::{Value, json};

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

fn message_json(message: &MessageSpec) -> Value {
    match message {
        MessageSpec::Text {
            text,
            buttons,
            quick_replies,
        } => {
            let mut out = if buttons.is_empty() {
                json!({ "text": text })
            } else {
                let buttons: Vec<Value> = buttons
                    .iter()
                    .map(|b| match b {
                        ButtonSpec::Postback { title, payload } => {
                            json!({"type": "postback", "title": title, "payload": payload})
                        }
                        ButtonSpec::WebUrl { title, url } => {
                            json!({"type": "web_url", "title": title, "url": url})
                        }
                    })
                    .collect();
                json!({"attachment": {"type": "template", "payload": {
                    "template_type": "button", "text": text, "buttons": buttons}}})
            };
            if !quick_replies.is_empty() {
                let replies: Vec<Value> = quick_replies
                    .iter()
                    .map(|(title, payload)| {
                        json!({"content_type": "text", "title": title, "payload": payload})
                    })
                    .collect();
                if let Value::Object(map) = &mut out {
                    map.insert("quick_replies".into(), Value::Array(replies));
                }
            }
            out
        }
        MessageSpec::Image { url } => {
            json!({"attachment": {"type": "image", "payload": {"url": url, "is_reusable": true}}})
        }
        MessageSpec::File { url } => {
            json!({"attachment": {"type": "file", "payload": {"url": url, "is_reusable": true}}})
        }
        MessageSpec::OtnRequest { title, payload } => {
            json!({"attachment": {"type": "template", "payload": {
                "template_type": "one_time_notif_req", "title": title, "payload": payload}}})
        }
    }
}

/// The Send API request body for `message` to `psid`, without access token.
pub fn request_body(psid: &Psid, purpose: Purpose, message: &MessageSpec) -> Value {
    let message = message_json(message);
    match purpose {
        Purpose::Response => {
            json!({"recipient": {"id": psid.as_str()}, "messaging_type": "RESPONSE", "message": message})
        }
        Purpose::Update => {
            json!({"recipient": {"id": psid.as_str()}, "messaging_type": "UPDATE", "message": message})
        }
        Purpose::OtnToken => json!({"recipient": {"id": psid.as_str()}, "message": message}),
    }
}

/// Replaces the recipient of a token send with the one-time token that pays for it.
pub fn with_token_recipient(body: &Value, token: &str) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        map.insert("recipient".into(), json!({"one_time_notif_token": token}));
        map.remove("messaging_type");
    }
    body
}
