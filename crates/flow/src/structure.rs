//! Reading flow JSON text into typed parts, one block and one message at a time, so that every
//! structural problem of a file is reported with its JSON Pointer (not only serde's first error).

use crate::codes;
use crate::diagnostic::{Diagnostic, TextLocation};
use crate::ids::{BlockId, FlowId};
use crate::model::{
    ActionStep, AttachmentMessage, BLOCK_TYPES, Block, BlockKind, Condition, FORMAT_VERSION,
    MESSAGE_TYPES, Message, OtnRequest, OtnSend, TextMessage, TopicRef, Trigger, WaitInput,
};
use crate::outline::{BlockOrigin, push_token};
use crate::suggest::closest;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Top-level fields of a flow document.
pub(crate) const DOCUMENT_FIELDS: &[&str] =
    &["format", "id", "name", "triggers", "start", "blocks", "ui"];
/// Fields every block may have.
pub(crate) const BLOCK_COMMON_FIELDS: &[&str] = &["id", "type", "next", "position", "ui"];

/// The fields of a block of type `block_type` besides [`BLOCK_COMMON_FIELDS`].
pub(crate) fn block_fields(block_type: &str) -> &'static [&'static str] {
    match block_type {
        "send_message" => &["messages"],
        "wait_input" => &[
            "field",
            "input",
            "prompt",
            "reprompt",
            "max_attempts",
            "on_invalid",
            "timeout",
            "on_timeout",
        ],
        "condition" => &["branches", "else"],
        "action" => &["actions"],
        "delay" => &["duration"],
        "otn_send" => &["topic", "message", "on_no_token"],
        _ => &[],
    }
}

/// The fields of a message of type `message_type`, `type` included.
pub(crate) fn message_fields(message_type: &str) -> &'static [&'static str] {
    match message_type {
        "text" => &["type", "text", "buttons", "quick_replies"],
        "image" | "file" => &["type", "url"],
        "otn_request" => &["type", "topic", "title", "on_optin"],
        _ => &["type"],
    }
}

/// The typed parts of a flow file and the problems found while reading them.
#[derive(Debug, Default)]
pub(crate) struct Structure {
    pub(crate) format: Option<u32>,
    pub(crate) id: Option<FlowId>,
    pub(crate) name: Option<String>,
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) start: Option<BlockId>,
    pub(crate) blocks: Vec<Block>,
    pub(crate) ui: Option<Value>,
    pub(crate) origins: Vec<BlockOrigin>,
    /// Ids of blocks that did not parse.
    pub(crate) broken_ids: HashSet<String>,
    /// Whether the text was JSON at all (rules only run when it was).
    pub(crate) is_json: bool,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Structure {
    /// Whether every part parsed without an error.
    pub(crate) fn complete(&self) -> bool {
        self.is_json && !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads `text` into typed parts, reporting every structural problem.
pub(crate) fn read_structure(text: &str) -> Structure {
    let mut structure = Structure::default();
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            let mut diagnostic = Diagnostic::new(codes::INVALID_JSON, "", strip_location(&err));
            diagnostic.location = Some(TextLocation {
                line: err.line(),
                // serde_json counts an end of input right after a newline as column 0.
                column: err.column().max(1),
            });
            structure.diagnostics.push(diagnostic);
            return structure;
        }
    };
    structure.is_json = true;
    let out = &mut structure.diagnostics;
    let Some(object) = value.as_object() else {
        out.push(Diagnostic::new(
            codes::NOT_AN_OBJECT,
            "",
            format!("a flow is a JSON object, not {}", kind_of(&value)),
        ));
        return structure;
    };
    warn_unknown_fields(object, DOCUMENT_FIELDS, "", "flow", out);
    structure.format = read_format(object, out);
    structure.id = required(object, "", "id", out);
    structure.name = required(object, "", "name", out);
    if let Some(triggers) = object.get("triggers") {
        match triggers.as_array() {
            Some(items) => {
                for (t, item) in items.iter().enumerate() {
                    if let Some(trigger) = typed::<Trigger>(item, &format!("/triggers/{t}"), out) {
                        structure.triggers.push(trigger);
                    }
                }
            }
            None => out.push(not_array("/triggers", triggers)),
        }
    }
    match object.get("start") {
        None => out.push(
            Diagnostic::new(codes::MISSING_START, "", "the flow has no `start`")
                .with_hint("add \"start\": \"<id of the first block>\""),
        ),
        Some(start) => structure.start = typed(start, "/start", out),
    }
    structure.ui = object.get("ui").filter(|v| !v.is_null()).cloned();
    match object.get("blocks") {
        None => out.push(Diagnostic::new(
            codes::MISSING_FIELD,
            "",
            "the flow has no `blocks`",
        )),
        Some(Value::Array(items)) => {
            structure.blocks.reserve(items.len());
            for (index, item) in items.iter().enumerate() {
                match read_block(item, index, out) {
                    Some((block, messages)) => {
                        structure.blocks.push(block);
                        let message_count = item
                            .get("messages")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len);
                        structure.origins.push(BlockOrigin {
                            index,
                            messages,
                            message_count,
                        });
                    }
                    None => {
                        if let Some(id) = item.get("id").and_then(Value::as_str) {
                            structure.broken_ids.insert(id.to_owned());
                        }
                    }
                }
            }
        }
        Some(other) => out.push(not_array("/blocks", other)),
    }
    structure
}

