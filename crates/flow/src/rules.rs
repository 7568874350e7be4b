//! Rules on the content of blocks and messages: ids, Messenger limits, OTN requests, templates.

use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::model::{Block, BlockKind, Message, Predicate, TextMessage, TopicRef, Trigger};
use crate::outline::Outline;
use crate::template::Template;
use crate::topics::TopicLookup;
use std::collections::HashMap;

/// Longest text Messenger accepts in a message.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Longest text of a button template (a text with buttons).
pub const MAX_BUTTON_TEXT_CHARS: usize = 640;
/// Most buttons in a button template.
pub const MAX_BUTTONS: usize = 3;
/// Most quick replies on one message.
pub const MAX_QUICK_REPLIES: usize = 13;
/// Longest button or quick reply title.
pub const MAX_TITLE_CHARS: usize = 20;
/// Longest OTN request title, and longest topic name.
pub const MAX_OTN_TITLE_CHARS: usize = 65;

/// Checks the triggers, the start id and every block's content; appends problems to `out`.
pub(crate) fn check_content(
    outline: &Outline<'_>,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
) {
    check_triggers(outline.triggers, out);
    match outline.start {
        Some(start) if start.as_str().trim().is_empty() => out.push(
            Diagnostic::new(codes::MISSING_START, "/start", "`start` is empty")
                .with_hint("set `start` to the id of the first block"),
        ),
        _ => {}
    }
    if outline.blocks.is_empty() && outline.broken_ids.is_empty() && outline.complete {
        out.push(Diagnostic::new(
            codes::MISSING_START,
            "/blocks",
            "the flow has no blocks, so `start` names nothing",
        ));
    }
    let mut first_index: HashMap<&str, usize> = HashMap::with_capacity(outline.blocks.len());
    for (index, block) in outline.blocks.iter().enumerate() {
        let pointer = outline.block_pointer(index);
        if block.id.as_str().trim().is_empty() {
            out.push(Diagnostic::new(
                codes::EMPTY_BLOCK_ID,
                format!("{pointer}/id"),
                "block id is empty",
            ));
        } else if let Some(&first) = first_index.get(block.id.as_str()) {
            out.push(
                Diagnostic::new(
                    codes::DUPLICATE_BLOCK_ID,
                    format!("{pointer}/id"),
                    format!(
                        "block id `{}` is already used by {}",
                        block.id,
                        outline.block_pointer(first)
                    ),
                )
                .with_hint("give every block its own id"),
            );
        } else {
            first_index.insert(block.id.as_str(), index);
        }
        check_block(outline, index, block, topics, out);
    }
}

fn check_triggers(triggers: &[Trigger], out: &mut Vec<Diagnostic>) {
    for (t, trigger) in triggers.iter().enumerate() {
        if let Trigger::Keyword { words, .. } = trigger {
            if words.is_empty() {
                out.push(Diagnostic::new(
                    codes::EMPTY_KEYWORD,
                    format!("/triggers/{t}/words"),
                    "keyword trigger has no words",
                ));
            }
            for (w, word) in words.iter().enumerate() {
                if word.trim().is_empty() {
                    out.push(Diagnostic::new(
                        codes::EMPTY_KEYWORD,
                        format!("/triggers/{t}/words/{w}"),
                        "keyword is empty",
                    ));
                }
            }
        }
    }
}

