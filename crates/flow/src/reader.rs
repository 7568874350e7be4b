//! The one reader of the flow format: JSON straight into the typed model in one pass, collecting
//! the `unknown-field` warnings with their JSON Pointers on the way. It is the `Deserialize` of
//! [`FlowDocument`], [`Block`] and [`Message`] (so `serde_json::from_str::<FlowDocument>` reads
//! with it too), and the known field lists of each block and message type live here once.
//!
//! It reads a block's or message's `type` wherever it sits among its keys, without a `Value` tree
//! or serde's buffering of internally tagged enums. It stops at the first problem (a duplicate
//! key, an unknown `type`, a malformed field); [`crate::diagnose`] then walks the file to report
//! every problem with its pointer, and builds each block that has none with this reader.

use crate::diagnostic::Diagnostic;
use crate::duration::FlowDuration;
use crate::ids::{BlockId, FieldName, FlowId};
use crate::model::{
    ActionStep, AttachmentMessage, BLOCK_TYPES, Block, BlockKind, Branch, Button, Condition,
    FlowDocument, Frequency, InputKind, MESSAGE_TYPES, Message, OtnRequest, OtnSend, QuickReply,
    RecurringRequest, TextMessage, TopicRef, Trigger, WaitInput,
};
use crate::outline::push_token;
use crate::suggest::closest;
use crate::template::Template;
use serde::Deserialize;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Top-level fields of a flow document.
pub(crate) const DOCUMENT_FIELDS: &[&str] =
    &["format", "id", "name", "triggers", "start", "blocks", "ui"];

/// Every field a block of any type may have: the fields common to every block, then each block
/// type's own fields together (see [`block_fields`]); a key's position is its duplicate-check bit.
const BLOCK_KEYS: [&str; 21] = [
    "id",
    "type",
    "next",
    "position",
    "ui",
    "messages",
    "field",
    "input",
    "prompt",
    "reprompt",
    "max_attempts",
    "on_invalid",
    "timeout",
    "on_timeout",
    "branches",
    "else",
    "actions",
    "duration",
    "topic",
    "message",
    "on_no_token",
];

/// Fields every block may have.
pub(crate) const BLOCK_COMMON_FIELDS: &[&str] = BLOCK_KEYS.split_at(5).0;

/// The fields of a block of type `block_type` besides [`BLOCK_COMMON_FIELDS`].
pub(crate) fn block_fields(block_type: &str) -> &'static [&'static str] {
    let range = match block_type {
        "send_message" => 5..6,
        "wait_input" => 6..14,
        "condition" => 14..16,
        "action" => 16..17,
        "delay" => 17..18,
        "otn_send" => 18..21,
        _ => 0..0,
    };
    &BLOCK_KEYS[range]
}

/// Every field a message of any type may have: `type`, then each message type's own fields
/// together (see [`message_fields`]); a key's position is its duplicate-check bit.
const MESSAGE_KEYS: [&str; 10] = [
    "type",
    "text",
    "buttons",
    "quick_replies",
    "url",
    "topic",
    "title",
    "on_optin",
    "frequency",
    "image_url",
];

/// Fields every message has.
pub(crate) const MESSAGE_COMMON_FIELDS: &[&str] = MESSAGE_KEYS.split_at(1).0;

/// The fields of a message of type `message_type` besides `type`.
pub(crate) fn message_fields(message_type: &str) -> &'static [&'static str] {
    let range = match message_type {
        "text" => 1..4,
        "image" | "file" => 4..5,
        "otn_request" => 5..8,
        "recurring_request" => 5..10,
        _ => 0..0,
    };
    &MESSAGE_KEYS[range]
}

