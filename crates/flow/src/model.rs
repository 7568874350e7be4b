//! Serde types of the flow JSON, format 1: the compatibility boundary with the builder UI.
//!
//! These types mirror the document as written. They are lenient where validation must be able
//! to point at a problem (an OTN request without a topic still parses); [`crate::validate`]
//! reports such problems and [`crate::ValidFlow`] is the checked form the runtime runs.
//! [`FlowDocument`], [`Block`] and [`Message`] are read by the one flow reader (`reader.rs`
//! holds their `Deserialize`); the types inside them derive theirs.

use crate::duration::FlowDuration;
use crate::ids::{BlockId, FieldName, FlowId, TopicId};
use crate::template::Template;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only flow format this version of botflow reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A flow as saved by the builder UI.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "botflow flow, format 1")]
pub struct FlowDocument {
    /// Format version of this document; must be 1.
    #[schemars(extend("const" = 1))]
    pub format: u32,
    /// Identifier of the flow, unique per Page.
    pub id: FlowId,
    /// Human-readable name shown in the builder.
    pub name: String,
    /// What starts this flow for a subscriber who is not waiting on a block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
    /// Id of the first block to run.
    pub start: BlockId,
    /// The blocks of the flow, in the order the builder saved them.
    pub blocks: Vec<Block>,
    /// Builder-owned data; kept as it is and ignored by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<Value>,
}

/// What starts a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// A text message matching one of the words (case-insensitive, trimmed).
    Keyword {
        /// Words or phrases that start the flow.
        words: Vec<String>,
        /// How a message is compared with the words.
        #[serde(
            default,
            rename = "match",
            skip_serializing_if = "KeywordMatch::is_exact"
        )]
        match_mode: KeywordMatch,
    },
    /// The "Get Started" button of a new conversation.
    GetStarted,
    /// An m.me link or ad referral with this `ref`.
    Referral {
        /// The referral's `ref` parameter.
        #[serde(rename = "ref")]
        ref_param: String,
    },
    /// The Page's default flow: runs for any message that nothing else handles.
    Default,
}

/// How a keyword trigger compares a message with its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeywordMatch {
    /// The whole message equals a word.
    #[default]
    Exact,
    /// The message contains a word.
    Contains,
}

impl KeywordMatch {
    fn is_exact(&self) -> bool {
        *self == Self::Exact
    }
}

/// One node of the flow graph.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Block {
    /// Identifier, unique within the flow.
    pub id: BlockId,
    /// What the block does; the JSON field `type` selects the kind.
    #[serde(flatten)]
    pub kind: BlockKind,
    /// Block to continue with when this one is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<BlockId>,
    /// Position on the builder canvas; kept and ignored by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Value>,
    /// Builder-owned data; kept and ignored by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<Value>,
}

/// The kinds of block, tagged by the JSON field `type`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockKind {
    /// Sends one or more messages in order.
    SendMessage {
        /// The messages, sent in this order.
        messages: Vec<Message>,
    },
    /// Waits for the subscriber's reply and stores it in a field.
    WaitInput(WaitInput),
    /// Continues on the first branch whose predicates hold, else on `else`.
    Condition(Condition),
    /// Changes fields and tags, or moves the subscriber to another flow.
    Action {
        /// The steps, applied in order.
        actions: Vec<ActionStep>,
    },
    /// Continues with `next` after a duration; survives restarts.
    Delay {
        /// How long to wait.
        duration: FlowDuration,
    },
    /// Sends one message paid for by one of the subscriber's OTN tokens of a topic.
    OtnSend(OtnSend),
}

impl BlockKind {
    /// The `type` string of this kind as written in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::SendMessage { .. } => "send_message",
            Self::WaitInput(_) => "wait_input",
            Self::Condition(_) => "condition",
            Self::Action { .. } => "action",
            Self::Delay { .. } => "delay",
            Self::OtnSend(_) => "otn_send",
        }
    }
}

/// All block `type` values of format 1.
pub const BLOCK_TYPES: [&str; 6] = [
    "send_message",
    "wait_input",
    "condition",
    "action",
    "delay",
    "otn_send",
];

/// All message `type` values of format 1.
pub const MESSAGE_TYPES: [&str; 5] = ["text", "image", "file", "otn_request", "recurring_request"];

