//! The conversation script format of `botflow simulate` (JSON).

use botflow_flow::{FlowDuration, FlowId};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A scripted conversation between one subscriber and a Page.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The Page id (default `"page"`).
    #[serde(default = "default_page")]
    pub page: String,
    /// The subscriber's PSID (default `"subscriber"`).
    #[serde(default = "default_psid")]
    pub psid: String,
    /// Fields the subscriber starts with, e.g. `{"first_name": "Ada"}`.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// More flow files the Page has published (paths relative to the main flow file's folder).
    #[serde(default)]
    pub flows: Vec<String>,
    /// Blocks one event may run (default [`crate::DEFAULT_STEP_BUDGET`]).
    #[serde(default)]
    pub step_budget: Option<u32>,
    /// The steps, played in order.
    pub steps: Vec<ScriptStep>,
}

fn default_page() -> String {
    "page".to_owned()
}

fn default_psid() -> String {
    "subscriber".to_owned()
}

/// One step of a script; each is a JSON object with one key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScriptStep {
    /// The subscriber types this text.
    User(String),
    /// The subscriber sends an attachment with this URL.
    Attachment(String),
    /// The subscriber taps the most recent button or quick reply with this title.
    Tap(String),
    /// The subscriber taps "Notify me": `true` for the most recent OTN request, or its title.
    Optin(OptinTarget),
    /// The subscriber taps "Get Started" (`true`), or opens an m.me link with this ref.
    GetStarted(GetStartedStep),
    /// The subscriber follows an m.me link or ad with this `ref`.
    Referral(String),
    /// Time passes (`"90s"`, `"25h"`); timers that fall due fire in order.
    Advance(FlowDuration),
    /// The Page sends a topic notification.
    Notify(NotifyStep),
    /// Checks the bot's messages since the previous `expect` (a list), or more (an object).
    Expect(Expectation),
}

/// Which OTN request an opt-in answers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OptinTarget {
    /// `true`: the most recent request.
    Latest(bool),
    /// The request with this title.
    Title(String),
}

/// A get-started tap, with or without a referral.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum GetStartedStep {
    /// `true`: a plain tap.
    Plain(bool),
    /// The `ref` of the m.me link that opened the conversation.
    Ref(String),
}

/// A topic notification: a text, or a flow to run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyStep {
    /// The topic, by id or by name.
    pub topic: String,
    /// The text to send with one token.
    #[serde(default)]
    pub text: Option<String>,
    /// The flow to run instead.
    #[serde(default)]
    pub flow: Option<FlowId>,
}

/// What an `expect` step checks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Expectation {
    /// Exactly these messages since the previous `expect`, in order.
    Messages(Vec<String>),
    /// Any of: messages, field values, tags, usable tokens per topic, the waiting block.
    Detailed(DetailedExpectation),
}

/// The long form of an expectation; every part is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedExpectation {
    /// Exactly these messages since the previous `expect`, in order.
    #[serde(default)]
    pub messages: Option<Vec<String>>,
    /// Field values; `null` means the field is unset.
    #[serde(default)]
    pub fields: BTreeMap<String, Option<String>>,
    /// Tags the subscriber must have.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Usable tokens per topic (by id or name).
    #[serde(default)]
    pub tokens: BTreeMap<String, u32>,
    /// The block the subscriber waits on; `""` for none.
    #[serde(default)]
    pub waiting: Option<String>,
}