/// Warns about each key of an object (at `pointer`) that is not in `known`.
pub(crate) fn warn_unknown_fields_in<'k>(
    keys: impl Iterator<Item = &'k str>,
    known: &[&str],
    pointer: &str,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    for key in keys {
        if known.contains(&key) {
            continue;
        }
        let mut diagnostic = Diagnostic::new(
            crate::codes::UNKNOWN_FIELD,
            push_token(pointer, key),
            format!("`{key}` is not a field of {what}; it is ignored"),
        );
        if let Some(suggestion) = closest(key, known.iter().copied()) {
            diagnostic = diagnostic.with_hint(format!("did you mean `{suggestion}`?"));
        }
        out.push(diagnostic);
    }
}

/// Reads a flow in one pass: the document and its `unknown-field` warnings (in the order of the
/// keys in the file), or the first problem met.
pub(crate) fn read_document(
    text: &str,
) -> Result<(FlowDocument, Vec<Diagnostic>), serde_json::Error> {
    let mut reader = Reader::new(text.len() / 128);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let document = DocumentSeed(&mut reader).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok((document, reader.warnings))
}

/// Reads one block (or message) of a parsed file; `None` when it has a problem.
pub(crate) fn read_value<'v, T: Deserialize<'v>>(value: &'v Value) -> Option<T> {
    T::deserialize(value).ok()
}

impl<'de> Deserialize<'de> for FlowDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DocumentSeed(&mut Reader::new(0)).deserialize(deserializer)
    }
}

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BlockSeed(&mut Reader::new(0)).deserialize(deserializer)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let seed = MessageSeed {
            reader: &mut Reader::new(0),
            index: None,
        };
        seed.deserialize(deserializer)
    }
}

/// State shared by the visitors: warnings found so far and reusable key buffers.
struct Reader<'de> {
    /// `unknown-field` warnings of the document and of the blocks read so far.
    warnings: Vec<Diagnostic>,
    /// Keys of the current block that are not common to every block, in file order.
    block_keys: Vec<Cow<'de, str>>,
    /// Keys of the current message other than `type`, in file order.
    message_keys: Vec<Cow<'de, str>>,
    /// Warnings of the current block's messages, kept until the block's type is known.
    pending: Vec<Diagnostic>,
    /// Index of the block being read.
    block: usize,
    /// A guess of the number of blocks (a block takes at least ~100 bytes of JSON in practice),
    /// to size the block list once.
    capacity_hint: usize,
}

impl Reader<'_> {
    fn new(capacity_hint: usize) -> Self {
        Self {
            warnings: Vec::new(),
            block_keys: Vec::new(),
            message_keys: Vec::new(),
            pending: Vec::new(),
            block: 0,
            capacity_hint,
        }
    }
}

/// An object key or string, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The next key of `map` that is in `known`, with its position there; the keys that are not
/// are skipped and recorded in `unknown`. An error on a duplicate key (`seen` has a bit a key).
fn next_known_key<'de, A: MapAccess<'de>>(
    map: &mut A,
    known: &[&'static str],
    seen: &mut u32,
    unknown: &mut Vec<Cow<'de, str>>,
) -> Result<Option<(usize, Cow<'de, str>)>, A::Error> {
    while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
        let Some(bit) = known.iter().position(|f| *f == key) else {
            map.next_value::<IgnoredAny>()?;
            if unknown.contains(&key) {
                return Err(A::Error::custom(format_args!("duplicate field `{key}`")));
            }
            unknown.push(key);
            continue;
        };
        if *seen & (1 << bit) != 0 {
            return Err(A::Error::duplicate_field(known[bit]));
        }
        *seen |= 1 << bit;
        return Ok(Some((bit, key)));
    }
    Ok(None)
}

/// The `type` of a block or message, checked against the known names.
fn read_type<'de, A: MapAccess<'de>>(
    map: &mut A,
    known: &'static [&'static str],
) -> Result<&'static str, A::Error> {
    let Key(name) = map.next_value::<Key<'de>>()?;
    match known.iter().find(|t| **t == name) {
        Some(found) => Ok(found),
        None => Err(A::Error::unknown_variant(&name, known)),
    }
}