/// One message of a `send_message` block, tagged by the JSON field `type`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Text, optionally with buttons (a button template) or quick replies.
    Text(TextMessage),
    /// An image sent by URL.
    Image(AttachmentMessage),
    /// A file sent by URL.
    File(AttachmentMessage),
    /// Messenger's one-time-notification request ("Notify me") for a topic.
    OtnRequest(OtnRequest),
    /// Messenger's recurring notification request (`notification_messages`) for a topic.
    RecurringRequest(RecurringRequest),
}

/// A text message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TextMessage {
    /// The text; `{{field}}` placeholders are filled in per subscriber.
    pub text: Template,
    /// Up to 3 buttons under the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// Up to 13 quick replies shown above the keyboard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<QuickReply>,
}

/// A button under a text message: continues the flow at `next`, or opens `url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Button {
    /// Label, at most 20 characters.
    pub title: String,
    /// Block to continue with when tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<BlockId>,
    /// Web address to open instead of continuing the flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A quick reply: continues the flow at `next` when tapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuickReply {
    /// Label, at most 20 characters.
    pub title: String,
    /// Block to continue with when tapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<BlockId>,
}

/// An image or file given by URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentMessage {
    /// Public https URL of the image or file.
    pub url: String,
}

/// The OTN request: Messenger shows `title` and a "Notify me" button.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OtnRequest {
    /// The topic the subscriber opts in to: an existing topic by id, or by name (created at publish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicRef>,
    /// Title shown to the subscriber, 1 to 65 characters.
    #[serde(default)]
    pub title: String,
    /// Block to continue with after the subscriber taps "Notify me".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_optin: Option<BlockId>,
}

/// The recurring notification request: Messenger shows `title` (and `image_url`) with a button
/// to receive messages on the topic at most once per `frequency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecurringRequest {
    /// The topic the subscriber opts in to: an existing topic by id, or by name (created at publish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicRef>,
    /// Title shown to the subscriber, 1 to 65 characters.
    #[serde(default)]
    pub title: String,
    /// How often the Page may send on the topic (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<Frequency>,
    /// An optional http(s) image shown with the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Block to continue with after the subscriber opts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_optin: Option<BlockId>,
}

/// How often a recurring notification may be sent: at most once per period, counted from the
/// last send on the token (and never more often than Messenger's cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    /// Once a day.
    Daily,
    /// Once a week.
    Weekly,
    /// Once a month.
    Monthly,
}

impl Frequency {
    /// Every frequency, as spelled in a flow.
    pub const NAMES: [&'static str; 3] = ["daily", "weekly", "monthly"];

    /// The frequency spelled `name` in a flow (`daily`, `weekly`, `monthly`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "daily" => Some(Self::Daily),
            "weekly" => Some(Self::Weekly),
            "monthly" => Some(Self::Monthly),
            _ => None,
        }
    }

    /// The period in milliseconds: 1, 7 or 30 days.
    pub fn period_ms(self) -> u64 {
        const DAY_MS: u64 = 86_400_000;
        match self {
            Self::Daily => DAY_MS,
            Self::Weekly => 7 * DAY_MS,
            Self::Monthly => 30 * DAY_MS,
        }
    }
}

/// A reference to an OTN topic: `{"id": "..."}` or `{"name": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TopicRef {
    /// An existing topic, by id.
    Id(TopicById),
    /// A topic by name; publishing creates it when no topic of that name exists.
    Name(TopicByName),
}

impl TopicRef {
    /// A reference by id.
    pub fn by_id(id: impl Into<TopicId>) -> Self {
        Self::Id(TopicById { id: id.into() })
    }

    /// A reference by name.
    pub fn by_name(name: impl Into<String>) -> Self {
        Self::Name(TopicByName { name: name.into() })
    }
}

/// `{"id": "..."}`: an existing topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicById {
    /// The topic's id.
    pub id: TopicId,
}

/// `{"name": "..."}`: a topic by name, created at publish when it does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicByName {
    /// The topic's name (1 to 65 characters, unique per Page ignoring case and surrounding spaces).
    pub name: String,
}

