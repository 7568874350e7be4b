//! Plays a scripted conversation through the real step function and writes a transcript:
//! the engine behind `botflow simulate` and the crate's conversation tests.
//!
//! The simulator stands in for storage and the dispatcher: it keeps the session, the OTN tokens
//! and the recurring tokens in memory, applies the 24-hour window to normal messages the way the
//! dispatcher does, and pays token messages with the oldest usable OTN token, else with the
//! recurring token of the topic when its period allows. The clock only moves on `advance`.

pub mod script;

use crate::context::{PublishedFlows, StepContext};
use crate::describe::MessageSummary;
use crate::effect::{Effect, StartReason};
use crate::event::{InboundEvent, NotifyContent};
use crate::step::{step, topic_id};
use crate::window::within_window;
use botflow_flow::{BlockKind, Message, TopicId, TopicRef, ValidFlow};
use botflow_storage::token_rules::TokenRules;
use botflow_storage::{
    NewOutbound, OutboundKind, PageId, Psid, RECURRING_CAP_MS, RecurringChange, RecurringStatus,
    RecurringToken, Session, TimerKind, WaitKind,
};
pub use script::{
    DetailedExpectation, Expectation, GetStartedStep, NotifyStep, OptinTarget, Script, ScriptStep,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

/// The simulated clock starts at 2026-01-01T00:00:00Z; transcripts show time relative to it.
pub const START_MS: u64 = 1_767_225_600_000;

/// Most timers one `advance` fires before it stops (a safety net against timer loops).
const MAX_TIMERS_PER_ADVANCE: usize = 10_000;

/// The transcript of a played script and the expectations that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationReport {
    /// One line per user action, bot message, notable effect and check.
    pub transcript: String,
    /// One line per failed expectation (or tap/opt-in that found nothing to tap).
    pub failures: Vec<String>,
}

impl SimulationReport {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Plays `script` against `flows` (each published as version 1 and active) and reports.
pub fn run_script(flows: &[ValidFlow], script: &Script) -> SimulationReport {
    let mut sim = Simulation::new(flows, script);
    for (i, s) in script.steps.iter().enumerate() {
        sim.step_no = i + 1;
        sim.play(s);
    }
    SimulationReport {
        transcript: sim.transcript,
        failures: sim.failures,
    }
}

/// One played step of a preview: what the subscriber did and what followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewTurn {
    /// The step as the transcript shows it (`user: restock`, `user taps: Blue`).
    pub input: String,
    /// The bot's messages, in order, with how each went.
    pub messages: Vec<PreviewMessage>,
    /// The notable effects and failures of the step (flow started, waits for a tap, …).
    pub notes: Vec<String>,
}

/// A message the bot sent during a preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewMessage {
    /// What the subscriber sees.
    pub summary: MessageSummary,
    /// `None` when delivered, else why not (`refused`, `not sent`).
    pub not_delivered: Option<&'static str>,
}

/// Plays `steps` against `flows` as [`run_script`] does (nothing is stored or sent) and returns
/// one [`PreviewTurn`] per step: the builder's preview pane replays the conversation so far.
pub fn preview(
    flows: &[ValidFlow],
    fields: BTreeMap<String, String>,
    steps: &[ScriptStep],
) -> Vec<PreviewTurn> {
    let script = Script {
        page: "page".to_owned(),
        psid: "preview".to_owned(),
        fields,
        flows: Vec::new(),
        step_budget: None,
        steps: Vec::new(),
    };
    let mut sim = Simulation::new(flows, &script);
    let mut turns = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        sim.step_no = i + 1;
        let before = sim.transcript.len();
        sim.play(s);
        let played = sim.transcript.split_off(before);
        let mut lines = played.lines();
        let input = lines.next().unwrap_or_default().to_owned();
        let notes = lines
            .filter_map(|line| line.strip_prefix("  · ").or(line.strip_prefix("FAILED: ")))
            .map(str::to_owned)
            .collect();
        let messages = std::mem::take(&mut sim.since_expect)
            .into_iter()
            .map(|d| PreviewMessage {
                summary: d.summary,
                not_delivered: d.not_delivered,
            })
            .collect();
        turns.push(PreviewTurn {
            input,
            messages,
            notes,
        });
    }
    turns
}

