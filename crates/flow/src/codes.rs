//! The stable diagnostic codes: kebab-case strings that CI scripts and editors may match on.
//!
//! A code, once released, keeps its meaning; new rules get new codes. [`ALL`] lists every code
//! with its severity and a one-line description (the README's table is generated from the same list).

use crate::diagnostic::Severity;

/// The text is not JSON (reported with line and column).
pub const INVALID_JSON: &str = "invalid-json";
/// The document (or a part that must be an object) is not a JSON object.
pub const NOT_AN_OBJECT: &str = "not-an-object";
/// `format` is missing or not 1.
pub const UNSUPPORTED_FORMAT: &str = "unsupported-format";
/// A required field is missing.
pub const MISSING_FIELD: &str = "missing-field";
/// A field has the wrong JSON type or an invalid value.
pub const INVALID_FIELD: &str = "invalid-field";
/// A field that format 1 does not know (ignored by the engine; often a typo).
pub const UNKNOWN_FIELD: &str = "unknown-field";
/// A block `type` that format 1 does not know.
pub const UNKNOWN_BLOCK_TYPE: &str = "unknown-block-type";
/// A message `type` that format 1 does not know.
pub const UNKNOWN_MESSAGE_TYPE: &str = "unknown-message-type";
/// Two blocks share an id.
pub const DUPLICATE_BLOCK_ID: &str = "duplicate-block-id";
/// A block id is empty.
pub const EMPTY_BLOCK_ID: &str = "empty-block-id";
/// `start` is missing or empty, or the flow has no blocks.
pub const MISSING_START: &str = "missing-start";
/// `start`, `next` or another edge names a block that does not exist.
pub const DANGLING_TARGET: &str = "dangling-target";
/// No path from the start block reaches this block.
pub const UNREACHABLE_BLOCK: &str = "unreachable-block";
/// Blocks form a cycle that never waits for the subscriber, so it could run forever.
pub const ENDLESS_LOOP: &str = "endless-loop";
/// A `send_message` block without messages.
pub const EMPTY_MESSAGES: &str = "empty-messages";
/// An OTN request or `otn_send` without a topic.
pub const OTN_MISSING_TOPIC: &str = "otn-missing-topic";
/// An OTN request whose title is empty.
pub const OTN_TITLE_EMPTY: &str = "otn-title-empty";
/// An OTN request whose title is longer than 65 characters.
pub const OTN_TITLE_TOO_LONG: &str = "otn-title-too-long";
/// A recurring notification request without a topic.
pub const RECURRING_MISSING_TOPIC: &str = "recurring-missing-topic";
/// A recurring notification request whose title is empty.
pub const RECURRING_TITLE_EMPTY: &str = "recurring-title-empty";
/// A recurring notification request whose title is longer than 65 characters.
pub const RECURRING_TITLE_TOO_LONG: &str = "recurring-title-too-long";
/// A recurring notification request without a frequency, or with one other than daily, weekly, monthly.
pub const RECURRING_FREQUENCY_INVALID: &str = "recurring-frequency-invalid";
/// A topic reference whose id or name is empty, or whose name is longer than 65 characters.
pub const INVALID_TOPIC: &str = "invalid-topic";
/// A topic id that the store does not know (only when checked against a store).
pub const UNKNOWN_TOPIC: &str = "unknown-topic";
/// The message of an `otn_send` block is not a plain text, image or file.
pub const INVALID_OTN_MESSAGE: &str = "invalid-otn-message";
/// A text longer than Messenger allows (2,000 characters; 640 with buttons).
pub const TEXT_TOO_LONG: &str = "text-too-long";
/// A text with `{{field}}`s whose fixed part leaves them less than 50 characters each.
pub const TEXT_MAY_EXCEED_LIMIT: &str = "text-may-exceed-limit";
/// A text message with more than 3 buttons.
pub const TOO_MANY_BUTTONS: &str = "too-many-buttons";
/// A button title that is empty.
pub const BUTTON_TITLE_EMPTY: &str = "button-title-empty";
/// A button title longer than 20 characters.
pub const BUTTON_TITLE_TOO_LONG: &str = "button-title-too-long";
/// A button without exactly one of `next` and `url`.
pub const INVALID_BUTTON: &str = "invalid-button";
/// A text message with more than 13 quick replies.
pub const TOO_MANY_QUICK_REPLIES: &str = "too-many-quick-replies";
/// A quick reply title that is empty.
pub const QUICK_REPLY_TITLE_EMPTY: &str = "quick-reply-title-empty";
/// A quick reply title longer than 20 characters.
pub const QUICK_REPLY_TITLE_TOO_LONG: &str = "quick-reply-title-too-long";
/// An image or file URL that is not an http(s) URL.
pub const INVALID_URL: &str = "invalid-url";
/// A `{{field}}` template that does not parse.
pub const BAD_TEMPLATE: &str = "bad-template";
/// A duration that is not a whole number followed by s, m, h or d (or longer than 400 days).
pub const BAD_DURATION: &str = "bad-duration";
/// A `wait_input` with `on_timeout` but no `timeout`, or with `max_attempts` 0.
pub const INVALID_WAIT: &str = "invalid-wait";
/// A field predicate that needs a `value` but has none.
pub const MISSING_VALUE: &str = "missing-value";
/// A keyword trigger without words, or with an empty word.
pub const EMPTY_KEYWORD: &str = "empty-keyword";
/// A normal message that may be sent more than 24 hours after the subscriber's last input.
pub const OUTSIDE_24H_WINDOW: &str = "outside-24h-window";
/// Two flows of one run claim the same keyword, referral, get-started or default trigger.
pub const CONFLICTING_TRIGGER: &str = "conflicting-trigger";
/// Two flows of one run have the same id.
pub const DUPLICATE_FLOW_ID: &str = "duplicate-flow-id";

