//! What a step did besides changing the session and queueing messages: the effects the caller
//! commits (tokens to store) or records (errors, started flows), and the errors a run can hit.

use crate::payload::PayloadTooLong;
use botflow_flow::{BlockId, FlowId, TopicId};
use botflow_storage::{TimerKind, WaitKind};
use serde::Serialize;

/// Why a flow started for a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartReason {
    /// A keyword trigger matched the subscriber's text.
    Keyword,
    /// The "Get Started" button.
    GetStarted,
    /// An m.me link or ad referral.
    Referral,
    /// The Page's default flow caught a message nothing else handled.
    Default,
    /// An `action` block's `goto_flow`.
    Goto,
    /// A topic notification runs the flow.
    Notification,
}

/// One observable consequence of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// The subscriber started a flow at its start block.
    FlowStarted {
        /// The flow.
        flow: FlowId,
        /// Its published version.
        version: u32,
        /// What started it.
        reason: StartReason,
    },
    /// The subscriber's run of a flow ended (nothing to wait for, no pending timer).
    FlowEnded {
        /// The flow.
        flow: FlowId,
        /// Its published version.
        version: u32,
    },
    /// The subscriber now waits on a block.
    WaitStarted {
        /// The block.
        block: BlockId,
        /// What it waits for.
        kind: WaitKind,
    },
    /// The message at this index of [`crate::StepOutcome::outbound`] was queued here, which
    /// places it among the other effects.
    MessageQueued {
        /// Index into the step's outbound messages.
        index: usize,
    },
    /// A field got a value.
    FieldSet {
        /// The field.
        field: String,
        /// Its new value.
        value: String,
    },
    /// A field lost its value.
    FieldCleared {
        /// The field.
        field: String,
    },
    /// A tag was added.
    TagAdded {
        /// The tag.
        tag: String,
    },
    /// A tag was removed.
    TagRemoved {
        /// The tag.
        tag: String,
    },
    /// A reply to a `wait_input` block did not have the expected kind.
    InputRejected {
        /// The waiting block.
        block: BlockId,
        /// Invalid replies so far.
        attempts: u32,
    },
    /// An OTN opt-in: the caller stores this token for (Page, subscriber, topic).
    TokenStored {
        /// The topic.
        topic: TopicId,
        /// The one-time token.
        token: String,
        /// When the token stops being usable.
        expires_ms: u64,
    },
    /// A recurring opt-in, stop or resume: the caller applies it to the store.
    Recurring(botflow_storage::RecurringChange),
    /// A message paid for by a token of this topic was queued (the store spends the token).
    TokenSpent {
        /// The topic.
        topic: TopicId,
    },
    /// A message was queued paid for by the subscriber's recurring token of this topic (no
    /// usable OTN token of it; the store records the send, the token is not spent).
    RecurringPaid {
        /// The topic.
        topic: TopicId,
    },
    /// A message needed a token of this topic and the subscriber held none.
    NoToken {
        /// The topic.
        topic: TopicId,
    },
    /// A timer was set.
    TimerSet {
        /// The timer's id.
        timer_id: u64,
        /// When it fires.
        due_ms: u64,
        /// What it does.
        kind: TimerKind,
    },
    /// Pending timers were dropped because the subscriber moved elsewhere.
    TimersCancelled {
        /// How many.
        count: usize,
    },
    /// The event changed nothing in the flow (no waiting block, trigger or default flow took it).
    Ignored {
        /// Why.
        reason: String,
    },
    /// The run hit a problem; it is also recorded in the session's `last_error`.
    Error(StepError),
}

/// A problem met while running a flow; the run stops or the event is dropped, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum StepError {
    /// More blocks ran for one event than the budget allows: a runaway loop.
    #[error(
        "step budget of {budget} blocks exceeded in flow `{flow}` at block `{block}`; the run was stopped"
    )]
    BudgetExceeded {
        /// The budget.
        budget: u32,
        /// The flow that looped.
        flow: FlowId,
        /// The block reached when the budget ran out.
        block: BlockId,
    },
    /// The subscriber's flow version (or a tapped message's) is no longer available.
    #[error("flow `{flow}` version {version} is retired; the subscriber left it")]
    VersionRetired {
        /// The flow.
        flow: FlowId,
        /// The retired version.
        version: u32,
    },
    /// A `goto_flow` or notification names a flow with no active version.
    #[error("flow `{flow}` has no active published version")]
    FlowNotFound {
        /// The flow.
        flow: FlowId,
    },
    /// A reference points at a block the flow version does not have (or of the wrong kind).
    #[error("flow `{flow}` version {version} has no suitable block `{block}`")]
    BlockNotFound {
        /// The flow.
        flow: FlowId,
        /// Its version.
        version: u32,
        /// The missing block.
        block: BlockId,
    },
    /// A payload botflow did not write, or one that names no button of its block.
    #[error("payload {payload:?} does not name a botflow button, quick reply or OTN request")]
    UnknownPayload {
        /// The payload.
        payload: String,
    },
    /// An opt-in payload written for another Page.
    #[error("opt-in payload belongs to Page `{page}`, not this one")]
    WrongPage {
        /// The Page named in the payload.
        page: String,
    },
    /// A rendered message Messenger would refuse (text empty or over its limit, ...): it was not
    /// queued, and the run went on as after any failed send.
    #[error(
        "message{} not sent, Messenger would refuse it: {reason}",
        block.as_ref().map(|b| format!(" of block `{b}`")).unwrap_or_default()
    )]
    MessageRefused {
        /// The block that sent it (none for a notification text).
        block: Option<BlockId>,
        /// The limit it breaks, with the wire path (e.g. `message.text is empty`).
        reason: String,
    },
    /// A payload would be over Messenger's limit; the message was not sent.
    #[error(transparent)]
    PayloadTooLong(#[serde(skip)] PayloadTooLong),
}
