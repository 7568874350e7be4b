//! The diagnostic walk, run only when the one reader ([`crate::reader`]) stops at a problem: the
//! file is walked block by block and message by message through a `Value` tree so that every
//! structural problem is reported with its JSON Pointer (not only the first). Each block without
//! a problem is then read by the one reader from its known fields, so the rules still check the
//! parts of a broken file that are sound.

use crate::codes;
use crate::diagnostic::{Diagnostic, TextLocation};
use crate::duration::FlowDuration;
use crate::ids::{BlockId, FlowId};
use crate::model::{
    ActionStep, AttachmentMessage, BLOCK_TYPES, Block, Condition, FORMAT_VERSION, Frequency,
    MESSAGE_TYPES, TextMessage, TopicRef, Trigger, WaitInput,
};
use crate::outline::{BlockOrigin, push_token};
use crate::reader::{
    BLOCK_COMMON_FIELDS, DOCUMENT_FIELDS, MESSAGE_COMMON_FIELDS, block_fields, message_fields,
    read_value, warn_unknown_fields_in,
};
use crate::suggest::closest;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::HashSet;

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

/// Reports the problems of one block; when it has none that stop it, the block as the one
/// reader reads it from its known fields, with the file positions of the messages kept.
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
    let mut kept_messages = Vec::new();
    let kind_ok = block_type.is_some_and(|block_type| {
        let known = [BLOCK_COMMON_FIELDS, block_fields(block_type)].concat();
        warn_unknown_fields(object, &known, &pointer, block_type, out);
        check_kind(block_type, value, object, &pointer, &mut kept_messages, out)
    });
    let block_type = block_type.filter(|_| kind_ok && id.is_some() && next.is_some())?;
    let mut fields = Map::new();
    for &key in BLOCK_COMMON_FIELDS.iter().chain(block_fields(block_type)) {
        let Some(field) = object.get(key) else {
            continue;
        };
        let field = match (key, field) {
            ("messages", Value::Array(items)) => Value::Array(
                kept_messages
                    .iter()
                    .map(|&m| known_message_fields(&items[m]))
                    .collect(),
            ),
            ("message", message) => known_message_fields(message),
            _ => field.clone(),
        };
        fields.insert(key.to_owned(), field);
    }
    let block = read_value(&Value::Object(fields))?;
    Some((block, kept_messages))
}

/// The fields of a message that its type knows (the others are reported and ignored).
fn known_message_fields(message: &Value) -> Value {
    let Some(object) = message.as_object() else {
        return message.clone();
    };
    let message_type = object.get("type").and_then(Value::as_str).unwrap_or("");
    let known = MESSAGE_COMMON_FIELDS
        .iter()
        .chain(message_fields(message_type))
        .filter_map(|&key| Some((key.to_owned(), object.get(key)?.clone())));
    Value::Object(known.collect())
}

/// Reports the problems of a block's own fields; whether the block can be built. A
/// `send_message` block keeps the messages that parse (their indices go to `kept_messages`).
fn check_kind(
    block_type: &str,
    value: &Value,
    object: &Map<String, Value>,
    pointer: &str,
    kept_messages: &mut Vec<usize>,
    out: &mut Vec<Diagnostic>,
) -> bool {
    match block_type {
        "send_message" => {
            let Some(items) = required_array(object, pointer, "messages", out) else {
                return false;
            };
            for (m, item) in items.iter().enumerate() {
                if check_message(item, &format!("{pointer}/messages/{m}"), out) {
                    kept_messages.push(m);
                }
            }
            true
        }
        "wait_input" => typed::<WaitInput>(value, pointer, out).is_some(),
        "condition" => typed::<Condition>(value, pointer, out).is_some(),
        "action" => {
            let Some(items) = required_array(object, pointer, "actions", out) else {
                return false;
            };
            let mut all_parsed = true;
            for (a, item) in items.iter().enumerate() {
                let step = typed::<ActionStep>(item, &format!("{pointer}/actions/{a}"), out);
                all_parsed &= step.is_some();
            }
            all_parsed
        }
        "delay" => required::<FlowDuration>(object, pointer, "duration", out).is_some(),
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
                    false
                }
                Some(topic) => read_topic(topic, &format!("{pointer}/topic"), out).is_some(),
            };
            let message = match object.get("message") {
                None => {
                    out.push(Diagnostic::new(
                        codes::MISSING_FIELD,
                        pointer.to_owned(),
                        "`otn_send` has no `message`",
                    ));
                    false
                }
                Some(message) => check_message(message, &format!("{pointer}/message"), out),
            };
            let on_no_token: Option<Option<BlockId>> =
                optional(object, pointer, "on_no_token", out);
            topic && message && on_no_token.is_some()
        }
        _ => false,
    }
}