/// Every code with its severity and what it means, in the order of the README's table.
pub const ALL: &[(&str, Severity, &str)] = &[
    (
        INVALID_JSON,
        Severity::Error,
        "the text is not JSON (line and column given)",
    ),
    (
        NOT_AN_OBJECT,
        Severity::Error,
        "the document, a block or a message is not a JSON object",
    ),
    (
        UNSUPPORTED_FORMAT,
        Severity::Error,
        "`format` is missing or not 1",
    ),
    (
        MISSING_FIELD,
        Severity::Error,
        "a required field is missing",
    ),
    (
        INVALID_FIELD,
        Severity::Error,
        "a field has the wrong type or value",
    ),
    (
        UNKNOWN_FIELD,
        Severity::Warning,
        "a field format 1 does not know (ignored; often a typo)",
    ),
    (
        UNKNOWN_BLOCK_TYPE,
        Severity::Error,
        "a block `type` format 1 does not know",
    ),
    (
        UNKNOWN_MESSAGE_TYPE,
        Severity::Error,
        "a message `type` format 1 does not know",
    ),
    (
        DUPLICATE_BLOCK_ID,
        Severity::Error,
        "two blocks share an id",
    ),
    (EMPTY_BLOCK_ID, Severity::Error, "a block id is empty"),
    (
        MISSING_START,
        Severity::Error,
        "`start` is missing or empty, or there are no blocks",
    ),
    (
        DANGLING_TARGET,
        Severity::Error,
        "`start`, `next`, a button, branch or other edge names no block",
    ),
    (
        UNREACHABLE_BLOCK,
        Severity::Warning,
        "no path from the start block reaches this block",
    ),
    (
        ENDLESS_LOOP,
        Severity::Error,
        "a cycle that never waits for the subscriber",
    ),
    (
        EMPTY_MESSAGES,
        Severity::Error,
        "a `send_message` block without messages",
    ),
    (
        OTN_MISSING_TOPIC,
        Severity::Error,
        "an OTN request or `otn_send` without a topic",
    ),
    (
        OTN_TITLE_EMPTY,
        Severity::Error,
        "an OTN request with an empty title",
    ),
    (
        OTN_TITLE_TOO_LONG,
        Severity::Error,
        "an OTN request title over 65 characters",
    ),
    (
        RECURRING_MISSING_TOPIC,
        Severity::Error,
        "a recurring notification request without a topic",
    ),
    (
        RECURRING_TITLE_EMPTY,
        Severity::Error,
        "a recurring notification request with an empty title",
    ),
    (
        RECURRING_TITLE_TOO_LONG,
        Severity::Error,
        "a recurring notification request title over 65 characters",
    ),
    (
        RECURRING_FREQUENCY_INVALID,
        Severity::Error,
        "a recurring notification request without `daily`, `weekly` or `monthly` as frequency",
    ),
    (
        INVALID_TOPIC,
        Severity::Error,
        "a topic id or name that is empty, or a name over 65 characters",
    ),
    (
        UNKNOWN_TOPIC,
        Severity::Error,
        "a topic id the store does not know (checked against a store only)",
    ),
    (
        INVALID_OTN_MESSAGE,
        Severity::Error,
        "an `otn_send` message that is not plain text, image or file",
    ),
    (
        TEXT_TOO_LONG,
        Severity::Error,
        "text over 2,000 characters (640 with buttons)",
    ),
    (
        TEXT_MAY_EXCEED_LIMIT,
        Severity::Warning,
        "text whose `{{field}}`s get under 50 characters each before the limit",
    ),
    (TOO_MANY_BUTTONS, Severity::Error, "more than 3 buttons"),
    (
        BUTTON_TITLE_EMPTY,
        Severity::Error,
        "a button with an empty title",
    ),
    (
        BUTTON_TITLE_TOO_LONG,
        Severity::Error,
        "a button title over 20 characters",
    ),
    (
        INVALID_BUTTON,
        Severity::Error,
        "a button without exactly one of `next` and `url`",
    ),
    (
        TOO_MANY_QUICK_REPLIES,
        Severity::Error,
        "more than 13 quick replies",
    ),
    (
        QUICK_REPLY_TITLE_EMPTY,
        Severity::Error,
        "a quick reply with an empty title",
    ),
    (
        QUICK_REPLY_TITLE_TOO_LONG,
        Severity::Error,
        "a quick reply title over 20 characters",
    ),
    (
        INVALID_URL,
        Severity::Error,
        "an image or file URL that is not http(s)",
    ),
    (
        BAD_TEMPLATE,
        Severity::Error,
        "a `{{field}}` placeholder that does not parse",
    ),
    (
        BAD_DURATION,
        Severity::Error,
        "a duration that is not like `90s`, `15m`, `25h`, `3d` (max 400 days)",
    ),
    (
        INVALID_WAIT,
        Severity::Error,
        "`on_timeout` without `timeout`, or `max_attempts` 0",
    ),
    (
        MISSING_VALUE,
        Severity::Error,
        "a field predicate whose operator needs a `value`",
    ),
    (
        EMPTY_KEYWORD,
        Severity::Error,
        "a keyword trigger without words or with an empty word",
    ),
    (
        OUTSIDE_24H_WINDOW,
        Severity::Error,
        "a normal message that may go out over 24 h after the last user input",
    ),
    (
        CONFLICTING_TRIGGER,
        Severity::Error,
        "two flows of one run claim the same trigger",
    ),
    (
        DUPLICATE_FLOW_ID,
        Severity::Error,
        "two flows of one run have the same id",
    ),
];

/// The severity a code is always reported with, or `None` for a code not in [`ALL`].
pub fn severity_of(code: &str) -> Option<Severity> {
    ALL.iter()
        .find(|(known, _, _)| *known == code)
        .map(|(_, severity, _)| *severity)
}
