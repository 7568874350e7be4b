//! The pure step function: (published flows, session, event, now) → (session, messages, effects).
//!
//! No I/O, no clock, no randomness: the same inputs always give the same outcome, so a
//! conversation can be replayed exactly (`botflow simulate`, golden tests, crash recovery).

mod blocks;
mod routing;

use crate::condition;
use crate::context::StepContext;
use crate::effect::{Effect, StartReason, StepError};
use crate::event::{GET_STARTED_PAYLOAD, InboundEvent, NotifyContent};
use crate::input_check;
use crate::outbound::{Purpose, request_body, text_message};
use crate::payload::{OptinPayload, Payload, Port, TapPayload, encode_tap};
use botflow_flow::{
    ActionStep, Block, BlockId, BlockKind, FlowId, Frequency, Message, OtnSend, RecurringRequest,
    TopicId, TopicRef, Trigger, ValidFlow, WaitInput,
};
use botflow_messenger::webhook::RecurringFrequency;
use botflow_messenger::{Button, OutgoingMessage, QuickReply};
use botflow_storage::{
    FlowPosition, NewOutbound, OutboundKind, RecurringChange, RecurringOptin, Session, Timer,
    TimerKind, WaitKind, Waiting,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How long an OTN token stays usable after the opt-in (messenger's
/// [`botflow_messenger::limits::OTN_TOKEN_LIFETIME`], in milliseconds).
pub const TOKEN_LIFETIME_MS: u64 = botflow_messenger::limits::OTN_TOKEN_LIFETIME.as_millis() as u64;

/// The result of one step: the new session, the messages to queue and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// The session after the event.
    pub session: Session,
    /// Messages to queue, in send order.
    pub outbound: Vec<NewOutbound>,
    /// What happened, in order.
    pub effects: Vec<Effect>,
}

/// Runs one event for one subscriber. Pure: see the crate docs for the routing rules and the
/// semantics of every block kind.
pub fn step(
    ctx: &StepContext,
    session: &Session,
    event: &InboundEvent,
    now_ms: u64,
) -> StepOutcome {
    let mut run = Run {
        ctx,
        session: session.clone(),
        outbound: Vec::new(),
        effects: Vec::new(),
        tokens: None,
        recurring_used: BTreeSet::new(),
        blocks_run: 0,
        now_ms,
        purpose: if event.is_user_interaction() {
            Purpose::Response
        } else {
            Purpose::Update
        },
    };
    run.handle(event);
    StepOutcome {
        session: run.session,
        outbound: run.outbound,
        effects: run.effects,
    }
}

/// The topic id a flow's topic reference stands for. Published flows always refer by id; a
/// reference by name (an unpublished file in `botflow simulate`) maps to `name:<lowercased name>`.
pub fn topic_id(topic: &TopicRef) -> TopicId {
    match topic {
        TopicRef::Id(by_id) => by_id.id.clone(),
        TopicRef::Name(by_name) => TopicId(format!("name:{}", by_name.name.trim().to_lowercase())),
    }
}

/// The flow versions a step for this session and event may need besides the active ones:
/// the caller loads them into [`crate::PublishedFlows`] before calling [`step`].
pub fn versions_needed(session: &Session, event: &InboundEvent) -> Vec<(FlowId, u32)> {
    let mut out: Vec<(FlowId, u32)> = Vec::new();
    let mut push = |flow: &FlowId, version: u32| {
        if !out.iter().any(|(f, v)| f == flow && *v == version) {
            out.push((flow.clone(), version));
        }
    };
    if let Some(pos) = &session.flow {
        push(&pos.flow, pos.version);
    }
    if let Some(w) = &session.waiting {
        push(&w.flow, w.version);
    }
    for t in &session.timers {
        push(&t.flow, t.version);
    }
    let payload = match event {
        InboundEvent::QuickReply { payload, .. }
        | InboundEvent::Postback { payload, .. }
        | InboundEvent::Optin { payload, .. } => Payload::decode(payload),
        _ => None,
    };
    match payload {
        Some(Payload::Tap(tap)) => push(&tap.flow, tap.version),
        Some(Payload::Optin(optin)) => push(&optin.flow, optin.version),
        None => {}
    }
    out
}

enum Reply<'a> {
    Text(&'a str),
    Attachment(&'a str),
}

struct Run<'c> {
    ctx: &'c StepContext,
    session: Session,
    outbound: Vec<NewOutbound>,
    effects: Vec<Effect>,
    /// Copy-on-write view of the usable token counts (tokens stored or spent in this step).
    tokens: Option<BTreeMap<TopicId, u32>>,
    /// Topics whose recurring token paid in this step (it pays once per period).
    recurring_used: BTreeSet<TopicId>,
    blocks_run: u32,
    now_ms: u64,
    purpose: Purpose,
}

impl Run<'_> {
    fn handle(&mut self, event: &InboundEvent) {
        if event.is_user_interaction() {
            self.session.last_interaction_ms = Some(self.now_ms);
        }
        match event {
            InboundEvent::Text { text } => self.on_text(text),
            InboundEvent::Attachment { url } => self.on_attachment(url),
            InboundEvent::QuickReply { payload, text } => match Payload::decode(payload) {
                Some(Payload::Tap(tap)) => self.on_tap(&tap, text),
                _ => self.on_text(text),
            },
            InboundEvent::Postback { payload, title } => match Payload::decode(payload) {
                Some(Payload::Tap(tap)) => self.on_tap(&tap, title),
                Some(Payload::Optin(_)) => self.error(StepError::UnknownPayload {
                    payload: payload.clone(),
                }),
                None if payload == GET_STARTED_PAYLOAD => self.on_get_started(None),
                None => self.on_text(title),
            },
            InboundEvent::Optin { payload, token } => self.on_optin(payload, token),
            InboundEvent::RecurringOptin {
                payload,
                token,
                frequency,
                timezone,
                expires_ms,
            } => self.on_recurring_optin(payload, token, *frequency, timezone.clone(), *expires_ms),
            InboundEvent::RecurringStatus { token, stopped } => {
                let token = token.clone();
                self.effects.push(Effect::Recurring(if *stopped {
                    RecurringChange::Stop { token }
                } else {
                    RecurringChange::Resume { token }
                }));
            }
            InboundEvent::Referral { ref_param } => self.on_referral(ref_param),
            InboundEvent::GetStarted { ref_param } => self.on_get_started(ref_param.as_deref()),
            InboundEvent::TimerFired { timer_id } => self.on_timer(*timer_id),
            InboundEvent::Notify { topic, content } => self.on_notify(topic, content),
        }
    }

    /// Queues `message` unless Messenger would refuse it as rendered (see [`Run::refused`]).
    fn send(&mut self, block: Option<&BlockId>, message: OutgoingMessage) {
        if self.refused(block, &message) {
            return;
        }
        let body = request_body(&self.ctx.psid, self.purpose, message);
        self.effects.push(Effect::MessageQueued {
            index: self.outbound.len(),
        });
        self.outbound.push(NewOutbound {
            body,
            kind: OutboundKind::Normal,
        });
    }

    /// Whether Messenger would refuse `message` as rendered (empty text, over a length limit...):
    /// then it is not queued, the subscriber's `last_error` says why, and the run goes on as after
    /// any failed send.
    fn refused(&mut self, block: Option<&BlockId>, message: &OutgoingMessage) -> bool {
        match message.check_limits() {
            Ok(()) => false,
            Err(error) => {
                self.error(StepError::MessageRefused {
                    block: block.cloned(),
                    reason: error.to_string(),
                });
                true
            }
        }
    }

    fn render(&self, template: &botflow_flow::Template) -> String {
        let fields = &self.session.fields;
        template.render(|name| fields.get(name.as_str()).map(String::as_str))
    }

    fn tokens_mut(&mut self) -> &mut BTreeMap<TopicId, u32> {
        self.tokens
            .get_or_insert_with(|| self.ctx.usable_tokens.clone())
    }

    fn error(&mut self, error: StepError) {
        self.session.last_error = Some(error.to_string());
        self.effects.push(Effect::Error(error));
    }
}