/// serde_json's message without its " at line L column C" suffix (the location is kept apart).
fn strip_location(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn read_format(object: &Map<String, Value>, out: &mut Vec<Diagnostic>) -> Option<u32> {
    let hint = format!("this botflow reads \"format\": {FORMAT_VERSION}");
    match object.get("format") {
        None => {
            out.push(
                Diagnostic::new(codes::UNSUPPORTED_FORMAT, "", "the flow has no `format`")
                    .with_hint(hint),
            );
            None
        }
        Some(value) => match value.as_u64() {
            Some(n) if n == u64::from(FORMAT_VERSION) => Some(FORMAT_VERSION),
            _ => {
                out.push(
                    Diagnostic::new(
                        codes::UNSUPPORTED_FORMAT,
                        "/format",
                        format!("format {value} is not supported"),
                    )
                    .with_hint(hint),
                );
                None
            }
        },
    }
}

/// Reads one block; `None` when it cannot be built. A `send_message` block keeps the messages
/// that parsed (their file positions are returned beside it).
fn read_block(
    value: &Value,
    index: usize,
    out: &mut Vec<Diagnostic>,
) -> Option<(Block, Vec<usize>)> {
    let pointer = format!("/blocks/{index}");
    let Some(object) = value.as_object() else {
        out.push(Diagnostic::new(
            codes::NOT_AN_OBJECT,
            pointer,
            format!("a block is a JSON object, not {}", kind_of(value)),
        ));
        return None;
    };
    let id: Option<BlockId> = required(object, &pointer, "id", out);
    let block_type = read_type(
        object,
        &pointer,
        "block",
        &BLOCK_TYPES,
        codes::UNKNOWN_BLOCK_TYPE,
        out,
    );
    let next: Option<Option<BlockId>> = optional(object, &pointer, "next", out);
    let mut message_origins = Vec::new();
    let kind = match block_type {
        Some(block_type) => {
            let mut known: Vec<&str> = BLOCK_COMMON_FIELDS.to_vec();
            known.extend_from_slice(block_fields(block_type));
            warn_unknown_fields(object, &known, &pointer, block_type, out);
            read_kind(
                block_type,
                value,
                object,
                &pointer,
                &mut message_origins,
                out,
            )
        }
        None => None,
    };
    let (id, kind, next) = (id?, kind?, next?);
    Some((
        Block {
            id,
            kind,
            next,
            position: object.get("position").filter(|v| !v.is_null()).cloned(),
            ui: object.get("ui").filter(|v| !v.is_null()).cloned(),
        },
        message_origins,
    ))
}

fn read_kind(
    block_type: &str,
    value: &Value,
    object: &Map<String, Value>,
    pointer: &str,
    message_origins: &mut Vec<usize>,
    out: &mut Vec<Diagnostic>,
) -> Option<BlockKind> {
    match block_type {
        "send_message" => {
            let items = required_array(object, pointer, "messages", out)?;
            let mut messages = Vec::with_capacity(items.len());
            for (m, item) in items.iter().enumerate() {
                if let Some(message) = read_message(item, &format!("{pointer}/messages/{m}"), out) {
                    messages.push(message);
                    message_origins.push(m);
                }
            }
            Some(BlockKind::SendMessage { messages })
        }
        "wait_input" => typed::<WaitInput>(value, pointer, out).map(BlockKind::WaitInput),
        "condition" => typed::<Condition>(value, pointer, out).map(BlockKind::Condition),
        "action" => {
            let items = required_array(object, pointer, "actions", out)?;
            let mut actions = Vec::with_capacity(items.len());
            let mut all_parsed = true;
            for (a, item) in items.iter().enumerate() {
                match typed::<ActionStep>(item, &format!("{pointer}/actions/{a}"), out) {
                    Some(step) => actions.push(step),
                    None => all_parsed = false,
                }
            }
            all_parsed.then_some(BlockKind::Action { actions })
        }
        "delay" => {
            let duration = required(object, pointer, "duration", out)?;
            Some(BlockKind::Delay { duration })
        }
        "otn_send" => {
            let topic = match object.get("topic") {
                None | Some(Value::Null) => {
                    out.push(
                        Diagnostic::new(
                            codes::OTN_MISSING_TOPIC,
                            pointer.to_owned(),
                            "`otn_send` has no topic",
                        )
                        .with_hint("add \"topic\": {\"id\": \"...\"} or {\"name\": \"...\"}"),
                    );
                    None
                }
                Some(topic) => read_topic(topic, &format!("{pointer}/topic"), out),
            };
            let message = match object.get("message") {
                None => {
                    out.push(Diagnostic::new(
                        codes::MISSING_FIELD,
                        pointer.to_owned(),
                        "`otn_send` has no `message`",
                    ));
                    None
                }
                Some(message) => read_message(message, &format!("{pointer}/message"), out),
            };
            let on_no_token = optional(object, pointer, "on_no_token", out);
            Some(BlockKind::OtnSend(OtnSend {
                topic: topic?,
                message: message?,
                on_no_token: on_no_token?,
            }))
        }
        _ => None,
    }
}

/// Reads one message of a `send_message` or `otn_send` block.
fn read_message(value: &Value, pointer: &str, out: &mut Vec<Diagnostic>) -> Option<Message> {
    let Some(object) = value.as_object() else {
        out.push(Diagnostic::new(
            codes::NOT_AN_OBJECT,
            pointer.to_owned(),
            format!("a message is a JSON object, not {}", kind_of(value)),
        ));
        return None;
    };
    let message_type = read_type(
        object,
        pointer,
        "message",
        &MESSAGE_TYPES,
        codes::UNKNOWN_MESSAGE_TYPE,
        out,
    )?;
    warn_unknown_fields(
        object,
        message_fields(message_type),
        pointer,
        message_type,
        out,
    );
    match message_type {
        "text" => typed::<TextMessage>(value, pointer, out).map(Message::Text),
        "image" => typed::<AttachmentMessage>(value, pointer, out).map(Message::Image),
        "file" => typed::<AttachmentMessage>(value, pointer, out).map(Message::File),
        "otn_request" => {
            let topic = match object.get("topic") {
                None | Some(Value::Null) => Some(None),
                Some(topic) => read_topic(topic, &format!("{pointer}/topic"), out).map(Some),
            };
            let title: Option<Option<String>> = optional(object, pointer, "title", out);
            let on_optin = optional(object, pointer, "on_optin", out);
            Some(Message::OtnRequest(OtnRequest {
                topic: topic?,
                title: title?.unwrap_or_default(),
                on_optin: on_optin?,
            }))
        }
        _ => None,
    }
}

fn read_topic(value: &Value, pointer: &str, out: &mut Vec<Diagnostic>) -> Option<TopicRef> {
    match TopicRef::deserialize(value).ok() {
        Some(topic) => Some(topic),
        None => {
            out.push(
                Diagnostic::new(
                    codes::INVALID_TOPIC,
                    pointer.to_owned(),
                    "a topic is {\"id\": \"<topic id>\"} or {\"name\": \"<topic name>\"}",
                )
                .with_hint("use exactly one of `id` and `name`, as a string"),
            );
            None
        }
    }
}

/// Reads the `type` of a block or message and checks it against the known names.
fn read_type(
    object: &Map<String, Value>,
    pointer: &str,
    what: &str,
    known: &[&'static str],
    unknown_code: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<&'static str> {
    let Some(value) = object.get("type") else {
        out.push(
            Diagnostic::new(
                codes::MISSING_FIELD,
                pointer.to_owned(),
                format!("{what} has no `type`"),
            )
            .with_hint(format!("{what} types: {}", known.join(", "))),
        );
        return None;
    };
    let Some(name) = value.as_str() else {
        out.push(Diagnostic::new(
            codes::INVALID_FIELD,
            format!("{pointer}/type"),
            format!("{what} `type` must be a string, not {}", kind_of(value)),
        ));
        return None;
    };
    if let Some(found) = known.iter().find(|k| **k == name) {
        return Some(found);
    }
    let hint = match closest(name, known.iter().copied()) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => format!("{what} types: {}", known.join(", ")),
    };
    out.push(
        Diagnostic::new(
            unknown_code,
            format!("{pointer}/type"),
            format!("unknown {what} type `{name}`"),
        )
        .with_hint(hint),
    );
    None
}

fn warn_unknown_fields(
    object: &Map<String, Value>,
    known: &[&str],
    pointer: &str,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    warn_unknown_fields_in(object.keys().map(String::as_str), known, pointer, what, out);
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
            codes::UNKNOWN_FIELD,
            push_token(pointer, key),
            format!("`{key}` is not a field of {what}; it is ignored"),
        );
        if let Some(suggestion) = closest(key, known.iter().copied()) {
            diagnostic = diagnostic.with_hint(format!("did you mean `{suggestion}`?"));
        }
        out.push(diagnostic);
    }
}

