//! Rules on the content of blocks and messages: ids, Messenger limits, OTN requests, templates.

use crate::block_index::BlockIndex;
use crate::codes;
use crate::diagnostic::Diagnostic;
use crate::model::{
    ActionStep, Block, BlockKind, Message, Predicate, RecurringRequest, TextMessage, TopicRef,
    Trigger,
};
use crate::outline::Outline;
use crate::template::Template;
use crate::topics::TopicLookup;

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

/// A JSON Pointer built only when a diagnostic needs it (checks of a valid flow build none).
pub(crate) type LazyPointer<'a> = &'a dyn Fn() -> String;

/// Whether `text` is empty or only whitespace, with a shortcut for text that starts with a
/// visible ASCII character (almost all titles and ids).
pub(crate) fn is_blank(text: &str) -> bool {
    match text.as_bytes().first() {
        Some(first) if first.is_ascii_graphic() => false,
        _ => text.trim().is_empty(),
    }
}

/// Checks the triggers, the start id and every block's content; appends problems to `out`.
/// `first_index` maps each block id to the first block that has it; `visit` is called with
/// each block after its checks (the graph is built in the same walk).
pub(crate) fn check_content(
    outline: &Outline<'_>,
    first_index: &BlockIndex<'_>,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
    mut visit: impl FnMut(usize, &Block),
) {
    check_triggers(outline.triggers, out);
    if let Some(id) = outline.flow_id {
        if is_blank(id.as_str()) {
            out.push(Diagnostic::new(
                codes::INVALID_FIELD,
                "/id",
                "the flow id is empty",
            ));
        } else if let Some(too_long) = id_too_long(|| "/id".to_owned(), "flow id", id.as_str()) {
            out.push(too_long);
        }
    }
    match outline.start {
        Some(start) if is_blank(start.as_str()) => out.push(
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
    for (index, block) in outline.blocks.iter().enumerate() {
        if is_blank(block.id.as_str()) {
            out.push(Diagnostic::new(
                codes::EMPTY_BLOCK_ID,
                format!("{}/id", outline.block_pointer(index)),
                "block id is empty",
            ));
        } else if let Some(too_long) = id_too_long(
            || format!("{}/id", outline.block_pointer(index)),
            "block id",
            block.id.as_str(),
        ) {
            out.push(too_long);
        } else if let Some(first) = first_index.get(block.id.as_str()).filter(|&f| f != index) {
            out.push(
                Diagnostic::new(
                    codes::DUPLICATE_BLOCK_ID,
                    format!("{}/id", outline.block_pointer(index)),
                    format!(
                        "block id `{}` is already used by {}",
                        block.id,
                        outline.block_pointer(first)
                    ),
                )
                .with_hint("give every block its own id"),
            );
        }
        check_block(outline, index, block, topics, out);
        visit(index, block);
    }
}

/// Longest flow or block id: both go into button, quick reply and OTN request payloads, which
/// Messenger limits to 1,000 characters (ids are escaped there, `:` taking 3 characters).
pub(crate) const MAX_ID_CHARS: usize = 100;

/// The problem of an id longer than [`MAX_ID_CHARS`] characters, if it is.
fn id_too_long(pointer: impl Fn() -> String, what: &str, id: &str) -> Option<Diagnostic> {
    // Bytes bound characters from above: most ids are decided without counting.
    if id.len() <= MAX_ID_CHARS {
        return None;
    }
    let chars = id.chars().count();
    (chars > MAX_ID_CHARS).then(|| {
        Diagnostic::new(
            codes::INVALID_FIELD,
            pointer(),
            format!("{what} has {chars} characters; at most {MAX_ID_CHARS} are allowed"),
        )
        .with_hint(
            "ids go into button, quick reply and OTN payloads, which Messenger limits to 1,000 characters",
        )
    })
}

fn check_triggers(triggers: &[Trigger], out: &mut Vec<Diagnostic>) {
    for (t, trigger) in triggers.iter().enumerate() {
        if let Trigger::Referral { ref_param } = trigger {
            if is_blank(ref_param) {
                out.push(
                    Diagnostic::new(
                        codes::INVALID_FIELD,
                        format!("/triggers/{t}/ref"),
                        "the referral `ref` is empty",
                    )
                    .with_hint("give the `ref` parameter of the m.me link or ad"),
                );
            }
        }
        if let Trigger::Keyword { words, .. } = trigger {
            if words.is_empty() {
                out.push(Diagnostic::new(
                    codes::EMPTY_KEYWORD,
                    format!("/triggers/{t}/words"),
                    "keyword trigger has no words",
                ));
            }
            for (w, word) in words.iter().enumerate() {
                if is_blank(word) {
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
    let pointer = || outline.block_pointer(index);
    match &block.kind {
        BlockKind::SendMessage { messages } => {
            if outline.message_count(index, messages.len()) == 0 {
                out.push(
                    Diagnostic::new(
                        codes::EMPTY_MESSAGES,
                        format!("{}/messages", pointer()),
                        format!("block `{}` has no messages to send", block.id),
                    )
                    .with_hint(
                        "add a message, or use an `action` block for a step that sends nothing",
                    ),
                );
            }
            for (m, message) in messages.iter().enumerate() {
                check_message(&|| outline.message_pointer(index, m), message, topics, out);
            }
        }
        BlockKind::WaitInput(wait) => {
            let prompt_at = || format!("{}/prompt", pointer());
            let reprompt_at = || format!("{}/reprompt", pointer());
            check_template(&prompt_at, wait.prompt.as_ref(), out);
            check_template(&reprompt_at, wait.reprompt.as_ref(), out);
            if let Some(prompt) = &wait.prompt {
                check_text_length(&prompt_at, prompt, MAX_TEXT_CHARS, out);
            }
            if let Some(reprompt) = &wait.reprompt {
                check_text_length(&reprompt_at, reprompt, MAX_TEXT_CHARS, out);
            }
            check_name(
                format!("{}/field", pointer()),
                wait.field.as_str(),
                Name::ReplyField,
                out,
            );
            if wait.max_attempts == 0 {
                out.push(Diagnostic::new(
                    codes::INVALID_WAIT,
                    format!("{}/max_attempts", pointer()),
                    "`max_attempts` is 0, so no reply could ever be accepted",
                ));
            }
            if wait.on_timeout.is_some() && wait.timeout.is_none() {
                out.push(
                    Diagnostic::new(
                        codes::INVALID_WAIT,
                        format!("{}/on_timeout", pointer()),
                        "`on_timeout` is set but `timeout` is not, so it can never be taken",
                    )
                    .with_hint("add a `timeout` such as \"1h\""),
                );
            }
        }
        BlockKind::Condition(condition) => {
            for (b, branch) in condition.branches.iter().enumerate() {
                for (p, predicate) in branch.when.iter().enumerate() {
                    let at = format!("{}/branches/{b}/when/{p}", pointer());
                    match predicate {
                        Predicate::Field { field, .. } => {
                            check_name(format!("{at}/field"), field.as_str(), Name::Field, out);
                        }
                        Predicate::Tag { tag, .. } => {
                            check_name(format!("{at}/tag"), tag, Name::Tag, out);
                        }
                    }
                    if let Predicate::Field {
                        op, value: None, ..
                    } = predicate
                    {
                        if op.needs_value() {
                            out.push(Diagnostic::new(
                                codes::MISSING_VALUE,
                                format!("{}/branches/{b}/when/{p}", pointer()),
                                "this comparison needs a `value`",
                            ));
                        }
                    }
                }
            }
        }
        BlockKind::Action { actions } => {
            for (a, step) in actions.iter().enumerate() {
                let at = || format!("{}/actions/{a}", pointer());
                match step {
                    ActionStep::SetField { field, value } => {
                        check_name(format!("{}/field", at()), field.as_str(), Name::Field, out);
                        let value_at = || format!("{}/value", at());
                        check_template(&value_at, Some(value), out);
                    }
                    ActionStep::ClearField { field } => {
                        check_name(format!("{}/field", at()), field.as_str(), Name::Field, out);
                    }
                    ActionStep::AddTag { tag } | ActionStep::RemoveTag { tag } => {
                        check_name(format!("{}/tag", at()), tag, Name::Tag, out);
                    }
                    ActionStep::GotoFlow { flow } => {
                        check_name(format!("{}/flow", at()), flow.as_str(), Name::Flow, out);
                    }
                }
            }
        }
        BlockKind::Delay { .. } => {}
        BlockKind::OtnSend(send) => {
            check_topic(
                &|| format!("{}/topic", pointer()),
                Some(&send.topic),
                topics,
                out,
            );
            let at = || format!("{}/message", pointer());
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
                        at(),
                        "the message of an `otn_send` cannot have buttons or quick replies",
                    )
                    .with_hint("send the buttons in a later block, after the subscriber replied"),
                ),
                Message::OtnRequest(_) | Message::RecurringRequest(_) => {
                    out.push(Diagnostic::new(
                        codes::INVALID_OTN_MESSAGE,
                        at(),
                        "an `otn_send` cannot send a notification request; send text, an image or a file",
                    ));
                }
            }
        }
    }
}

/// What an identifier names, for [`check_name`]'s message.
#[derive(Clone, Copy)]
enum Name {
    /// The field a `wait_input` stores the reply in.
    ReplyField,
    Field,
    Tag,
    Flow,
}

/// Reports a field name, tag or flow id that is empty or only whitespace.
fn check_name(pointer: String, text: &str, name: Name, out: &mut Vec<Diagnostic>) {
    if !is_blank(text) {
        return;
    }
    let (what, hint) = match name {
        Name::ReplyField => (
            "the field name",
            Some("name the field the reply is stored in, e.g. \"email\""),
        ),
        Name::Field => ("the field name", None),
        Name::Tag => ("the tag", None),
        Name::Flow => (
            "the flow id",
            Some("give the id of the flow to continue with"),
        ),
    };
    let diagnostic = Diagnostic::new(codes::INVALID_FIELD, pointer, format!("{what} is empty"));
    out.push(match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    });
}

fn check_message(
    at: LazyPointer<'_>,
    message: &Message,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
) {
    match message {
        Message::Text(text) => check_text_message(at, text, out),
        Message::Image(attachment) | Message::File(attachment) => {
            check_url(&|| format!("{}/url", at()), &attachment.url, out);
        }
        Message::RecurringRequest(request) => check_recurring_request(at, request, topics, out),
        Message::OtnRequest(request) => {
            if request.topic.is_none() {
                out.push(
                    Diagnostic::new(
                        codes::OTN_MISSING_TOPIC,
                        at(),
                        "OTN request has no topic",
                    )
                    .with_hint(
                        "add \"topic\": {\"id\": \"...\"} for an existing topic or {\"name\": \"...\"} to create one at publish",
                    ),
                );
            }
            check_topic(
                &|| format!("{}/topic", at()),
                request.topic.as_ref(),
                topics,
                out,
            );
            if is_blank(&request.title) {
                out.push(
                    Diagnostic::new(
                        codes::OTN_TITLE_EMPTY,
                        format!("{}/title", at()),
                        "OTN request title is empty",
                    )
                    .with_hint("the title is what the subscriber sees above \"Notify me\""),
                );
            } else if request.title.chars().count() > MAX_OTN_TITLE_CHARS {
                out.push(Diagnostic::new(
                    codes::OTN_TITLE_TOO_LONG,
                    format!("{}/title", at()),
                    format!(
                        "OTN request title has {} characters; Messenger allows at most {MAX_OTN_TITLE_CHARS}",
                        request.title.chars().count()
                    ),
                ));
            }
        }
    }
}

/// Reports the problems of a recurring notification request: topic, title and frequency.
fn check_recurring_request(
    at: LazyPointer<'_>,
    request: &RecurringRequest,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
) {
    if request.topic.is_none() {
        out.push(
            Diagnostic::new(
                codes::RECURRING_MISSING_TOPIC,
                at(),
                "recurring notification request has no topic",
            )
            .with_hint(
                "add \"topic\": {\"id\": \"...\"} for an existing topic or {\"name\": \"...\"} to create one at publish",
            ),
        );
    }
    check_topic(
        &|| format!("{}/topic", at()),
        request.topic.as_ref(),
        topics,
        out,
    );
    let chars = request.title.chars().count();
    if is_blank(&request.title) {
        out.push(
            Diagnostic::new(
                codes::RECURRING_TITLE_EMPTY,
                format!("{}/title", at()),
                "recurring notification request title is empty",
            )
            .with_hint("the title tells the subscriber what the messages will be about"),
        );
    } else if chars > MAX_OTN_TITLE_CHARS {
        out.push(Diagnostic::new(
            codes::RECURRING_TITLE_TOO_LONG,
            format!("{}/title", at()),
            format!(
                "recurring notification request title has {chars} characters; Messenger allows at most {MAX_OTN_TITLE_CHARS}"
            ),
        ));
    }
    if request.frequency.is_none() {
        out.push(
            Diagnostic::new(
                codes::RECURRING_FREQUENCY_INVALID,
                at(),
                "recurring notification request has no frequency",
            )
            .with_hint("add \"frequency\": \"daily\", \"weekly\" or \"monthly\""),
        );
    }
    if let Some(url) = &request.image_url {
        check_url(&|| format!("{}/image_url", at()), url, out);
    }
}

/// Reports a URL that is not http(s).
fn check_url(at: LazyPointer<'_>, url: &str, out: &mut Vec<Diagnostic>) {
    let trimmed = url.trim();
    if !(trimmed.starts_with("https://") || trimmed.starts_with("http://")) || trimmed.len() < 9 {
        out.push(Diagnostic::new(
            codes::INVALID_URL,
            at(),
            format!("{url:?} is not an http(s) URL"),
        ));
    }
}

fn check_text_message(at: LazyPointer<'_>, text: &TextMessage, out: &mut Vec<Diagnostic>) {
    let text_at = || format!("{}/text", at());
    check_template(&text_at, Some(&text.text), out);
    let limit = if text.buttons.is_empty() {
        MAX_TEXT_CHARS
    } else {
        MAX_BUTTON_TEXT_CHARS
    };
    check_text_length(&text_at, &text.text, limit, out);
    if text.buttons.len() > MAX_BUTTONS {
        out.push(
            Diagnostic::new(
                codes::TOO_MANY_BUTTONS,
                format!("{}/buttons", at()),
                format!(
                    "{} buttons; Messenger allows at most {MAX_BUTTONS}",
                    text.buttons.len()
                ),
            )
            .with_hint("use quick replies (up to 13) for more choices"),
        );
    }
    for (b, button) in text.buttons.iter().enumerate() {
        let pointer = || format!("{}/buttons/{b}", at());
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
                pointer(),
                "a button needs exactly one of `next` (continue the flow) and `url` (open a page)",
            ));
        }
    }
    if text.quick_replies.len() > MAX_QUICK_REPLIES {
        out.push(Diagnostic::new(
            codes::TOO_MANY_QUICK_REPLIES,
            format!("{}/quick_replies", at()),
            format!(
                "{} quick replies; Messenger allows at most {MAX_QUICK_REPLIES}",
                text.quick_replies.len()
            ),
        ));
    }
    for (r, reply) in text.quick_replies.iter().enumerate() {
        check_title(
            &|| format!("{}/quick_replies/{r}", at()),
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
    at: LazyPointer<'_>,
    title: &str,
    (empty_code, long_code): (&str, &str),
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    if is_blank(title) {
        out.push(Diagnostic::new(
            empty_code,
            format!("{}/title", at()),
            format!("{what} title is empty"),
        ));
        return;
    }
    // At most 4 bytes per character: a short title cannot be over the limit.
    if title.len() <= MAX_TITLE_CHARS {
        return;
    }
    let chars = title.chars().count();
    if chars > MAX_TITLE_CHARS {
        out.push(Diagnostic::new(
            long_code,
            format!("{}/title", at()),
            format!(
                "{what} title has {chars} characters; Messenger allows at most {MAX_TITLE_CHARS}"
            ),
        ));
    }
}

/// Characters each `{{field}}` is assumed to take when warning that a text may render over its
/// limit ([`codes::TEXT_MAY_EXCEED_LIMIT`]); the runtime refuses a rendered text over the limit.
const FIELD_ALLOWANCE_CHARS: usize = 50;

/// Reports a text whose fixed part alone is over `limit` characters (an error: fields can only
/// add to it), and warns about one whose fields get less than [`FIELD_ALLOWANCE_CHARS`] each.
fn check_text_length(
    at: LazyPointer<'_>,
    text: &Template,
    limit: usize,
    out: &mut Vec<Diagnostic>,
) {
    // A character takes at least one byte, and a text has at most as many fields as parts: a
    // short source cannot render over the limit, even with every field at its allowance.
    let allowance = FIELD_ALLOWANCE_CHARS * text.parts().len();
    if text.source().len() + allowance <= limit {
        return;
    }
    let chars = text.max_rendered_chars(0);
    if chars > limit {
        out.push(Diagnostic::new(
            codes::TEXT_TOO_LONG,
            at(),
            format!("text has {chars} characters; Messenger allows at most {limit} here"),
        ));
        return;
    }
    let fields = text.fields().count();
    if fields > 0 && text.max_rendered_chars(FIELD_ALLOWANCE_CHARS) > limit {
        out.push(
            Diagnostic::new(
                codes::TEXT_MAY_EXCEED_LIMIT,
                at(),
                format!(
                    "text has {chars} characters without its {fields} field(s), leaving {} for them; \
                     Messenger allows at most {limit} here",
                    limit - chars
                ),
            )
            .with_hint("a message over the limit once rendered is not sent (the run goes on)"),
        );
    }
}

fn check_template(at: LazyPointer<'_>, template: Option<&Template>, out: &mut Vec<Diagnostic>) {
    if let Some(error) = template.and_then(Template::error) {
        out.push(
            Diagnostic::new(codes::BAD_TEMPLATE, at(), error.to_string())
                .with_hint("placeholders look like {{first_name}}"),
        );
    }
}

fn check_topic(
    at: LazyPointer<'_>,
    topic: Option<&TopicRef>,
    topics: Option<&dyn TopicLookup>,
    out: &mut Vec<Diagnostic>,
) {
    match topic {
        None => {}
        Some(TopicRef::Id(by_id)) => {
            if is_blank(by_id.id.as_str()) {
                out.push(Diagnostic::new(
                    codes::INVALID_TOPIC,
                    format!("{}/id", at()),
                    "topic id is empty",
                ));
            } else if let Some(lookup) = topics {
                if !lookup.topic_exists(&by_id.id) {
                    out.push(
                        Diagnostic::new(
                            codes::UNKNOWN_TOPIC,
                            format!("{}/id", at()),
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
                    format!("{}/name", at()),
                    "topic name is empty",
                ));
            } else if chars > MAX_OTN_TITLE_CHARS {
                out.push(Diagnostic::new(
                    codes::INVALID_TOPIC,
                    format!("{}/name", at()),
                    format!("topic name has {chars} characters; at most {MAX_OTN_TITLE_CHARS} are allowed"),
                ));
            }
        }
    }
}
