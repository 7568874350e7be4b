//! Reads a queued Send API body back into a short summary, for transcripts, tests and logs.

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

/// What a Send API body shows the subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageSummary {
    /// `text`, `image`, `file`, `otn_request` or `other`.
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

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

impl MessageSummary {
    /// Summarises a Send API request body (`{"recipient", "message", ...}`).
    pub fn from_body(body: &Value) -> Self {
        let message = body.get("message").unwrap_or(&Value::Null);
        let mut out = Self {
            kind: "other",
            ..Self::default()
        };
        if let Some(text) = message.get("text").and_then(Value::as_str) {
            out.kind = "text";
            out.text = text.to_owned();
        }
        match str_at(message, "/attachment/type") {
            "image" | "file" => {
                out.kind = if str_at(message, "/attachment/type") == "image" {
                    "image"
                } else {
                    "file"
                };
                out.text = str_at(message, "/attachment/payload/url").to_owned();
            }
            "template" => match str_at(message, "/attachment/payload/template_type") {
                "button" => {
                    out.kind = "text";
                    out.text = str_at(message, "/attachment/payload/text").to_owned();
                    let buttons = message
                        .pointer("/attachment/payload/buttons")
                        .and_then(Value::as_array)
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    out.buttons = buttons
                        .iter()
                        .map(|b| ButtonSummary {
                            title: str_at(b, "/title").to_owned(),
                            payload: b.get("payload").and_then(Value::as_str).map(str::to_owned),
                            url: b.get("url").and_then(Value::as_str).map(str::to_owned),
                        })
                        .collect();
                }
                "one_time_notif_req" => {
                    out.kind = "otn_request";
                    out.text = str_at(message, "/attachment/payload/title").to_owned();
                    out.optin_payload =
                        Some(str_at(message, "/attachment/payload/payload").to_owned());
                }
                _ => {}
            },
            _ => {}
        }
        if let Some(replies) = message.get("quick_replies").and_then(Value::as_array) {
            out.quick_replies = replies
                .iter()
                .map(|q| {
                    (
                        str_at(q, "/title").to_owned(),
                        str_at(q, "/payload").to_owned(),
                    )
                })
                .collect();
        }
        out
    }

    /// One line as a transcript shows it: the text, then `[button]`s and `(quick reply)`s; other
    /// kinds as `image: <url>`, `file: <url>`, `otn_request: <title> [Notify me]`.
    pub fn line(&self) -> String {
        let mut line = match self.kind {
            "text" => self.text.clone(),
            "otn_request" => format!("otn_request: {} [Notify me]", self.text),
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
    /// line, or its kind (`text`, `image`, `file`, `otn_request`).
    pub fn matches(&self, expected: &str) -> bool {
        expected == self.text || expected == self.line() || expected == self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{ButtonSpec, MessageSpec, Purpose, request_body};
    use botflow_storage::Psid;

    #[test]
    fn summarises_what_the_runtime_builds() {
        let psid = Psid::from("u1");
        let body = request_body(
            &psid,
            Purpose::Response,
            MessageSpec::Text {
                text: "Pick one".into(),
                buttons: vec![
                    ButtonSpec::Postback {
                        title: "Yes".into(),
                        payload: "p1".into(),
                    },
                    ButtonSpec::WebUrl {
                        title: "Site".into(),
                        url: "https://x.test".into(),
                    },
                ],
                quick_replies: vec![("Later".into(), "p2".into())],
            },
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
            MessageSpec::OtnRequest {
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
            MessageSpec::Image {
                url: "https://x.test/a.png".into(),
            },
        );
        assert_eq!(
            MessageSummary::from_body(&image).line(),
            "image: https://x.test/a.png"
        );
    }
}
