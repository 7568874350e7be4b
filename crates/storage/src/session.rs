//! The per-subscriber session the runtime reads and writes: position in a flow, fields, tags, timers.

use botflow_flow::{BlockId, FlowId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Everything the runtime keeps about one subscriber of one Page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Session {
    /// The flow version the subscriber is running (kept until the run finishes).
    #[serde(default)]
    pub flow: Option<FlowPosition>,
    /// What the subscriber waits on, if anything.
    #[serde(default)]
    pub waiting: Option<Waiting>,
    /// Custom fields, including profile fields such as `first_name`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Tags set by action blocks.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Time of the last user message, postback, opt-in or referral (opens the 24-hour window).
    #[serde(default)]
    pub last_interaction_ms: Option<u64>,
    /// Pending delay and input-timeout timers.
    #[serde(default)]
    pub timers: Vec<Timer>,
    /// The last run error, e.g. step budget exceeded or flow version retired.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The subscriber's Messenger profile fetches (null before the first one ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileFetch>,
}

/// When the runtime last fetched a subscriber's User Profile, and what it stored: the profile's
/// `first_name`, `last_name` and `profile_pic` go into the session's `fields`; a refresh
/// overwrites such a field only while it is unset or still holds the value in `values` (a value
/// a flow set itself is kept).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ProfileFetch {
    /// When the last successful fetch ended.
    #[serde(default)]
    pub fetched_ms: Option<u64>,
    /// When the last failed fetch ended, if it failed after the last success.
    #[serde(default)]
    pub failed_ms: Option<u64>,
    /// The field values the last successful fetch stored.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// A flow and the published version of it a subscriber runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct FlowPosition {
    /// The flow.
    pub flow: FlowId,
    /// The published version of the flow.
    pub version: u32,
}

/// The block a subscriber waits on and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Waiting {
    /// The flow of the waiting block.
    pub flow: FlowId,
    /// The published version of that flow.
    pub version: u32,
    /// The block that waits.
    pub block: BlockId,
    /// What the block waits for.
    pub kind: WaitKind,
    /// Invalid replies received so far (for `wait_input`).
    #[serde(default)]
    pub attempts: u32,
    /// When the wait started.
    pub since_ms: u64,
}

/// What a waiting block expects from the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    /// A typed reply for a `wait_input` block.
    Input,
    /// A tap on a button or quick reply.
    Tap,
    /// A tap on an OTN "Notify me" button.
    Optin,
}

/// A pending timer of a subscriber: a delay to finish or an input timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Timer {
    /// Id of the timer, unique within the session.
    pub id: u64,
    /// When the timer fires.
    pub due_ms: u64,
    /// The flow of the block that set the timer.
    pub flow: FlowId,
    /// The published version of that flow.
    pub version: u32,
    /// The block that set the timer.
    pub block: BlockId,
    /// What happens when it fires.
    pub kind: TimerKind,
}

/// The kinds of timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// A `delay` block: continue with its `next`.
    Delay,
    /// A `wait_input` timeout: continue with its `on_timeout`.
    InputTimeout,
}