fn collect_topics(flow: &ValidFlow, topics: &mut BTreeSet<TopicId>) {
    for block in &flow.document().blocks {
        match &block.kind {
            BlockKind::SendMessage { messages } => {
                for m in messages {
                    let topic = match m {
                        Message::OtnRequest(r) => r.topic.as_ref(),
                        Message::RecurringRequest(r) => r.topic.as_ref(),
                        _ => None,
                    };
                    if let Some(t) = topic {
                        topics.insert(topic_id(t));
                    }
                }
            }
            BlockKind::OtnSend(s) => {
                topics.insert(topic_id(&s.topic));
            }
            _ => {}
        }
    }
}

/// A message the simulated dispatcher handled, with how it went.
struct Delivery {
    summary: MessageSummary,
    /// `None` when delivered, else why not (`refused`, `not sent`).
    not_delivered: Option<&'static str>,
}

struct Simulation {
    ctx: StepContext,
    topics: BTreeSet<TopicId>,
    session: Session,
    now_ms: u64,
    /// The subscriber's tokens by topic, under the store's rules.
    tokens: TokenRules<TopicId>,
    /// The subscriber's recurring token per topic (a newer opt-in replaces the older).
    recurring: BTreeMap<TopicId, RecurringToken>,
    delivered: Vec<MessageSummary>,
    since_expect: Vec<Delivery>,
    transcript: String,
    failures: Vec<String>,
    step_no: usize,
}

