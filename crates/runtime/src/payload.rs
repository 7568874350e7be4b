//! The compact, versioned payloads botflow puts in buttons, quick replies and OTN requests.
//!
//! A payload says where a tap or opt-in continues, so it still routes correctly after the flow
//! was republished: `bf1:t:<flow>:<version>:<block>:<port>` for a tap and
//! `bf1:o:<page>:<flow>:<version>:<block>:<message>:<topic>` for an OTN request. Parts are
//! escaped (`%` → `%25`, `:` → `%3A`); a port is `b<message>.<button>` or `q<message>.<reply>`.

use botflow_flow::{BlockId, FlowId, TopicId};
use botflow_storage::PageId;
use std::fmt::Write as _;

/// Messenger's limit for postback and quick-reply payloads, in characters.
pub const MAX_PAYLOAD_CHARS: usize = 1_000;

const PREFIX: &str = "bf1";

/// Which button or quick reply of a `send_message` block was tapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    /// Button `button` of message `message` (both 0-based).
    Button {
        /// Index of the message in the block.
        message: usize,
        /// Index of the button in the message.
        button: usize,
    },
    /// Quick reply `reply` of message `message` (both 0-based).
    QuickReply {
        /// Index of the message in the block.
        message: usize,
        /// Index of the quick reply in the message.
        reply: usize,
    },
}

/// Where a tap on a button or quick reply continues.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TapPayload {
    /// The flow of the message.
    pub flow: FlowId,
    /// The published version of the flow that sent the message.
    pub version: u32,
    /// The `send_message` block that holds the button.
    pub block: BlockId,
    /// The tapped button or quick reply.
    pub port: Port,
}

/// What an OTN opt-in is for: the Page, the request message and the topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OptinPayload {
    /// The Page that sent the request.
    pub page: PageId,
    /// The flow of the request.
    pub flow: FlowId,
    /// The published version of the flow that sent the request.
    pub version: u32,
    /// The `send_message` block that holds the request.
    pub block: BlockId,
    /// Index of the request in the block's messages.
    pub message: usize,
    /// The topic the subscriber opts in to.
    pub topic: TopicId,
}

/// A payload botflow wrote, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// A button or quick reply.
    Tap(TapPayload),
    /// An OTN request.
    Optin(OptinPayload),
}

/// Why a payload could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "payload for block `{block}` is {chars} characters long, over Messenger's limit of {MAX_PAYLOAD_CHARS}"
)]
pub struct PayloadTooLong {
    /// The block the payload belongs to.
    pub block: BlockId,
    /// Length of the encoded payload.
    pub chars: usize,
}

