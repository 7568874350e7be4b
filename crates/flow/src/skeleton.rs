//! The fast path for well-formed files: the keys of the document, its blocks and messages, read
//! without building a `serde_json::Value`, so that `unknown-field` warnings cost one light pass.

use crate::diagnostic::Diagnostic;
use crate::structure::{
    BLOCK_COMMON_FIELDS, DOCUMENT_FIELDS, block_fields, message_fields, warn_unknown_fields_in,
};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The keys of an object and, for blocks and messages, their `type` and nested messages.
#[derive(Debug, Default)]
struct Keys<'de> {
    keys: Vec<Cow<'de, str>>,
    kind: Option<Cow<'de, str>>,
    blocks: Vec<Keys<'de>>,
    messages: Vec<Keys<'de>>,
    message: Option<Box<Keys<'de>>>,
}

/// A string borrowed from the JSON text when it has no escapes (most keys), owned otherwise.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// Which object a [`Keys`] is read from: it decides which nested fields are followed.
#[derive(Debug, Clone, Copy)]
enum Level {
    Document,
    Block,
    Message,
}

struct KeysVisitor(Level);

impl<'de> Visitor<'de> for KeysVisitor {
    type Value = Keys<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys<'de>, A::Error> {
        let mut keys = Keys::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match (self.0, &*key) {
                (Level::Document, "blocks") => {
                    keys.blocks = map
                        .next_value::<Vec<BlockKeys>>()?
                        .into_iter()
                        .map(|b| b.0)
                        .collect();
                }
                (Level::Block, "messages") => {
                    keys.messages = map
                        .next_value::<Vec<MessageKeys>>()?
                        .into_iter()
                        .map(|m| m.0)
                        .collect();
                }
                (Level::Block, "message") => {
                    keys.message = Some(Box::new(map.next_value::<MessageKeys>()?.0));
                }
                (Level::Block | Level::Message, "type") => {
                    keys.kind = Some(map.next_value::<Text<'de>>()?.0);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            keys.keys.push(key);
        }
        Ok(keys)
    }
}

struct BlockKeys<'de>(Keys<'de>);
struct MessageKeys<'de>(Keys<'de>);
struct DocumentKeys<'de>(Keys<'de>);

impl<'de> Deserialize<'de> for BlockKeys<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(KeysVisitor(Level::Block))
            .map(Self)
    }
}

impl<'de> Deserialize<'de> for MessageKeys<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(KeysVisitor(Level::Message))
            .map(Self)
    }
}

impl<'de> Deserialize<'de> for DocumentKeys<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(KeysVisitor(Level::Document))
            .map(Self)
    }
}

/// `unknown-field` warnings of a well-formed document's text, in the order the full reader
/// reports them; `None` when the text does not have the expected shape.
pub(crate) fn unknown_field_warnings(text: &str) -> Option<Vec<Diagnostic>> {
    let document = serde_json::from_str::<DocumentKeys>(text).ok()?.0;
    let mut out = Vec::new();
    warn_unknown_fields_in(
        document.keys.iter().map(|k| &**k),
        DOCUMENT_FIELDS,
        "",
        "flow",
        &mut out,
    );
    for (b, block) in document.blocks.iter().enumerate() {
        let block_type = block.kind.as_deref()?;
        let pointer = format!("/blocks/{b}");
        let mut known: Vec<&str> = BLOCK_COMMON_FIELDS.to_vec();
        known.extend_from_slice(block_fields(block_type));
        warn_unknown_fields_in(
            block.keys.iter().map(|k| &**k),
            &known,
            &pointer,
            block_type,
            &mut out,
        );
        let messages: Vec<(String, &Keys<'_>)> = match block_type {
            "send_message" => block
                .messages
                .iter()
                .enumerate()
                .map(|(m, message)| (format!("{pointer}/messages/{m}"), message))
                .collect(),
            "otn_send" => block
                .message
                .iter()
                .map(|message| (format!("{pointer}/message"), &**message))
                .collect(),
            _ => Vec::new(),
        };
        for (at, message) in messages {
            let message_type = message.kind.as_deref()?;
            warn_unknown_fields_in(
                message.keys.iter().map(|k| &**k),
                message_fields(message_type),
                &at,
                message_type,
                &mut out,
            );
        }
    }
    Some(out)
}