/// A required field of `object`, typed; reports it missing or malformed.
fn required<T: DeserializeOwned>(
    object: &Map<String, Value>,
    pointer: &str,
    key: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    match object.get(key) {
        Some(value) => typed(value, &push_token(pointer, key), out),
        None => {
            out.push(Diagnostic::new(
                codes::MISSING_FIELD,
                pointer.to_owned(),
                format!("missing field `{key}`"),
            ));
            None
        }
    }
}

/// An optional field: `Some(None)` when absent or null, `None` when malformed.
fn optional<T: DeserializeOwned>(
    object: &Map<String, Value>,
    pointer: &str,
    key: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<Option<T>> {
    match object.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(value) => typed(value, &push_token(pointer, key), out).map(Some),
    }
}

fn required_array<'v>(
    object: &'v Map<String, Value>,
    pointer: &str,
    key: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<&'v Vec<Value>> {
    match object.get(key) {
        Some(Value::Array(items)) => Some(items),
        Some(other) => {
            out.push(not_array(&push_token(pointer, key), other));
            None
        }
        None => {
            out.push(Diagnostic::new(
                codes::MISSING_FIELD,
                pointer.to_owned(),
                format!("missing field `{key}`"),
            ));
            None
        }
    }
}

/// Deserializes `value` into `T`, turning a serde error into a diagnostic at the exact pointer.
fn typed<T: DeserializeOwned>(
    value: &Value,
    pointer: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            let mut at = pointer.to_owned();
            let mut last_key = pointer.rsplit('/').next().unwrap_or("").to_owned();
            let mut inner = Some(value);
            for segment in err.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => {
                        at.push_str(&format!("/{index}"));
                        last_key = index.to_string();
                        inner = inner.and_then(|v| v.get(index));
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        at = push_token(&at, key);
                        last_key.clone_from(key);
                        inner = inner.and_then(|v| v.get(key));
                    }
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => {}
                }
            }
            let message = err.inner().to_string();
            // Inside an internally tagged enum (`"type": ...`) serde loses the path: find the
            // one field whose value the message quotes.
            if let Some(key) = inner.and_then(|v| field_quoted_in(v, &message)) {
                at = push_token(&at, key);
                last_key = key.to_owned();
            }
            let code = if message.starts_with("missing field") {
                codes::MISSING_FIELD
            } else if last_key == "duration" || last_key == "timeout" {
                codes::BAD_DURATION
            } else {
                codes::INVALID_FIELD
            };
            out.push(Diagnostic::new(code, at, message));
            None
        }
    }
}