struct DocumentSeed<'r, 'de>(&'r mut Reader<'de>);

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_, 'de> {
    type Value = FlowDocument;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FlowDocument, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_, 'de> {
    type Value = FlowDocument;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a flow object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlowDocument, A::Error> {
        let reader = self.0;
        let mut seen = 0u32;
        let mut unknown: Vec<Cow<'de, str>> = Vec::new();
        let mut format: Option<u32> = None;
        let mut id: Option<FlowId> = None;
        let mut name: Option<String> = None;
        let mut triggers: Option<Vec<Trigger>> = None;
        let mut start: Option<BlockId> = None;
        let mut blocks: Option<Vec<Block>> = None;
        let mut ui: Option<Value> = None;
        while let Some((_, key)) =
            next_known_key(&mut map, DOCUMENT_FIELDS, &mut seen, &mut unknown)?
        {
            match key.as_ref() {
                "format" => format = Some(map.next_value()?),
                "id" => id = Some(map.next_value()?),
                "name" => name = Some(map.next_value()?),
                "triggers" => triggers = Some(map.next_value()?),
                "start" => start = Some(map.next_value()?),
                "blocks" => blocks = Some(map.next_value_seed(BlocksSeed(&mut *reader))?),
                _ => ui = map.next_value()?,
            }
        }
        // The document's warnings come first, as the diagnostic walk reports them.
        let mut warnings = Vec::new();
        warn_unknown_fields_in(
            unknown.iter().map(|k| &**k),
            DOCUMENT_FIELDS,
            "",
            "flow",
            &mut warnings,
        );
        warnings.append(&mut reader.warnings);
        reader.warnings = warnings;
        Ok(FlowDocument {
            format: format.ok_or_else(|| A::Error::missing_field("format"))?,
            id: id.ok_or_else(|| A::Error::missing_field("id"))?,
            name: name.ok_or_else(|| A::Error::missing_field("name"))?,
            triggers: triggers.unwrap_or_default(),
            start: start.ok_or_else(|| A::Error::missing_field("start"))?,
            blocks: blocks.ok_or_else(|| A::Error::missing_field("blocks"))?,
            ui,
        })
    }
}

struct BlocksSeed<'r, 'de>(&'r mut Reader<'de>);

impl<'de> DeserializeSeed<'de> for BlocksSeed<'_, 'de> {
    type Value = Vec<Block>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Block>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BlocksSeed<'_, 'de> {
    type Value = Vec<Block>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of blocks")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Block>, A::Error> {
        let reader = self.0;
        let mut blocks = Vec::with_capacity(reader.capacity_hint);
        reader.block = 0;
        while let Some(block) = seq.next_element_seed(BlockSeed(&mut *reader))? {
            blocks.push(block);
            reader.block += 1;
        }
        // The guess was far too high (a few very large blocks): do not keep the spare room.
        if blocks.capacity() > 2 * blocks.len() + 16 {
            blocks.shrink_to_fit();
        }
        Ok(blocks)
    }
}

/// The fields of a block as read, before its `type` decides which of them it uses.
#[derive(Default)]
struct BlockFields {
    id: Option<BlockId>,
    kind: Option<&'static str>,
    next: Option<BlockId>,
    position: Option<Value>,
    ui: Option<Value>,
    messages: Option<Vec<Message>>,
    messages_warnings: Range<usize>,
    field: Option<FieldName>,
    input: Option<InputKind>,
    prompt: Option<Template>,
    reprompt: Option<Template>,
    max_attempts: Option<u32>,
    on_invalid: Option<BlockId>,
    timeout: Option<FlowDuration>,
    on_timeout: Option<BlockId>,
    branches: Option<Vec<Branch>>,
    else_next: Option<BlockId>,
    actions: Option<Vec<ActionStep>>,
    duration: Option<FlowDuration>,
    topic: Option<TopicRef>,
    message: Option<Message>,
    message_warnings: Range<usize>,
    on_no_token: Option<BlockId>,
}

