//! The Send API requests the runtime queues, as messenger's typed [`SendRequest`].
//!
//! The runtime writes no Send API JSON: a step builds an [`OutgoingMessage`], wraps it in a
//! request here and the outbox stores that request's serde form ([`encode`]). The dispatcher reads
//! it back with [`decode`], which also reads the Graph API wire JSON that earlier versions stored
//! (through messenger's [`SendRequest::from_json`]), so messages queued before an upgrade still go.

use botflow_messenger::{
    Button, MessagingType, OutgoingMessage, QuickReply, Recipient, SendRequest, WireError,
};
use botflow_storage::Psid;
use serde::Deserialize;
use serde_json::Value;

/// Why a message is sent, which sets its `messaging_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A reply to something the subscriber did (`RESPONSE`).
    Response,
    /// Proactive, inside the 24-hour window: timers and notification flows (`UPDATE`).
    Update,
    /// Paid for by a token (one-time or recurring): no `messaging_type`; the dispatcher puts the
    /// token in the recipient ([`with_token`], [`with_recurring_token`]).
    OtnToken,
}

/// A text message: plain, with buttons (a button template) and/or quick replies.
pub fn text_message(
    text: String,
    buttons: Vec<Button>,
    quick_replies: Vec<QuickReply>,
) -> OutgoingMessage {
    match (buttons.is_empty(), quick_replies.is_empty()) {
        (true, true) => OutgoingMessage::Text { text },
        (true, false) => OutgoingMessage::TextWithQuickReplies {
            text,
            quick_replies,
        },
        (false, _) => OutgoingMessage::TextWithButtons {
            text,
            buttons,
            quick_replies,
        },
    }
}

/// The request for `message` to `psid`. A token send (`Purpose::OtnToken`) keeps the PSID as
/// recipient until the dispatcher knows the token ([`with_token`]).
pub fn request(psid: &Psid, purpose: Purpose, message: OutgoingMessage) -> SendRequest {
    let messaging_type = match purpose {
        Purpose::Response => Some(MessagingType::Response),
        Purpose::Update => Some(MessagingType::Update),
        Purpose::OtnToken => None,
    };
    SendRequest {
        recipient: Recipient::Psid(psid.as_str().to_owned()),
        message,
        messaging_type,
    }
}

/// The request as the outbox stores it: [`SendRequest`]'s serde form.
pub fn encode(request: &SendRequest) -> Value {
    // Strings, lists and enums with string keys: serializing into a `Value` cannot fail. Should it
    // ever, `Null` is stored and `decode` fails the message instead of sending something else.
    serde_json::to_value(request).unwrap_or(Value::Null)
}

/// [`request`] then [`encode`]: what a step queues for `message` to `psid`.
pub fn request_body(psid: &Psid, purpose: Purpose, message: OutgoingMessage) -> Value {
    encode(&request(psid, purpose, message))
}

/// Reads a stored body back: the serde form [`encode`] writes or, for messages queued by
/// earlier versions, the Graph API wire JSON they stored.
pub fn decode(body: &Value) -> Result<SendRequest, DecodeError> {
    match SendRequest::deserialize(body) {
        Ok(request) => Ok(request),
        Err(typed) => SendRequest::from_json(body).map_err(|wire| DecodeError {
            typed: typed.to_string(),
            wire,
        }),
    }
}

/// A stored body that is neither a typed request nor readable wire JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored message is unreadable: not a typed request ({typed}), and {wire}")]
pub struct DecodeError {
    /// Why it is not a typed request.
    pub typed: String,
    /// Why it is not wire JSON either.
    pub wire: WireError,
}

/// The request with the recurring token that pays for it as recipient (no `messaging_type`).
pub fn with_recurring_token(mut request: SendRequest, token: &str) -> SendRequest {
    request.recipient = Recipient::NotificationToken(token.to_owned());
    request.messaging_type = None;
    request
}

/// The request with the one-time token that pays for it as recipient (no `messaging_type`).
pub fn with_token(mut request: SendRequest, token: &str) -> SendRequest {
    request.recipient = Recipient::OtnToken(token.to_owned());
    request.messaging_type = None;
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn psid() -> Psid {
        Psid::from("user-7")
    }

    #[test]
    fn text_messages_take_the_variant_their_parts_need() {
        let button = Button::Postback {
            title: "A".into(),
            payload: "p".into(),
        };
        let reply = QuickReply {
            title: "S".into(),
            payload: "q".into(),
        };
        assert!(matches!(
            text_message("Hi".into(), vec![], vec![]),
            OutgoingMessage::Text { .. }
        ));
        assert!(matches!(
            text_message("Hi".into(), vec![], vec![reply.clone()]),
            OutgoingMessage::TextWithQuickReplies { .. }
        ));
        assert!(matches!(
            text_message("Hi".into(), vec![button], vec![reply]),
            OutgoingMessage::TextWithButtons { quick_replies, .. } if quick_replies.len() == 1
        ));
    }

    #[test]
    fn stored_bodies_read_back_typed_and_token_sends_get_their_token() {
        let message = OutgoingMessage::Text { text: "Hi".into() };
        let body = request_body(&psid(), Purpose::Response, message.clone());
        assert_eq!(
            decode(&body),
            Ok(SendRequest::response("user-7", message.clone()))
        );
        let paid = with_token(
            decode(&request_body(&psid(), Purpose::OtnToken, message.clone())).unwrap(),
            "tok",
        );
        assert_eq!(paid, SendRequest::to_otn_token("tok", message));
        assert_eq!(paid.check_limits(), Ok(()));
    }

    #[test]
    fn wire_json_stored_by_earlier_versions_still_reads() {
        // What 0.x queued before the outbox held typed requests (written by hand then).
        let legacy = json!({
            "recipient": {"id": "user-7"},
            "messaging_type": "UPDATE",
            "message": {"attachment": {"type": "template", "payload": {
                "template_type": "button", "text": "Pick",
                "buttons": [{"type": "postback", "title": "A", "payload": "p"}]}},
                "quick_replies": [{"content_type": "text", "title": "S", "payload": "q"}]}
        });
        let request = decode(&legacy).unwrap();
        assert_eq!(request.messaging_type, Some(MessagingType::Update));
        assert_eq!(request.to_json(), legacy);
        let error = decode(&json!({"recipient": {"id": "u"}})).unwrap_err();
        assert_eq!(error.wire.field, "message");
    }
}