fn check_block(
    outline: &Outline<'_>,
    index: usize,
    block: &Block,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
) {
    let pointer = outline.block_pointer(index);
    match &block.kind {
        BlockKind::SendMessage { messages } => {
            if outline.message_count(index, messages.len()) == 0 {
                out.push(
                    Diagnostic::new(
                        codes::EMPTY_MESSAGES,
                        format!("{pointer}/messages"),
                        format!("block `{}` has no messages to send", block.id),
                    )
                    .with_hint(
                        "add a message, or use an `action` block for a step that sends nothing",
                    ),
                );
            }
            for (m, message) in messages.iter().enumerate() {
                let at = outline.message_pointer(index, m);
                check_message(&at, message, topics, out);
            }
        }
        BlockKind::WaitInput(wait) => {
            check_template(&format!("{pointer}/prompt"), wait.prompt.as_ref(), out);
            check_template(&format!("{pointer}/reprompt"), wait.reprompt.as_ref(), out);
            if let Some(prompt) = &wait.prompt {
                check_text_length(&format!("{pointer}/prompt"), prompt, MAX_TEXT_CHARS, out);
            }
            if let Some(reprompt) = &wait.reprompt {
                check_text_length(
                    &format!("{pointer}/reprompt"),
                    reprompt,
                    MAX_TEXT_CHARS,
                    out,
                );
            }
            if wait.max_attempts == 0 {
                out.push(Diagnostic::new(
                    codes::INVALID_WAIT,
                    format!("{pointer}/max_attempts"),
                    "`max_attempts` is 0, so no reply could ever be accepted",
                ));
            }
            if wait.on_timeout.is_some() && wait.timeout.is_none() {
                out.push(
                    Diagnostic::new(
                        codes::INVALID_WAIT,
                        format!("{pointer}/on_timeout"),
                        "`on_timeout` is set but `timeout` is not, so it can never be taken",
                    )
                    .with_hint("add a `timeout` such as \"1h\""),
                );
            }
        }
        BlockKind::Condition(condition) => {
            for (b, branch) in condition.branches.iter().enumerate() {
                for (p, predicate) in branch.when.iter().enumerate() {
                    if let Predicate::Field {
                        op, value: None, ..
                    } = predicate
                    {
                        if op.needs_value() {
                            out.push(Diagnostic::new(
                                codes::MISSING_VALUE,
                                format!("{pointer}/branches/{b}/when/{p}"),
                                "this comparison needs a `value`",
                            ));
                        }
                    }
                }
            }
        }
        BlockKind::Action { actions } => {
            for (a, step) in actions.iter().enumerate() {
                if let crate::model::ActionStep::SetField { value, .. } = step {
                    check_template(&format!("{pointer}/actions/{a}/value"), Some(value), out);
                }
            }
        }
        BlockKind::Delay { .. } => {}
        BlockKind::OtnSend(send) => {
            check_topic(&format!("{pointer}/topic"), Some(&send.topic), topics, out);
            let at = format!("{pointer}/message");
            match &send.message {
                Message::Text(text) if text.buttons.is_empty() && text.quick_replies.is_empty() => {
                    check_message(&at, &send.message, topics, out);
                }
                Message::Image(_) | Message::File(_) => {
                    check_message(&at, &send.message, topics, out);
                }
                Message::Text(_) => out.push(
                    Diagnostic::new(
                        codes::INVALID_OTN_MESSAGE,
                        at,
                        "the message of an `otn_send` cannot have buttons or quick replies",
                    )
                    .with_hint("send the buttons in a later block, after the subscriber replied"),
                ),
                Message::OtnRequest(_) => out.push(Diagnostic::new(
                    codes::INVALID_OTN_MESSAGE,
                    at,
                    "an `otn_send` cannot send an OTN request; send text, an image or a file",
                )),
            }
        }
    }
}

fn check_message(
    at: &str,
    message: &Message,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
) {
    match message {
        Message::Text(text) => check_text_message(at, text, out),
        Message::Image(attachment) | Message::File(attachment) => {
            let url = attachment.url.trim();
            if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 9 {
                out.push(Diagnostic::new(
                    codes::INVALID_URL,
                    format!("{at}/url"),
                    format!("{:?} is not an http(s) URL", attachment.url),
                ));
            }
        }
        Message::OtnRequest(request) => {
            if request.topic.is_none() {
                out.push(
                    Diagnostic::new(
                        codes::OTN_MISSING_TOPIC,
                        at,
                        "OTN request has no topic",
                    )
                    .with_hint(
                        "add \"topic\": {\"id\": \"...\"} for an existing topic or {\"name\": \"...\"} to create one at publish",
                    ),
                );
            }
            check_topic(&format!("{at}/topic"), request.topic.as_ref(), topics, out);
            let title_chars = request.title.trim().chars().count();
            if title_chars == 0 {
                out.push(
                    Diagnostic::new(
                        codes::OTN_TITLE_EMPTY,
                        format!("{at}/title"),
                        "OTN request title is empty",
                    )
                    .with_hint("the title is what the subscriber sees above \"Notify me\""),
                );
            } else if request.title.chars().count() > MAX_OTN_TITLE_CHARS {
                out.push(Diagnostic::new(
                    codes::OTN_TITLE_TOO_LONG,
                    format!("{at}/title"),
                    format!(
                        "OTN request title has {} characters; Messenger allows at most {MAX_OTN_TITLE_CHARS}",
                        request.title.chars().count()
                    ),
                ));
            }
        }
    }
}