impl BlockFields {
    /// The block kind its `type` selects, or the name of a missing field it needs.
    fn into_kind(self) -> Result<(BlockKind, Range<usize>), &'static str> {
        let no_warnings = 0..0;
        Ok(match self.kind.ok_or("type")? {
            "send_message" => (
                BlockKind::SendMessage {
                    messages: self.messages.ok_or("messages")?,
                },
                self.messages_warnings,
            ),
            "wait_input" => (
                BlockKind::WaitInput(WaitInput {
                    field: self.field.ok_or("field")?,
                    input: self.input.unwrap_or_default(),
                    prompt: self.prompt,
                    reprompt: self.reprompt,
                    max_attempts: self
                        .max_attempts
                        .unwrap_or_else(crate::model::default_max_attempts),
                    on_invalid: self.on_invalid,
                    timeout: self.timeout,
                    on_timeout: self.on_timeout,
                }),
                no_warnings,
            ),
            "condition" => (
                BlockKind::Condition(Condition {
                    branches: self.branches.ok_or("branches")?,
                    else_next: self.else_next,
                }),
                no_warnings,
            ),
            "action" => (
                BlockKind::Action {
                    actions: self.actions.ok_or("actions")?,
                },
                no_warnings,
            ),
            "delay" => (
                BlockKind::Delay {
                    duration: self.duration.ok_or("duration")?,
                },
                no_warnings,
            ),
            "otn_send" => (
                BlockKind::OtnSend(OtnSend {
                    topic: self.topic.ok_or("topic")?,
                    message: self.message.ok_or("message")?,
                    on_no_token: self.on_no_token,
                }),
                self.message_warnings,
            ),
            _ => return Err("type"),
        })
    }
}

struct BlockSeed<'r, 'de>(&'r mut Reader<'de>);