/// The field of `object` (other than its `type` tag) whose scalar value is the one serde quotes
/// in `message` (e.g. ``unknown variant `fuzzy` ``), when exactly one field matches.
fn field_quoted_in<'a>(object: &'a Value, message: &str) -> Option<&'a str> {
    let object = object.as_object()?;
    let about_a_value = ["unknown variant", "invalid type", "invalid value"]
        .iter()
        .any(|start| message.starts_with(start));
    if !about_a_value {
        return None;
    }
    let quoted = message.split('`').nth(1)?;
    let mut matching = object.iter().filter(|(key, value)| {
        key.as_str() != "type"
            && match value {
                Value::String(text) => text == quoted,
                Value::Number(number) => number.to_string() == quoted,
                Value::Bool(flag) => quoted == if *flag { "true" } else { "false" },
                _ => false,
            }
    });
    match (matching.next(), matching.next()) {
        (Some((key, _)), None) => Some(key.as_str()),
        _ => None,
    }
}

fn not_array(pointer: &str, value: &Value) -> Diagnostic {
    Diagnostic::new(
        codes::INVALID_FIELD,
        pointer.to_owned(),
        format!("expected an array, found {}", kind_of(value)),
    )
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

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
            let listed: BTreeSet<String> = message_fields(&name)
                .iter()
                .map(|f| (*f).to_owned())
                .collect();
            assert_eq!(fields, listed, "message type {name}");
        }
    }
}