fn check_text_message(at: &str, text: &TextMessage, out: &mut Vec<Diagnostic>) {
    check_template(&format!("{at}/text"), Some(&text.text), out);
    let limit = if text.buttons.is_empty() {
        MAX_TEXT_CHARS
    } else {
        MAX_BUTTON_TEXT_CHARS
    };
    check_text_length(&format!("{at}/text"), &text.text, limit, out);
    if text.buttons.len() > MAX_BUTTONS {
        out.push(
            Diagnostic::new(
                codes::TOO_MANY_BUTTONS,
                format!("{at}/buttons"),
                format!(
                    "{} buttons; Messenger allows at most {MAX_BUTTONS}",
                    text.buttons.len()
                ),
            )
            .with_hint("use quick replies (up to 13) for more choices"),
        );
    }
    for (b, button) in text.buttons.iter().enumerate() {
        let pointer = format!("{at}/buttons/{b}");
        check_title(
            &pointer,
            &button.title,
            (codes::BUTTON_TITLE_EMPTY, codes::BUTTON_TITLE_TOO_LONG),
            "button",
            out,
        );
        if button.next.is_some() == button.url.is_some() {
            out.push(Diagnostic::new(
                codes::INVALID_BUTTON,
                pointer,
                "a button needs exactly one of `next` (continue the flow) and `url` (open a page)",
            ));
        }
    }
    if text.quick_replies.len() > MAX_QUICK_REPLIES {
        out.push(Diagnostic::new(
            codes::TOO_MANY_QUICK_REPLIES,
            format!("{at}/quick_replies"),
            format!(
                "{} quick replies; Messenger allows at most {MAX_QUICK_REPLIES}",
                text.quick_replies.len()
            ),
        ));
    }
    for (r, reply) in text.quick_replies.iter().enumerate() {
        check_title(
            &format!("{at}/quick_replies/{r}"),
            &reply.title,
            (
                codes::QUICK_REPLY_TITLE_EMPTY,
                codes::QUICK_REPLY_TITLE_TOO_LONG,
            ),
            "quick reply",
            out,
        );
    }
}

fn check_title(
    at: &str,
    title: &str,
    (empty_code, long_code): (&str, &str),
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    let chars = title.chars().count();
    if title.trim().is_empty() {
        out.push(Diagnostic::new(
            empty_code,
            format!("{at}/title"),
            format!("{what} title is empty"),
        ));
    } else if chars > MAX_TITLE_CHARS {
        out.push(Diagnostic::new(
            long_code,
            format!("{at}/title"),
            format!(
                "{what} title has {chars} characters; Messenger allows at most {MAX_TITLE_CHARS}"
            ),
        ));
    }
}

/// Reports a text whose fixed part alone is over `limit` characters (fields count as empty).
fn check_text_length(at: &str, text: &Template, limit: usize, out: &mut Vec<Diagnostic>) {
    let chars = text.max_rendered_chars(0);
    if chars > limit {
        out.push(Diagnostic::new(
            codes::TEXT_TOO_LONG,
            at,
            format!("text has {chars} characters; Messenger allows at most {limit} here"),
        ));
    }
}

fn check_template(at: &str, template: Option<&Template>, out: &mut Vec<Diagnostic>) {
    if let Some(error) = template.and_then(Template::error) {
        out.push(
            Diagnostic::new(codes::BAD_TEMPLATE, at, error.to_string())
                .with_hint("placeholders look like {{first_name}}"),
        );
    }
}

fn check_topic(
    at: &str,
    topic: Option<&TopicRef>,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
) {
    match topic {
        None => {}
        Some(TopicRef::Id(by_id)) => {
            if by_id.id.as_str().trim().is_empty() {
                out.push(Diagnostic::new(
                    codes::INVALID_TOPIC,
                    format!("{at}/id"),
                    "topic id is empty",
                ));
            } else if let Some(lookup) = topics {
                if !lookup.topic_exists(&by_id.id) {
                    out.push(
                        Diagnostic::new(
                            codes::UNKNOWN_TOPIC,
                            format!("{at}/id"),
                            format!("no topic has id `{}`", by_id.id),
                        )
                        .with_hint("refer to the topic by name to create it at publish"),
                    );
                }
            }
        }
        Some(TopicRef::Name(by_name)) => {
            let chars = by_name.name.trim().chars().count();
            if chars == 0 {
                out.push(Diagnostic::new(
                    codes::INVALID_TOPIC,
                    format!("{at}/name"),
                    "topic name is empty",
                ));
            } else if chars > MAX_OTN_TITLE_CHARS {
                out.push(Diagnostic::new(
                    codes::INVALID_TOPIC,
                    format!("{at}/name"),
                    format!("topic name has {chars} characters; at most {MAX_OTN_TITLE_CHARS} are allowed"),
                ));
            }
        }
    }
}