impl<'de> DeserializeSeed<'de> for BlockSeed<'_, 'de> {
    type Value = Block;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Block, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BlockSeed<'_, 'de> {
    type Value = Block;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a block object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Block, A::Error> {
        let reader = self.0;
        reader.block_keys.clear();
        reader.pending.clear();
        let mut seen = 0u32;
        let mut fields = BlockFields::default();
        while let Some((bit, key)) =
            next_known_key(&mut map, &BLOCK_KEYS, &mut seen, &mut reader.block_keys)?
        {
            match bit {
                0 => fields.id = Some(map.next_value()?),
                1 => fields.kind = Some(read_type(&mut map, &BLOCK_TYPES)?),
                2 => fields.next = map.next_value()?,
                3 => fields.position = map.next_value()?,
                4 => fields.ui = map.next_value()?,
                5 => {
                    let start = reader.pending.len();
                    fields.messages = Some(map.next_value_seed(MessagesSeed(&mut *reader))?);
                    fields.messages_warnings = start..reader.pending.len();
                }
                6 => fields.field = Some(map.next_value()?),
                7 => fields.input = Some(map.next_value()?),
                8 => fields.prompt = map.next_value()?,
                9 => fields.reprompt = map.next_value()?,
                10 => fields.max_attempts = Some(map.next_value()?),
                11 => fields.on_invalid = map.next_value()?,
                12 => fields.timeout = map.next_value()?,
                13 => fields.on_timeout = map.next_value()?,
                14 => fields.branches = Some(map.next_value()?),
                15 => fields.else_next = map.next_value()?,
                16 => fields.actions = Some(map.next_value()?),
                17 => fields.duration = Some(map.next_value()?),
                18 => fields.topic = Some(map.next_value()?),
                19 => {
                    let start = reader.pending.len();
                    let seed = MessageSeed {
                        reader: &mut *reader,
                        index: None,
                    };
                    fields.message = Some(map.next_value_seed(seed)?);
                    fields.message_warnings = start..reader.pending.len();
                }
                _ => fields.on_no_token = map.next_value()?,
            }
            if bit >= BLOCK_COMMON_FIELDS.len() {
                reader.block_keys.push(key);
            }
        }
        let block_type = fields.kind.ok_or_else(|| A::Error::missing_field("type"))?;
        let (id, next, position, ui) = (
            fields
                .id
                .take()
                .ok_or_else(|| A::Error::missing_field("id"))?,
            fields.next.take(),
            fields.position.take(),
            fields.ui.take(),
        );
        let (kind, message_warnings) = fields.into_kind().map_err(A::Error::missing_field)?;
        let own = block_fields(block_type);
        if reader.block_keys.iter().any(|k| !own.contains(&&**k)) {
            let mut known: Vec<&str> = BLOCK_COMMON_FIELDS.to_vec();
            known.extend_from_slice(own);
            warn_unknown_fields_in(
                reader.block_keys.iter().map(|k| &**k),
                &known,
                &format!("/blocks/{}", reader.block),
                block_type,
                &mut reader.warnings,
            );
        }
        reader
            .warnings
            .extend(reader.pending.drain(message_warnings));
        Ok(Block {
            id,
            kind,
            next,
            position,
            ui,
        })
    }
}

struct MessagesSeed<'r, 'de>(&'r mut Reader<'de>);

impl<'de> DeserializeSeed<'de> for MessagesSeed<'_, 'de> {
    type Value = Vec<Message>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Message>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for MessagesSeed<'_, 'de> {
    type Value = Vec<Message>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Message>, A::Error> {
        let reader = self.0;
        let mut messages = Vec::new();
        loop {
            let seed = MessageSeed {
                reader: &mut *reader,
                index: Some(messages.len()),
            };
            match seq.next_element_seed(seed)? {
                Some(message) => messages.push(message),
                None => return Ok(messages),
            }
        }
    }
}

/// Reads one message; `index` is its position in `messages`, `None` for an `otn_send`'s `message`.
struct MessageSeed<'r, 'de> {
    reader: &'r mut Reader<'de>,
    index: Option<usize>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_, 'de> {
    type Value = Message;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Message, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_, 'de> {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let reader = self.reader;
        reader.message_keys.clear();
        let mut seen = 0u32;
        let mut kind: Option<&'static str> = None;
        let mut text: Option<Template> = None;
        let mut buttons: Option<Vec<Button>> = None;
        let mut quick_replies: Option<Vec<QuickReply>> = None;
        let mut url: Option<String> = None;
        let mut topic: Option<TopicRef> = None;
        let mut title: Option<String> = None;
        let mut on_optin: Option<BlockId> = None;
        let mut frequency: Option<Frequency> = None;
        let mut image_url: Option<String> = None;
        while let Some((bit, key)) =
            next_known_key(&mut map, &MESSAGE_KEYS, &mut seen, &mut reader.message_keys)?
        {
            match bit {
                0 => {
                    kind = Some(read_type(&mut map, &MESSAGE_TYPES)?);
                    continue;
                }
                1 => text = Some(map.next_value()?),
                2 => buttons = Some(map.next_value()?),
                3 => quick_replies = Some(map.next_value()?),
                4 => url = Some(map.next_value()?),
                5 => topic = map.next_value()?,
                6 => title = map.next_value()?,
                7 => on_optin = map.next_value()?,
                8 => frequency = map.next_value()?,
                _ => image_url = map.next_value()?,
            }
            reader.message_keys.push(key);
        }
        let message_type = kind.ok_or_else(|| A::Error::missing_field("type"))?;
        let message = match message_type {
            "text" => Message::Text(TextMessage {
                text: text.ok_or_else(|| A::Error::missing_field("text"))?,
                buttons: buttons.unwrap_or_default(),
                quick_replies: quick_replies.unwrap_or_default(),
            }),
            "image" => Message::Image(AttachmentMessage {
                url: url.ok_or_else(|| A::Error::missing_field("url"))?,
            }),
            "file" => Message::File(AttachmentMessage {
                url: url.ok_or_else(|| A::Error::missing_field("url"))?,
            }),
            "otn_request" => Message::OtnRequest(OtnRequest {
                topic,
                title: title.unwrap_or_default(),
                on_optin,
            }),
            _ => Message::RecurringRequest(RecurringRequest {
                topic,
                title: title.unwrap_or_default(),
                frequency,
                image_url,
                on_optin,
            }),
        };
        let own = message_fields(message_type);
        if reader.message_keys.iter().any(|k| !own.contains(&&**k)) {
            let pointer = match self.index {
                Some(m) => format!("/blocks/{}/messages/{m}", reader.block),
                None => format!("/blocks/{}/message", reader.block),
            };
            let known = [MESSAGE_COMMON_FIELDS, own].concat();
            warn_unknown_fields_in(
                reader.message_keys.iter().map(|k| &**k),
                &known,
                &pointer,
                message_type,
                &mut reader.pending,
            );
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn flow(blocks: &str) -> String {
        format!(r#"{{"format": 1, "id": "f", "name": "F", "start": "a", "blocks": [{blocks}]}}"#)
    }

    /// Blocks the reader reads, in shapes a builder may write.
    const READ: &[&str] = &[
        // `type` after the fields it selects, in a block and in a message
        r#"{"messages": [{"text": "hi", "type": "text", "quick_replies": [{"title": "A", "next": "a"}]}], "id": "a", "type": "send_message"}"#,
        // unknown fields, and a field of another block type
        r#"{"id": "a", "type": "send_message", "colour": 1, "duration": "1h", "messages": [{"type": "image", "url": "https://x/y.png", "txt": "x", "title": "t"}]}"#,
        // an otn_send whose message has an unknown field, with `type` last
        r#"{"id": "a", "message": {"text": "back", "type": "text", "buttons": []}, "topic": {"name": "Restock"}, "on_no_token": "a", "type": "otn_send"}"#,
        // an escaped key, nulls for optional fields (`null` builder data reads as absent)
        r#"{"id": "a", "ty\u0070e": "wait_input", "field": "x", "prompt": null, "next": null, "position": null, "timeout": "2h", "on_timeout": "a"}"#,
        // a message list read before `type` says the block is not a send_message
        r#"{"id": "a", "messages": [{"type": "text", "text": "x", "zz": 1}], "type": "delay", "duration": "3d"}"#,
        r#"{"id": "a", "type": "condition", "branches": [{"when": [{"type": "tag", "tag": "vip"}], "next": "a"}], "else": "a"}, {"id": "b", "type": "action", "actions": [{"type": "set_field", "field": "x", "value": "{{y}}"}]}"#,
        // a `null` OTN request title reads as no title
        r#"{"id": "a", "type": "send_message", "messages": [{"type": "otn_request", "title": null}]}"#,
    ];

    /// Blocks the reader stops at, and the problem it names (the diagnostic walk reports them).
    const STOPPED: &[(&str, &str)] = &[
        (
            r#"{"id": "a", "id": "b", "type": "delay", "duration": "1s"}"#,
            "duplicate field `id`",
        ),
        (
            r#"{"id": "a", "type": "delay", "duration": "1s", "x": 1, "x": 2}"#,
            "duplicate field `x`",
        ),
        (
            r#"{"id": "a", "type": 3, "duration": "1s"}"#,
            "invalid type: integer `3`",
        ),
        (
            r#"{"id": "a", "type": "send_mesage", "messages": []}"#,
            "unknown variant `send_mesage`",
        ),
        (
            r#"{"type": "delay", "duration": "1s"}"#,
            "missing field `id`",
        ),
        (
            r#"{"id": "a", "type": "wait_input", "field": "x", "max_attempts": null}"#,
            "invalid type: null",
        ),
        (
            r#"{"id": "a", "type": "send_message", "messages": [{"type": "text"}]}"#,
            "missing field `text`",
        ),
        (
            r#"{"id": "a", "type": "delay", "duration": "1s", "messages": 7}"#,
            "invalid type: integer `7`",
        ),
        (
            r#"{"id": "a", "type": "otn_send", "message": {"type": "text", "text": "x"}}"#,
            "missing field `topic`",
        ),
    ];

    #[test]
    fn reads_every_shape_and_writes_it_back() {
        for blocks in READ {
            let text = flow(blocks);
            let (document, _) = read_document(&text).unwrap_or_else(|e| panic!("{e}: {blocks}"));
            let written = serde_json::to_string(&document).unwrap();
            let (again, warnings) = read_document(&written).unwrap();
            assert_eq!(again, document, "{blocks}");
            assert_eq!(warnings, [], "{written}");
            let via_serde: FlowDocument = serde_json::from_str(&text).unwrap();
            assert_eq!(via_serde, document, "{blocks}");
        }
    }

    #[test]
    fn stops_at_the_first_problem_and_names_it() {
        for (blocks, problem) in STOPPED {
            let err = read_document(&flow(blocks)).expect_err(blocks);
            assert!(err.to_string().contains(problem), "{blocks}: {err}");
        }
        assert!(read_document(&format!("{} x", flow(READ[0]))).is_err());
        // Any format number reads; `check_text` reports the ones it does not support.
        let (document, _) =
            read_document(r#"{"format": 2, "id": "f", "name": "F", "start": "a", "blocks": []}"#)
                .unwrap();
        assert_eq!(document.format, 2);
    }

    #[test]
    fn warns_about_unknown_fields_in_key_order() {
        let text = flow(READ[1]).replacen("{", r#"{"zeta": 1, "alpha": 2, "#, 1);
        let (_, warnings) = read_document(&text).unwrap();
        let pointers: Vec<&str> = warnings.iter().map(|w| w.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/zeta",
                "/alpha",
                "/blocks/0/colour",
                "/blocks/0/duration",
                "/blocks/0/messages/0/txt",
                "/blocks/0/messages/0/title"
            ]
        );
    }

    /// Property names of a schema object, following one `$ref` into `$defs`.
    fn properties(schema: &Value, object: &Value) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = object["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(reference) = object["$ref"].as_str() {
            let name = reference.trim_start_matches("#/$defs/");
            names.extend(properties(schema, &schema["$defs"][name]));
        }
        names
    }

    fn variants(schema: &Value, def: &str) -> Vec<(String, BTreeSet<String>)> {
        schema["$defs"][def]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|variant| {
                let name = variant["properties"]["type"]["const"].as_str().unwrap();
                (name.to_owned(), properties(schema, variant))
            })
            .collect()
    }

    /// The field lists used for `unknown-field` warnings agree with the model's schema.
    #[test]
    fn known_field_lists_match_the_schema() {
        let schema = crate::flow_schema();
        let documented: BTreeSet<String> = properties(&schema, &schema);
        let listed: BTreeSet<String> = DOCUMENT_FIELDS.iter().map(|f| (*f).to_owned()).collect();
        assert_eq!(documented, listed);
        let common = properties(&schema, &schema["$defs"]["Block"]);
        let block_variants = variants(&schema, "Block");
        assert_eq!(block_variants.len(), BLOCK_TYPES.len());
        for (name, mut fields) in block_variants {
            fields.extend(common.iter().cloned());
            let mut listed: BTreeSet<String> = BLOCK_COMMON_FIELDS
                .iter()
                .map(|f| (*f).to_owned())
                .collect();
            listed.extend(block_fields(&name).iter().map(|f| (*f).to_owned()));
            assert_eq!(fields, listed, "block type {name}");
        }
        let message_variants = variants(&schema, "Message");
        assert_eq!(message_variants.len(), MESSAGE_TYPES.len());
        for (name, fields) in message_variants {
            let listed: BTreeSet<String> = MESSAGE_COMMON_FIELDS
                .iter()
                .chain(message_fields(&name))
                .map(|f| (*f).to_owned())
                .collect();
            assert_eq!(fields, listed, "message type {name}");
        }
    }
}