fn push_part(out: &mut String, part: &str) {
    out.push(':');
    for c in part.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

fn unescape(part: &str) -> Option<String> {
    if !part.contains('%') {
        return Some(part.to_owned());
    }
    let mut out = String::with_capacity(part.len());
    let mut rest = part;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3)?;
        out.push(match code {
            "25" => '%',
            "3A" | "3a" => ':',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn checked(block: &BlockId, out: String) -> Result<String, PayloadTooLong> {
    let chars = out.chars().count();
    if chars > MAX_PAYLOAD_CHARS {
        return Err(PayloadTooLong {
            block: block.clone(),
            chars,
        });
    }
    Ok(out)
}

impl Port {
    fn decode(text: &str) -> Option<Self> {
        let kind = text.chars().next()?;
        let (message, index) = text.get(1..)?.split_once('.')?;
        let message = message.parse().ok()?;
        let index = index.parse().ok()?;
        match kind {
            'b' => Some(Self::Button {
                message,
                button: index,
            }),
            'q' => Some(Self::QuickReply {
                message,
                reply: index,
            }),
            _ => None,
        }
    }
}

impl TapPayload {
    /// The payload string, or an error when it would exceed Messenger's 1,000 characters.
    pub fn encode(&self) -> Result<String, PayloadTooLong> {
        encode_tap(&self.flow, self.version, &self.block, self.port)
    }
}

/// Encodes a tap payload from borrowed parts (the step function's hot path).
pub fn encode_tap(
    flow: &FlowId,
    version: u32,
    block: &BlockId,
    port: Port,
) -> Result<String, PayloadTooLong> {
    let mut out = String::with_capacity(32 + flow.as_str().len() + block.as_str().len());
    out.push_str(PREFIX);
    out.push_str(":t");
    push_part(&mut out, flow.as_str());
    let _ = write!(out, ":{version}");
    push_part(&mut out, block.as_str());
    let _ = match port {
        Port::Button { message, button } => write!(out, ":b{message}.{button}"),
        Port::QuickReply { message, reply } => write!(out, ":q{message}.{reply}"),
    };
    checked(block, out)
}

impl OptinPayload {
    /// The payload string, or an error when it would exceed Messenger's 1,000 characters.
    pub fn encode(&self) -> Result<String, PayloadTooLong> {
        let mut out = String::with_capacity(96);
        out.push_str(PREFIX);
        out.push_str(":o");
        push_part(&mut out, self.page.as_str());
        push_part(&mut out, self.flow.as_str());
        let _ = write!(out, ":{}", self.version);
        push_part(&mut out, self.block.as_str());
        let _ = write!(out, ":{}", self.message);
        push_part(&mut out, self.topic.as_str());
        checked(&self.block, out)
    }
}

impl Payload {
    /// Decodes a payload botflow wrote; `None` for anything else (another app's payload, a
    /// get-started payload, a damaged string).
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split(':');
        if parts.next()? != PREFIX {
            return None;
        }
        let kind = parts.next()?;
        let parts: Vec<&str> = parts.collect();
        match (kind, parts.as_slice()) {
            ("t", [flow, version, block, port]) => Some(Self::Tap(TapPayload {
                flow: FlowId(unescape(flow)?),
                version: version.parse().ok()?,
                block: BlockId(unescape(block)?),
                port: Port::decode(&unescape(port)?)?,
            })),
            ("o", [page, flow, version, block, message, topic]) => {
                Some(Self::Optin(OptinPayload {
                    page: PageId(unescape(page)?),
                    flow: FlowId(unescape(flow)?),
                    version: version.parse().ok()?,
                    block: BlockId(unescape(block)?),
                    message: message.parse().ok()?,
                    topic: TopicId(unescape(topic)?),
                }))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tap_payload_has_a_stable_compact_form() {
        let tap = TapPayload {
            flow: "restock".into(),
            version: 3,
            block: "welcome".into(),
            port: Port::Button {
                message: 0,
                button: 1,
            },
        };
        let text = tap.encode().unwrap();
        assert_eq!(text, "bf1:t:restock:3:welcome:b0.1");
        assert_eq!(Payload::decode(&text), Some(Payload::Tap(tap)));
    }

    #[test]
    fn optin_payload_escapes_separators() {
        let optin = OptinPayload {
            page: "1234".into(),
            flow: "a:b".into(),
            version: 1,
            block: "50%".into(),
            message: 2,
            topic: "9f1c".into(),
        };
        let text = optin.encode().unwrap();
        assert_eq!(text, "bf1:o:1234:a%3Ab:1:50%25:2:9f1c");
        assert_eq!(Payload::decode(&text), Some(Payload::Optin(optin)));
    }

    #[test]
    fn foreign_and_damaged_payloads_are_not_ours() {
        for text in [
            "GET_STARTED",
            "",
            "bf1",
            "bf1:t:a:x:b:b0.0",
            "bf1:t:a:1:b:z0.0",
            "bf1:o:p",
            "bf1:t:a%zz:1:b:b0.0",
        ] {
            assert_eq!(Payload::decode(text), None, "{text}");
        }
    }

    #[test]
    fn overlong_payload_is_refused() {
        let tap = TapPayload {
            flow: "f".into(),
            version: 1,
            block: BlockId("x".repeat(1_000)),
            port: Port::QuickReply {
                message: 0,
                reply: 0,
            },
        };
        assert_eq!(tap.encode().unwrap_err().chars, 1_015);
    }

    proptest! {
        #[test]
        fn tap_round_trips(flow in ".{1,40}", block in ".{1,40}", version: u32, m in 0usize..20, i in 0usize..20, quick: bool) {
            let port = if quick { Port::QuickReply { message: m, reply: i } } else { Port::Button { message: m, button: i } };
            let tap = TapPayload { flow: FlowId(flow), version, block: BlockId(block), port };
            let text = tap.encode().unwrap();
            prop_assert_eq!(Payload::decode(&text), Some(Payload::Tap(tap)));
        }

        #[test]
        fn decoded_payloads_re_encode_to_the_same_meaning(text in "bf1:[to]:[a-z%:0-9.]{0,40}") {
            if let Some(payload) = Payload::decode(&text) {
                let again = match &payload {
                    Payload::Tap(tap) => tap.encode().unwrap(),
                    Payload::Optin(optin) => optin.encode().unwrap(),
                };
                prop_assert_eq!(Payload::decode(&again), Some(payload));
            }
        }
    }
}