/// Waits for a reply and stores it in `field`; continues with the block's `next` when it is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WaitInput {
    /// Field that receives the reply.
    pub field: FieldName,
    /// The kind of answer expected.
    #[serde(default)]
    pub input: InputKind,
    /// Question sent when the block starts waiting (optional: a previous block may have asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Template>,
    /// Sent when a reply does not have the expected kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprompt: Option<Template>,
    /// Replies accepted before giving up (default 3).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Block to continue with after `max_attempts` invalid replies; without it the flow ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_invalid: Option<BlockId>,
    /// How long to wait for a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<FlowDuration>,
    /// Block to continue with when `timeout` passes without a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<BlockId>,
}

/// The `max_attempts` of a `wait_input` block that does not give one.
pub(crate) fn default_max_attempts() -> u32 {
    3
}

/// The kind of answer a `wait_input` block accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Any non-empty text.
    #[default]
    Text,
    /// A number such as `42` or `3.5`.
    Number,
    /// An e-mail address.
    Email,
    /// A phone number: digits, spaces, `+`, `-`, `(` and `)`, with 6 to 15 digits.
    Phone,
}

/// Branches on fields and tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Condition {
    /// Checked in order; the first that holds is taken.
    pub branches: Vec<Branch>,
    /// Block to continue with when no branch holds (falls back to the block's `next`).
    #[serde(default, rename = "else", skip_serializing_if = "Option::is_none")]
    pub else_next: Option<BlockId>,
}

/// One branch of a condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Branch {
    /// The predicates of this branch.
    pub when: Vec<Predicate>,
    /// Whether all predicates must hold (default) or any one.
    #[serde(
        default,
        rename = "match",
        skip_serializing_if = "PredicateMatch::is_all"
    )]
    pub match_mode: PredicateMatch,
    /// Block to continue with when the branch holds.
    pub next: BlockId,
}

/// How the predicates of a branch combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredicateMatch {
    /// Every predicate holds.
    #[default]
    All,
    /// At least one predicate holds.
    Any,
}

impl PredicateMatch {
    fn is_all(&self) -> bool {
        *self == Self::All
    }
}

/// A test on the subscriber's fields or tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Predicate {
    /// Compares a field with a value.
    Field {
        /// The field.
        field: FieldName,
        /// The comparison.
        op: FieldOp,
        /// The value compared with (not used by `is_set` / `is_not_set`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<String>,
    },
    /// Checks whether the subscriber has a tag.
    Tag {
        /// The tag.
        tag: String,
        /// `true`: the tag is present; `false`: it is absent.
        #[serde(default = "default_true")]
        present: bool,
    },
}

fn default_true() -> bool {
    true
}

/// Comparison of a field with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldOp {
    /// The field has a value.
    IsSet,
    /// The field has no value.
    IsNotSet,
    /// Equal, ignoring case and surrounding spaces.
    Equals,
    /// Not equal, ignoring case and surrounding spaces.
    NotEquals,
    /// Contains the value, ignoring case.
    Contains,
    /// Both are numbers and the field is greater.
    GreaterThan,
    /// Both are numbers and the field is smaller.
    LessThan,
}

impl FieldOp {
    /// Whether this comparison needs a `value`.
    pub fn needs_value(&self) -> bool {
        !matches!(self, Self::IsSet | Self::IsNotSet)
    }
}

/// One step of an `action` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActionStep {
    /// Sets a field to a templated value.
    SetField {
        /// The field.
        field: FieldName,
        /// The value; `{{field}}` placeholders are filled in.
        value: Template,
    },
    /// Removes a field's value.
    ClearField {
        /// The field.
        field: FieldName,
    },
    /// Adds a tag.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// Removes a tag.
    RemoveTag {
        /// The tag.
        tag: String,
    },
    /// Starts another flow of the same Page at its start block; the rest of this flow is left.
    GotoFlow {
        /// The flow to start.
        flow: FlowId,
    },
}

/// Sends one message with one OTN token of a topic (outside the 24-hour window too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OtnSend {
    /// The topic whose token pays for the message.
    pub topic: TopicRef,
    /// The message: text (without buttons or quick replies), image or file.
    pub message: Message,
    /// Block to continue with when the subscriber holds no usable token of the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_no_token: Option<BlockId>,
}