/// `t+1d2h3m4s` relative to the simulation start.
fn offset(ms: u64) -> String {
    let mut secs = ms.saturating_sub(START_MS) / 1_000;
    if secs == 0 {
        return "t+0s".to_owned();
    }
    let mut out = "t+".to_owned();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

impl Simulation {
    fn new(flows: &[ValidFlow], script: &Script) -> Self {
        let mut published = PublishedFlows::new();
        let mut topics = BTreeSet::new();
        for flow in flows {
            collect_topics(flow, &mut topics);
            published.insert_active(1, Arc::new(flow.clone()));
        }
        let session = Session {
            fields: script.fields.clone(),
            ..Session::default()
        };
        let mut ctx = StepContext::new(
            PageId(script.page.clone()),
            Psid(script.psid.clone()),
            Arc::new(published),
        );
        if let Some(budget) = script.step_budget {
            ctx.step_budget = budget;
        }
        Self {
            ctx,
            topics,
            session,
            now_ms: START_MS,
            tokens: TokenRules::default(),
            recurring: BTreeMap::new(),
            delivered: Vec::new(),
            since_expect: Vec::new(),
            transcript: String::new(),
            failures: Vec::new(),
            step_no: 0,
        }
    }

    fn line(&mut self, text: impl AsRef<str>) {
        self.transcript.push_str(text.as_ref());
        self.transcript.push('\n');
    }

    fn fail(&mut self, message: String) {
        self.line(format!("FAILED: {message}"));
        self.failures
            .push(format!("step {}: {message}", self.step_no));
    }

    fn resolve_topic(&self, name_or_id: &str) -> TopicId {
        let as_id = TopicId(name_or_id.to_owned());
        if self.topics.contains(&as_id) {
            return as_id;
        }
        topic_id(&TopicRef::by_name(name_or_id))
    }

    fn usable_tokens(&self) -> BTreeMap<TopicId, u32> {
        self.tokens.usable_counts(self.now_ms)
    }

    fn play(&mut self, s: &ScriptStep) {
        match s {
            ScriptStep::User(text) => {
                self.line(format!("user: {text}"));
                self.event(&InboundEvent::Text { text: text.clone() });
            }
            ScriptStep::Attachment(url) => {
                self.line(format!("user sends attachment: {url}"));
                self.event(&InboundEvent::Attachment { url: url.clone() });
            }
            ScriptStep::Tap(title) => self.tap(title),
            ScriptStep::Optin(target) => self.optin(target),
            ScriptStep::GetStarted(GetStartedStep::Plain(_)) => {
                self.line("user taps Get Started");
                self.event(&InboundEvent::GetStarted { ref_param: None });
            }
            ScriptStep::GetStarted(GetStartedStep::Ref(r)) => {
                self.line(format!("user taps Get Started (ref {r})"));
                self.event(&InboundEvent::GetStarted {
                    ref_param: Some(r.clone()),
                });
            }
            ScriptStep::Referral(r) => {
                self.line(format!("user follows referral: {r}"));
                self.event(&InboundEvent::Referral {
                    ref_param: r.clone(),
                });
            }
            ScriptStep::Advance(duration) => {
                self.advance(duration.as_millis(), &duration.to_string())
            }
            ScriptStep::Notify(n) => self.notify(n),
            ScriptStep::Expect(e) => self.expect(e),
        }
    }

    fn tap(&mut self, title: &str) {
        let wanted = title.trim().to_lowercase();
        let found = self.delivered.iter().rev().find_map(|m| {
            let button = m
                .buttons
                .iter()
                .find(|b| b.title.trim().to_lowercase() == wanted)
                .map(|b| (b.payload.clone(), b.url.clone(), false));
            button.or_else(|| {
                m.quick_replies
                    .iter()
                    .find(|(t, _)| t.trim().to_lowercase() == wanted)
                    .map(|(_, p)| (Some(p.clone()), None, true))
            })
        });
        self.line(format!("user taps: {title}"));
        match found {
            Some((_, Some(url), _)) => self.line(format!("  · opens {url}")),
            Some((Some(payload), None, true)) => self.event(&InboundEvent::QuickReply {
                payload,
                text: title.to_owned(),
            }),
            Some((Some(payload), None, false)) => self.event(&InboundEvent::Postback {
                payload,
                title: title.to_owned(),
            }),
            _ => self.fail(format!(
                "no button or quick reply titled {title:?} was sent"
            )),
        }
    }

    fn optin(&mut self, target: &OptinTarget) {
        let found = self.delivered.iter().rev().find(|m| {
            (m.kind == "otn_request" || m.kind == "recurring_request")
                && match target {
                    OptinTarget::Latest(_) => true,
                    OptinTarget::Title(t) => m.text == *t,
                }
        });
        let Some(request) = found else {
            self.line("user taps Notify me");
            return self.fail("no matching OTN request was sent".to_owned());
        };
        let payload = request.optin_payload.clone().unwrap_or_default();
        let title = request.text.clone();
        if request.kind == "recurring_request" {
            self.line(format!("user opts in to recurring messages: {title}"));
            let token = format!("recurring-token-{}", self.now_ms);
            return self.event(&InboundEvent::RecurringOptin {
                payload,
                token,
                frequency: None,
                timezone: None,
                expires_ms: None,
            });
        }
        let token = format!("otn-token-{}", self.tokens.tokens.len() + 1);
        self.line(format!("user taps Notify me: {title}"));
        self.event(&InboundEvent::Optin { payload, token });
    }

    fn advance(&mut self, by_ms: u64, label: &str) {
        let target = self.now_ms.saturating_add(by_ms);
        self.line(format!("clock: +{label} ({})", offset(target)));
        for _ in 0..MAX_TIMERS_PER_ADVANCE {
            let due = self
                .session
                .timers
                .iter()
                .filter(|t| t.due_ms <= target)
                .min_by_key(|t| (t.due_ms, t.id))
                .map(|t| (t.id, t.due_ms, t.kind, t.block.clone()));
            let Some((id, due_ms, kind, block)) = due else {
                break;
            };
            self.now_ms = self.now_ms.max(due_ms);
            let what = match kind {
                TimerKind::Delay => "delay",
                TimerKind::InputTimeout => "input timeout",
            };
            self.line(format!(
                "timer: {what} of block `{block}` fires at {}",
                offset(self.now_ms)
            ));
            self.event(&InboundEvent::TimerFired { timer_id: id });
        }
        self.now_ms = target;
    }

    fn notify(&mut self, n: &NotifyStep) {
        let topic = self.resolve_topic(&n.topic);
        let content = match (&n.text, &n.flow) {
            (Some(text), None) => {
                self.line(format!("page notifies topic {:?}: {text}", n.topic));
                NotifyContent::Text(text.clone())
            }
            (None, Some(flow)) => {
                self.line(format!(
                    "page notifies topic {:?} with flow `{flow}`",
                    n.topic
                ));
                NotifyContent::Flow(flow.clone())
            }
            _ => {
                return self
                    .fail("a notify step needs exactly one of `text` and `flow`".to_owned());
            }
        };
        self.event(&InboundEvent::Notify { topic, content });
    }

    fn event(&mut self, event: &InboundEvent) {
        self.ctx.usable_tokens = self.usable_tokens();
        self.ctx.recurring_ready = self
            .recurring
            .iter()
            .filter(|(_, token)| token.check_send(self.now_ms, RECURRING_CAP_MS).is_ok())
            .map(|(topic, _)| topic.clone())
            .collect();
        let outcome = step(&self.ctx, &self.session, event, self.now_ms);
        self.session = outcome.session;
        for effect in &outcome.effects {
            match effect {
                Effect::MessageQueued { index } => {
                    if let Some(message) = outcome.outbound.get(*index) {
                        self.deliver(message);
                    }
                }
                Effect::TokenStored {
                    topic,
                    token,
                    expires_ms,
                } => {
                    self.tokens
                        .add(topic.clone(), token, self.now_ms, *expires_ms);
                }
                Effect::Recurring(change) => self.recurring_change(change),
                _ => {}
            }
            if let Some(note) = self.describe_effect(effect) {
                self.line(format!("  · {note}"));
            }
        }
    }

    /// Applies a recurring opt-in, stop or resume as the store does.
    fn recurring_change(&mut self, change: &RecurringChange) {
        let (value, status) = match change {
            RecurringChange::Optin(optin) => {
                let token = RecurringToken {
                    page: self.ctx.page.clone(),
                    psid: self.ctx.psid.clone(),
                    topic: optin.topic.clone(),
                    token: optin.token.clone(),
                    frequency: optin.frequency,
                    timezone: optin.timezone.clone(),
                    created_ms: optin.created_ms,
                    expires_ms: optin.expires_ms,
                    last_sent_ms: None,
                    previous_sent_ms: None,
                    status: RecurringStatus::Active,
                };
                self.recurring.insert(optin.topic.clone(), token);
                return;
            }
            RecurringChange::Stop { token } => {
                (token, RecurringStatus::Stopped { at_ms: self.now_ms })
            }
            RecurringChange::Resume { token } => (token, RecurringStatus::Active),
        };
        if let Some(held) = self.recurring.values_mut().find(|t| t.token == *value) {
            held.status = status;
        }
    }

    /// Applies the dispatcher's rules to one queued message and writes its transcript line.
    fn deliver(&mut self, message: &NewOutbound) {
        let summary = MessageSummary::from_body(&message.body);
        let not_delivered = match &message.kind {
            OutboundKind::Normal => {
                if within_window(self.session.last_interaction_ms, self.now_ms) {
                    self.line(format!("bot: {}", summary.line()));
                    None
                } else {
                    self.line(format!(
                        "bot REFUSED (outside the 24-hour window): {}",
                        summary.line()
                    ));
                    Some("refused")
                }
            }
            OutboundKind::RecurringToken { topic } => {
                let now = self.now_ms;
                match self.recurring.get_mut(topic) {
                    Some(token) if token.check_send(now, RECURRING_CAP_MS).is_ok() => {
                        token.last_sent_ms = Some(now);
                        let name = token.token.clone();
                        self.line(format!(
                            "bot [paid by recurring {name}]: {}",
                            summary.line()
                        ));
                        None
                    }
                    _ => {
                        self.line(format!(
                            "bot NOT SENT (no recurring token of topic {topic} may pay now): {}",
                            summary.line()
                        ));
                        Some("not sent")
                    }
                }
            }
            OutboundKind::OtnToken { topic } => {
                let (token, _expired) = self.tokens.take_oldest(topic, self.now_ms);
                match token {
                    Some(name) => {
                        self.line(format!("bot [paid by {name}]: {}", summary.line()));
                        None
                    }
                    None => {
                        self.line(format!(
                            "bot NOT SENT (no usable token of topic {topic}): {}",
                            summary.line()
                        ));
                        Some("not sent")
                    }
                }
            }
        };
        if not_delivered.is_none() {
            self.delivered.push(summary.clone());
        }
        self.since_expect.push(Delivery {
            summary,
            not_delivered,
        });
    }

    fn describe_effect(&self, effect: &Effect) -> Option<String> {
        Some(match effect {
            Effect::FlowStarted {
                flow,
                version,
                reason,
            } => {
                let reason = match reason {
                    StartReason::Keyword => "keyword",
                    StartReason::GetStarted => "get started",
                    StartReason::Referral => "referral",
                    StartReason::Default => "default flow",
                    StartReason::Goto => "goto",
                    StartReason::Notification => "notification",
                };
                format!("flow `{flow}` v{version} started ({reason})")
            }
            Effect::FlowEnded { flow, version } => format!("flow `{flow}` v{version} ended"),
            Effect::WaitStarted { block, kind } => {
                let kind = match kind {
                    WaitKind::Input => "a reply",
                    WaitKind::Tap => "a tap",
                    WaitKind::Optin => "an opt-in",
                };
                format!("waits for {kind} at `{block}`")
            }
            Effect::FieldSet { field, value } => format!("field {field} = {value:?}"),
            Effect::FieldCleared { field } => format!("field {field} cleared"),
            Effect::TagAdded { tag } => format!("tag +{tag}"),
            Effect::TagRemoved { tag } => format!("tag -{tag}"),
            Effect::InputRejected { block, attempts } => {
                format!("reply rejected by `{block}` (attempt {attempts})")
            }
            Effect::TokenStored { topic, token, .. } => {
                format!("token {token} stored for topic {topic}")
            }
            Effect::TokenSpent { .. }
            | Effect::RecurringPaid { .. }
            | Effect::TimersCancelled { .. }
            | Effect::MessageQueued { .. } => return None,
            Effect::NoToken { topic } => format!("no usable token of topic {topic}"),
            Effect::Recurring(RecurringChange::Optin(optin)) => format!(
                "recurring token {} stored for topic {} ({:?})",
                optin.token, optin.topic, optin.frequency
            ),
            Effect::Recurring(RecurringChange::Stop { token }) => {
                format!("recurring token {token} stopped")
            }
            Effect::Recurring(RecurringChange::Resume { token }) => {
                format!("recurring token {token} resumed")
            }
            Effect::TimerSet { due_ms, kind, .. } => {
                let kind = match kind {
                    TimerKind::Delay => "delay",
                    TimerKind::InputTimeout => "input timeout",
                };
                format!("{kind} timer set for {}", offset(*due_ms))
            }
            Effect::Ignored { reason } => format!("ignored: {reason}"),
            Effect::Error(e) => format!("error: {e}"),
        })
    }

    fn expect(&mut self, expectation: &Expectation) {
        let detailed = match expectation {
            Expectation::Messages(messages) => DetailedExpectation {
                messages: Some(messages.clone()),
                ..DetailedExpectation::default()
            },
            Expectation::Detailed(d) => d.clone(),
        };
        let mut problems = Vec::new();
        if let Some(expected) = &detailed.messages {
            let got = std::mem::take(&mut self.since_expect);
            let ok = expected.len() == got.len()
                && expected
                    .iter()
                    .zip(&got)
                    .all(|(e, d)| delivery_matches(d, e));
            if !ok {
                let got: Vec<String> = got.iter().map(delivery_label).collect();
                problems.push(format!("messages: expected {expected:?}, got {got:?}"));
            }
        }
        for (field, value) in &detailed.fields {
            let actual = self.session.fields.get(field);
            if actual != value.as_ref() {
                problems.push(format!("field {field}: expected {value:?}, got {actual:?}"));
            }
        }
        for tag in &detailed.tags {
            if !self.session.tags.contains(tag) {
                problems.push(format!(
                    "tag {tag:?} missing (tags: {:?})",
                    self.session.tags
                ));
            }
        }
        let usable = self.usable_tokens();
        for (topic, count) in &detailed.tokens {
            let actual = usable.get(&self.resolve_topic(topic)).copied().unwrap_or(0);
            if actual != *count {
                problems.push(format!(
                    "tokens of topic {topic:?}: expected {count}, got {actual}"
                ));
            }
        }
        if let Some(block) = &detailed.waiting {
            let actual = self
                .session
                .waiting
                .as_ref()
                .map(|w| w.block.as_str())
                .unwrap_or("");
            if actual != block {
                problems.push(format!("waiting: expected {block:?}, got {actual:?}"));
            }
        }
        if problems.is_empty() {
            self.line("expect: ok");
        } else {
            for p in problems {
                self.fail(format!("expect {p}"));
            }
        }
    }
}

fn delivery_label(d: &Delivery) -> String {
    match d.not_delivered {
        None => d.summary.line(),
        Some(why) => format!("{why}: {}", d.summary.line()),
    }
}

fn delivery_matches(d: &Delivery, expected: &str) -> bool {
    match d.not_delivered {
        None => d.summary.matches(expected),
        Some(why) => expected
            .strip_prefix(why)
            .and_then(|rest| rest.strip_prefix(": "))
            .is_some_and(|rest| d.summary.matches(rest)),
    }
}