/// Reports the problems of one message of a `send_message` or `otn_send` block; whether it can
/// be built.
fn check_message(value: &Value, pointer: &str, out: &mut Vec<Diagnostic>) -> bool {
    let Some(object) = value.as_object() else {
        out.push(Diagnostic::new(
            codes::NOT_AN_OBJECT,
            pointer.to_owned(),
            format!("a message is a JSON object, not {}", kind_of(value)),
        ));
        return false;
    };
    let Some(message_type) = read_type(
        object,
        pointer,
        "message",
        &MESSAGE_TYPES,
        codes::UNKNOWN_MESSAGE_TYPE,
        out,
    ) else {
        return false;
    };
    let known = [MESSAGE_COMMON_FIELDS, message_fields(message_type)].concat();
    warn_unknown_fields(object, &known, pointer, message_type, out);
    match message_type {
        "text" => typed::<TextMessage>(value, pointer, out).is_some(),
        "image" | "file" => typed::<AttachmentMessage>(value, pointer, out).is_some(),
        "otn_request" => {
            let topic = match object.get("topic") {
                None | Some(Value::Null) => true,
                Some(topic) => read_topic(topic, &format!("{pointer}/topic"), out).is_some(),
            };
            let title: Option<Option<String>> = optional(object, pointer, "title", out);
            let on_optin: Option<Option<BlockId>> = optional(object, pointer, "on_optin", out);
            topic && title.is_some() && on_optin.is_some()
        }
        "recurring_request" => {
            let topic = match object.get("topic") {
                None | Some(Value::Null) => true,
                Some(topic) => read_topic(topic, &format!("{pointer}/topic"), out).is_some(),
            };
            let title: Option<Option<String>> = optional(object, pointer, "title", out);
            let on_optin: Option<Option<BlockId>> = optional(object, pointer, "on_optin", out);
            let image_url: Option<Option<String>> = optional(object, pointer, "image_url", out);
            let frequency = match object.get("frequency") {
                None | Some(Value::Null) => true,
                Some(Value::String(name)) if Frequency::from_name(name).is_some() => true,
                Some(other) => {
                    out.push(
                        Diagnostic::new(
                            codes::RECURRING_FREQUENCY_INVALID,
                            push_token(pointer, "frequency"),
                            format!("the frequency {other} is not one Messenger offers"),
                        )
                        .with_hint("use \"daily\", \"weekly\" or \"monthly\""),
                    );
                    false
                }
            };
            topic && title.is_some() && on_optin.is_some() && image_url.is_some() && frequency
        }
        _ => false,
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

/// A required field of `object`, typed; reports it missing or malformed.
fn required<T: DeserializeOwned>(
    object: &Map<String, Value>,
    pointer: &str,
    key: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    match object.get(key) {
        Some(value) => typed(value, &push_token(pointer, key), out),
        None => missing(pointer, key, out),
    }
}

/// Reports that the object at `pointer` lacks `key`.
fn missing<T>(pointer: &str, key: &str, out: &mut Vec<Diagnostic>) -> Option<T> {
    out.push(Diagnostic::new(
        codes::MISSING_FIELD,
        pointer.to_owned(),
        format!("missing field `{key}`"),
    ));
    None
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
        None => missing(pointer, key, out),
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
    use std::path::Path;

    /// The walk builds (with the one reader) every block it reports no error in, on every fixture
    /// and example flow: a block it checked is never dropped without a diagnostic.
    #[test]
    fn every_block_without_an_error_is_built() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for dir in ["test_data/ok", "test_data/err", "../../flows"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|ext| ext != "json") {
                    continue;
                }
                let structure = read_structure(&std::fs::read_to_string(&path).unwrap());
                let Some(Value::Array(blocks)) =
                    serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
                        .ok()
                        .and_then(|v| v.get("blocks").cloned())
                else {
                    continue;
                };
                for (index, _) in blocks.iter().enumerate() {
                    let pointer = format!("/blocks/{index}");
                    let has_error = structure.diagnostics.iter().any(|d| {
                        d.is_error()
                            && (d.pointer == pointer
                                || d.pointer.starts_with(&format!("{pointer}/")))
                            && d.code != codes::UNKNOWN_FIELD
                    });
                    let built = structure.origins.iter().any(|o| o.index == index);
                    assert!(has_error || built, "{}: {pointer} dropped", path.display());
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked}");
    }
}
