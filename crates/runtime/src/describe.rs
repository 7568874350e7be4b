//! A short summary of a queued message, from its typed request, for transcripts, tests and logs.

use crate::outbound::decode;
use botflow_messenger::{Button, OutgoingMessage, QuickReply};
use serde_json::Value;
use std::fmt::Write as _;

/// A button as shown to the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonSummary {
    /// Label.
    pub title: String,
    /// Postback payload (postback buttons).
    pub payload: Option<String>,
    /// Address (web_url buttons).
    pub url: Option<String>,
}

fn replies(quick_replies: &[QuickReply]) -> Vec<(String, String)> {
    quick_replies
        .iter()
        .map(|reply| (reply.title.clone(), reply.payload.clone()))
        .collect()
}

/// What a message shows the subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageSummary {
    /// `text`, `image`, `file`, `otn_request`, `recurring_request` or `other`.
    pub kind: &'static str,
    /// The text, URL or OTN request title.
    pub text: String,
    /// Buttons of a button template.
    pub buttons: Vec<ButtonSummary>,
    /// Quick replies as (title, payload).
    pub quick_replies: Vec<(String, String)>,
    /// The opt-in payload of an OTN request.
    pub optin_payload: Option<String>,
}

impl MessageSummary {
    /// Summarises a message as the runtime built it.
    pub fn of(message: &OutgoingMessage) -> Self {
        let text = |kind, text: &str| Self {
            kind,
            text: text.to_owned(),
            ..Self::default()
        };
        match message {
            OutgoingMessage::Text { text: t } => text("text", t),
            OutgoingMessage::TextWithQuickReplies {
                text: t,
                quick_replies,
            } => Self {
                quick_replies: replies(quick_replies),
                ..text("text", t)
            },
            OutgoingMessage::TextWithButtons {
                text: t,
                buttons,
                quick_replies,
            } => Self {
                buttons: buttons
                    .iter()
                    .map(|button| match button {
                        Button::Postback { title, payload } => ButtonSummary {
                            title: title.clone(),
                            payload: Some(payload.clone()),
                            url: None,
                        },
                        Button::WebUrl { title, url } => ButtonSummary {
                            title: title.clone(),
                            payload: None,
                            url: Some(url.clone()),
                        },
                    })
                    .collect(),
                quick_replies: replies(quick_replies),
                ..text("text", t)
            },
            OutgoingMessage::Image { url } => text("image", url),
            OutgoingMessage::File { url } => text("file", url),
            OutgoingMessage::OtnRequest { title, payload } => Self {
                optin_payload: Some(payload.clone()),
                ..text("otn_request", title)
            },
            OutgoingMessage::RecurringRequest { title, payload, .. } => Self {
                optin_payload: Some(payload.clone()),
                ..text("recurring_request", title)
            },
        }
    }

    /// Summarises a stored outbox body; an unreadable one is kind `other` with the error as text.
    pub fn from_body(body: &Value) -> Self {
        match decode(body) {
            Ok(request) => Self::of(&request.message),
            Err(error) => Self {
                kind: "other",
                text: error.to_string(),
                ..Self::default()
            },
        }
    }

    /// One line as a transcript shows it: the text, then `[button]`s and `(quick reply)`s; other
    /// kinds as `image: <url>`, `file: <url>`, `otn_request: <title> [Notify me]`.
    pub fn line(&self) -> String {
        let mut line = match self.kind {
            "text" => self.text.clone(),
            "otn_request" => format!("otn_request: {} [Notify me]", self.text),
            "recurring_request" => format!("recurring_request: {} [Get messages]", self.text),
            kind => format!("{kind}: {}", self.text),
        };
        for b in &self.buttons {
            match &b.url {
                Some(url) => {
                    let _ = write!(line, " [{} -> {url}]", b.title);
                }
                None => {
                    let _ = write!(line, " [{}]", b.title);
                }
            }
        }
        for (title, _) in &self.quick_replies {
            let _ = write!(line, " ({title})");
        }
        line
    }

    /// Whether an expectation string names this message: its text alone, its whole transcript
    /// line, or its kind (`text`, `image`, `file`, `otn_request`, `recurring_request`).
    pub fn matches(&self, expected: &str) -> bool {
        expected == self.text || expected == self.line() || expected == self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{Purpose, request_body, text_message};
    use botflow_storage::Psid;

    #[test]
    fn summarises_what_the_runtime_builds() {
        let psid = Psid::from("u1");
        let body = request_body(
            &psid,
            Purpose::Response,
            text_message(
                "Pick one".into(),
                vec![
                    Button::Postback {
                        title: "Yes".into(),
                        payload: "p1".into(),
                    },
                    Button::WebUrl {
                        title: "Site".into(),
                        url: "https://x.test".into(),
                    },
                ],
                vec![QuickReply {
                    title: "Later".into(),
                    payload: "p2".into(),
                }],
            ),
        );
        let summary = MessageSummary::from_body(&body);
        assert_eq!(
            summary.line(),
            "Pick one [Yes] [Site -> https://x.test] (Later)"
        );
        assert!(summary.matches("Pick one") && summary.matches("text"));
        assert!(!summary.matches("image"));
        let otn = request_body(
            &psid,
            Purpose::Response,
            OutgoingMessage::OtnRequest {
                title: "Tell me".into(),
                payload: "bf1:o".into(),
            },
        );
        let summary = MessageSummary::from_body(&otn);
        assert_eq!(summary.line(), "otn_request: Tell me [Notify me]");
        assert_eq!(summary.optin_payload.as_deref(), Some("bf1:o"));
        let image = request_body(
            &psid,
            Purpose::Update,
            OutgoingMessage::Image {
                url: "https://x.test/a.png".into(),
            },
        );
        assert_eq!(
            MessageSummary::from_body(&image).line(),
            "image: https://x.test/a.png"
        );
    }
}
